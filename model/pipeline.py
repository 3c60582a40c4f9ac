"""The feedback loop for one micro-batch, with no I/O: the steps of :mod:`feedrec.model.steps`
in order.

::

    records --decode--> events --fold--> user states --learn--> model, statistics, ranker
                                              |
                                              +-- triggers --retrieve--> candidates --rank-->
                                                  lists --emit--> recommendations

The worker's batch path (:class:`feedrec.model.batch.BatchRunner`), the offline evaluation and
the tests all drive this one class. A batch is handled in a fixed order, so its result does not
depend on how events were split into batches, except that hits are judged against the list
shown before the batch began.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from feedrec.index import IndexUnavailable, make_index
from feedrec.index.base import VectorIndex
from feedrec.model.base import RetrievalModel
from feedrec.model.clock import Clock, SystemClock
from feedrec.model.config import PipelineConfig
from feedrec.model.events import CatalogItem, Event, Position
from feedrec.model.exceptions import ConfigError
from feedrec.model.ranking import RankConfig
from feedrec.model.snapshot import SNAPSHOT_FORMAT, Snapshot
from feedrec.model.state import UserState, dump_state, load_state
from feedrec.model.steps.decode import Decode
from feedrec.model.steps.emit import Emit, Recommendation
from feedrec.model.steps.fold import Fold
from feedrec.model.steps.learn import Learn
from feedrec.model.steps.rank import Rank
from feedrec.model.steps.retrieve import Retrieve
from feedrec.model.twotower import EmbeddingModel
from feedrec.model.vocab import IdMap, Vocab


@dataclass(slots=True)
class BatchResult:
    """What one batch did, and where the pipeline stands after it."""

    #: user id -> encoded state, for every user of the batch.
    states: dict[str, bytes]
    recommendations: list[Recommendation]
    #: Events applied, by type.
    counts: dict[str, int]
    duplicates: int = 0
    #: Events of a replay already in their user's state (skipped there; learned if the model
    #: had not learned them yet).
    replayed: int = 0
    feedback: int = 0
    hits: int = 0
    rec_clicks: int = 0
    #: The losses of the gradient step this batch took, if it took one.
    loss: float | None = None
    ranker_loss: float | None = None
    index_pushed: int = 0
    #: Seconds per step: fold, learn, retrieve (the index and trending refresh), rank (with
    #: retrieval of the candidates and emit).
    timings: dict[str, float] = field(default_factory=dict)
    #: After the batch: the model version, events learned or pooled, items indexed, seconds of
    #: the last index push, and the ranker's weights (when this batch trained it).
    model_version: int = 0
    model_events: int = 0
    index_size: int = 0
    index_refresh_seconds: float = 0.0
    ranker_weights: dict[str, float] | None = None


class Pipeline:
    """Builds the steps around one model and one index, and runs batches through them."""

    def __init__(
        self,
        cfg: PipelineConfig,
        model: RetrievalModel,
        index: VectorIndex,
        clock: Clock | None = None,
    ) -> None:
        self.cfg = cfg
        self.clock = clock if clock is not None else SystemClock()
        self.vocab = Vocab(IdMap(cfg.model.user_capacity), IdMap(cfg.model.item_capacity))
        self.decode = Decode(cfg.validation, self.clock)
        self.fold = Fold(cfg.state)
        self.retrieve = Retrieve(cfg, model, self.vocab, index, self.fold.session_gaps, self.clock)
        self.rank = Rank(cfg, self.fold.repeats)
        self.learn = Learn(cfg, model, self.vocab, self.retrieve, self.rank, self.clock)
        self.emit = Emit(self.vocab, self.clock)
        self.device = str(model.device)
        self.index_name = index.name

    @classmethod
    def build(
        cls,
        cfg: PipelineConfig,
        device: str = "auto",
        index_kind: str = "auto",
        clock: Clock | None = None,
    ) -> Pipeline:
        """The default model (:class:`EmbeddingModel`) on ``device`` and an index of
        ``index_kind`` (:data:`feedrec.index.KINDS`)."""
        model = EmbeddingModel(cfg.model, device=device)
        try:
            index = make_index(cfg.model.dim, kind=index_kind)
        except IndexUnavailable as exc:
            raise ConfigError(f"index {index_kind!r} cannot run here: {exc}") from exc
        return cls(cfg, model, index, clock)

    # -- the batch -------------------------------------------------------------------------

    def process(
        self,
        events: Sequence[Event],
        states: Mapping[str, bytes | None],
        positions: Sequence[Position] | None = None,
        recommend: bool = True,
    ) -> BatchResult:
        """Apply one batch of valid events; ``states`` holds the current state of their users.

        With ``positions`` (one per event) every effect happens once per event across replays
        (see :mod:`.steps.fold` and :mod:`.steps.learn`). With ``recommend=False`` triggers
        emit nothing (offline evaluation asks separately, :meth:`recommend`).
        """
        t0 = time.perf_counter()
        now_ms = self.clock.now_ms()
        self.retrieve.catch_up()
        folded = self.fold(events, states, positions)
        t1 = time.perf_counter()
        self.learn.take(folded, positions)
        stepped = self.learn.due()
        loss = self.learn.step() if stepped else None
        ranker_loss = self.learn.ranker_loss if stepped else None
        t2 = time.perf_counter()
        pushed = self.retrieve.refresh()
        t3 = time.perf_counter()
        recs: list[Recommendation] = []
        if folded.triggers and recommend:
            users = [user for user, _ in folded.triggers]
            ranked = self._rank(users, [folded.states[u] for u in users], now_ms, self.cfg.ranking)
            recs = self.emit(folded.triggers, ranked, self.learn.version)
            self.fold.shown(folded.states, recs)
        t4 = time.perf_counter()
        return BatchResult(
            states={user: dump_state(st) for user, st in folded.states.items()},
            recommendations=recs,
            counts=folded.counts,
            duplicates=folded.duplicates,
            replayed=folded.replayed,
            feedback=folded.feedback,
            hits=folded.hits,
            rec_clicks=folded.rec_clicks,
            loss=loss,
            ranker_loss=ranker_loss,
            index_pushed=pushed,
            timings={"fold": t1 - t0, "learn": t2 - t1, "retrieve": t3 - t2, "rank": t4 - t3},
            model_version=self.learn.version,
            model_events=self.learn.learned_events + self.learn.pending,
            index_size=self.retrieve.indexed,
            index_refresh_seconds=self.retrieve.refresher.last_duration,
            ranker_weights=self.rank.weights() if ranker_loss is not None else None,
        )

    def _rank(
        self, users: Sequence[str], states: Sequence[UserState], now_ms: int, cfg: RankConfig
    ) -> list[list[tuple[int, float]]]:
        """``(item row, score)`` lists, best first, for ``users`` in the given states."""
        lists = self.retrieve.lists(states, [now_ms] * len(states))
        found = self.retrieve.candidates(
            self.vocab.users.get_rows(users), lists, now_ms, cfg.candidates
        )
        return self.rank(found, [st.last for st in states], cfg)

    def recommend(
        self, users: Sequence[str], states: Mapping[str, bytes | None], n: int
    ) -> list[list[str]]:
        """The top ``n`` item ids for each user as the worker would rank them now; no side
        effects."""
        cfg = replace(self.cfg.ranking, top_n=n, candidates=max(n, self.cfg.ranking.candidates))
        ranked = self._rank(
            users, [load_state(states.get(u)) for u in users], self.clock.now_ms(), cfg
        )
        items = self.vocab.items
        return [
            [i for i in items.ids_for([r for r, _ in chosen]) if i is not None] for chosen in ranked
        ]

    # -- what the worker asks of it ------------------------------------------------------------

    def add_catalog(self, item: CatalogItem) -> None:
        """A catalogue record, applied before the next batch; safe from any thread."""
        self.retrieve.add_catalog(item)

    def forget_users(self, user_ids: Sequence[str]) -> int:
        """Free the model's rows of users whose state expired; the rows freed."""
        return self.learn.forget_users(user_ids)

    @property
    def version(self) -> int:
        return self.learn.version

    # -- checkpoints ---------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Everything a restarted worker needs to resume learning where this one stopped.

        Events still waiting for a gradient step are learned first, so none is left out.
        """
        self.learn.step()
        return Snapshot(
            SNAPSHOT_FORMAT,
            self.learn.version,
            self.fold.state(),
            self.learn.state(),
            self.retrieve.state(),
            self.rank.state(),
        )

    def restore(self, snap: Snapshot) -> None:
        self.learn.load(snap.learn)  # the model and the vocabulary first: the index needs them
        self.retrieve.load(snap.retrieve)
        self.rank.load(snap.rank)
        self.fold.load(snap.fold)
