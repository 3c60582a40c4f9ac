"""Errors of the adapters and tools; all derive from :class:`model.exceptions.FeedrecError`."""

from feedrec.model.exceptions import FeedrecError


class StreamsError(FeedrecError):
    """Root of the errors raised by ``streams``."""


class ReplayFormatError(StreamsError):
    """A dataset line does not match its format; the message names the file and line."""


class DatasetError(StreamsError):
    """A dataset cannot be read at all (missing, a directory, unreadable, a bad ``sim:N``)."""


class BrokerUnavailable(StreamsError):
    """No Kafka broker answered at the configured bootstrap servers."""


class WorkerCrashed(StreamsError):
    """The worker's app crashed (an agent, task or timer raised); the process must exit so that
    its supervisor restarts it."""

    exit_code = 1


class WorkerStartError(StreamsError):
    """A worker subprocess (demo, benchmark, tests) exited or went silent while starting."""
