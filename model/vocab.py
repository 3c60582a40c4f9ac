"""Bounded id maps: external string ids to dense embedding rows, evicting the least recently seen."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain, repeat

import numpy as np


@dataclass(frozen=True, slots=True)
class IdMapState:
    """An :class:`IdMap` in a checkpoint: its ids and their rows, least recently seen first, the
    rows released for reuse, and how many rows were ever handed out."""

    capacity: int
    ids: list[str]
    rows: list[int]
    free: list[int]
    next: int


class IdMap:
    """Maps ids to rows in ``[0, capacity)``; a full map reuses the least recently seen row.

    Rows are handed out in order; a row :meth:`release`-d (its id forgotten) is handed out again
    before any other, so a map holds at most ``capacity`` ids and never more rows.
    """

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self.capacity = capacity
        #: id -> row, least recently seen first.
        self._rows: OrderedDict[str, int] = OrderedDict()
        self._ids: list[str | None] = [None] * capacity
        #: Released rows, reused first (last released, first reused).
        self._free: list[int] = []
        self._next = 0

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._rows

    @property
    def used(self) -> int:
        """Rows ever handed out: every live row is below this."""
        return self._next

    def rows_for(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
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
        get, touch, id_of, free = rows.get, rows.move_to_end, self._ids, self._free
        for n, key in enumerate(ids):
            row = get(key)
            if row is not None:
                touch(key)
            else:
                if free:
                    row = free.pop()
                elif self._next < self.capacity:
                    row = self._next
                    self._next += 1
                else:
                    _, row = rows.popitem(last=False)
                    evicted.append(row)
                rows[key] = row
                id_of[row] = key
            out[n] = row
        return out, np.asarray(evicted, dtype=np.int64)

    def release(self, ids: Iterable[str]) -> np.ndarray:
        """Forget ``ids`` (unknown ones are ignored); their rows, which the caller resets, are
        handed out again before any other."""
        out = []
        for key in ids:
            row = self._rows.pop(key, None)
            if row is not None:
                self._ids[row] = None
                self._free.append(row)
                out.append(row)
        return np.asarray(out, dtype=np.int64)

    def get_rows(self, ids: Iterable[str]) -> np.ndarray:
        """Rows for ``ids`` without adding or touching them; -1 for unknown ids."""
        return np.fromiter(map(self._rows.get, ids, repeat(-1)), dtype=np.int64)

    def ids_for(self, rows: Iterable[int] | np.ndarray) -> list[str | None]:
        """External ids of ``rows``; None for -1 and for rows that hold no id."""
        ids, cap = self._ids, self.capacity
        return [ids[r] if 0 <= r < cap else None for r in np.asarray(rows, dtype=np.int64).tolist()]

    def ids(self) -> list[str]:
        """Known ids, least recently seen first."""
        return list(self._rows)

    def row_map(self) -> dict[str, int]:
        """The live id -> row mapping (read-only by convention)."""
        return self._rows

    def state(self) -> IdMapState:
        return IdMapState(
            self.capacity, list(self._rows), list(self._rows.values()), list(self._free), self._next
        )

    @classmethod
    def from_state(cls, state: IdMapState) -> IdMap:
        """Rebuild a map from :meth:`state`, checking it is self-consistent."""
        m = cls(int(state.capacity))
        ids, rows = list(state.ids), [int(r) for r in state.rows]
        free, nxt = [int(r) for r in state.free], int(state.next)
        taken = rows + free
        if len(ids) != len(rows) or len(set(ids)) != len(ids) or len(set(taken)) != len(taken):
            raise ValueError(
                "IdMap state is inconsistent: ids and rows must be distinct pairs, "
                "and no released row may hold an id"
            )
        if taken and (min(taken) < 0 or max(taken) >= min(nxt, m.capacity)) or nxt > m.capacity:
            raise ValueError(f"IdMap state has rows outside [0, {nxt}) or next > capacity")
        m._rows = OrderedDict(zip(ids, rows, strict=True))
        for key, row in zip(ids, rows, strict=True):
            m._ids[row] = key
        m._free = free
        m._next = nxt
        return m


class Vocab:
    """The pipeline's two id maps: users and items to their embedding rows."""

    def __init__(self, users: IdMap, items: IdMap) -> None:
        self.users, self.items = users, items

    def item_rows(self, lists: Sequence[Sequence[str]], width: int) -> np.ndarray:
        """Item rows of each list (most recent first), cut or -1 padded to ``width`` columns;
        -1 for items without a row."""
        out = np.full((len(lists), width), -1, dtype=np.int64)
        lengths = np.fromiter(map(len, lists), np.int64, len(lists))
        if not lengths.any():
            return out
        # Lists within the width (the usual case) are chained whole, without a slice each.
        flat = (
            list(chain.from_iterable(lists))
            if lengths.max() <= width
            else [x for items in lists for x in items[:width]]
        )
        # Row-major: the first ``length`` cells of each row, in the order of ``flat``.
        out[np.arange(width) < np.minimum(lengths, width)[:, None]] = self.items.get_rows(flat)
        return out

    def state(self) -> VocabState:
        return VocabState(self.users.state(), self.items.state())

    def load(self, state: VocabState) -> None:
        """Replace both maps (whoever holds this vocabulary sees the new ones)."""
        self.users = IdMap.from_state(state.users)
        self.items = IdMap.from_state(state.items)


@dataclass(frozen=True, slots=True)
class VocabState:
    users: IdMapState
    items: IdMapState
