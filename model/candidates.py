"""Candidate sources merged before ranking, and the features the ranker scores them by.

No single source serves every user. The embedding index knows tastes but not that a shopper
usually carts something they looked at minutes ago; co-visitation knows what follows an item
but nothing about an item nobody has followed; a user seen for the first time has nothing but
what is trending. So each user's candidates are the union of:

- ``history``: the user's own recent items, and those in their cart (carted, not bought);
- ``covisit``: the strongest successors of their most recent items (:class:`CoVisits`);
- ``category``: what is trending in the categories of their recent items;
- ``trending``: what is trending overall (all a cold user can be given);
- ``ann``: nearest neighbours of their query vector in the embedding index (passed in).

Every candidate, whatever brought it, gets the same feature vector (:data:`FEATURES`), so the
ranker weighs the sources against each other item by item. Everything is a ``(B, C)`` array over
the batch: no per-user Python loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.covisit import CoVisits, group_ranks
from model.items import ItemStats

#: Columns of the feature array, in order. ``model`` is filled in by the caller (it needs the
#: model's user vectors); the rest come from :meth:`CandidateSources.collect`. ``history``
#: fades with the item's position in the user's recent items, ``seen`` does not; ``carted``
#: marks items in the user's cart and ``purchased`` items they bought (whether shoppers come back
#: to those is for the ranker to learn). ``category`` is the share of the item's category in the
#: user's history and ``in_category`` that share times the item's share of its category's
#: popularity (see :data:`IN_CATEGORY_SCALE`): what a shopper comparing items of one category
#: picks next. ``popularity``
#: and ``recency`` describe the item for a user with a history; ``trending`` is the item's
#: popularity for a user without one, so a cold user's list is ordered by popularity alone,
#: whatever the other weights learn from warm users.
FEATURES = ("model", "history", "seen", "carted", "purchased", "covisit", "category",
            "in_category", "popularity", "recency", "trending")
#: ``in_category`` is ``log1p(IN_CATEGORY_SCALE * p)`` of the estimate ``p`` = (share of the item's
#: category in the user's history) x (item's share of its category's popularity).
IN_CATEGORY_SCALE = 1000.0
_COL = {name: i for i, name in enumerate(FEATURES)}


@dataclass(frozen=True, slots=True)
class SourceConfig:
    #: Most recent history items whose successors are followed (and that new pairs start from).
    covisit_window: int = 5
    covisit_slots: int = 20
    covisit_half_life_s: float = 86400.0
    #: Co-visitation candidates kept per user.
    covisit: int = 25
    #: Trending items taken from each of the user's ``categories`` most present categories.
    categories: int = 2
    per_category: int = 20
    trending: int = 20
    #: Weight of the i-th most recent history item in the history, co-visitation and category
    #: features is ``history_decay ** i``.
    history_decay: float = 0.8
    recency_half_life_s: float = 3600.0
    trending_refresh_s: float = 5.0

    def __post_init__(self) -> None:
        for name in ("covisit_window", "covisit_slots", "per_category"):
            if getattr(self, name) < 1:
                raise ValueError(f"SourceConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("covisit", "categories", "trending", "trending_refresh_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"SourceConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 < self.history_decay <= 1.0:
            raise ValueError(f"SourceConfig.history_decay must be in (0, 1], got {self.history_decay}")
        if self.covisit_half_life_s <= 0 or self.recency_half_life_s <= 0:
            raise ValueError("SourceConfig half-lives must be positive")


def top_per_group(groups: np.ndarray, values: np.ndarray, scores: np.ndarray, n_groups: int,
                  k: int) -> np.ndarray:
    """``(n_groups, k)`` of each group's ``k`` best-scoring ``values``, best first, -1 padded."""
    out = np.full((n_groups, k), -1, dtype=np.int64)
    if len(groups) and k:
        order = np.lexsort((-scores, groups))
        g, v = groups[order], values[order]
        rank = group_ranks(g)
        keep = rank < k
        out[g[keep], rank[keep]] = v[keep]
    return out


def _trim(rows: np.ndarray) -> np.ndarray:
    """``rows`` without the trailing columns that are padding (-1) in every row."""
    filled = np.flatnonzero((rows >= 0).any(axis=0))
    return rows[:, : filled[-1] + 1] if len(filled) else rows[:, :0]


class _Lookup:
    """Sums of values per ``(batch row, key, column)``, looked up for any ``(B, C)`` array of keys.

    Several sources keyed by item (the user's history, cart, purchases, co-visitation) share one
    table with a column each, so a candidate array is searched once for all of them.
    """

    def __init__(self, batch: np.ndarray, keys: np.ndarray, values: np.ndarray, width: int,
                 columns: np.ndarray | None = None, n_columns: int = 1) -> None:
        ok = keys >= 0
        combined = batch[ok] * width + keys[ok]
        self.width, self.n_columns = width, n_columns
        self.keys, inv = np.unique(combined, return_inverse=True)
        if columns is not None:
            inv = inv * n_columns + columns[ok]
        self.sums = np.bincount(inv, weights=values[ok],
                                minlength=len(self.keys) * n_columns).reshape(-1, n_columns)

    def __call__(self, keys: np.ndarray) -> np.ndarray:
        """``(B, C, n_columns)`` sums for ``keys`` ``(B, C)`` (0 where absent)."""
        if not len(self.keys):
            return np.zeros((*keys.shape, self.n_columns))
        q = np.arange(len(keys))[:, None] * self.width + keys
        pos = np.minimum(np.searchsorted(self.keys, q), len(self.keys) - 1)
        hit = (self.keys[pos] == q) & (keys >= 0)
        return np.where(hit[..., None], self.sums[pos], 0.0)

    def top(self, batch_size: int, k: int, column: int = 0) -> np.ndarray:
        """Each batch row's ``k`` keys with the largest positive sums in ``column``, -1 padded."""
        sums = self.sums[:, column]
        keys = self.keys[sums > 0]
        return top_per_group(keys // self.width, keys % self.width, sums[sums > 0], batch_size, k)


#: Columns of the per-user item table built by :meth:`CandidateSources.collect`.
_HISTORY, _CART, _BOUGHT, _COVISIT = range(4)


class CandidateSources:
    """Co-visitation and trending state, and the merge of all sources (see module docstring)."""

    def __init__(self, cfg: SourceConfig, capacity: int) -> None:
        self.cfg = cfg
        self.capacity = capacity
        self.covisits = CoVisits(capacity, cfg.covisit_slots, cfg.covisit_half_life_s)
        self.trending = np.zeros(0, dtype=np.int64)
        self.by_category = np.full((0, cfg.per_category), -1, dtype=np.int64)
        self.category_popularity = np.zeros(0)
        self._refreshed = float("-inf")

    # -- learning ----------------------------------------------------------------------------

    def observe(self, histories: np.ndarray, items: np.ndarray, weights: np.ndarray,
                ts_ms: np.ndarray) -> None:
        """Each event on ``items[b]`` follows the items of ``histories[b]`` (its recent items,
        -1 padded): full weight forward, half backward, over the co-visitation window."""
        w = self.cfg.covisit_window
        src = np.asarray(histories, dtype=np.int64)[:, :w]
        dst = np.broadcast_to(np.asarray(items, dtype=np.int64)[:, None], src.shape)
        wt = np.broadcast_to(np.asarray(weights, dtype=np.float64)[:, None], src.shape)
        ts = np.broadcast_to(np.asarray(ts_ms, dtype=np.int64)[:, None], src.shape)
        self.covisits.observe(np.r_[src.ravel(), dst.ravel()], np.r_[dst.ravel(), src.ravel()],
                              np.r_[wt.ravel(), 0.5 * wt.ravel()], np.r_[ts.ravel(), ts.ravel()])

    def refresh_trending(self, stats: ItemStats, rows_used: int, now_s: float,
                         force: bool = False) -> bool:
        """Recompute the trending lists (overall and per category) if due; True if it ran."""
        if not force and now_s - self._refreshed < self.cfg.trending_refresh_s:
            return False
        self._refreshed = now_s
        pop = stats.popularity[:rows_used]
        rows = np.flatnonzero((pop > 0) & stats.available[:rows_used])
        k = min(self.cfg.trending, len(rows))
        if k:
            part = rows[np.argpartition(-pop[rows], k - 1)[:k]]
            self.trending = part[np.argsort(-pop[part], kind="stable")]
        else:
            self.trending = np.zeros(0, dtype=np.int64)
        cat = stats.category[rows]
        known = cat >= 0
        n_cat = int(cat.max(initial=-1)) + 1
        self.by_category = top_per_group(cat[known].astype(np.int64), rows[known],
                                         pop[rows[known]], n_cat, self.cfg.per_category)
        self.category_popularity = np.bincount(cat[known], weights=pop[rows[known]],
                                               minlength=n_cat)
        return True

    def reset(self, rows: np.ndarray) -> None:
        self.covisits.reset(rows)

    # -- serving -----------------------------------------------------------------------------

    def collect(self, histories: np.ndarray, carted: np.ndarray, purchased: np.ndarray,
                ann: np.ndarray, stats: ItemStats, now_ms: int) -> tuple[np.ndarray, np.ndarray]:
        """Merged candidates ``(B, C)`` (-1 padded, each row distinct) and their features
        ``(B, C, len(FEATURES))``, the ``model`` column left at 0. ``histories``, ``carted``
        and ``purchased`` are ``(B, *)`` item rows, most recent first, -1 padded."""
        cfg = self.cfg
        hist = _trim(np.asarray(histories, dtype=np.int64))
        b, h = hist.shape
        cart = _trim(np.asarray(carted, dtype=np.int64).reshape(b, -1))
        bought = _trim(np.asarray(purchased, dtype=np.int64).reshape(b, -1))
        decay = np.broadcast_to(cfg.history_decay ** np.arange(h), hist.shape)
        window = hist[:, : cfg.covisit_window]
        nb, share = self.covisits.successors(window)
        weight = share * (cfg.history_decay ** np.arange(window.shape[1]))[None, :, None]
        # One table of the user's own items and their co-visitation successors, by column.
        blocks = ((hist, decay), (cart, 1.0), (bought, 1.0), (nb.reshape(b, -1), weight.reshape(b, -1)))
        user = _Lookup(
            np.concatenate([np.broadcast_to(np.arange(b)[:, None], k.shape).ravel()
                            for k, _ in blocks]),
            np.concatenate([k.ravel() for k, _ in blocks]),
            np.concatenate([np.broadcast_to(v, k.shape).ravel() for k, v in blocks]),
            self.capacity,
            np.repeat(np.arange(len(blocks)), [k.size for k, _ in blocks]),
            len(blocks),
        )

        cats = stats.category_of(hist)
        norm = np.where(hist >= 0, decay, 0.0).sum(axis=1, keepdims=True)
        cat_share = np.divide(decay, norm, out=np.zeros(hist.shape), where=norm > 0)
        n_cat = max(len(self.by_category), int(cats.max(initial=-1)) + 1, 1)
        category = _Lookup(np.repeat(np.arange(b), h), cats.ravel(), cat_share.ravel(), n_cat)

        parts = [hist, cart, user.top(b, cfg.covisit, _COVISIT),
                 np.asarray(ann, dtype=np.int64).reshape(b, -1)]
        if cfg.categories and len(self.by_category):
            top_cats = category.top(b, cfg.categories)
            known = (top_cats >= 0) & (top_cats < len(self.by_category))
            picks = self.by_category[np.where(known, top_cats, 0)]
            parts.append(np.where(known[:, :, None], picks, -1).reshape(b, -1))
        if len(self.trending):
            parts.append(np.broadcast_to(self.trending, (b, len(self.trending))))
        cand = np.sort(np.concatenate(parts, axis=1), axis=1)
        cand[:, 1:][cand[:, 1:] == cand[:, :-1]] = -1

        safe = np.maximum(cand, 0)
        cand_cats = stats.category_of(cand)
        age_s = np.maximum(now_ms - stats.last_ts[safe], 0) / 1000.0
        feats = np.zeros((*cand.shape, len(FEATURES)))
        own = user(cand)
        feats[..., _COL["history"]] = own[..., _HISTORY]
        feats[..., _COL["seen"]] = own[..., _HISTORY] > 0
        feats[..., _COL["carted"]] = own[..., _CART]
        feats[..., _COL["purchased"]] = own[..., _BOUGHT] > 0
        feats[..., _COL["covisit"]] = own[..., _COVISIT]
        share = category(cand_cats)[..., 0]
        feats[..., _COL["category"]] = share
        n_known = len(self.category_popularity)
        if n_known:
            known = (cand_cats >= 0) & (cand_cats < n_known)
            total = self.category_popularity[np.where(known, cand_cats, 0)]
            within = np.divide(stats.popularity[safe], total, out=np.zeros(cand.shape),
                               where=known & (total > 0))
            feats[..., _COL["in_category"]] = np.log1p(IN_CATEGORY_SCALE * share * within)
        popularity = np.log1p(stats.popularity[safe])
        warm = (hist >= 0).any(axis=1)[:, None]
        feats[..., _COL["popularity"]] = np.where(warm, popularity, 0.0)
        feats[..., _COL["recency"]] = np.where(warm & (stats.last_ts[safe] > 0),
                                               np.exp2(-age_s / cfg.recency_half_life_s), 0.0)
        feats[..., _COL["trending"]] = np.where(warm, 0.0, popularity)
        feats[cand < 0] = 0.0
        return cand, feats

    # -- checkpoints -------------------------------------------------------------------------

    def state(self, rows_used: int) -> dict:
        return {"covisits": self.covisits.state(rows_used)}

    def load(self, state: dict) -> None:
        self.covisits.load(state["covisits"])
        self._refreshed = float("-inf")
