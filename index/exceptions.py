"""Errors of the vector indexes (this package knows nothing of the rest of feedrec: whoever
builds an index from a setting turns these into messages that name the setting)."""


class VectorIndexError(Exception):
    """Root of the errors raised by :mod:`feedrec.index`."""


class IndexUnavailable(VectorIndexError):
    """The kind of index asked for cannot run here (faiss not installed, no GPU)."""
