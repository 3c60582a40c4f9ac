"""Bounded id maps: external string ids to dense embedding rows, evicting the least recently seen."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence

import numpy as np


class IdMap:
    """Maps ids to rows in ``[0, capacity)``; a full map reuses the least recently seen row."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self.capacity = capacity
        #: id -> row, least recently seen first.
        self._rows: OrderedDict[str, int] = OrderedDict()
        self._ids: list[str | None] = [None] * capacity
        self._next = 0

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._rows

    def rows_for(self, ids: Sequence[str], now: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Rows for ``ids`` (added when new, all marked as just seen) and the rows evicted."""
        rows = self._rows
        out = np.empty(len(ids), dtype=np.int64)
        evicted: list[int] = []
        distinct = len(set(ids))
        if distinct > self.capacity:
            raise ValueError(
                f"{distinct} distinct ids in one batch exceed the capacity of {self.capacity}; "
                "raise the capacity or lower the batch size"
            )
        for n, key in enumerate(ids):
            row = rows.get(key)
            if row is not None:
                rows.move_to_end(key)
            elif self._next < self.capacity:
                row = self._next
                self._next += 1
                rows[key] = row
                self._ids[row] = key
            else:
                _, row = rows.popitem(last=False)
                evicted.append(row)
                rows[key] = row
                self._ids[row] = key
            out[n] = row
        return out, np.asarray(evicted, dtype=np.int64)

    def get_rows(self, ids: Iterable[str]) -> np.ndarray:
        """Rows for ``ids`` without adding or touching them; -1 for unknown ids."""
        get = self._rows.get
        return np.fromiter((get(i, -1) for i in ids), dtype=np.int64)

    def ids_for(self, rows: Iterable[int]) -> list[str | None]:
        ids = self._ids
        return [ids[r] if r >= 0 else None for r in rows]

    def ids(self) -> list[str]:
        return list(self._rows)

    def row_map(self) -> dict[str, int]:
        """The live id -> row mapping (read-only by convention)."""
        return self._rows

    def state(self) -> dict:
        return {"capacity": self.capacity, "ids": list(self._rows), "rows": list(self._rows.values()),
                "next": self._next}

    @classmethod
    def from_state(cls, state: dict) -> IdMap:
        m = cls(int(state["capacity"]))
        for key, row in zip(state["ids"], state["rows"], strict=True):
            m._rows[key] = int(row)
            m._ids[int(row)] = key
        m._next = int(state["next"])
        return m
