"""The feedback loop for one micro-batch, with no I/O: state -> learn -> retrieve -> rank.

The Faust agent, the offline replay and the tests all drive this one class. A batch is handled
in a fixed order so its result does not depend on how events were split into batches, except
that hits are judged against the list shown before the batch began.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import chain

import msgspec
import numpy as np

from feedrec.index import make_index
from feedrec.index.base import VectorIndex
from feedrec.model.base import RetrievalModel
from feedrec.model.candidates import FEATURES, Candidates, SourceConfig
from feedrec.model.events import EVENT_TYPES, Event
from feedrec.model.exceptions import CheckpointError
from feedrec.model.items import ItemStats
from feedrec.model.ranker import OnlineRanker
from feedrec.model.ranking import RankConfig, RepeatShare, rank
from feedrec.model.refresh import IndexRefresher
from feedrec.model.state import (
    CONTEXTS,
    MAX_SESSIONS,
    Context,
    SessionGaps,
    StateLimits,
    UserState,
    apply_events,
    context_of,
    dump_state,
    load_state,
    other_sessions,
)
from feedrec.model.twotower import EmbeddingModel, ModelConfig
from feedrec.model.vocab import IdMap

log = logging.getLogger(__name__)

#: Layout of :meth:`Pipeline.snapshot`; a checkpoint of another layout is refused on restore.
SNAPSHOT_FORMAT = 3

#: Default learning weight per event type: purchase > cart > click > browse.
DEFAULT_WEIGHTS: dict[str, float] = {"browse": 0.25, "click": 1.0, "cart": 2.0, "purchase": 4.0}


def _event_ts(ev: Event) -> int:
    return ev.ts


#: Where an event came from: its source (``topic/partition``) and offset there. A batch's events
#: from one source arrive in offset order.
Position = tuple[str, int]


def source_name(topic: str, partition: int) -> str:
    return f"{topic}/{partition}"


class ScoredItem(msgspec.Struct):
    item_id: str
    score: float


class Recommendation(msgspec.Struct):
    """One message of the ``recommendations`` topic."""

    user_id: str
    rec_id: str
    items: list[ScoredItem]
    model_version: int
    trigger_event_id: str
    event_ts: int
    emitted_ts: int


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    state: StateLimits = field(default_factory=StateLimits)
    ranking: RankConfig = field(default_factory=RankConfig)
    sources: SourceConfig = field(default_factory=SourceConfig)
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    popularity_half_life_s: float = 1800.0
    index_refresh_interval_s: float = 1.0
    index_refresh_min_changes: int = 256
    #: Events per gradient step: small arriving batches are pooled until this many are waiting,
    #: or until the oldest has waited ``train_max_delay_s``. Many tiny steps learn worse than
    #: fewer larger ones (noisier gradients, one Adam step per handful of events).
    train_batch: int = 256
    train_max_delay_s: float = 1.0
    #: Events per gradient step replayed against their candidates to train the ranker (the
    #: clicks, carts and purchases first); 0 keeps the ranker's initial weights.
    ranker_sample: int = 32
    ranker_lr: float = 0.05

    def __post_init__(self) -> None:
        if self.ranker_sample < 0 or self.ranker_lr <= 0:
            raise ValueError(f"need ranker_sample >= 0 and ranker_lr > 0, got "
                             f"{self.ranker_sample}, {self.ranker_lr}")
        if self.train_batch < 1:
            raise ValueError(f"train_batch must be >= 1, got {self.train_batch}")
        if self.train_max_delay_s < 0:
            raise ValueError(f"train_max_delay_s must be >= 0, got {self.train_max_delay_s}")
        missing = set(EVENT_TYPES) - set(self.weights)
        if missing:
            raise ValueError(f"event weights missing for {sorted(missing)}")


@dataclass(slots=True)
class BatchResult:
    states: dict[str, bytes]
    recommendations: list[Recommendation]
    counts: dict[str, int]
    duplicates: int = 0
    #: Events of a replay already in their user's state (skipped there; learned if the model
    #: had not learned them yet).
    replayed: int = 0
    feedback: int = 0
    hits: int = 0
    rec_clicks: int = 0
    loss: float | None = None
    ranker_loss: float | None = None
    index_pushed: int = 0
    timings: dict[str, float] = field(default_factory=dict)


class Pipeline:
    """Owns the model, the id maps, the item statistics and the index of one worker."""

    def __init__(
        self,
        cfg: PipelineConfig,
        model: RetrievalModel,
        index: VectorIndex,
        users: IdMap | None = None,
        items: IdMap | None = None,
    ) -> None:
        self.cfg = cfg
        self.model = model
        self.index = index
        self.users = users or IdMap(cfg.model.user_capacity)
        self.items = items or IdMap(cfg.model.item_capacity)
        self.stats = ItemStats(cfg.model.item_capacity, cfg.popularity_half_life_s)
        self.sources = Candidates(cfg.sources, cfg.model.item_capacity)
        self.ranker = OnlineRanker(lr=cfg.ranker_lr, contexts=len(CONTEXTS))
        self._rng = np.random.default_rng(cfg.model.seed)
        self.ranker_loss: float | None = None
        self.refresher = IndexRefresher(
            model, index, cfg.index_refresh_interval_s, cfg.index_refresh_min_changes
        )
        self._weights = np.array([cfg.weights[t] for t in EVENT_TYPES], dtype=np.float32)
        self._type_code = {t: i for i, t in enumerate(EVENT_TYPES)}
        # Accepted events waiting for a gradient step, and the user's lists just before each.
        self._pending: list[Event] = []
        self._pending_contexts: list[Context] = []
        self._pending_positions: list[Position | None] = []
        #: Events a gradient step failed on (a bug), with their positions and the error: they
        #: were skipped by the model, and the caller reports them (:meth:`take_unlearned`).
        self._unlearned: list[tuple[Event, Position | None, str]] = []
        self._pending_since = 0.0
        #: Source -> the highest offset the model has learned (or holds pending) from it.
        self.learned: dict[str, int] = {}
        #: Events the model has taken a gradient step on, over its whole life (checkpointed).
        self.learned_events = 0
        #: How often users come back to what they had: whether seen items are worth showing.
        self.repeats = RepeatShare()
        self.session_gaps = SessionGaps()
        #: Seconds on a monotonic clock; pooling and index refresh are timed by it. Offline
        #: replay sets it to the events' own time so it behaves like a worker fed live.
        self.clock: Callable[[], float] = time.monotonic

    @classmethod
    def build(
        cls, cfg: PipelineConfig, device: str = "auto", index_kind: str = "auto"
    ) -> Pipeline:
        model = EmbeddingModel(cfg.model, device=device)
        index = make_index(cfg.model.dim, kind=index_kind)
        return cls(cfg, model, index)

    # -- checkpoints -------------------------------------------------------------------------

    def snapshot(self) -> dict:
        """Everything a restarted worker needs to resume learning where this one stopped.

        Events still waiting for a gradient step are learned first, so none is left out.
        """
        self.flush()
        return {
            "format": SNAPSHOT_FORMAT,
            "version": self.model.version,
            "model": self.model.state_dict(),
            "users": self.users.state(),
            "items": self.items.state(),
            "stats": {
                "popularity": self.stats.popularity.copy(),
                "popularity_slow": self.stats.popularity_slow.copy(),
                "slow_clock_ms": self.stats._slow_clock_ms,
                "last_ts": self.stats.last_ts.copy(),
                "category": self.stats.category.copy(),
                "available": self.stats.available.copy(),
                "categories": dict(self.stats._categories),
                "clock_ms": self.stats._clock_ms,
                "key": self.stats.key[: self.items.used].copy(),
            },
            "sources": self.sources.state(self.items.used),
            "ranker": self.ranker.state(),
            "learned": dict(self.learned),
            "learned_events": self.learned_events,
            "repeats": self.repeats.state(),
            "session_gaps": self.session_gaps.state(),
        }

    def restore(self, snap: Mapping) -> None:
        fmt = snap.get("format", 1)
        if fmt != SNAPSHOT_FORMAT:
            raise CheckpointError(
                f"checkpoint of model version {snap.get('version')} has layout {fmt}, this "
                f"feedrec reads layout {SNAPSHOT_FORMAT}; move the checkpoint directory aside "
                "to start with a fresh model")
        self.model.load_state_dict(snap["model"])
        self.users = IdMap.from_state(snap["users"])
        self.items = IdMap.from_state(snap["items"])
        st = snap["stats"]
        self.stats.popularity[:] = st["popularity"]
        self.stats.popularity_slow[:] = st["popularity_slow"]
        self.stats._slow_clock_ms = int(st["slow_clock_ms"])
        self.stats.last_ts[:] = st["last_ts"]
        self.stats.category[:] = st["category"]
        self.stats.available[:] = st["available"]
        self.stats._categories = dict(st["categories"])
        self.stats._clock_ms = int(st["clock_ms"])
        self.sources.load(snap["sources"])
        self.ranker.load(snap["ranker"])
        self.learned = dict(snap.get("learned", {}))
        self.learned_events = int(snap.get("learned_events", 0))
        self.repeats.load(snap["repeats"])
        self.session_gaps.load(snap["session_gaps"])
        self.stats.key[: self.items.used] = st["key"]
        rows = np.asarray(self.items.get_rows(self.items.ids()), dtype=np.int64)
        self.refresher.full_rebuild(rows)
        self.sources.refresh(self.stats, self.items.used, self.clock(), force=True)

    # -- the batch ---------------------------------------------------------------------------

    def _rows(self, idmap: IdMap, ids: Sequence[str], now: float, reset_model, reset_extra=None):
        rows, evicted = idmap.rows_for(ids, now)
        if len(evicted):
            reset_model(evicted)
            if reset_extra is not None:
                reset_extra(evicted)
        return rows

    def _evict_items(self, rows: np.ndarray) -> None:
        self.stats.reset(rows)
        self.sources.reset(rows)
        self.refresher.remove(rows)

    def resume_offsets(self) -> dict[str, int]:
        """Source -> the first offset the model has not learned: where a restart reads from."""
        return {src: offset + 1 for src, offset in self.learned.items()}

    def begin(self, starts: Mapping[str, int]) -> bool:
        """Sources this model starts to learn from, each at its first offset (0 for the start).

        Sources it already knows keep their marks. True when any is new: a checkpoint must
        then record the marks before the first of those events is processed, or a crash
        before the next checkpoint would leave the events in between unlearned for good.
        """
        new = {src: max(offset, 0) - 1 for src, offset in starts.items()
               if src not in self.learned}
        self.learned.update(new)
        return bool(new)

    def process(
        self,
        events: Sequence[Event],
        states: Mapping[str, bytes | None],
        now_ms: int,
        recommend: bool = True,
        positions: Sequence[Position] | None = None,
    ) -> BatchResult:
        """Apply one batch of valid events; ``states`` holds the current state of their users.

        With ``positions`` (one per event) every effect happens once per event across replays:
        an event at or below its user's mark for its source is not applied to the state again
        (nor triggers a list), and one at or below :attr:`learned` is not learned again. With
        ``recommend=False`` triggers emit nothing (offline evaluation asks separately).
        """
        t0 = time.perf_counter()
        self.stats.apply_catalog(self.items.row_map())
        at: dict[int, Position] = {}
        by_user: dict[str, list[Event]] = {}
        if positions is None:
            for ev in events:
                by_user.setdefault(ev.user_id, []).append(ev)
        else:
            for ev, pos in zip(events, positions, strict=True):
                by_user.setdefault(ev.user_id, []).append(ev)
                at[id(ev)] = pos

        counts = dict.fromkeys(EVENT_TYPES, 0)
        result = BatchResult(states={}, recommendations=[], counts=counts)
        learn: list[Event] = []
        contexts: list[Context] = []
        user_states: dict[str, UserState] = {}
        triggers: list[tuple[str, Event]] = []
        limits = self.cfg.state
        learned = self.learned
        gaps: list[int] = []
        for user, evs in by_user.items():
            st = load_state(states.get(user))
            if at:
                evs = self._unapplied(st, evs, at, learn, contexts, result)
            # Topics interleave arbitrarily; a user's events are applied in time order.
            evs.sort(key=_event_ts)
            out = apply_events(st, evs, limits)
            user_states[user] = st
            result.duplicates += out.duplicates
            result.feedback += out.feedback
            result.hits += out.hits
            result.rec_clicks += out.rec_clicks
            self.repeats.observe(out.returning, out.repeats)
            gaps += out.session_gaps
            for ev in out.accepted:
                counts[ev.event_type or "browse"] += 1
            if at:
                for ev, ctx in zip(out.accepted, out.contexts, strict=True):
                    src, offset = at[id(ev)]
                    if offset > learned.get(src, -1):
                        learn.append(ev)
                        contexts.append(ctx)
            else:
                learn += out.accepted
                contexts += out.contexts
            if out.trigger is not None:
                triggers.append((user, out.trigger))
        for src, offset in at.values():
            if offset > learned.get(src, -1):
                learned[src] = offset
        self.session_gaps.observe(gaps)
        t1 = time.perf_counter()

        if learn:
            if not self._pending:
                self._pending_since = self.clock()
            self._pending += learn
            self._pending_contexts += contexts
            self._pending_positions += ([at[id(ev)] for ev in learn] if at
                                        else [None] * len(learn))
        if len(self._pending) >= self.cfg.train_batch or (
            self._pending
            and self.clock() - self._pending_since >= self.cfg.train_max_delay_s
        ):
            result.loss = self.flush()
            result.ranker_loss = self.ranker_loss
        t2 = time.perf_counter()
        result.index_pushed = self.refresher.maybe_refresh(self.clock())
        self.sources.refresh(self.stats, self.items.used, self.clock())
        t3 = time.perf_counter()
        if triggers and recommend:
            result.recommendations = self._recommend(triggers, user_states, now_ms)
        t4 = time.perf_counter()
        result.states = {u: dump_state(st) for u, st in user_states.items()}
        result.timings = {"state": t1 - t0, "learn": t2 - t1, "index": t3 - t2, "rank": t4 - t3}
        return result

    def _unapplied(self, st: UserState, evs: list[Event], at: Mapping[int, Position],
                   learn: list[Event], contexts: list[Context], result: BatchResult
                   ) -> list[Event]:
        """The events of ``evs`` that ``st`` has not applied yet, and the marks moved past all.

        Events already applied (a replay after a crash) are queued for learning when the model
        has not learned them: their context is the user's lists now, not as they were then.
        """
        marks = st.marks
        learned = self.learned
        fresh = []
        for ev in evs:
            src, offset = at[id(ev)]
            if offset > marks.get(src, -1):
                # A source's events come in offset order: the mark moves past each fresh one.
                marks[src] = offset
                fresh.append(ev)
                continue
            result.replayed += 1
            if offset > learned.get(src, -1):
                learn.append(ev)
                contexts.append(Context(st.recent, st.carted, st.purchased, st.seen, st.last,
                                        st.sessions))
        return fresh

    def _history_rows(self, histories: Sequence[Sequence[str]], width: int | None = None
                      ) -> np.ndarray:
        """Item rows of each list (most recent first), cut or -1 padded to ``width`` columns."""
        h = self.cfg.model.history_len if width is None else width
        out = np.full((len(histories), h), -1, dtype=np.int64)
        lengths = np.fromiter(map(len, histories), np.int64, len(histories))
        if not lengths.any():
            return out
        # Lists within the width (the usual case) are chained whole, without a slice each.
        flat = (list(chain.from_iterable(histories)) if lengths.max() <= h
                else [x for hist in histories for x in hist[:h]])
        # Row-major: the first ``length`` cells of each row, in the order of ``flat``.
        out[np.arange(h) < np.minimum(lengths, h)[:, None]] = self.items.get_rows(flat)
        return out

    @property
    def pending(self) -> int:
        """Accepted events not yet learned from."""
        return len(self._pending)

    def take_unlearned(self) -> list[tuple[Event, Position | None, str]]:
        """The events the model skipped because its step failed on them, since the last call."""
        out, self._unlearned = self._unlearned, []
        return out

    def flush(self) -> float | None:
        """Take a gradient step on every waiting event now; the loss, or None if none waited.

        A step that raises (a bug) is retried in halves down to single events, so only the
        events it fails on are skipped (see :meth:`take_unlearned`)."""
        if not self._pending:
            return None
        events, contexts = self._pending, self._pending_contexts
        positions = self._pending_positions
        self._pending, self._pending_contexts, self._pending_positions = [], [], []
        now = time.time()
        losses: list[tuple[float, int]] = []
        for a, b in self._fitting_spans(events):
            self._learn_isolating(events, contexts, positions, a, b, now, losses)
        n = sum(k for _, k in losses)
        self.learned_events += n
        return sum(loss * k for loss, k in losses) / n if n else None

    def _learn_isolating(self, events: list[Event], contexts: list[Context],
                         positions: list[Position | None], a: int, b: int, now: float,
                         losses: list[tuple[float, int]]) -> None:
        try:
            losses.append((self._learn(events[a:b], contexts[a:b], now), b - a))
        except Exception as exc:
            if b - a == 1:
                log.exception("gradient step failed on event %s; the model skips it",
                              events[a].event_id)
                self._unlearned.append((events[a], positions[a], repr(exc)))
                return
            mid = (a + b) // 2
            self._learn_isolating(events, contexts, positions, a, mid, now, losses)
            self._learn_isolating(events, contexts, positions, mid, b, now, losses)

    def _fitting_spans(self, events: Sequence[Event]) -> list[tuple[int, int]]:
        """``[a, b)`` spans of ``events``, in order, none with more distinct users or items than
        the id maps hold, so that a capacity bends a step into several instead of failing it."""
        users, items = self.users.capacity, self.items.capacity
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

    def _learn(self, events: list[Event], contexts: list[Context],
               now: float) -> float:
        codes = np.fromiter(
            (self._type_code[e.event_type or "browse"] for e in events), np.int64, len(events)
        )
        self.ranker_loss = self._train_ranker(events, contexts, codes)
        user_rows = self._rows(self.users, [e.user_id for e in events], now, self.model.reset_users)
        item_ids = [e.item_id for e in events]
        item_rows = self._rows(self.items, item_ids, now, self.model.reset_items, self._evict_items)
        self.stats.describe(item_ids, item_rows)
        self.stats.set_keys(item_rows, item_ids)
        self.stats.set_categories(item_rows, [e.category for e in events])
        weights = self._weights[codes]
        ts = np.fromiter((e.ts for e in events), np.int64, len(events))
        self.stats.observe(item_rows, weights.astype(np.float64), ts)
        hist = self._history_rows([c.recent for c in contexts])
        self.sources.observe(hist, item_rows, weights, ts)
        return self.model.learn_many(user_rows, item_rows, weights, hist)

    def _train_ranker(self, events: list[Event], contexts: list[Context],
                      codes: np.ndarray) -> float | None:
        """Replay a sample of ``events`` (clicks, carts and purchases first, then browses)
        against the candidates each user had just before it; the item they went to is the
        target. Runs before anything learns from the events."""
        n = self.cfg.ranker_sample
        if not n or not len(self.index):
            return None
        browsing = codes == self._type_code["browse"]
        feedback, browse = np.flatnonzero(~browsing), np.flatnonzero(browsing)
        pick = (feedback if len(feedback) <= n else self._rng.choice(feedback, n, replace=False))
        pick = pick.tolist()
        if len(pick) < n and len(browse):
            take = min(n - len(pick), len(browse))
            pick += self._rng.choice(browse, take, replace=False).tolist()
        chosen = [events[i] for i in pick]
        lists = self._list_rows([contexts[i] for i in pick], [e.ts for e in chosen])
        cand, feats = self._candidates(self.users.get_rows([e.user_id for e in chosen]), *lists,
                                       max(e.ts for e in chosen), self.cfg.ranking.candidates)
        target = self.items.get_rows([e.item_id for e in chosen])
        match = (cand == target[:, None]) & (target[:, None] >= 0)
        column = np.where(match.any(axis=1), match.argmax(axis=1), -1)
        # Every click, cart or purchase counts the same: the list must serve whatever comes next.
        return self.ranker.learn(feats, cand >= 0, column, np.where(browsing[pick], 0.25, 1.0),
                                 self._contexts([contexts[i].last for i in pick], lists[-1]))

    @staticmethod
    def _contexts(last: Sequence[int], others: np.ndarray) -> np.ndarray:
        """Ranking contexts (:data:`CONTEXTS`) of users who did ``last`` and have the other
        open sessions ``others`` (item rows, -1 padded)."""
        return context_of(np.asarray(last, dtype=np.int64), (others >= 0).any(axis=1))

    def _list_rows(self, lists: Sequence[Context | UserState], times_ms: Sequence[int]
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[bytes], np.ndarray]:
        """Item rows of each user's recent, carted and purchased lists, -1 padded, the filters
        of everything they had, and the latest items of their other sessions open at
        ``times_ms``."""
        limits = self.cfg.state
        open_ms = self.session_gaps.open_ms
        others = [other_sessions(x.sessions, t, open_ms)
                  for x, t in zip(lists, times_ms, strict=True)]
        return (self._history_rows([x.recent for x in lists]),
                self._history_rows([x.carted for x in lists], limits.carted_len),
                self._history_rows([x.purchased for x in lists], limits.purchased_len),
                [x.seen for x in lists], self._history_rows(others, MAX_SESSIONS - 1))

    def _candidates(self, user_rows: np.ndarray, hist: np.ndarray, carted: np.ndarray,
                    purchased: np.ndarray, seen: Sequence[bytes], others: np.ndarray,
                    now_ms: int, ann: int) -> tuple[np.ndarray, np.ndarray]:
        """Merged candidates of every source with their features, model score included."""
        vecs = self.model.user_vectors(user_rows, hist)
        k = min(ann, max(len(self.index), 1))
        ann_rows, _ = self.index.search(vecs, k)
        cand, feats = self.sources.collect(hist, carted, purchased, seen, ann_rows, self.stats,
                                           now_ms, others)
        scores = self.model.score(vecs, cand)
        feats[..., FEATURES.index("model")] = np.where(cand >= 0, scores, 0.0)
        return cand, feats

    def _rank(
        self, users: Sequence[str], states: Sequence[UserState], now_ms: int, cfg: RankConfig
    ) -> list[list[tuple[int, float]]]:
        """``(item row, score)`` lists, best first, for ``users`` in the given states."""
        hist, carted, purchased, seen, others = self._list_rows(states, [now_ms] * len(states))
        cand, feats = self._candidates(self.users.get_rows(users), hist, carted, purchased, seen,
                                       others, now_ms, cfg.candidates)
        scores = self.ranker.score(feats, cand >= 0,
                                   self._contexts([st.last for st in states], others))
        if self.repeats.hide_seen(cfg):
            scores = np.where(feats[..., FEATURES.index("seen")] > 0, -np.inf, scores)
        excluded = [set(row[row >= 0].tolist()) if cfg.exclude_purchased else set()
                    for row in purchased]
        # The categories of the latest item of each open session: what the user is comparing.
        current = self.stats.category_of(np.concatenate([hist[:, :1], others], axis=1))
        return rank(cand, scores, excluded, self.stats, cfg, current.tolist())

    def recommend(
        self, users: Sequence[str], states: Mapping[str, bytes | None], now_ms: int, n: int
    ) -> list[list[str]]:
        """The top ``n`` item ids for each user as the worker would rank them now; no side effects."""
        cfg = replace(self.cfg.ranking, top_n=n, candidates=max(n, self.cfg.ranking.candidates))
        ranked = self._rank(users, [load_state(states.get(u)) for u in users], now_ms, cfg)
        return [
            [i for i in self.items.ids_for([r for r, _ in chosen]) if i is not None]
            for chosen in ranked
        ]

    def _recommend(
        self, triggers: list[tuple[str, Event]], states: Mapping[str, UserState], now_ms: int
    ) -> list[Recommendation]:
        users = [u for u, _ in triggers]
        ranked = self._rank(users, [states[u] for u in users], now_ms, self.cfg.ranking)
        version = self.model.version
        emitted = int(time.time() * 1000)
        recs = []
        for (user, trigger), chosen in zip(triggers, ranked, strict=True):
            ids = self.items.ids_for(np.fromiter((r for r, _ in chosen), np.int64, len(chosen)))
            items = [
                ScoredItem(item_id, round(float(s), 6))
                for item_id, (_, s) in zip(ids, chosen, strict=True)
                if item_id is not None
            ]
            rec_id = f"{trigger.event_id}-r"
            st = states[user]
            st.last_rec_id = rec_id
            st.last_rec_items = [it.item_id for it in items]
            st.last_rec_ts = trigger.ts
            recs.append(
                Recommendation(user, rec_id, items, version, trigger.event_id, trigger.ts, emitted)
            )
        return recs
