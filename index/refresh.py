"""Keeps the index in step with a model that keeps learning, without rebuilding it each batch."""

from __future__ import annotations

import time

import numpy as np

from index.base import VectorIndex
from model.base import RetrievalModel


class IndexRefresher:
    """Pushes changed item rows to the index every ``interval_s`` or once ``min_changes`` pile up."""

    def __init__(self, model: RetrievalModel, index: VectorIndex, interval_s: float = 1.0,
                 min_changes: int = 256) -> None:
        self.model = model
        self.index = index
        self.interval_s = interval_s
        self.min_changes = min_changes
        self.last_duration = 0.0
        self._last = float("-inf")
        self._pending: list[np.ndarray] = []

    def _pending_rows(self) -> np.ndarray:
        fresh = self.model.pop_dirty_items()
        if len(fresh):
            self._pending.append(fresh)
        if not self._pending:
            return np.empty(0, dtype=np.int64)
        rows = np.unique(np.concatenate(self._pending))
        self._pending = [rows]
        return rows

    def maybe_refresh(self, now: float | None = None, force: bool = False) -> int:
        now = time.monotonic() if now is None else now
        rows = self._pending_rows()
        if not len(rows):
            return 0
        if not force and now - self._last < self.interval_s and len(rows) < self.min_changes:
            return 0
        t0 = time.perf_counter()
        self.index.upsert(rows, self.model.item_vectors(rows))
        self._pending = []
        self._last = now
        self.last_duration = time.perf_counter() - t0
        return len(rows)

    def remove(self, rows: np.ndarray) -> None:
        """Rows evicted from the id map leave the index until their new item is learnt."""
        self.index.remove(np.asarray(rows, dtype=np.int64))

    def full_rebuild(self, rows: np.ndarray) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        self.index.remove(rows)
        if len(rows):
            self.index.upsert(rows, self.model.item_vectors(rows))
        self.model.pop_dirty_items()
        self._pending = []
        self._last = time.monotonic()
