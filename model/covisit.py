"""Item-to-item co-visitation: which items users go on to after each item, time-decayed.

Every item row keeps its ``slots`` strongest successors in two fixed arrays (neighbour rows and
weights), so memory is bounded, updates and lookups are vectorised over a whole batch, and no
Python dict grows with the catalogue. A new pair takes the weakest slot of its source if it is at
least as strong, so the table keeps the heavy hitters while decay lets new pairs in.

Decay needs no sweep: weights are stored with a moving origin (:class:`feedrec.model.decay.MovingOrigin`),
so a newer event counts more, and only comparisons and ratios of weights are ever used.

Rows are reused after an id is evicted. Each row has an epoch, bumped on reuse, and each entry
records its neighbour's epoch when written, so an entry that points at a reused row is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from feedrec.model.decay import MovingOrigin


def stable_order(keys: np.ndarray) -> np.ndarray:
    """``np.argsort(keys, kind="stable")`` for int64 ``keys``, several times faster: each
    non-negative key carries its position in its low bits, so one plain sort orders both."""
    n = len(keys)
    bits = max(n - 1, 1).bit_length()
    if n == 0 or keys.min() < 0 or int(keys.max()).bit_length() + bits > 62:
        return np.argsort(keys, kind="stable")
    packed = np.sort((keys << bits) | np.arange(n, dtype=np.int64))
    return packed & ((1 << bits) - 1)


def unique_groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(unique, order, group)``: the distinct ``keys`` ascending, the stable order that sorts
    ``keys``, and the index in ``unique`` of each key in that order. Summing values in that
    order (``np.bincount(group, values[order])``) adds each key's values in input order, as
    ``np.unique(..., return_inverse=True)`` with a bincount over the inverse does."""
    order = stable_order(keys)
    ordered = keys[order]
    first = np.empty(len(ordered), dtype=bool)
    first[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return ordered[first], order, np.cumsum(first) - 1


def group_ranks(groups: np.ndarray) -> np.ndarray:
    """0-based position of each element within its run of equal ``groups`` values (sorted input)."""
    n = len(groups)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    first = np.r_[True, groups[1:] != groups[:-1]]
    return np.arange(n) - np.maximum.accumulate(np.where(first, np.arange(n), 0))


class CoVisits:
    """The ``slots`` strongest ``src -> dst`` successors of every item row (see module docstring)."""

    def __init__(self, capacity: int, slots: int = 20, half_life_s: float | None = 86400.0) -> None:
        if capacity < 1 or slots < 1 or (half_life_s is not None and half_life_s <= 0):
            raise ValueError("capacity and slots must be >= 1 and half_life_s > 0 (or None)")
        self.capacity = capacity
        self.slots = slots
        #: A half-life of None keeps every pair at full weight: a table for streams that span
        #: months.
        self.decay = MovingOrigin(half_life_s)
        self.neighbour = np.full((capacity, slots), -1, dtype=np.int32)
        self.weight = np.zeros((capacity, slots), dtype=np.float32)
        self.stamp = np.zeros((capacity, slots), dtype=np.int32)
        self.epoch = np.zeros(capacity, dtype=np.int32)

    # -- learning ----------------------------------------------------------------------------

    def _grow(self, ts_ms: np.ndarray) -> np.ndarray:
        """Per-event growth factors, rescaling the table first if the newest would overflow."""
        x, rescale = self.decay.exponents(ts_ms)
        if rescale is not None:
            self.weight *= np.float32(rescale)
        return np.exp(x)

    def observe(
        self, src: np.ndarray, dst: np.ndarray, weight: np.ndarray, ts_ms: np.ndarray
    ) -> None:
        """Add ``weight`` (decayed from ``ts_ms``) to each pair ``src -> dst``; -1 rows are skipped."""
        src = np.asarray(src, dtype=np.int64).reshape(-1)
        dst = np.asarray(dst, dtype=np.int64).reshape(-1)
        keep = (src >= 0) & (dst >= 0) & (src != dst)
        if not keep.any():
            return
        src, dst = src[keep], dst[keep]
        w = np.asarray(weight, dtype=np.float64).reshape(-1)[keep]
        w = w * self._grow(np.asarray(ts_ms, dtype=np.int64).reshape(-1)[keep])
        # One entry per distinct pair.
        pair, order, group = unique_groups(src * self.capacity + dst)
        w = np.bincount(group, weights=w[order])
        src, dst = pair // self.capacity, pair % self.capacity
        # A pair holds at most one live slot: it is inserted only when it has none.
        at, col = np.nonzero(self.neighbour[src] == dst[:, None])
        live = self.stamp[src[at], col] == self.epoch[dst[at]]
        at, col = at[live], col[live]
        self.weight[src[at], col] += w[at].astype(np.float32)
        new = np.ones(len(src), dtype=bool)
        new[at] = False
        self._insert(src[new], dst[new], w[new])

    def _insert(self, src: np.ndarray, dst: np.ndarray, w: np.ndarray) -> None:
        """New pairs, strongest first per source, each into that source's next-weakest slot."""
        if not len(src):
            return
        order = np.lexsort((-w, src))
        src, dst, w = src[order], dst[order], w[order]
        rank = group_ranks(src)
        fits = rank < self.slots
        src, dst, w, rank = src[fits], dst[fits], w[fits], rank[fits]
        # The slots of each distinct source, ordered once for all its new pairs.
        first = rank == 0
        owner = np.cumsum(first) - 1
        current = self._current(src[first])
        weakest = np.argsort(current, axis=1, kind="stable")
        col = weakest[owner, rank]
        wins = w >= current[owner, col]
        src, dst, col = src[wins], dst[wins], col[wins]
        self.neighbour[src, col] = dst
        self.weight[src, col] = w[wins].astype(np.float32)
        self.stamp[src, col] = self.epoch[dst]

    def _current(self, src: np.ndarray) -> np.ndarray:
        """Weights of ``src``'s slots, 0 where the slot is empty or points at a reused row."""
        nb = self.neighbour[src]
        ok = (nb >= 0) & (self.stamp[src] == self.epoch[np.maximum(nb, 0)])
        return np.where(ok, self.weight[src], 0.0)

    def reset(self, rows: np.ndarray) -> None:
        """Rows handed to new items: forget their successors, and stale entries pointing at them."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        self.neighbour[rows] = -1
        self.weight[rows] = 0.0
        self.epoch[rows] += 1

    # -- serving -----------------------------------------------------------------------------

    def successors(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For ``(B, W)`` source rows (-1 padded): ``(B, W, slots)`` neighbour rows (-1 where
        none) and each one's share of its source's total weight (in [0, 1])."""
        rows = np.asarray(rows, dtype=np.int64)
        safe = np.maximum(rows, 0)
        w = self._current(safe.reshape(-1)).reshape(*rows.shape, self.slots)
        w[rows < 0] = 0.0
        total = w.sum(axis=-1, keepdims=True)
        share = np.divide(w, total, out=np.zeros_like(w), where=total > 0)
        nb = np.where(share > 0, self.neighbour[safe], -1)
        return nb, share

    # -- checkpoints -------------------------------------------------------------------------

    def state(self, rows_used: int) -> CoVisitsState:
        return CoVisitsState(
            self.neighbour[:rows_used].copy(),
            self.weight[:rows_used].copy(),
            self.stamp[:rows_used].copy(),
            self.epoch[:rows_used].copy(),
            self.decay.origin_ms,
        )

    def load(self, state: CoVisitsState) -> None:
        n = len(state.neighbour)
        if n > self.capacity or state.neighbour.shape[1] != self.slots:
            raise ValueError("co-visitation state does not fit this table's capacity and slots")
        self.neighbour[:n] = state.neighbour
        self.weight[:n] = state.weight
        self.stamp[:n] = state.stamp
        self.epoch[:n] = state.epoch
        self.decay.origin_ms = state.origin_ms


@dataclass(frozen=True, slots=True)
class CoVisitsState:
    """The rows in use of a :class:`CoVisits` table, and its decay's origin."""

    neighbour: np.ndarray
    weight: np.ndarray
    stamp: np.ndarray
    epoch: np.ndarray
    origin_ms: int | None
