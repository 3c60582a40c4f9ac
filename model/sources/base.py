"""The contract of a candidate source, and what every source is asked with.

A source proposes items for each user of a batch, with a score: the evidence it has for each.
Sources see the same :class:`Query` (the users' own item lists, the item statistics, the time)
and learn from the same stream (:meth:`Source.observe`); one that learns something worth
keeping across restarts (co-visitation) has its own ``state()``/``load()``, which
:class:`feedrec.model.candidates.Candidates` checkpoints. Everything is a ``(B, K)`` array over the
batch, -1 padded: no per-user Python loop.

The merge (:class:`model.candidates.Candidates`) takes each source's candidates; a source with
a ``feature`` also scores every other candidate (0 where it has no evidence), so the ranker
weighs the sources against each other item by item.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np

from feedrec.model.covisit import group_ranks, unique_groups
from feedrec.model.items import ItemStats


@dataclass(frozen=True, slots=True)
class Query:
    """The users of one batch: their item rows, most recent first, -1 padded."""

    history: np.ndarray
    carted: np.ndarray
    purchased: np.ndarray
    #: Nearest neighbours of the users' vectors in the embedding index.
    nearest: np.ndarray
    stats: ItemStats
    now_ms: int
    #: Each user's share of each category in their recent items, by category code.
    category_share: Lookup
    #: The latest items of each user's other open sessions (:func:`model.state.other_sessions`).
    others: np.ndarray


class Proposal(NamedTuple):
    """``(B, K)`` item rows (-1 padded, an item may repeat) and the source's score for each:
    the evidence of its feature, summed per item. With ``best`` None every row is put forward
    as a candidate; a featured source may instead put forward only its ``best`` items by summed
    score (0: none, evidence only), which the merge reads from the evidence it sums anyway."""

    rows: np.ndarray
    scores: np.ndarray
    best: int | None = None


class Source(Protocol):
    @property
    def feature(self) -> str | None:
        """The feature column this source's scores fill, or None when it only proposes."""
        ...

    def propose(self, q: Query) -> Proposal:
        """Items for each user of ``q``, with their scores."""

    def observe(
        self, histories: np.ndarray, items: np.ndarray, weights: np.ndarray, ts_ms: np.ndarray
    ) -> None:
        """Events on ``items[b]``, each following the user's recent items ``histories[b]``."""

    def refresh(self, stats: ItemStats, rows_used: int) -> None:
        """Recompute what depends on the item statistics (called every few seconds)."""

    def reset(self, rows: np.ndarray) -> None:
        """Rows handed to new items: forget what was known of the old ones."""


def top_per_group(
    groups: np.ndarray, values: np.ndarray, scores: np.ndarray, n_groups: int, k: int
) -> np.ndarray:
    """``(n_groups, k)`` of each group's ``k`` best-scoring ``values``, best first, -1 padded."""
    out = np.full((n_groups, k), -1, dtype=np.int64)
    if not len(groups) or not k:
        return out
    if (groups[1:] >= groups[:-1]).all():
        # Sorted groups of a few values each (a batch's users): one row per group, each
        # sorted on its own, is much cheaper than a sort of everything.
        rank = group_ranks(groups)
        width = int(rank.max()) + 1
        if n_groups * width <= 4 * len(groups) + 4096:
            dense = np.full((n_groups, width), np.inf)
            dense[groups, rank] = -scores
            ids = np.full((n_groups, width), -1, dtype=np.int64)
            ids[groups, rank] = values
            best = np.argsort(dense, axis=1, kind="stable")[:, :k]
            out[:, : best.shape[1]] = np.take_along_axis(ids, best, axis=1)
            return out
    return top_by_sort(groups, values, scores, n_groups, k)


def top_by_sort(
    groups: np.ndarray, values: np.ndarray, scores: np.ndarray, n_groups: int, k: int
) -> np.ndarray:
    """:func:`top_per_group` for any groups, by one sort of everything."""
    out = np.full((n_groups, k), -1, dtype=np.int64)
    order = np.lexsort((-scores, groups))
    g, v = groups[order], values[order]
    rank = group_ranks(g)
    keep = rank < k
    out[g[keep], rank[keep]] = v[keep]
    return out


class Lookup:
    """Sums of values per ``(batch row, key, column)``, looked up for any ``(B, C)`` array of keys.

    Several sources keyed by item (the user's history, cart, purchases, co-visitation) share one
    table with a column each, so a candidate array is searched once for all of them.
    """

    def __init__(
        self,
        batch: np.ndarray,
        keys: np.ndarray,
        values: np.ndarray,
        width: int,
        columns: np.ndarray | None = None,
        n_columns: int = 1,
    ) -> None:
        ok = keys >= 0
        self.width, self.n_columns = width, n_columns
        self.keys, order, group = unique_groups(batch[ok] * width + keys[ok])
        if columns is not None:
            group = group * n_columns + columns[ok][order]
        self.sums = np.bincount(
            group, weights=values[ok][order], minlength=len(self.keys) * n_columns
        ).reshape(-1, n_columns)

    def __call__(self, keys: np.ndarray) -> np.ndarray:
        """``(B, C, n_columns)`` sums for ``keys`` ``(B, C)`` (0 where absent)."""
        if not len(self.keys):
            return np.zeros((*keys.shape, self.n_columns))
        q = np.arange(len(keys))[:, None] * self.width + keys
        pos = np.minimum(np.searchsorted(self.keys, q), len(self.keys) - 1)
        hit = (self.keys[pos] == q) & (keys >= 0) & (keys < self.width)
        return np.where(hit[..., None], self.sums[pos], 0.0)

    def top(self, batch_size: int, k: int, column: int = 0) -> np.ndarray:
        """Each batch row's ``k`` keys with the largest positive sums in ``column``, -1 padded."""
        sums = self.sums[:, column]
        keys = self.keys[sums > 0]
        return top_per_group(keys // self.width, keys % self.width, sums[sums > 0], batch_size, k)


class Stateless:
    """Defaults for sources that learn nothing from the stream."""

    def observe(
        self, histories: np.ndarray, items: np.ndarray, weights: np.ndarray, ts_ms: np.ndarray
    ) -> None:
        pass

    def refresh(self, stats: ItemStats, rows_used: int) -> None:
        pass

    def reset(self, rows: np.ndarray) -> None:
        pass
