"""Exact brute-force inner-product search: the reference the FAISS indexes are tested against."""

from __future__ import annotations

import numpy as np

from index.base import VectorIndex, pad_results


class ExactIndex(VectorIndex):
    name = "exact"

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._pos: dict[int, int] = {}
        self._ids = np.empty(0, dtype=np.int64)
        self._vecs = np.empty((0, dim), dtype=np.float32)

    def __len__(self) -> int:
        return len(self._pos)

    def upsert(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(ids), self.dim)
        known = np.array([i in self._pos for i in ids.tolist()], dtype=bool)
        if known.any():
            self._vecs[[self._pos[i] for i in ids[known].tolist()]] = vectors[known]
        new_ids = ids[~known]
        start = len(self._ids)
        for n, i in enumerate(new_ids.tolist()):
            self._pos[i] = start + n
        self._ids = np.concatenate([self._ids, new_ids])
        self._vecs = np.concatenate([self._vecs, vectors[~known]])

    def remove(self, ids: np.ndarray) -> None:
        drop = [self._pos.pop(i) for i in np.asarray(ids).tolist() if i in self._pos]
        if not drop:
            return
        keep = np.ones(len(self._ids), dtype=bool)
        keep[drop] = False
        self._ids = self._ids[keep]
        self._vecs = self._vecs[keep]
        self._pos = {i: n for n, i in enumerate(self._ids.tolist())}

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = np.asarray(queries, dtype=np.float32).reshape(-1, self.dim)
        out_ids = np.full((len(q), k), -1, dtype=np.int64)
        out_scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        n = len(self._ids)
        if n == 0 or k <= 0:
            return out_ids, out_scores
        scores = q @ self._vecs.T
        top = min(k, n)
        part = np.argpartition(-scores, top - 1, axis=1)[:, :top]
        part_scores = np.take_along_axis(scores, part, axis=1)
        order = np.argsort(-part_scores, axis=1, kind="stable")
        best = np.take_along_axis(part, order, axis=1)
        out_ids[:, :top] = self._ids[best]
        out_scores[:, :top] = np.take_along_axis(scores, best, axis=1)
        return pad_results(out_ids, out_scores)
