"""Learn: the model, and everything else that learns from the stream, one gradient step per
pooled micro-batch.

Folded events wait in a pool until ``train_batch`` of them are waiting, or the oldest has
waited ``train_max_delay_s``; then one step learns them all, in this order:

1. the ranker, on a sample of them replayed against the candidates each user had just before
   (clicks, carts and purchases first): the item they went to is the target;
2. the vocabulary gives every user and item a row (evicting the least recently seen, whose rows
   the model and retrieval reset);
3. retrieval's item statistics and co-visitation tables;
4. the embedding model, one weighted sampled-softmax step.

The step owns the model, the vocabulary and, per source, the highest position learned (its
marks): a replay after a crash is learned only where the model had not learned it yet. A step
that raises (a bug) is retried in halves down to single events, so only the events it fails on
are skipped (:meth:`Learn.take_unlearned`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from feedrec.model.base import RetrievalModel
from feedrec.model.clock import Clock
from feedrec.model.config import PipelineConfig
from feedrec.model.events import EVENT_TYPES, Event, Position
from feedrec.model.state import Context
from feedrec.model.steps.fold import Folded
from feedrec.model.steps.rank import Rank
from feedrec.model.steps.retrieve import Retrieve
from feedrec.model.vocab import IdMap, Vocab, VocabState

log = logging.getLogger(__name__)

_TYPE_CODE = {t: i for i, t in enumerate(EVENT_TYPES)}
_BROWSE = _TYPE_CODE["browse"]


@dataclass(frozen=True, slots=True)
class LearnState:
    #: The model's own state (:meth:`feedrec.model.base.RetrievalModel.state`).
    model: Any
    vocab: VocabState
    #: Source -> the highest position the model has learned from it.
    learned: dict[str, int]
    #: Events the model took a gradient step on, over its whole life.
    learned_events: int


class Learn:
    def __init__(
        self,
        cfg: PipelineConfig,
        model: RetrievalModel,
        vocab: Vocab,
        retrieve: Retrieve,
        rank: Rank,
        clock: Clock,
    ) -> None:
        self.cfg = cfg
        self.model = model
        self.vocab = vocab
        self.retrieve = retrieve
        self.rank = rank
        self.clock = clock
        self._rng = np.random.default_rng(cfg.model.seed)
        self._weights = np.array([cfg.weights[t] for t in EVENT_TYPES], dtype=np.float32)
        # Events waiting for a gradient step, the user's lists just before each, and where
        # each came from.
        self._pending: list[Event] = []
        self._pending_contexts: list[Context] = []
        self._pending_positions: list[Position | None] = []
        self._pending_since = 0.0
        #: Events a gradient step failed on (a bug), with their positions and the error.
        self._unlearned: list[tuple[Event, Position | None, str]] = []
        #: Source -> the highest position the model has learned (or holds pending) from it.
        self.learned: dict[str, int] = {}
        #: Events the model has taken a gradient step on, over its whole life.
        self.learned_events = 0
        #: The ranker's loss at the last step that trained it.
        self.ranker_loss: float | None = None

    @property
    def version(self) -> int:
        """The model's version: gradient steps taken, never decreasing."""
        return self.model.version

    def raise_version(self, floor: int) -> None:
        """Continue the version count from at least ``floor`` (the highest already emitted)."""
        self.model.version = max(self.model.version, floor)

    @property
    def pending(self) -> int:
        """Events taken but not yet learned from."""
        return len(self._pending)

    # -- positions -----------------------------------------------------------------------------

    def resume_offsets(self) -> dict[str, int]:
        """Source -> the first position the model has not learned: where a restart reads from."""
        return {src: offset + 1 for src, offset in self.learned.items()}

    def begin(self, starts: Mapping[str, int]) -> bool:
        """Sources this model starts to learn from, each at its first position (0 for the
        start). Sources it already knows keep their marks. True when any is new: a checkpoint
        must then record the marks before the first of those events is processed, or a crash
        before the next checkpoint would leave the events in between unlearned for good."""
        new = {src: max(offset, 0) - 1 for src, offset in starts.items() if src not in self.learned}
        self.learned.update(new)
        return bool(new)

    # -- the pool ------------------------------------------------------------------------------

    def take(self, folded: Folded, positions: Sequence[Position] | None = None) -> None:
        """Pool what ``folded`` holds for the learner, less what the model has learned
        already; the marks move past every position of the batch (``positions``)."""
        learned = self.learned
        if folded.positions is None:
            events, contexts = folded.learn, folded.contexts
            where: list[Position | None] = [None] * len(events)
        else:
            keep = [
                n
                for n, (src, offset) in enumerate(folded.positions)
                if offset > learned.get(src, -1)
            ]
            events = [folded.learn[n] for n in keep]
            contexts = [folded.contexts[n] for n in keep]
            where = [folded.positions[n] for n in keep]
        for src, offset in positions or ():
            if offset > learned.get(src, -1):
                learned[src] = offset
        if events:
            if not self._pending:
                self._pending_since = self.clock.monotonic()
            self._pending += events
            self._pending_contexts += contexts
            self._pending_positions += where

    def due(self) -> bool:
        """Whether enough events are waiting, or the oldest has waited long enough."""
        return len(self._pending) >= self.cfg.train_batch or (
            bool(self._pending)
            and self.clock.monotonic() - self._pending_since >= self.cfg.train_max_delay_s
        )

    def take_unlearned(self) -> list[tuple[Event, Position | None, str]]:
        """The events the model skipped because its step failed on them, since the last call."""
        out, self._unlearned = self._unlearned, []
        return out

    # -- the step ------------------------------------------------------------------------------

    def step(self) -> float | None:
        """Take a gradient step on every waiting event now; the loss, or None if none waited."""
        if not self._pending:
            return None
        events, contexts = self._pending, self._pending_contexts
        positions = self._pending_positions
        self._pending, self._pending_contexts, self._pending_positions = [], [], []
        losses: list[tuple[float, int]] = []
        for a, b in self._fitting_spans(events):
            self._learn_isolating(events, contexts, positions, a, b, losses)
        n = sum(k for _, k in losses)
        self.learned_events += n
        return sum(loss * k for loss, k in losses) / n if n else None

    def _learn_isolating(
        self,
        events: list[Event],
        contexts: list[Context],
        positions: list[Position | None],
        a: int,
        b: int,
        losses: list[tuple[float, int]],
    ) -> None:
        try:
            losses.append((self._learn(events[a:b], contexts[a:b]), b - a))
        except Exception as exc:
            if b - a == 1:
                log.exception(
                    "gradient step failed on event %s; the model skips it", events[a].event_id
                )
                self._unlearned.append((events[a], positions[a], repr(exc)))
                return
            mid = (a + b) // 2
            self._learn_isolating(events, contexts, positions, a, mid, losses)
            self._learn_isolating(events, contexts, positions, mid, b, losses)

    def _fitting_spans(self, events: Sequence[Event]) -> list[tuple[int, int]]:
        """``[a, b)`` spans of ``events``, in order, none with more distinct users or items than
        the id maps hold, so that a capacity bends a step into several instead of failing it."""
        users, items = self.vocab.users.capacity, self.vocab.items.capacity
        if len(events) <= min(users, items):
            return [(0, len(events))]
        spans = []
        start = 0
        seen_users: set[str] = set()
        seen_items: set[str] = set()
        for n, ev in enumerate(events):
            new_user = ev.user_id not in seen_users
            new_item = ev.item_id not in seen_items
            if (new_user and len(seen_users) == users) or (new_item and len(seen_items) == items):
                spans.append((start, n))
                start = n
                seen_users, seen_items = set(), set()
            seen_users.add(ev.user_id)
            seen_items.add(ev.item_id)
        spans.append((start, len(events)))
        return spans

    def _learn(self, events: list[Event], contexts: list[Context]) -> float:
        codes = np.fromiter(
            (_TYPE_CODE[e.event_type or "browse"] for e in events), np.int64, len(events)
        )
        self.ranker_loss = self._train_ranker(events, contexts, codes)
        user_rows = self._rows(
            self.vocab.users, [e.user_id for e in events], self.model.reset_users
        )
        item_ids = [e.item_id for e in events]
        item_rows = self._rows(self.vocab.items, item_ids, self._evict_items)
        weights = self._weights[codes]
        ts = np.fromiter((e.ts for e in events), np.int64, len(events))
        hist = self.vocab.item_rows([c.recent for c in contexts], self.cfg.model.history_len)
        self.retrieve.observe(item_ids, item_rows, [e.category for e in events], weights, ts, hist)
        return self.model.learn_many(user_rows, item_rows, weights, hist)

    @staticmethod
    def _rows(idmap: IdMap, ids: list[str], evict: Callable[[np.ndarray], None]) -> np.ndarray:
        rows, evicted = idmap.rows_for(ids)
        if len(evicted):
            evict(evicted)
        return rows

    def _evict_items(self, rows: np.ndarray) -> None:
        self.model.reset_items(rows)
        self.retrieve.forget(rows)

    def _train_ranker(
        self, events: list[Event], contexts: list[Context], codes: np.ndarray
    ) -> float | None:
        """Replay a sample of ``events`` (clicks, carts and purchases first, then browses)
        against the candidates each user had just before it; the item they went to is the
        target. Runs before anything learns from the events."""
        n = self.cfg.ranker_sample
        if not n or not self.retrieve.indexed:
            return None
        browsing = codes == _BROWSE
        feedback, browse = np.flatnonzero(~browsing), np.flatnonzero(browsing)
        pick = feedback if len(feedback) <= n else self._rng.choice(feedback, n, replace=False)
        picked: list[int] = pick.tolist()
        if len(picked) < n and len(browse):
            take = min(n - len(picked), len(browse))
            picked += self._rng.choice(browse, take, replace=False).tolist()
        chosen = [events[i] for i in picked]
        before = [contexts[i] for i in picked]
        lists = self.retrieve.lists(before, [e.ts for e in chosen])
        found = self.retrieve.candidates(
            self.vocab.users.get_rows([e.user_id for e in chosen]),
            lists,
            max(e.ts for e in chosen),
            self.cfg.ranking.candidates,
        )
        target = self.vocab.items.get_rows([e.item_id for e in chosen])
        match = (found.rows == target[:, None]) & (target[:, None] >= 0)
        column = np.where(match.any(axis=1), match.argmax(axis=1), -1)
        # Every click, cart or purchase counts the same: the list must serve whatever comes next.
        return self.rank.train(
            found, column, np.where(browsing[picked], 0.25, 1.0), [c.last for c in before]
        )

    # -- users who leave -----------------------------------------------------------------------

    def forget_users(self, user_ids: Sequence[str]) -> int:
        """Free the embedding rows of users the stream forgot (their state expired); the rows
        freed."""
        rows = self.vocab.users.release(user_ids)
        if len(rows):
            self.model.reset_users(rows)
        return len(rows)

    # -- checkpoints ---------------------------------------------------------------------------

    def state(self) -> LearnState:
        """The model, the vocabulary and the marks; take :meth:`step` first, or the pool's
        events are lost to the checkpoint."""
        return LearnState(
            self.model.state(), self.vocab.state(), dict(self.learned), self.learned_events
        )

    def load(self, state: LearnState) -> None:
        self.model.load(state.model)
        self.vocab.load(state.vocab)
        self.learned = dict(state.learned)
        self.learned_events = int(state.learned_events)
