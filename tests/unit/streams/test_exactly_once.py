"""Crash and resume of the pure core, with no broker: a simulated log, changelog and commits.

The worker's cycle for one batch is: read records -> compute effects (BatchRunner) -> send the
states and dead letters -> they are delivered -> the outbox releases the lists and offsets ->
offsets are committed; a checkpoint snapshots the model now and then. The simulation below
aborts at every boundary of that cycle (and with a checkpoint just taken), starts a fresh
pipeline from what was durable (changelog, commits, checkpoint), and checks that every user's
state is exactly what a run without crashes gives, that no trigger has two lists, and that the
model learned every valid event exactly once.
"""

from __future__ import annotations

import contextlib
import copy
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import msgspec
import pytest

from feedrec.model.batch import BatchRunner
from feedrec.model.clock import ManualClock
from feedrec.model.config import PipelineConfig
from feedrec.model.events import Event
from feedrec.model.pipeline import Pipeline
from feedrec.model.ranking import RankConfig
from feedrec.model.snapshot import Snapshot
from feedrec.model.state import UserState, load_state
from feedrec.model.steps.emit import Recommendation
from feedrec.model.twotower import ModelConfig
from feedrec.streams.outbox import DeliveryError, Outbox
from feedrec.streams.records import Record, source_name
from feedrec.streams.topics import EVENT_TOPICS

NOW = 1_700_000_000_000
TOPICS = EVENT_TOPICS
PARTITIONS = 2
#: The boundaries of one batch's cycle a crash may fall on.
STEPS = ("read", "computed", "half_delivered", "delivered", "released", "committed")
#: One write of a batch: a user's state to the changelog, or a refused record to the DLQ.
Write = tuple[Literal["state"], str, bytes] | tuple[Literal["dlq"], Record, None]


@dataclass
class Shipment:
    """What a batch shows once its writes are durable (the worker's outbox holds the same)."""

    recommendations: list[Recommendation]
    offsets: dict[tuple[str, int], int]


def make_pipeline() -> tuple[Pipeline, list[str]]:
    """A pipeline, and the ids of the events its model learns, in order."""
    cfg = PipelineConfig(
        model=ModelConfig(dim=8, user_capacity=64, item_capacity=64, negatives=4),
        ranking=RankConfig(top_n=3, candidates=10, max_per_category=0),
        train_batch=16,
        train_max_delay_s=3600.0,
        ranker_sample=4,
        index_refresh_interval_s=0.0,
    )
    pipeline = Pipeline.build(cfg, device="cpu", index_kind="exact", clock=ManualClock(NOW))
    learned: list[str] = []
    original = pipeline.learn._learn

    def recording(events: list[Event], contexts: list) -> float:
        learned.extend(e.event_id for e in events)
        return original(events, contexts)

    pipeline.learn._learn = recording  # type: ignore[method-assign]
    return pipeline, learned


def make_log(seed: int, users: int = 6, per_user: int = 60) -> dict[tuple[str, int], list[Record]]:
    """Each user's events on the four topics, keyed to one partition; a few bad records and a
    producer's repeated event ids among them."""
    rng = random.Random(seed)
    log: dict[tuple[str, int], list[Record]] = {
        (t, p): [] for t in TOPICS for p in range(PARTITIONS)
    }
    stream = []
    for u in range(users):
        for n in range(per_user):
            stream.append((rng.random(), f"u{u}", n))
    stream.sort()
    ts = NOW - 600_000
    for _, user, n in stream:
        ts += 7
        topic = TOPICS[rng.choice((0, 0, 1, 1, 2, 3))]
        partition = int(user[1:]) % PARTITIONS
        part = log[(topic, partition)]
        if rng.random() < 0.03:
            value = b'{"event_id": "bad", "user_id": ' + user.encode()  # truncated JSON
        else:
            value = msgspec.json.encode(
                {
                    "event_id": f"{user}-{n}",
                    "user_id": user,
                    "item_id": f"i{rng.randrange(30)}",
                    "ts": ts,
                }
            )
        part.append(Record(topic, partition, len(part), value, user.encode()))
        if rng.random() < 0.03:  # a producer's retry: the same record again
            part.append(Record(topic, partition, len(part), value, user.encode()))
    return log


@dataclass
class Durable:
    """What survives a crash: the changelog, the commits, the checkpoint, the output topics."""

    changelog: dict[str, bytes] = field(default_factory=dict)
    committed: dict[tuple[str, int], int] = field(default_factory=dict)
    #: The plain form of the last snapshot, as a checkpoint file holds it.
    checkpoint: dict | None = None
    #: The ids the checkpointed model had learned (carried beside it by the test).
    checkpoint_learned: list[str] = field(default_factory=list)
    dead_letters: list[Record] = field(default_factory=list)
    lists: list[Recommendation] = field(default_factory=list)


class Crash(Exception):
    pass


class Worker:
    """The adapter's order of operations over the simulated log; crashes where it is told to."""

    def __init__(
        self, log: dict[tuple[str, int], list[Record]], durable: Durable, rng: random.Random
    ) -> None:
        self.log = log
        self.durable = durable
        self.rng = rng
        self.pipeline, self.learned_ids = make_pipeline()
        self.learned_before: list[str] = []
        if durable.checkpoint is not None:
            self.pipeline.restore(Snapshot.from_plain(copy.deepcopy(durable.checkpoint)))
            self.learned_before = list(durable.checkpoint_learned)
        self.runner: BatchRunner[Record] = BatchRunner(self.pipeline)
        self.outbox: Outbox[Shipment] = Outbox()
        self.table = dict(durable.changelog)  # restored from the changelog
        resume = self.pipeline.learn.resume_offsets()
        self.position = {}
        for tp in log:
            at = [
                o
                for o in (durable.committed.get(tp, -1), resume.get(source_name(*tp), -1))
                if o >= 0
            ]
            self.position[tp] = min(at) if at else 0
        if self.pipeline.learn.begin({source_name(*tp): at for tp, at in self.position.items()}):
            self.checkpoint()
        self.stored: dict[tuple[str, int], int] = {}
        self.batches = 0

    def checkpoint(self) -> None:
        self.durable.checkpoint = copy.deepcopy(self.pipeline.snapshot().to_plain())
        self.durable.checkpoint_learned = self.learned_before + self.learned_ids

    def done(self) -> bool:
        return all(self.position[tp] >= len(recs) for tp, recs in self.log.items())

    def read(self, n: int) -> list[Record]:
        out: list[Record] = []
        tps = list(self.log)
        self.rng.shuffle(tps)
        for tp in tps:
            take = self.rng.randrange(0, n + 1)
            at = self.position[tp]
            chunk = self.log[tp][at : at + take]
            self.position[tp] = at + len(chunk)
            out += chunk
        return out

    def step(self, crash_at: str | None = None, checkpoint: bool = False) -> None:
        records = self.read(self.rng.randrange(1, 12))
        if crash_at == "read":
            raise Crash
        effects = self.runner.run(records, self.table.get)
        ticket = self.outbox.open(Shipment(effects.recommendations, offsets_of(records)))
        for user, raw in effects.states.items():
            self.table[user] = raw
        writes: list[Write] = [("state", u, raw) for u, raw in effects.states.items()]
        writes += [("dlq", r.record, None) for r in effects.refused]
        ticket.expect(len(writes))
        self.outbox.seal(ticket)
        if checkpoint:
            self.checkpoint()
        if crash_at == "computed":
            raise Crash
        self.rng.shuffle(writes)
        for n, write in enumerate(writes):
            if crash_at == "half_delivered" and n >= len(writes) // 2:
                raise Crash
            if write[0] == "state":
                _, user, raw = write
                self.durable.changelog[user] = raw
            else:
                self.durable.dead_letters.append(write[1])
            ticket.delivered()
        if crash_at == "delivered":
            raise Crash
        for released in self.outbox.release():
            self.release(released)
        if crash_at == "released":
            raise Crash
        self.durable.committed.update(self.stored)
        if crash_at == "committed":
            raise Crash
        self.batches += 1

    def release(self, shipment: Shipment) -> None:
        self.durable.lists += shipment.recommendations
        self.stored.update(shipment.offsets)

    def finish(self) -> list[str]:
        """Learn what is waiting (as a checkpoint does); every id the model learned, in order."""
        self.pipeline.learn.step()
        return self.learned_before + self.learned_ids


def offsets_of(records: list[Record]) -> dict[tuple[str, int], int]:
    """The next offset to read in each partition the records come from."""
    out: dict[tuple[str, int], int] = {}
    for r in records:
        out[(r.topic, r.partition)] = r.offset + 1
    return out


def run(
    log: dict[tuple[str, int], list[Record]],
    crashes: dict[int, str],
    seed: int,
    checkpoint_every: int = 4,
) -> tuple[Durable, list[str], int]:
    """Process the whole log, crashing before batch ``i`` of a worker's life at ``crashes[i]``
    (counted over the run); returns what is durable, the ids learned, and the restarts."""
    durable = Durable()
    rng = random.Random(seed)
    worker = Worker(log, durable, rng)
    batch = restarts = 0
    while not worker.done():
        try:
            worker.step(crashes.get(batch), checkpoint=batch % checkpoint_every == 3)
        except Crash:
            restarts += 1
            worker = Worker(log, durable, rng)
        batch += 1
    return durable, worker.finish(), restarts


def value_of(record: Record) -> bytes:
    """The value of a record of the simulated log (which has no tombstones)."""
    assert record.value is not None
    return record.value


def valid_events(log: dict[tuple[str, int], list[Record]]) -> list[Event]:
    out = []
    for records in log.values():
        for r in records:
            with contextlib.suppress(msgspec.DecodeError):
                out.append(msgspec.json.decode(value_of(r), type=Event))
    return out


def repeated_ids(log: dict[tuple[str, int], list[Record]]) -> set[str]:
    seen = Counter(e.event_id for e in valid_events(log))
    return {i for i, n in seen.items() if n > 1}


def durable_states(durable: Durable) -> dict[str, UserState]:
    return {u: load_state(raw) for u, raw in durable.changelog.items()}


def comparable(state: UserState) -> tuple:
    """The fields that neither a crash nor the split of the stream into batches may change.

    (The order of ``recent`` depends on which events share a batch: a user's events are put in
    time order within a batch, in arrival order across batches; the lists shown depend on the
    model's path.)"""
    return (state.counts, sorted(state.event_ids), state.last_seen, state.marks)


@pytest.fixture(scope="module")
def log() -> dict[tuple[str, int], list[Record]]:
    return make_log(seed=7)


@pytest.fixture(scope="module")
def reference(log: dict[tuple[str, int], list[Record]]) -> tuple[Durable, list[str]]:
    durable, learned, restarts = run(log, {}, seed=1)
    assert restarts == 0
    return durable, learned


def check(
    log: dict[tuple[str, int], list[Record]],
    durable: Durable,
    learned: list[str],
    reference: tuple[Durable, list[str]],
) -> None:
    ref, ref_learned = reference
    got, want = durable_states(durable), durable_states(ref)
    assert got.keys() == want.keys()
    for user in want:
        assert comparable(got[user]) == comparable(want[user]), f"state of {user} differs"
    triggers = Counter(rec.trigger_event_id for rec in durable.lists)
    assert not [t for t, n in triggers.items() if n > 1], "a trigger got two lists"
    # The model learned every valid event exactly once. The one exception, documented in
    # docs/reliability.md: a record whose event id the producer repeated, replayed after its
    # original was checkpointed, is learned once more (its state still counts it once).
    extra = Counter(learned) - Counter(ref_learned)
    assert not Counter(ref_learned) - Counter(learned), "an event was never learned"
    assert set(extra) <= repeated_ids(log), "an event was learned twice"
    bad = {
        (r.topic, r.partition, r.offset)
        for recs in log.values()
        for r in recs
        if not value_of(r).endswith(b"}")
    }
    assert {(r.topic, r.partition, r.offset) for r in durable.dead_letters} == bad


def test_a_crash_free_run_applies_every_event_once(
    log: dict[tuple[str, int], list[Record]], reference: tuple[Durable, list[str]]
) -> None:
    durable, learned = reference
    events = valid_events(log)
    per_user = Counter(e.user_id for e in {e.event_id: e for e in events}.values())
    states = durable_states(durable)
    assert {u: sum(s.counts) for u, s in states.items()} == dict(per_user)
    assert Counter(learned) == Counter({e.event_id: 1 for e in events})


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("batch", [0, 3, 4, 9])
def test_a_crash_at_any_step_of_a_batch_costs_nothing(
    log: dict[tuple[str, int], list[Record]],
    reference: tuple[Durable, list[str]],
    step: str,
    batch: int,
) -> None:
    durable, learned, restarts = run(log, {batch: step}, seed=2)
    assert restarts == 1
    check(log, durable, learned, reference)


def test_many_crashes_in_one_run_cost_nothing(
    log: dict[tuple[str, int], list[Record]], reference: tuple[Durable, list[str]]
) -> None:
    rng = random.Random(3)
    crashes = {b: rng.choice(STEPS) for b in range(0, 60, 3)}
    durable, learned, restarts = run(log, crashes, seed=4)
    assert restarts >= 10
    check(log, durable, learned, reference)


def test_the_check_catches_an_adapter_that_commits_before_delivery(
    log: dict[tuple[str, int], list[Record]],
    reference: tuple[Durable, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same crashes with offsets released before the states are durable lose events."""

    def eager(self: Outbox) -> list[Shipment]:
        out = [t.item for t in self._queue]
        self._queue.clear()
        return out

    def early_step(self: Worker, crash_at: str | None = None, checkpoint: bool = False) -> None:
        records = self.read(self.rng.randrange(1, 12))
        effects = self.runner.run(records, self.table.get)
        self.table.update(effects.states)
        self.release(Shipment(effects.recommendations, offsets_of(records)))
        self.durable.committed.update(self.stored)
        if crash_at is not None:
            raise Crash
        self.durable.changelog.update(effects.states)
        self.durable.dead_letters += [r.record for r in effects.refused]

    monkeypatch.setattr(Outbox, "release", eager)
    monkeypatch.setattr(Worker, "step", early_step)
    durable, learned, _ = run(log, {2: "computed", 5: "computed"}, seed=2)
    with pytest.raises(AssertionError):
        check(log, durable, learned, reference)


def test_the_outbox_releases_in_batch_order_and_only_what_is_delivered() -> None:
    outbox: Outbox[int] = Outbox()
    first, second = outbox.open(1), outbox.open(2)
    first.expect(2)
    second.expect(1)
    outbox.seal(second)
    second.delivered()
    assert outbox.release() == []  # the first is neither sealed nor delivered
    outbox.seal(first)
    first.delivered()
    assert outbox.release() == []
    first.delivered()
    assert outbox.release() == [1, 2]
    third = outbox.open(3)
    third.expect()
    outbox.seal(third)
    third.failed("write to x[0] failed: broker down")
    with pytest.raises(DeliveryError, match="broker down"):
        outbox.release()
