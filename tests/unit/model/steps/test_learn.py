"""Learn: the pool, the marks of what the model learned, and the users it forgets."""

from __future__ import annotations

import numpy as np

from feedrec.model.clock import ManualClock
from feedrec.model.config import PipelineConfig
from feedrec.model.events import Event
from feedrec.model.pipeline import Pipeline
from feedrec.model.twotower import ModelConfig

NOW = 1_700_000_000_000


def pipeline(train_batch: int = 4, delay_s: float = 10.0) -> tuple[Pipeline, ManualClock]:
    clock = ManualClock(NOW)
    cfg = PipelineConfig(
        model=ModelConfig(dim=8, user_capacity=8, item_capacity=16),
        train_batch=train_batch,
        train_max_delay_s=delay_s,
    )
    return Pipeline.build(cfg, device="cpu", index_kind="exact", clock=clock), clock


def clicks(first: int, n: int, user: str = "u") -> list[Event]:
    return [
        Event(f"e{k}", user, f"i{k % 5}", NOW - 1000 + k, event_type="click")
        for k in range(first, first + n)
    ]


def test_events_the_model_learned_before_are_not_pooled_again() -> None:
    p, _ = pipeline(train_batch=100)
    learn = p.learn
    assert learn.begin({"s/0": 10}) and not learn.begin({"s/0": 99})  # known sources keep marks
    assert learn.resume_offsets() == {"s/0": 10}
    events = clicks(0, 3)
    folded = p.fold(events, {}, positions=[("s/0", 9), ("s/0", 10), ("s/0", 11)])
    learn.take(folded, [("s/0", 9), ("s/0", 10), ("s/0", 11)])
    # Offset 9 was learned before the model's mark (9 = 10 - 1): only 10 and 11 wait.
    assert learn.pending == 2 and learn.learned == {"s/0": 11}
    assert learn.resume_offsets() == {"s/0": 12}


def test_a_step_is_due_when_enough_wait_or_the_oldest_waited_long_enough() -> None:
    p, clock = pipeline(train_batch=4, delay_s=10.0)
    learn = p.learn
    learn.take(p.fold(clicks(0, 2), {}))
    assert not learn.due()
    clock.advance_to(NOW + 9_999)
    assert not learn.due()
    clock.advance_to(NOW + 10_000)
    assert learn.due()
    learn.take(p.fold(clicks(2, 2), {}))
    assert learn.step() is not None and learn.pending == 0 and learn.version == 1
    assert learn.learned_events == 4 and not learn.due() and learn.step() is None
    learn.take(p.fold(clicks(4, 4), {}))
    assert learn.due()  # four waiting: a full step's worth


def test_forgotten_users_free_their_rows_and_a_new_user_starts_from_zero() -> None:
    p, _ = pipeline(train_batch=1)
    learn = p.learn
    learn.take(p.fold(clicks(0, 5, "a") + clicks(5, 5, "b"), {}))
    learn.step()
    row = int(p.vocab.users.get_rows(["a"])[0])
    vector = learn.model.user_vectors(np.array([row]), np.full((1, 1), -1))
    assert vector.any()
    assert learn.forget_users(["a", "nobody"]) == 1
    assert "a" not in p.vocab.users
    assert not learn.model.user_vectors(np.array([row]), np.full((1, 1), -1)).any()
    learn.take(p.fold(clicks(5, 1, "c"), {}))
    learn.step()
    assert int(p.vocab.users.get_rows(["c"])[0]) == row  # the freed row, reused first
