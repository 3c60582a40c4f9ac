"""BatchRunner: one record the pipeline fails on costs only itself; capacities bend."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
import pytest

from feedrec.model.batch import BatchRunner
from feedrec.model.clock import ManualClock
from feedrec.model.config import PipelineConfig
from feedrec.model.events import Event
from feedrec.model.pipeline import BatchResult, Pipeline
from feedrec.model.ranking import RankConfig
from feedrec.model.state import load_state
from feedrec.model.twotower import ModelConfig

NOW = 1_700_000_000_000


@dataclass(frozen=True)
class Record:
    """An input record as the core sees one (:class:`feedrec.model.events.Payload`); nothing
    of Kafka."""

    source: str
    position: int
    value: bytes
    event_type: str | None = "click"


def make(users: int = 64, items: int = 64, train_batch: int = 4) -> Pipeline:
    cfg = PipelineConfig(
        model=ModelConfig(dim=8, user_capacity=users, item_capacity=items, negatives=4),
        ranking=RankConfig(top_n=3, candidates=10, max_per_category=0),
        train_batch=train_batch,
        index_refresh_interval_s=0.0,
    )
    return Pipeline.build(cfg, device="cpu", index_kind="exact", clock=ManualClock(NOW))


def no_state(user: str) -> bytes | None:
    """The state lookup of a table that holds nobody yet."""
    return None


def records(n: int, items: int = 5, users: int = 3) -> list[Record]:
    return [
        Record(
            "clicks",
            k,
            msgspec.json.encode(
                {
                    "event_id": f"e{k}",
                    "user_id": f"u{k % users}",
                    "item_id": f"i{k % items}",
                    "ts": NOW - 1000 + k,
                }
            ),
        )
        for k in range(n)
    ]


def test_only_the_record_the_pipeline_fails_on_is_dead_lettered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipeline = make()
    original = pipeline.process

    def fragile(events: list[Event], *args: Any, **kwargs: Any) -> BatchResult:
        if any(e.item_id == "poison" for e in events):
            raise ValueError("a bug that this item triggers")
        return original(events, *args, **kwargs)

    monkeypatch.setattr(pipeline, "process", fragile)
    batch = records(14)
    batch[6] = Record(
        "clicks",
        6,
        msgspec.json.encode({"event_id": "p", "user_id": "u0", "item_id": "poison", "ts": NOW}),
    )
    effects = BatchRunner[Record](pipeline).run(batch, no_state)
    assert [(r.record.position, r.reason) for r in effects.refused] == [(6, "internal_error")]
    assert "a bug that this item triggers" in effects.refused[0].detail
    applied = sum(sum(load_state(raw).counts) for raw in effects.states.values())
    assert applied == 13
    # The halves saw each other's states: user u1's events all counted in one state.
    assert sum(load_state(effects.states["u1"]).counts) == 5  # e1, e4, e7, e10, e13


def test_a_batch_with_more_distinct_items_than_the_capacity_is_learned_in_steps() -> None:
    pipeline = make(users=4, items=8, train_batch=1000)
    effects = BatchRunner[Record](pipeline).run(records(60, items=30, users=9), no_state)
    assert effects.refused == []
    assert pipeline.learn.pending == 60
    loss = pipeline.learn.step()
    assert loss is not None and loss == loss  # a number, not NaN
    assert pipeline.version >= 8  # 30 distinct items through 8 rows: several steps
    assert len(pipeline.vocab.items) == 8 and len(pipeline.vocab.users) == 4


def test_the_same_events_again_are_neither_applied_nor_learned_twice() -> None:
    pipeline = make(train_batch=1)
    runner = BatchRunner[Record](pipeline)
    batch = records(9)
    first = runner.run(batch, no_state)
    version = pipeline.version
    again = runner.run(batch, first.states.get)
    assert again.result.replayed == 9 and again.result.counts == {
        "browse": 0,
        "click": 0,
        "cart": 0,
        "purchase": 0,
    }
    assert again.recommendations == []
    assert pipeline.version == version and pipeline.learn.pending == 0
    assert {u: load_state(raw).counts for u, raw in again.states.items()} == {
        u: load_state(raw).counts for u, raw in first.states.items()
    }


def test_an_event_the_gradient_step_fails_on_is_skipped_and_dead_lettered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipeline = make(train_batch=8)
    original = pipeline.learn._learn

    def fragile(events: list[Event], contexts: list) -> float:
        if any(e.item_id == "i3" and e.user_id == "u0" for e in events):
            raise RuntimeError("a bug in the gradient step")
        return original(events, contexts)

    monkeypatch.setattr(pipeline.learn, "_learn", fragile)
    runner = BatchRunner[Record](pipeline)
    first = runner.run(records(6), no_state)  # e3 (u0, i3) waits in the pool
    assert first.refused == [] and pipeline.learn.pending == 6
    batch = records(12)[6:]
    second = runner.run(batch, first.states.get)  # 12 waiting: the step runs
    assert [(r.record.position, r.reason) for r in second.refused] == [(3, "internal_error")]
    assert "a bug in the gradient step" in second.refused[0].detail
    assert pipeline.learn.pending == 0 and pipeline.learn.learned_events == 11
    assert sum(load_state(second.states["u0"]).counts) == 4  # its state still counts it
