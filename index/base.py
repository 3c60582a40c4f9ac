"""The contract of a vector index: upsert, remove and batched inner-product search by integer id."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class VectorIndex(ABC):
    name: str
    dim: int

    @abstractmethod
    def upsert(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Insert or replace the vectors of ``ids`` (int64, unique)."""

    @abstractmethod
    def remove(self, ids: np.ndarray) -> None:
        """Drop ``ids``; unknown ids are ignored."""

    @abstractmethod
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` ids and inner-product scores per query, best first.

        Returns ``(ids, scores)``, both ``(B, k)``; short rows are padded with -1 and -inf.
        """

    @abstractmethod
    def __len__(self) -> int: ...


def pad_results(ids: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalise padding: every missing slot is id -1 with score -inf."""
    ids = ids.astype(np.int64, copy=False)
    scores = scores.astype(np.float32, copy=True)
    scores[ids < 0] = -np.inf
    return ids, scores
