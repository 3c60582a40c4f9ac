"""Vector indexes behind one contract (:class:`index.base.VectorIndex`)."""

from __future__ import annotations

import logging

from feedrec.index.base import VectorIndex

log = logging.getLogger(__name__)

KINDS = ("auto", "faiss", "exact")


def make_index(dim: int, kind: str = "auto", use_gpu: bool | None = None) -> VectorIndex:
    """``auto`` and ``faiss`` give FAISS (GPU when faiss sees one); ``exact`` gives brute force.

    ``auto`` falls back to the exact index when faiss is not installed, so a bare install runs.
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
        except ImportError:
            if kind == "faiss":
                raise
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


__all__ = ["KINDS", "VectorIndex", "make_index", "set_threads"]
