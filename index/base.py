"""The contract of a vector index: upsert, remove and batched inner-product search by integer id."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class VectorIndex(ABC):
    """Inner-product top-k over vectors keyed by int64 ids; every backend passes one test suite."""

    name: str
    dim: int

    @abstractmethod
    def upsert(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Insert or replace the vectors of ``ids`` (int64 >= 0; a repeated id keeps its last vector)."""

    @abstractmethod
    def remove(self, ids: np.ndarray) -> None:
        """Drop ``ids``; unknown ids are ignored."""

    @abstractmethod
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` ids and inner-product scores per query, best first.

        Returns ``(ids, scores)``, both ``(B, k)``; short rows are padded with -1 and -inf.
        """

    @abstractmethod
    def clear(self) -> None:
        """Drop everything (a full rebuild starts from here)."""

    @abstractmethod
    def __len__(self) -> int:
        """Number of ids held."""


def prepare_upsert(ids: np.ndarray, vectors: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Validated, contiguous ids/vectors with repeated ids collapsed to their last vector."""
    ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.size != len(ids) * dim:
        raise ValueError(f"expected {len(ids)} vectors of dim {dim}, got shape {vectors.shape}")
    vectors = vectors.reshape(len(ids), dim)
    if len(ids) and ids.min() < 0:
        raise ValueError("index ids must be >= 0 (-1 marks padding in search results)")
    if len(ids) > 1:
        # Last occurrence wins, as if the upserts had been applied one by one.
        _, last_rev = np.unique(ids[::-1], return_index=True)
        if len(last_rev) != len(ids):
            keep = np.sort(len(ids) - 1 - last_rev)
            ids, vectors = ids[keep], vectors[keep]
    return ids, vectors


def as_queries(queries: np.ndarray, dim: int) -> np.ndarray:
    """``(B, dim)`` contiguous float32 queries, with a clear error for the wrong width."""
    q = np.ascontiguousarray(queries, dtype=np.float32)
    if q.ndim == 1:
        q = q.reshape(1, -1)
    if q.ndim != 2 or q.shape[1] != dim:
        raise ValueError(f"queries must have shape (B, {dim}), got {np.shape(queries)}")
    return q


def empty_results(n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """All-padding results: ids -1, scores -inf."""
    return np.full((n, k), -1, dtype=np.int64), np.full((n, k), -np.inf, dtype=np.float32)


def pad_results(
    ids: np.ndarray, scores: np.ndarray, k: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Normalise padding (every missing slot is id -1, score -inf), widening to ``k`` columns."""
    ids = ids.astype(np.int64, copy=False)
    scores = scores.astype(np.float32, copy=True)
    scores[ids < 0] = -np.inf
    if k is not None and ids.shape[1] < k:
        out_ids, out_scores = empty_results(len(ids), k)
        out_ids[:, : ids.shape[1]] = ids
        out_scores[:, : ids.shape[1]] = scores
        return out_ids, out_scores
    return ids, scores
