"""Candidate sources merged before ranking, and the features the ranker scores them by.

No single source serves every user. The embedding index knows tastes but not that a shopper
usually carts something they looked at minutes ago; co-visitation knows what follows an item
but nothing about an item nobody has followed; a user seen for the first time has nothing but
what is trending. So each user's candidates are the union of what the sources of
:mod:`model.sources` propose (each its own module behind :class:`model.sources.base.Source`):

- ``history``: the user's own recent items, the latest items of their other open sessions, and
  those in their cart (carted, not bought);
- ``covisit``: the strongest successors of their most recent items, from two tables: one that
  forgets within a day (what follows what in today's sessions) and one that keeps everything
  (what follows what in a catalogue browsed over months);
- ``category``: what is trending in the categories of their recent items and of their other
  open sessions;
- ``trending``: what is trending overall (all a cold user can be given);
- ``nearest``: nearest neighbours of their query vector in the embedding index (passed in).

Every candidate, whatever brought it, gets the same feature vector (:data:`FEATURES`), so the
ranker weighs the sources against each other item by item. Everything is a ``(B, C)`` array over
the batch: no per-user Python loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from feedrec.model import seen as seen_filters
from feedrec.model.covisit import CoVisitsState
from feedrec.model.items import ItemStats
from feedrec.model.sources.base import Lookup, Query, Source
from feedrec.model.sources.covisit import CoVisitation
from feedrec.model.sources.history import Cart, History, OtherSessions, Purchased
from feedrec.model.sources.nearest import Nearest
from feedrec.model.sources.trending import CategoryTrending, Trending, category_shares

#: Columns of the feature array, in order. ``model`` is filled in by the caller (it needs the
#: model's user vectors); the rest come from :meth:`Candidates.collect`. ``history`` fades with
#: the item's position in the user's recent items; ``seen`` marks every item the user ever had
#: (recent or in their seen filter); ``carted`` marks items in the user's cart and ``purchased``
#: items they bought (whether shoppers come back to those is for the ranker to learn).
#: ``covisit`` and ``covisit_long`` are the co-visitation evidence of the day-scale and the
#: never-forgetting table. ``category`` is the share of the item's category in the user's
#: history, ``latest_category`` marks the category of the latest item of each of their open
#: sessions (their latest event's, and the other sessions' of :func:`model.state.other_sessions`;
#: ``other_session`` marks those other sessions' latest items and ``other_category`` their
#: categories, so the ranker learns how likely a shopper is to go back), and ``in_category`` is
#: the share times the item's share of its category's popularity (see
#: :data:`IN_CATEGORY_SCALE`): what a shopper comparing items of one category picks next.
#: ``popularity`` (this half hour), ``popularity_slow`` (these weeks) and ``recency`` describe the
#: item for a user with a history; ``trending`` and ``trending_slow`` are the same popularities
#: for a user without one, so a cold user's list is ordered by popularity alone, whatever the
#: other weights learn from warm users.
FEATURES = (
    "model",
    "history",
    "seen",
    "carted",
    "purchased",
    "covisit",
    "covisit_long",
    "category",
    "latest_category",
    "in_category",
    "popularity",
    "popularity_slow",
    "recency",
    "trending",
    "trending_slow",
    "other_session",
    "other_category",
)
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
    #: Co-visitation candidates kept per user, from each table.
    covisit: int = 25
    #: Half-life of the long co-visitation table; None: it never forgets.
    covisit_long_half_life_s: float | None = None
    #: Trending items taken from each of the user's ``categories`` most present categories.
    categories: int = 2
    per_category: int = 20
    trending: int = 20
    recency_half_life_s: float = 3600.0
    trending_refresh_s: float = 5.0

    def __post_init__(self) -> None:
        for name in ("covisit_window", "covisit_slots", "per_category"):
            if getattr(self, name) < 1:
                raise ValueError(f"SourceConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("covisit", "categories", "trending", "trending_refresh_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"SourceConfig.{name} must be >= 0, got {getattr(self, name)}")
        long = self.covisit_long_half_life_s
        if (
            self.covisit_half_life_s <= 0
            or self.recency_half_life_s <= 0
            or (long is not None and long <= 0)
        ):
            raise ValueError("SourceConfig half-lives must be positive")


def _trim(rows: np.ndarray) -> np.ndarray:
    """``rows`` without the trailing columns that are padding (-1) in every row."""
    filled = np.flatnonzero((rows >= 0).any(axis=0))
    return rows[:, : filled[-1] + 1] if len(filled) else rows[:, :0]


@dataclass(frozen=True, slots=True)
class CandidatesState:
    """What the sources learned from the stream (the rest they recompute on refresh)."""

    covisit: CoVisitsState
    covisit_long: CoVisitsState


class Candidates:
    """The sources, their refresh, and the merge of their proposals (see module docstring).

    ``history_decay`` is the weight of the i-th most recent history item (``history_decay **
    i``) in the history, co-visitation and category features: the model's
    (:attr:`feedrec.model.twotower.ModelConfig.history_decay`)."""

    def __init__(self, cfg: SourceConfig, capacity: int, history_decay: float) -> None:
        if not 0.0 < history_decay <= 1.0:
            raise ValueError(f"history_decay must be in (0, 1], got {history_decay}")
        self.cfg = cfg
        self.capacity = capacity
        self.history_decay = history_decay
        self.category = CategoryTrending(cfg.categories, cfg.per_category)
        self.covisit = CoVisitation(
            "covisit",
            capacity,
            cfg.covisit_window,
            cfg.covisit_slots,
            cfg.covisit_half_life_s,
            cfg.covisit,
            history_decay,
        )
        self.covisit_long = CoVisitation(
            "covisit_long",
            capacity,
            cfg.covisit_window,
            cfg.covisit_slots,
            cfg.covisit_long_half_life_s,
            cfg.covisit,
            history_decay,
        )
        self.sources: dict[str, Source] = {
            "history": History(history_decay),
            "other_sessions": OtherSessions(),
            "cart": Cart(),
            "purchased": Purchased(),
            "covisit": self.covisit,
            "covisit_long": self.covisit_long,
            "category": self.category,
            "trending": Trending(cfg.trending),
            "nearest": Nearest(),
        }
        self._featured = [
            (name, src.feature) for name, src in self.sources.items() if src.feature is not None
        ]
        self._refreshed = float("-inf")

    # -- learning ----------------------------------------------------------------------------

    def observe(
        self, histories: np.ndarray, items: np.ndarray, weights: np.ndarray, ts_ms: np.ndarray
    ) -> None:
        """Each event on ``items[b]`` follows the items of ``histories[b]`` (its recent items,
        -1 padded)."""
        for src in self.sources.values():
            src.observe(histories, items, weights, ts_ms)

    def refresh(self, stats: ItemStats, rows_used: int, now_s: float, force: bool = False) -> bool:
        """Let the sources recompute what depends on the item statistics, if due; True if so."""
        if not force and now_s - self._refreshed < self.cfg.trending_refresh_s:
            return False
        self._refreshed = now_s
        for src in self.sources.values():
            src.refresh(stats, rows_used)
        return True

    def reset(self, rows: np.ndarray) -> None:
        for src in self.sources.values():
            src.reset(rows)

    # -- serving -----------------------------------------------------------------------------

    def collect(
        self,
        histories: np.ndarray,
        carted: np.ndarray,
        purchased: np.ndarray,
        seen: Sequence[bytes],
        nearest: np.ndarray,
        stats: ItemStats,
        now_ms: int,
        others: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Merged candidates ``(B, C)`` (-1 padded, each row distinct), their features
        ``(B, C, len(FEATURES))``, the ``model`` column left at 0, and their category codes
        ``(B, C)`` (-1: padding or unknown). ``histories``, ``carted``
        and ``purchased`` are ``(B, *)`` item rows, most recent first, -1 padded; ``seen`` each
        user's filters of everything they had (:mod:`model.seen`); ``others`` the latest items
        of each user's other open sessions (``(B, *)``, -1 padded; None: none known)."""
        hist = _trim(np.asarray(histories, dtype=np.int64))
        b, h = hist.shape
        q = Query(
            hist,
            _trim(np.asarray(carted, dtype=np.int64).reshape(b, -1)),
            _trim(np.asarray(purchased, dtype=np.int64).reshape(b, -1)),
            np.asarray(nearest, dtype=np.int64).reshape(b, -1),
            stats,
            now_ms,
            category_shares(hist, stats, self.history_decay),
            np.full((b, 0), -1, dtype=np.int64)
            if others is None
            else np.asarray(others, dtype=np.int64).reshape(b, -1),
        )
        proposals = {name: src.propose(q) for name, src in self.sources.items()}
        # One table of every featured source's evidence, a column each: searched once.
        blocks = [proposals[name] for name, _ in self._featured]
        evidence = Lookup(
            np.concatenate(
                [np.broadcast_to(np.arange(b)[:, None], p.rows.shape).ravel() for p in blocks]
            ),
            np.concatenate([p.rows.ravel() for p in blocks]),
            np.concatenate([np.broadcast_to(p.scores, p.rows.shape).ravel() for p in blocks]),
            self.capacity,
            np.repeat(np.arange(len(blocks)), [p.rows.size for p in blocks]),
            len(blocks),
        )
        column = {name: i for i, (name, _) in enumerate(self._featured)}
        parts = [
            p.rows if p.best is None else evidence.top(b, p.best, column[name])
            for name, p in proposals.items()
        ]
        cand = np.sort(np.concatenate(parts, axis=1), axis=1)
        # Padding sorts first: columns that are padding in every row go before anything else.
        cand = cand[:, int((cand >= 0).argmax(axis=1).min()) :]
        cand[:, 1:][cand[:, 1:] == cand[:, :-1]] = -1

        safe = np.maximum(cand, 0)
        feats = np.zeros((*cand.shape, len(FEATURES)))
        own = evidence(cand)
        for n, (_, feature) in enumerate(self._featured):
            feats[..., _COL[feature]] = own[..., n]
        feats[..., _COL["purchased"]] = feats[..., _COL["purchased"]] > 0
        feats[..., _COL["seen"]] = (feats[..., _COL["history"]] > 0) | seen_filters.contains(
            seen, stats.key[safe]
        )
        cats = stats.category_of(hist)
        cand_cats = stats.category_of(cand)
        share = q.category_share(cand_cats)[..., 0]
        feats[..., _COL["category"]] = share
        latest = cats[:, :1] if h else np.full((b, 1), -1)
        feats[..., _COL["latest_category"]] = (cand_cats == latest) & (latest >= 0)
        totals = self.category.popularity
        if len(totals):
            known = (cand_cats >= 0) & (cand_cats < len(totals))
            total = totals[np.where(known, cand_cats, 0)]
            within = np.divide(
                stats.popularity[safe], total, out=np.zeros(cand.shape), where=known & (total > 0)
            )
            feats[..., _COL["in_category"]] = np.log1p(IN_CATEGORY_SCALE * share * within)
        popularity = np.log1p(stats.popularity[safe])
        warm = np.asarray((hist >= 0).any(axis=1))[:, None]
        age_s = np.maximum(now_ms - stats.last_ts[safe], 0) / 1000.0
        feats[..., _COL["popularity"]] = np.where(warm, popularity, 0.0)
        feats[..., _COL["popularity_slow"]] = np.where(
            warm, np.log1p(stats.popularity_slow[safe]), 0.0
        )
        feats[..., _COL["recency"]] = np.where(
            warm & (stats.last_ts[safe] > 0), np.exp2(-age_s / self.cfg.recency_half_life_s), 0.0
        )
        feats[..., _COL["trending"]] = np.where(warm, 0.0, popularity)
        feats[..., _COL["trending_slow"]] = np.where(
            warm, 0.0, np.log1p(stats.popularity_slow[safe])
        )
        if q.others.size:
            # A column at a time: there are only a few, and any() over a short axis is slow.
            in_other = np.zeros(cand.shape, dtype=bool)
            for other in stats.category_of(q.others).T:
                in_other |= (cand_cats == other[:, None]) & (other[:, None] >= 0)
            feats[..., _COL["other_category"]] = in_other
            feats[..., _COL["latest_category"]] = np.maximum(
                feats[..., _COL["latest_category"]], in_other
            )
        feats[cand < 0] = 0.0
        return cand, feats, cand_cats

    # -- checkpoints -------------------------------------------------------------------------

    def state(self, rows_used: int) -> CandidatesState:
        return CandidatesState(self.covisit.state(rows_used), self.covisit_long.state(rows_used))

    def load(self, state: CandidatesState) -> None:
        self.covisit.load(state.covisit)
        self.covisit_long.load(state.covisit_long)
        self._refreshed = float("-inf")
