"""What is selling: overall (all a user seen for the first time can be given) and within the
categories the user is browsing.

Both lists are recomputed from the item statistics every few seconds, not per batch: ranking
a whole catalogue's popularity per batch would cost more than the rest of the batch.
"""

from __future__ import annotations

import numpy as np

from feedrec.model.items import ItemStats
from feedrec.model.sources.base import Lookup, Proposal, Query, Stateless, top_per_group


def _available(stats: ItemStats, rows_used: int) -> np.ndarray:
    pop = stats.popularity[:rows_used]
    return np.flatnonzero((pop > 0) & stats.available[:rows_used])


def _top(rows: np.ndarray, pop: np.ndarray, k: int) -> np.ndarray:
    k = min(k, len(rows))
    if not k:
        return np.zeros(0, dtype=np.int64)
    part = rows[np.argpartition(-pop[rows], k - 1)[:k]]
    return part[np.argsort(-pop[part], kind="stable")]


class Trending(Stateless):
    """The ``k`` most popular available items for everyone, at both time scales of the item
    statistics: this half hour's and these weeks' (a catalogue with a few events an hour has
    no meaningful half-hour popularity)."""

    feature = None

    def __init__(self, k: int) -> None:
        self.k = k
        self.rows = np.zeros(0, dtype=np.int64)

    def refresh(self, stats: ItemStats, rows_used: int) -> None:
        rows = _available(stats, rows_used)
        fast = _top(rows, stats.popularity, self.k)
        slow = _top(rows, stats.popularity_slow, self.k)
        self.rows = np.r_[fast, slow[~np.isin(slow, fast)]]

    def propose(self, q: Query) -> Proposal:
        b = len(q.history)
        rows = np.broadcast_to(self.rows, (b, len(self.rows)))
        return Proposal(rows, np.zeros(rows.shape))


def category_shares(hist: np.ndarray, stats: ItemStats, decay: float) -> Lookup:
    """Each user's share of each category in their recent items ``hist`` (the i-th most recent
    weighing ``decay ** i``), as a :class:`Lookup` by category code."""
    b, h = hist.shape
    weight = np.broadcast_to(decay ** np.arange(h), hist.shape)
    cats = stats.category_of(hist)
    norm = np.where(hist >= 0, weight, 0.0).sum(axis=1, keepdims=True)
    share = np.divide(weight, norm, out=np.zeros(hist.shape), where=norm > 0)
    width = max(int(cats.max(initial=-1)) + 1, 1)
    return Lookup(np.repeat(np.arange(b), h), cats.ravel(), share.ravel(), width)


class CategoryTrending(Stateless):
    """The ``per_category`` most popular items of each of the user's ``categories`` most present
    categories and of the categories of their other open sessions; also each category's total
    popularity (for the ``in_category`` feature)."""

    feature = None

    def __init__(self, categories: int, per_category: int) -> None:
        self.categories, self.per_category = categories, per_category
        self.by_category = np.full((0, per_category), -1, dtype=np.int64)
        self.popularity: np.ndarray = np.zeros(0)

    def refresh(self, stats: ItemStats, rows_used: int) -> None:
        rows = _available(stats, rows_used)
        pop = stats.popularity
        cat = stats.category[rows]
        known = cat >= 0
        n_cat = int(cat.max(initial=-1)) + 1
        self.by_category = top_per_group(
            cat[known].astype(np.int64), rows[known], pop[rows[known]], n_cat, self.per_category
        )
        self.popularity = np.bincount(cat[known], weights=pop[rows[known]], minlength=n_cat)

    def propose(self, q: Query) -> Proposal:
        b = len(q.history)
        if not self.categories or not len(self.by_category):
            return Proposal(np.full((b, 0), -1, dtype=np.int64), np.zeros((b, 0)))
        top = q.category_share.top(b, self.categories)
        if q.others.size:
            # The other sessions' categories that are not among the user's top ones already.
            extra = q.stats.category_of(q.others)
            extra[(extra[:, :, None] == top[:, None, :]).any(axis=2)] = -1
            used = (extra >= 0).any(axis=0)
            top = np.concatenate([top, extra[:, used]], axis=1)
        known = (top >= 0) & (top < len(self.by_category))
        picks = self.by_category[np.where(known, top, 0)]
        rows = np.where(known[:, :, None], picks, -1).reshape(b, -1)
        return Proposal(rows, np.zeros(rows.shape))
