"""Exact brute-force inner-product search: the reference the FAISS indexes are tested against.

Vectors live in one growable float32 block; an id -> slot dict finds them. Removal moves the last
slots into the holes, so nothing is ever rebuilt and every operation is vectorised over its batch.
"""

from __future__ import annotations

import numpy as np

from feedrec.index.base import VectorIndex, as_queries, empty_results, prepare_upsert

#: Score-matrix entries per search chunk (bounds memory: 8M floats = 32 MiB).
_CHUNK_ENTRIES = 8_000_000


class ExactIndex(VectorIndex):
    """Brute force over a dense block; correct by construction, fine up to ~10^5-10^6 items."""

    name = "exact"

    def __init__(self, dim: int) -> None:
        if dim <= 0:
            raise ValueError(f"dim must be positive, got {dim}")
        self.dim = dim
        self._pos: dict[int, int] = {}
        self._ids = np.empty(16, dtype=np.int64)
        self._vecs = np.empty((16, dim), dtype=np.float32)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def _slots(self, ids: np.ndarray) -> np.ndarray:
        """Slot of each id, -1 when absent."""
        get = self._pos.get
        return np.fromiter((get(i, -1) for i in ids.tolist()), dtype=np.int64, count=len(ids))

    def _reserve(self, n: int) -> None:
        """Grow the blocks geometrically so appends are amortised O(1) per row."""
        if n <= len(self._ids):
            return
        cap = max(n, 2 * len(self._ids))
        ids = np.empty(cap, dtype=np.int64)
        vecs = np.empty((cap, self.dim), dtype=np.float32)
        ids[: self._n] = self._ids[: self._n]
        vecs[: self._n] = self._vecs[: self._n]
        self._ids, self._vecs = ids, vecs

    def upsert(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Replace known ids in place; append the rest."""
        ids, vectors = prepare_upsert(ids, vectors, self.dim)
        if not len(ids):
            return
        slots = self._slots(ids)
        known = slots >= 0
        self._vecs[slots[known]] = vectors[known]
        new = ~known
        n_new = int(new.sum())
        if n_new:
            self._reserve(self._n + n_new)
            start, end = self._n, self._n + n_new
            self._ids[start:end] = ids[new]
            self._vecs[start:end] = vectors[new]
            self._pos.update(zip(ids[new].tolist(), range(start, end), strict=True))
            self._n = end

    def remove(self, ids: np.ndarray) -> None:
        """Fill each hole with a live row from the end of the block."""
        ids = np.unique(np.asarray(ids, dtype=np.int64).reshape(-1))
        slots = self._slots(ids)
        slots = slots[slots >= 0]
        if not len(slots):
            return
        for i in self._ids[slots].tolist():
            del self._pos[i]
        n_after = self._n - len(slots)
        holes = slots[slots < n_after]
        tail = np.arange(n_after, self._n)
        movers = tail[~np.isin(tail, slots)]  # live rows beyond the new end
        self._ids[holes] = self._ids[movers]
        self._vecs[holes] = self._vecs[movers]
        self._pos.update(zip(self._ids[holes].tolist(), holes.tolist(), strict=True))
        self._n = n_after

    def clear(self) -> None:
        """Forget everything (capacity is kept)."""
        self._pos.clear()
        self._n = 0

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k, in query chunks so the score matrix stays small."""
        q = as_queries(queries, self.dim)
        out_ids, out_scores = empty_results(len(q), k)
        n = self._n
        if n == 0 or k <= 0 or len(q) == 0:
            return out_ids, out_scores
        vecs_t = self._vecs[:n].T
        ids = self._ids[:n]
        top = min(k, n)
        step = max(1, _CHUNK_ENTRIES // n)
        for s in range(0, len(q), step):
            scores = q[s : s + step] @ vecs_t
            if top < n:
                part = np.argpartition(scores, n - top, axis=1)[:, n - top :]
            else:
                part = np.broadcast_to(np.arange(n), scores.shape)
            part_scores = np.take_along_axis(scores, part, axis=1)
            # Best first; ties broken by smaller id so results are deterministic.
            order = np.lexsort((ids[part], -part_scores), axis=1)
            best = np.take_along_axis(part, order, axis=1)
            out_ids[s : s + step, :top] = ids[best]
            out_scores[s : s + step, :top] = np.take_along_axis(part_scores, order, axis=1)
        return out_ids, out_scores
