"""The redesign into named steps (issue 11) changed no list: a fixed stream replayed through the
worker's batch path and through the evaluator gives, event for event, the lists it gave before.

``data/lists.json.gz`` holds the stream (shop-simulator and catalogue-simulator events, with a
few bad records and a replayed stretch) and the lists the code before the redesign produced
from it. ``python -m tests.regression.test_same_lists_after_redesign`` writes it anew; only do
that for a change that is meant to change lists, and say so in its commit.
"""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, cast

import msgspec
import torch

from feedrec.model.batch import BatchRunner
from feedrec.model.clock import ManualClock
from feedrec.model.config import PipelineConfig
from feedrec.model.events import Event
from feedrec.model.pipeline import Pipeline
from feedrec.streams.records import Record
from feedrec.streams.tools.evaluation.datasets import catalogue_stream, simulated_events
from feedrec.streams.tools.evaluation.feedrec import Feedrec
from feedrec.streams.tools.evaluation.protocol import evaluate
from feedrec.streams.topics import EVENT_TOPIC

DATA = Path(__file__).parent / "data" / "lists.json.gz"
K = 20


def _records(events: list[dict]) -> list[Record]:
    """The shop stream as the worker receives it: one partition per topic, a bad record every
    500 events, and the 200 records before event 1,500 sent twice (a replay after a crash)."""
    out: list[Record] = []
    offsets: dict[str, int] = {}
    for n, ev in enumerate(events):
        topic = ev.pop("topic")
        if n % 500 == 250:
            bad = b'{"event_id": 1}' if n % 1000 == 250 else b"\xff not json"
            out.append(Record(topic, 0, offsets.get(topic, 0), bad, None))
            offsets[topic] = offsets.get(topic, 0) + 1
        value = msgspec.json.encode(ev)
        out.append(Record(topic, 0, offsets.get(topic, 0), value, ev["user_id"].encode()))
        offsets[topic] = offsets.get(topic, 0) + 1
    return out[:1500] + out[1300:]


def worker_lists(events: list[dict]) -> list[list]:
    """Every list and dead letter the worker's batch path gives for ``events`` in batches of
    1 to 300 records, on the events' own clock."""
    torch.set_num_threads(1)
    clock = ManualClock()
    pipeline = Pipeline.build(PipelineConfig(), device="cpu", index_kind="exact", clock=clock)
    runner: BatchRunner[Record] = BatchRunner(pipeline)
    states: dict[str, bytes] = {}
    records = _records([dict(e) for e in events])
    ts = [e["ts"] for e in events]
    out: list[list] = []
    start, size = 0, 1
    while start < len(records):
        batch = records[start : start + size]
        clock.advance_to(max(ts[: min(start + size, len(ts))]) + 1000)
        effects = runner.run(batch, states.get)
        states.update(effects.states)
        out += [["dlq", r.record.topic, r.record.offset, r.reason] for r in effects.refused]
        out += [
            ["rec", r.user_id, r.trigger_event_id, [i.item_id for i in r.items]]
            for r in effects.recommendations
        ]
        start += size
        size = size * 7 % 301 or 1
    return out


class _Recording:
    """A method that records every list it gives."""

    GRID: ClassVar[tuple[dict, ...]] = ({},)

    def __init__(self, inner: Feedrec) -> None:
        self.inner = inner
        self.lists: list[list] = []

    def learn(self, events: Sequence[Event]) -> None:
        self.inner.learn(events)

    def recommend(self, user_id: str, now_ms: int, k: int) -> list[str]:
        got = self.inner.recommend(user_id, now_ms, k)
        self.lists.append([user_id, now_ms, got])
        return got


def evaluator_lists(events: list[dict]) -> list[list]:
    """Every top-20 list the evaluator asks feedrec for over ``events``."""
    torch.set_num_threads(1)
    stream = []
    for ev in events:
        fields = dict(ev)
        kind = fields.pop("topic").removeprefix("events.")
        stream.append(msgspec.convert(fields | {"event_type": kind}, type=Event))
    method = _Recording(Feedrec(index_kind="exact"))
    evaluate(stream, {"feedrec": method}, ks=(K,))
    return method.lists


def _as_dicts(events: list[Event], topics: dict[str, str]) -> list[dict]:
    # The simulators give every event its type (a str, never None).
    return [msgspec.to_builtins(e) | {"topic": topics[cast(str, e.event_type)]} for e in events]


def _streams() -> dict[str, list[dict]]:
    topics = EVENT_TOPIC
    return {
        "shop": _as_dicts(simulated_events(3000, seed=7), topics),
        "catalogue": _as_dicts(catalogue_stream(3000, seed=7), topics),
    }


def write() -> None:
    streams = _streams()
    for evs in streams.values():
        for e in evs:
            e.pop("event_type", None)
    data = {
        "streams": streams,
        "worker": worker_lists(streams["shop"]),
        "evaluator_shop": evaluator_lists(streams["shop"]),
        "evaluator_catalogue": evaluator_lists(streams["catalogue"]),
    }
    with gzip.open(DATA, "wt") as f:
        json.dump(data, f, separators=(",", ":"))


def _load() -> dict:
    with gzip.open(DATA, "rt") as f:
        return json.load(f)


def _first_difference(got: list, want: list) -> str:
    for n, (a, b) in enumerate(zip(got, want, strict=False)):
        if a != b:
            return f"entry {n}: got {a}, expected {b}"
    return f"lengths differ: got {len(got)}, expected {len(want)}"


def test_the_worker_path_gives_the_same_lists_and_dead_letters() -> None:
    data = _load()
    got = worker_lists(data["streams"]["shop"])
    assert got == data["worker"], _first_difference(got, data["worker"])


def test_the_evaluator_gives_the_same_lists_on_shop_sessions() -> None:
    data = _load()
    got = evaluator_lists(data["streams"]["shop"])
    assert got == data["evaluator_shop"], _first_difference(got, data["evaluator_shop"])


def test_the_evaluator_gives_the_same_lists_on_a_catalogue() -> None:
    data = _load()
    got = evaluator_lists(data["streams"]["catalogue"])
    want = data["evaluator_catalogue"]
    assert got == want, _first_difference(got, want)


if __name__ == "__main__":
    write()
    sys.exit(0)
