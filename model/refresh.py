"""Keeps the index in step with a model that keeps learning, without rebuilding it each batch."""

from __future__ import annotations

import time

import numpy as np

from feedrec.index.base import VectorIndex
from feedrec.model.base import RetrievalModel


class IndexRefresher:
    """Pushes changed item rows to the index every ``interval_s`` or once ``min_changes`` pile up.

    Pushing every batch would spend the hot path on index writes for rows that change again a
    moment later; batching them bounds staleness by ``interval_s`` and the cost per row pushed.
    """

    def __init__(
        self,
        model: RetrievalModel,
        index: VectorIndex,
        interval_s: float = 1.0,
        min_changes: int = 256,
    ) -> None:
        if interval_s < 0 or min_changes < 1:
            raise ValueError("interval_s must be >= 0 and min_changes >= 1")
        self.model = model
        self.index = index
        self.interval_s = interval_s
        self.min_changes = min_changes
        #: Seconds the last push (or rebuild) took; exported as a metric.
        self.last_duration = 0.0
        #: Rows pushed by the last push (or rebuild).
        self.last_pushed = 0
        self._last = float("-inf")
        self._pending = np.zeros(0, dtype=bool)

    def _collect(self) -> int:
        """Fold the model's newly dirty rows into the pending mask; returns the pending count."""
        fresh = self.model.pop_dirty_items()
        if len(fresh):
            top = int(fresh.max()) + 1
            if top > len(self._pending):
                grown = np.zeros(max(top, 2 * len(self._pending)), dtype=bool)
                grown[: len(self._pending)] = self._pending
                self._pending = grown
            self._pending[fresh] = True
        return int(np.count_nonzero(self._pending))

    @property
    def pending(self) -> int:
        """Rows changed but not yet pushed (also collects from the model)."""
        return self._collect()

    def maybe_refresh(self, now: float, force: bool = False) -> int:
        """Push pending rows if due (``interval_s`` elapsed by ``now``, a monotonic time in
        seconds; enough changes; or ``force``); rows pushed."""
        n = self._collect()
        if n == 0:
            return 0
        if not force and now - self._last < self.interval_s and n < self.min_changes:
            return 0
        t0 = time.perf_counter()
        rows = np.flatnonzero(self._pending).astype(np.int64, copy=False)
        self.index.upsert(rows, self.model.item_vectors(rows))
        self._pending[rows] = False
        self._last = now
        self.last_pushed = len(rows)
        self.last_duration = time.perf_counter() - t0
        return len(rows)

    def remove(self, rows: np.ndarray) -> None:
        """Rows evicted from the id map leave the index until their new item is learnt."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        self.index.remove(rows)
        self._collect()
        inside = rows[(rows >= 0) & (rows < len(self._pending))]
        self._pending[inside] = False

    def full_rebuild(self, rows_in_use: np.ndarray, now: float) -> int:
        """Make the index hold exactly ``rows_in_use`` with current vectors; rows pushed."""
        t0 = time.perf_counter()
        rows = np.unique(np.asarray(rows_in_use, dtype=np.int64).reshape(-1))
        rows = rows[rows >= 0]
        self.model.pop_dirty_items()
        self._pending[:] = False
        self.index.clear()
        if len(rows):
            self.index.upsert(rows, self.model.item_vectors(rows))
        self._last = now
        self.last_pushed = len(rows)
        self.last_duration = time.perf_counter() - t0
        return len(rows)
