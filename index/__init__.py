"""Vector indexes behind one contract (:class:`feedrec.index.base.VectorIndex`).

This package is a leaf: it knows vectors keyed by integer ids, and nothing of models, users or
the rest of feedrec.
"""

from __future__ import annotations

import logging

from feedrec.index.base import VectorIndex
from feedrec.index.exceptions import IndexUnavailable, VectorIndexError

log = logging.getLogger(__name__)

#: Every kind of index there is; ``auto`` picks one of them.
BACKENDS = ("faiss", "exact")
KINDS = ("auto", *BACKENDS)


def make_index(dim: int, kind: str = "auto", use_gpu: bool | None = None) -> VectorIndex:
    """``auto`` and ``faiss`` give FAISS (GPU when faiss sees one); ``exact`` gives brute force.

    ``auto`` falls back to the exact index when faiss is not installed, so a bare install runs;
    ``faiss`` without faiss raises :class:`IndexUnavailable`.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown index kind {kind!r}: expected one of {', '.join(KINDS)}")
    index: VectorIndex
    if kind == "exact":
        from feedrec.index.exact import ExactIndex

        index = ExactIndex(dim)
    else:
        try:
            from feedrec.index.faiss_index import FaissIndex
        except ImportError as exc:
            if kind == "faiss":
                raise IndexUnavailable(
                    f"faiss is not installed ({exc}): install faiss-cpu "
                    "or faiss-gpu, or choose the exact index"
                ) from exc
            from feedrec.index.exact import ExactIndex

            log.warning("faiss is not installed; falling back to the exact index")
            index = ExactIndex(dim)
        else:
            index = FaissIndex(dim, use_gpu=use_gpu)
    log.info("retrieval index: %s (dim %d, kind=%s)", index.name, dim, kind)
    return index


def set_threads(n: int) -> None:
    """CPU threads faiss searches with (OpenMP); a no-op without faiss."""
    try:
        import faiss
    except ImportError:
        return
    faiss.omp_set_num_threads(n)


__all__ = [
    "BACKENDS",
    "KINDS",
    "IndexUnavailable",
    "VectorIndex",
    "VectorIndexError",
    "make_index",
    "set_threads",
]
