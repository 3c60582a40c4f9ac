"""FAISS inner-product index by id, on the GPU when faiss has one.

The CPU ``IndexIDMap2(IndexFlatIP)`` is the source of truth for upserts and removals; under CUDA
a GPU copy serves searches and is re-mirrored lazily, on the first search after a change (a flat
index copies as one block, so this is cheaper than keeping two structures in step). Nothing here
touches GPU symbols unless a GPU was asked for and found, so faiss-cpu imports it safely.
"""

from __future__ import annotations

import logging
from typing import Any

import faiss
import numpy as np

from feedrec.index.base import VectorIndex, as_queries, empty_results, pad_results, prepare_upsert
from feedrec.index.exceptions import IndexUnavailable

log = logging.getLogger(__name__)

#: Largest k a GPU flat search accepts; larger searches run on the CPU copy.
GPU_MAX_K = 2048
#: Searches of at least this many queries take faiss's BLAS path (one matrix product, then a
#: heap per query). This faiss build ships with 128,000, which leaves a batch of users on the
#: per-query loop: 2-3x slower at 170 queries over 5,000-100,000 items on one core.
BLAS_FROM_QUERIES = 20


def gpu_count() -> int:
    """GPUs usable by this faiss build (0 for faiss-cpu or when the query itself fails)."""
    get = getattr(faiss, "get_num_gpus", None)
    try:
        return int(get()) if get is not None else 0
    except Exception:  # a broken CUDA install must not take the CPU path down with it
        return 0


class FaissIndex(VectorIndex):
    """Exact (flat) inner-product search through FAISS; ids are caller-chosen int64."""

    def __init__(self, dim: int, use_gpu: bool | None = None) -> None:
        if dim <= 0:
            raise ValueError(f"dim must be positive, got {dim}")
        self.dim = dim
        gpus = gpu_count()
        self.use_gpu = gpus > 0 if use_gpu is None else bool(use_gpu)
        if self.use_gpu and gpus == 0:
            raise IndexUnavailable(
                "use_gpu=True but this faiss build sees no GPU: install "
                "faiss-gpu or leave use_gpu unset"
            )
        self.name = "faiss-gpu" if self.use_gpu else "faiss-cpu"
        faiss.cvar.distance_compute_blas_threshold = BLAS_FROM_QUERIES
        # Any: faiss's generated types leave out the numpy forms of its methods (remove_ids of
        # an id array, search of a float32 block) that this code calls.
        self._cpu: Any = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._gpu: Any = None
        self._gpu_res: Any = faiss.StandardGpuResources() if self.use_gpu else None
        self._stale = True

    def __len__(self) -> int:
        return int(self._cpu.ntotal)

    def upsert(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Remove-then-add: IndexIDMap2 has no in-place update."""
        ids, vectors = prepare_upsert(ids, vectors, self.dim)
        if len(ids) == 0:
            return
        if self._cpu.ntotal:
            self._cpu.remove_ids(ids)
        self._cpu.add_with_ids(vectors, ids)
        self._stale = True

    def remove(self, ids: np.ndarray) -> None:
        """Drop ``ids``; unknown ids are ignored."""
        ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        if len(ids) and self._cpu.ntotal:
            self._cpu.remove_ids(ids)
            self._stale = True

    def clear(self) -> None:
        """Drop everything."""
        self._cpu.reset()
        self._gpu = None
        self._stale = True

    def _searcher(self, k: int) -> Any:
        """The GPU mirror (refreshed if stale) or, without a GPU or for huge k, the CPU index."""
        if not self.use_gpu or k > GPU_MAX_K:
            return self._cpu
        if self._stale or self._gpu is None:
            self._gpu = faiss.index_cpu_to_gpu(self._gpu_res, 0, self._cpu)
            self._stale = False
        return self._gpu

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by inner product; asks faiss for at most ``len(self)`` and pads the rest."""
        q = as_queries(queries, self.dim)
        n = len(self)
        if n == 0 or len(q) == 0 or k <= 0:
            return empty_results(len(q), max(k, 0))
        kk = min(k, n)
        scores, ids = self._searcher(kk).search(q, kk)
        return pad_results(ids, scores, k)
