"""Retrieve: each user's candidates, merged from every source, with the features the ranker
scores them by.

The step owns what describes items besides their embeddings: the item statistics (popularity
at two time scales, categories, availability, the catalogue), the candidate sources
(:mod:`feedrec.model.sources`: co-visitation tables, trending lists) and the embedding index,
kept in step with the model by an :class:`~feedrec.model.refresh.IndexRefresher`. The learner
feeds it through :meth:`Retrieve.observe` and :meth:`Retrieve.forget`; it reads the model's
vectors, the vocabulary and the stream's session gaps, which others own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from feedrec.index.base import VectorIndex
from feedrec.model.base import RetrievalModel
from feedrec.model.candidates import FEATURES, Candidates, CandidatesState
from feedrec.model.clock import Clock
from feedrec.model.config import PipelineConfig
from feedrec.model.events import CatalogItem
from feedrec.model.items import ItemStats, ItemStatsState
from feedrec.model.refresh import IndexRefresher
from feedrec.model.state import MAX_SESSIONS, Context, SessionGaps, UserState, other_sessions
from feedrec.model.vocab import Vocab

_MODEL = FEATURES.index("model")


@dataclass(frozen=True, slots=True)
class UserLists:
    """A batch of users' lists as item rows, most recent first, -1 padded."""

    recent: np.ndarray
    carted: np.ndarray
    purchased: np.ndarray
    #: Each user's filters of every item they had (:mod:`feedrec.model.seen`).
    seen: list[bytes]
    #: The latest items of each user's other sessions still open (:func:`other_sessions`).
    others: np.ndarray


@dataclass(frozen=True, slots=True)
class Retrieved:
    """Candidates ``(B, C)`` of a batch of users (-1 padded) with everything ranking needs."""

    lists: UserLists
    rows: np.ndarray
    #: ``(B, C, len(FEATURES))``.
    features: np.ndarray
    available: np.ndarray
    #: Category codes (-1: padding or unknown).
    categories: np.ndarray
    #: ``(B, S)`` category codes of the latest item of each of the user's open sessions (their
    #: latest event's first): what they are comparing right now.
    shopping: np.ndarray


@dataclass(frozen=True, slots=True)
class RetrieveState:
    stats: ItemStatsState
    sources: CandidatesState


class Retrieve:
    def __init__(
        self,
        cfg: PipelineConfig,
        model: RetrievalModel,
        vocab: Vocab,
        index: VectorIndex,
        session_gaps: SessionGaps,
        clock: Clock,
    ) -> None:
        self.cfg = cfg
        self.model = model
        self.vocab = vocab
        self.index = index
        self.session_gaps = session_gaps
        self.clock = clock
        capacity = cfg.model.item_capacity
        self.stats = ItemStats(capacity, cfg.popularity_half_life_s)
        self.sources = Candidates(cfg.sources, capacity, cfg.model.history_decay)
        self.refresher = IndexRefresher(
            model, index, cfg.index_refresh_interval_s, cfg.index_refresh_min_changes
        )

    @property
    def indexed(self) -> int:
        """Items in the embedding index."""
        return len(self.index)

    # -- what the stream and the catalogue say ------------------------------------------------

    def add_catalog(self, item: CatalogItem) -> None:
        """A catalogue record, applied before the next batch; safe from any thread."""
        self.stats.queue(item)

    def catch_up(self) -> None:
        """Apply the catalogue records that arrived since the last batch."""
        self.stats.apply_catalog(self.vocab.items.row_map())

    def observe(
        self,
        item_ids: list[str],
        item_rows: np.ndarray,
        categories: list[str | None],
        weights: np.ndarray,
        ts_ms: np.ndarray,
        histories: np.ndarray,
    ) -> None:
        """Learned events on ``item_rows`` (each following its user's recent items
        ``histories``, -1 padded), with their learning weights and times."""
        stats = self.stats
        stats.describe(item_ids, item_rows)
        stats.set_keys(item_rows, item_ids)
        stats.set_categories(item_rows, categories)
        stats.observe(item_rows, weights.astype(np.float64), ts_ms)
        self.sources.observe(histories, item_rows, weights, ts_ms)

    def forget(self, rows: np.ndarray) -> None:
        """Item rows handed to new items: forget the old ones everywhere."""
        self.stats.reset(rows)
        self.sources.reset(rows)
        self.refresher.remove(rows)

    def refresh(self) -> int:
        """Push changed embeddings to the index and recompute the trending lists, each when
        due; the rows pushed."""
        pushed = self.refresher.maybe_refresh(self.clock.monotonic())
        self.sources.refresh(self.stats, self.vocab.items.used, self.clock.monotonic())
        return pushed

    # -- serving -------------------------------------------------------------------------------

    def lists(self, lists: Sequence[Context | UserState], times_ms: Sequence[int]) -> UserLists:
        """Item rows of each user's recent, carted and purchased lists, their filters of
        everything they had, and the latest items of their other sessions open at
        ``times_ms``."""
        limits = self.cfg.state
        open_ms = self.session_gaps.open_ms
        others = [
            other_sessions(x.sessions, t, open_ms) for x, t in zip(lists, times_ms, strict=True)
        ]
        rows = self.vocab.item_rows
        return UserLists(
            rows([x.recent for x in lists], self.cfg.model.history_len),
            rows([x.carted for x in lists], limits.carted_len),
            rows([x.purchased for x in lists], limits.purchased_len),
            [x.seen for x in lists],
            rows(others, MAX_SESSIONS - 1),
        )

    def candidates(
        self, users: np.ndarray, lists: UserLists, now_ms: int, nearest: int
    ) -> Retrieved:
        """Merged candidates of every source for the users of rows ``users`` (-1: no
        embedding yet) with their features, the model's score included; ``nearest`` is how
        many neighbours the embedding index is asked for."""
        vecs = self.model.user_vectors(users, lists.recent)
        k = min(nearest, max(len(self.index), 1))
        ann_rows, _ = self.index.search(vecs, k)
        cand, feats, cats = self.sources.collect(
            lists.recent,
            lists.carted,
            lists.purchased,
            lists.seen,
            ann_rows,
            self.stats,
            now_ms,
            lists.others,
        )
        scores = self.model.score(vecs, cand)
        feats[..., _MODEL] = np.where(cand >= 0, scores, 0.0)
        stats = self.stats
        shopping = stats.category_of(np.concatenate([lists.recent[:, :1], lists.others], axis=1))
        return Retrieved(lists, cand, feats, stats.available[np.maximum(cand, 0)], cats, shopping)

    # -- checkpoints ---------------------------------------------------------------------------

    def state(self) -> RetrieveState:
        used = self.vocab.items.used
        return RetrieveState(self.stats.state(used), self.sources.state(used))

    def load(self, state: RetrieveState) -> None:
        """Restore, then rebuild the index from the model (whose state comes first)."""
        self.stats.load(state.stats)
        self.sources.load(state.sources)
        items = self.vocab.items
        rows = np.asarray(items.get_rows(items.ids()), dtype=np.int64)
        now = self.clock.monotonic()
        self.refresher.full_rebuild(rows, now)
        self.sources.refresh(self.stats, items.used, now, force=True)
