"""Bounded id maps: external string ids to dense embedding rows, evicting the least recently seen."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from itertools import repeat

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
        #: Last ``now`` each row was seen at (NaN for never); kept for metrics and future TTLs.
        self._seen = np.full(capacity, np.nan)
        self._next = 0

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._rows

    @property
    def used(self) -> int:
        """Rows ever handed out: every live row is below this."""
        return self._next

    def rows_for(self, ids: Sequence[str], now: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Rows for ``ids`` (added when new, all marked as just seen) and the rows evicted.

        Evicted rows now belong to new ids: the caller resets their embeddings and drops them
        from the index. The call is all-or-nothing: a batch that cannot fit changes nothing.
        """
        rows = self._rows
        n_ids = len(ids)
        # Only a batch that could overflow pays for the distinct count. Every id touched in this
        # call is newer than every untouched one, so eviction never takes a row handed out
        # earlier in the same call unless the call itself holds more distinct ids than fit.
        if len(rows) + n_ids > self.capacity:
            distinct = len(set(ids))
            if distinct > self.capacity:
                raise ValueError(
                    f"{distinct} distinct ids in one call exceed the IdMap capacity of "
                    f"{self.capacity}: raise the capacity or lower the batch size"
                )
        out = np.empty(n_ids, dtype=np.int64)
        evicted: list[int] = []
        get, touch, id_of = rows.get, rows.move_to_end, self._ids
        for n, key in enumerate(ids):
            row = get(key)
            if row is not None:
                touch(key)
            else:
                if self._next < self.capacity:
                    row = self._next
                    self._next += 1
                else:
                    _, row = rows.popitem(last=False)
                    evicted.append(row)
                rows[key] = row
                id_of[row] = key
            out[n] = row
        self._seen[out] = now
        return out, np.asarray(evicted, dtype=np.int64)

    def last_seen(self, rows: np.ndarray) -> np.ndarray:
        """When each row was last seen (NaN for never used); -1 rows give NaN."""
        rows = np.asarray(rows, dtype=np.int64)
        return np.where(rows >= 0, self._seen[np.clip(rows, 0, None)], np.nan)

    def get_rows(self, ids: Iterable[str]) -> np.ndarray:
        """Rows for ``ids`` without adding or touching them; -1 for unknown ids."""
        return np.fromiter(map(self._rows.get, ids, repeat(-1)), dtype=np.int64)

    def ids_for(self, rows: Iterable[int]) -> list[str | None]:
        """External ids of ``rows``; None for -1 and for rows never handed out."""
        ids, cap = self._ids, self.capacity
        return [ids[r] if 0 <= r < cap else None for r in np.asarray(rows, dtype=np.int64).tolist()]

    def ids(self) -> list[str]:
        """Known ids, least recently seen first."""
        return list(self._rows)

    def row_map(self) -> dict[str, int]:
        """The live id -> row mapping (read-only by convention)."""
        return self._rows

    def state(self) -> dict:
        """Plain lists and numbers (JSON-able, picklable) in recency order, for checkpoints."""
        rows = list(self._rows.values())
        return {"capacity": self.capacity, "ids": list(self._rows), "rows": rows,
                "next": self._next, "seen": self._seen[rows].tolist()}

    @classmethod
    def from_state(cls, state: dict) -> IdMap:
        """Rebuild a map from :meth:`state`, checking it is self-consistent."""
        m = cls(int(state["capacity"]))
        ids, rows = list(state["ids"]), [int(r) for r in state["rows"]]
        nxt = int(state["next"])
        if len(ids) != len(rows) or len(set(ids)) != len(ids) or len(set(rows)) != len(rows):
            raise ValueError("IdMap state is inconsistent: ids and rows must be distinct pairs")
        if rows and (min(rows) < 0 or max(rows) >= min(nxt, m.capacity)) or nxt > m.capacity:
            raise ValueError(f"IdMap state has rows outside [0, {nxt}) or next > capacity")
        m._rows = OrderedDict(zip(ids, rows, strict=True))
        for key, row in zip(ids, rows, strict=True):
            m._ids[row] = key
        if "seen" in state:
            m._seen[rows] = np.asarray(state["seen"], dtype=np.float64)
        m._next = nxt
        return m
