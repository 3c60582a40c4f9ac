"""The project's exceptions: one root, so callers can catch everything feedrec raises."""


class FeedrecError(Exception):
    """Root of every error feedrec raises on purpose.

    The command line prints the message as one line (``feedrec: <message>``) and exits with
    ``exit_code``; so a message names what is wrong and what to do about it.
    """

    #: Exit status of the command line for this error: 2 for something the user can fix.
    exit_code = 2


class ConfigError(FeedrecError):
    """A setting or argument is wrong; the message says which and what to do."""


class CheckpointError(FeedrecError):
    """A checkpoint directory cannot be read or written."""
