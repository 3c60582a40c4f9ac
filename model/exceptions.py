"""The project's exceptions: one root, so callers can catch everything feedrec raises."""


class FeedrecError(Exception):
    """Root of every error feedrec raises on purpose."""


class ConfigError(FeedrecError):
    """A setting or argument is wrong; the message says which and what to do."""


class CheckpointError(FeedrecError):
    """A checkpoint directory cannot be read or written."""
