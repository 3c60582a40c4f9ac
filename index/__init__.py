"""Vector indexes behind one contract (:class:`index.base.VectorIndex`)."""

from __future__ import annotations

import logging

from index.base import VectorIndex

log = logging.getLogger(__name__)


def make_index(dim: int, kind: str = "auto", use_gpu: bool | None = None) -> VectorIndex:
    """``auto`` and ``faiss`` give FAISS (GPU when faiss sees one); ``exact`` gives brute force."""
    if kind == "exact":
        from index.exact import ExactIndex

        index: VectorIndex = ExactIndex(dim)
    elif kind in ("auto", "faiss"):
        from index.faiss_index import FaissIndex

        index = FaissIndex(dim, use_gpu=use_gpu)
    else:
        raise ValueError(f"unknown index kind {kind!r}: expected auto, faiss or exact")
    log.info("retrieval index: %s (dim %d)", index.name, dim)
    return index
