"""Errors of the adapters and tools; all derive from :class:`model.exceptions.FeedrecError`."""

from model.exceptions import FeedrecError


class StreamsError(FeedrecError):
    """Root of the errors raised by ``streams``."""


class ReplayFormatError(StreamsError):
    """A dataset line does not match its format; the message names the file and line."""
