"""FAISS inner-product index by id, on the GPU when faiss has one.

The CPU ``IndexIDMap2(IndexFlatIP)`` is the source of truth for upserts and removals; under CUDA
a GPU copy serves searches and is rebuilt lazily after changes (a flat copy is a single memcpy).
"""

from __future__ import annotations

import logging

import faiss
import numpy as np

from index.base import VectorIndex, pad_results

log = logging.getLogger(__name__)


def gpu_count() -> int:
    """GPUs usable by this faiss build (0 for faiss-cpu)."""
    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


class FaissIndex(VectorIndex):
    def __init__(self, dim: int, use_gpu: bool | None = None) -> None:
        self.dim = dim
        self.use_gpu = gpu_count() > 0 if use_gpu is None else use_gpu
        if self.use_gpu and gpu_count() == 0:
            raise RuntimeError("use_gpu=True but this faiss build sees no GPU (install faiss-gpu)")
        self.name = "faiss-gpu" if self.use_gpu else "faiss-cpu"
        self._cpu = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._gpu = None
        self._gpu_res = faiss.StandardGpuResources() if self.use_gpu else None
        self._stale = True

    def __len__(self) -> int:
        return int(self._cpu.ntotal)

    def upsert(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(ids), self.dim)
        self._cpu.remove_ids(ids)
        self._cpu.add_with_ids(vectors, ids)
        self._stale = True

    def remove(self, ids: np.ndarray) -> None:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids):
            self._cpu.remove_ids(ids)
            self._stale = True

    def _searcher(self) -> faiss.Index:
        if not self.use_gpu:
            return self._cpu
        if self._stale or self._gpu is None:
            self._gpu = faiss.index_cpu_to_gpu(self._gpu_res, 0, self._cpu)
            self._stale = False
        return self._gpu

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        if len(self) == 0 or len(q) == 0:
            return (np.full((len(q), k), -1, dtype=np.int64),
                    np.full((len(q), k), -np.inf, dtype=np.float32))
        scores, ids = self._searcher().search(q, k)
        return pad_results(ids, scores)
