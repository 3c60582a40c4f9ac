"""What the ranker knows about items besides their embeddings, as arrays indexed by item row.

Catalogue records may arrive on another thread (the worker's ``items`` topic reader): they are
queued (:meth:`ItemStats.queue`) and applied between batches, so the arrays are only ever
written by the thread that runs the pipeline.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from feedrec.model.decay import add_decayed, rate_per_ms
from feedrec.model.events import CatalogItem
from feedrec.model.seen import item_keys

UNKNOWN_CATEGORY = -1


class ItemStats:
    """Time-decayed popularity at two time scales, last-event time, category code and
    availability per item row.

    ``popularity`` follows what sells this half hour; ``popularity_slow`` what sells over weeks,
    which is what a catalogue browsed over months needs. The ranker weighs the two."""

    def __init__(
        self,
        capacity: int,
        popularity_half_life_s: float = 1800.0,
        slow_half_life_s: float = 14 * 86400.0,
    ) -> None:
        self.capacity = capacity
        self.popularity = np.zeros(capacity, dtype=np.float64)
        self.popularity_slow = np.zeros(capacity, dtype=np.float64)
        self._slow_per_ms = rate_per_ms(slow_half_life_s)
        self._slow_clock_ms = 0
        self.last_ts = np.zeros(capacity, dtype=np.int64)
        self.category = np.full(capacity, UNKNOWN_CATEGORY, dtype=np.int32)
        self.available = np.ones(capacity, dtype=bool)
        #: The item's key in users' seen filters (:func:`model.seen.item_key`); 0 for none yet.
        self.key = np.zeros(capacity, dtype=np.uint64)
        self._decay_per_ms = rate_per_ms(popularity_half_life_s)
        self._clock_ms = 0
        self._categories: dict[str, int] = {}
        #: Catalogue records, by item id, including items that have no row yet.
        self.catalog: dict[str, CatalogItem] = {}
        self._queued: deque[CatalogItem] = deque()

    def category_code(self, name: str) -> int:
        code = self._categories.get(name)
        if code is None:
            code = self._categories[name] = len(self._categories)
        return code

    def category_of(self, rows: np.ndarray) -> np.ndarray:
        """Category codes of ``rows`` (any shape), -1 where a row is padding (-1) or unknown."""
        return np.where(rows >= 0, self.category[np.maximum(rows, 0)], UNKNOWN_CATEGORY).astype(
            np.int64
        )

    def reset(self, rows: np.ndarray) -> None:
        """Forget evicted rows so their next owner starts clean."""
        self.popularity[rows] = 0.0
        self.popularity_slow[rows] = 0.0
        self.last_ts[rows] = 0
        self.category[rows] = UNKNOWN_CATEGORY
        self.available[rows] = True
        self.key[rows] = 0

    def observe(self, rows: np.ndarray, weights: np.ndarray, ts_ms: np.ndarray) -> None:
        """Decay every count to the newest event time, then add this batch's weights."""
        self._clock_ms = add_decayed(
            self.popularity, self._clock_ms, self._decay_per_ms, rows, weights, ts_ms
        )
        self._slow_clock_ms = add_decayed(
            self.popularity_slow, self._slow_clock_ms, self._slow_per_ms, rows, weights, ts_ms
        )
        np.maximum.at(self.last_ts, rows, ts_ms)

    def set_keys(self, rows: np.ndarray, item_ids: list[str]) -> None:
        """Keys for rows that have none yet (new, or handed over from an evicted item)."""
        new = np.flatnonzero(self.key[rows] == 0)
        if len(new):
            self.key[rows[new]] = item_keys([item_ids[i] for i in new.tolist()])

    def set_categories(self, rows: np.ndarray, names: list[str | None]) -> None:
        """Each row's category from the last of its events that names one."""
        code = self.category_code
        codes = np.fromiter((-1 if n is None else code(n) for n in names), np.int64, len(names))
        named = np.flatnonzero(codes >= 0)
        if len(named):
            rows = np.asarray(rows, dtype=np.int64)[named]
            # The last event of each row wins, as if they were applied one by one.
            _, last = np.unique(rows[::-1], return_index=True)
            last = len(rows) - 1 - last
            self.category[rows[last]] = codes[named][last]

    def describe(self, item_ids: list[str], rows: np.ndarray) -> None:
        """Copy catalogue facts onto rows just assigned to ``item_ids``."""
        for item_id, row in zip(item_ids, rows.tolist(), strict=True):
            rec = self.catalog.get(item_id)
            if rec is not None:
                self._apply(row, rec)

    def _apply(self, row: int, rec: CatalogItem) -> None:
        self.available[row] = rec.available
        if rec.category is not None:
            self.category[row] = self.category_code(rec.category)

    def queue(self, item: CatalogItem) -> None:
        """A catalogue record to apply before the next batch; safe from any thread."""
        self._queued.append(item)

    def apply_catalog(self, row_of: dict[str, int]) -> int:
        """Apply queued catalogue records; ``row_of`` maps item ids that have rows."""
        n = 0
        while self._queued:
            rec = self._queued.popleft()
            self.catalog[rec.item_id] = rec
            row = row_of.get(rec.item_id)
            if row is not None:
                self._apply(row, rec)
            n += 1
        return n

    def state(self, rows_used: int) -> ItemStatsState:
        return ItemStatsState(
            self.popularity.copy(),
            self.popularity_slow.copy(),
            self._clock_ms,
            self._slow_clock_ms,
            self.last_ts.copy(),
            self.category.copy(),
            self.available.copy(),
            dict(self._categories),
            self.key[:rows_used].copy(),
        )

    def load(self, state: ItemStatsState) -> None:
        self.popularity[:] = state.popularity
        self.popularity_slow[:] = state.popularity_slow
        self._clock_ms = int(state.clock_ms)
        self._slow_clock_ms = int(state.slow_clock_ms)
        self.last_ts[:] = state.last_ts
        self.category[:] = state.category
        self.available[:] = state.available
        self._categories = dict(state.categories)
        self.key[: len(state.key)] = state.key


@dataclass(frozen=True, slots=True)
class ItemStatsState:
    """:class:`ItemStats` in a checkpoint (``key`` only for the rows in use)."""

    popularity: np.ndarray
    popularity_slow: np.ndarray
    clock_ms: int
    slow_clock_ms: int
    last_ts: np.ndarray
    category: np.ndarray
    available: np.ndarray
    categories: dict[str, int]
    key: np.ndarray
