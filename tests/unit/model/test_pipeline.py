"""The batch pipeline, with no I/O: state, pooled learning, rules on the emitted lists, restore."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from feedrec.model.clock import ManualClock
from feedrec.model.config import PipelineConfig
from feedrec.model.events import CatalogItem, Event
from feedrec.model.pipeline import BatchResult, Pipeline
from feedrec.model.ranking import RankConfig
from feedrec.model.twotower import ModelConfig

NOW = 1_700_000_000_000


def make(
    train_batch: int = 256,
    delay: float = 3600.0,
    lr: float = 0.02,
    ranker_sample: int = 32,
    **rank: Any,
) -> Pipeline:
    cfg = PipelineConfig(
        model=ModelConfig(dim=8, user_capacity=64, item_capacity=64, negatives=4, lr=lr),
        ranking=RankConfig(**{"top_n": 5, "candidates": 20, "max_per_category": 0, **rank}),
        train_batch=train_batch,
        train_max_delay_s=delay,
        ranker_sample=ranker_sample,
        index_refresh_interval_s=0.0,  # every batch's changes reach the index at once
    )
    return Pipeline.build(cfg, device="cpu", index_kind="exact", clock=ManualClock(NOW))


class Shop:
    """Feeds a pipeline and keeps the user states it hands back, as the worker's table does."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.p = pipeline
        self.states: dict[str, bytes] = {}
        self.n = 0

    def send(self, *events: tuple[str, str, str]) -> BatchResult:
        batch = []
        for user, item, kind in events:
            self.n += 1
            batch.append(Event(f"e{self.n}", user, item, NOW + self.n, event_type=kind))
        return self.send_events(batch)

    def send_events(self, batch: list[Event]) -> BatchResult:
        result = self.p.process(batch, {e.user_id: self.states.get(e.user_id) for e in batch})
        self.states.update(result.states)
        return result


def warm(shop: Shop, items: int = 12) -> None:
    shop.send(*[(f"u{i % 4}", f"i{i}", "browse") for i in range(items)])


def test_small_batches_are_pooled_into_one_gradient_step() -> None:
    shop = Shop(make(train_batch=5))
    first = shop.send(("a", "i1", "click"), ("b", "i2", "click"))
    second = shop.send(("a", "i3", "click"), ("b", "i4", "click"))
    assert (first.loss, second.loss) == (None, None)
    assert shop.p.learn.pending == 4 and shop.p.version == 0
    third = shop.send(("c", "i5", "click"))
    assert third.loss is not None
    assert shop.p.learn.pending == 0 and shop.p.version == 1


def test_events_waiting_longer_than_the_delay_are_learned_from() -> None:
    shop = Shop(make(train_batch=1000, delay=0.0))
    assert shop.send(("a", "i1", "click")).loss is not None
    assert shop.p.learn.pending == 0


def test_snapshot_learns_what_is_waiting_first() -> None:
    shop = Shop(make(train_batch=1000))
    shop.send(("a", "i1", "click"), ("a", "i2", "cart"))
    snap = shop.p.snapshot()
    assert shop.p.learn.pending == 0
    assert snap.version == shop.p.version == 1


def test_a_click_yields_a_list_in_the_documented_shape() -> None:
    shop = Shop(make(train_batch=1))
    warm(shop)
    result = shop.send(("u0", "i3", "click"))
    (rec,) = result.recommendations
    assert rec.user_id == "u0" and rec.trigger_event_id == f"e{shop.n}"
    assert rec.event_ts == NOW + shop.n and rec.emitted_ts == NOW  # the pipeline's clock
    assert rec.model_version == shop.p.version
    assert len(rec.items) == 5
    assert len({it.item_id for it in rec.items}) == 5
    scores = [it.score for it in rec.items]
    assert scores == sorted(scores, reverse=True)


def test_unavailable_and_when_asked_purchased_items_are_never_recommended() -> None:
    shop = Shop(make(train_batch=1, top_n=10, exclude_purchased=True))
    warm(shop)
    shop.p.add_catalog(CatalogItem("i5", available=False))
    result = shop.send(("u0", "i7", "purchase"), ("u0", "i8", "click"))
    (rec,) = result.recommendations
    shown = {it.item_id for it in rec.items}
    assert len(shown) == 10  # 12 items known, 2 ruled out
    assert "i7" not in shown and "i5" not in shown


def test_purchased_items_may_come_back_by_default() -> None:
    shop = Shop(make(train_batch=1, top_n=10))
    warm(shop)
    (rec,) = shop.send(("u0", "i7", "purchase"), ("u0", "i8", "click")).recommendations
    assert "i7" in {it.item_id for it in rec.items}


def test_a_repeated_event_id_is_counted_once() -> None:
    shop = Shop(make())
    ev = Event("same", "a", "i1", NOW, event_type="click")
    first = shop.send_events([ev])
    again = shop.send_events([ev])
    assert first.counts["click"] == 1 and first.duplicates == 0
    assert again.counts["click"] == 0 and again.duplicates == 1
    assert shop.p.learn.pending == 1


def test_a_restored_pipeline_serves_the_same_lists() -> None:
    shop = Shop(make(train_batch=4))
    rng = np.random.default_rng(1)
    for _ in range(20):
        shop.send(*[(f"u{rng.integers(6)}", f"i{rng.integers(30)}", "click") for _ in range(4)])
    snap = shop.p.snapshot()
    twin = Shop(make(train_batch=4))
    twin.p.restore(snap)
    twin.states = dict(shop.states)
    twin.n = shop.n
    a = shop.send(("u1", "i2", "click")).recommendations
    b = twin.send(("u1", "i2", "click")).recommendations
    assert [it.item_id for it in a[0].items] == [it.item_id for it in b[0].items]
    assert twin.p.version == shop.p.version


def test_a_user_with_no_history_gets_what_is_trending() -> None:
    shop = Shop(make(train_batch=1))
    warm(shop)
    # i9 is the most popular item, then i5, then i7.
    shop.send(*[(f"u{n}", f"i{i}", "cart") for n, i in enumerate([9, 9, 9, 5, 5, 7])])
    (top,) = shop.p.recommend(["newcomer"], shop.states, 3)
    assert top == ["i9", "i5", "i7"]


def test_the_items_a_user_just_looked_at_come_back() -> None:
    shop = Shop(make(train_batch=1, top_n=10, lr=1e-9, ranker_sample=0))  # one signal at a time
    shop.send(("a", "i1", "browse"), ("a", "i2", "browse"))
    shop.send(*[(f"v{i % 3}", f"p{i}", "purchase") for i in range(30)])  # newer and popular
    (top,) = shop.p.recommend(["a"], shop.states, 10)
    assert {"i1", "i2"} <= set(top)


def test_users_going_from_one_item_to_another_teach_co_visitation() -> None:
    shop = Shop(make(train_batch=1, top_n=10, lr=1e-9, ranker_sample=0))  # one signal at a time
    shop.send(*[(f"v{k}", f"p{i}", "purchase") for i in range(30) for k in range(3)])
    for n in range(5):
        shop.send((f"w{n}", "phone", "browse"))
        shop.send((f"w{n}", "case", "cart"))
    shop.send(("a", "phone", "browse"))
    (top,) = shop.p.recommend(["a"], shop.states, 10)
    assert "case" in top


def test_the_ranker_learns_from_what_users_do_next() -> None:
    shop = Shop(make(train_batch=8))
    warm(shop, 24)
    before = shop.p.rank.ranker.weights.copy()
    rng = np.random.default_rng(0)
    for _ in range(10):
        shop.send(*[(f"u{rng.integers(4)}", f"i{rng.integers(24)}", "click") for _ in range(8)])
    assert shop.p.rank.ranker.steps > 0
    assert not np.allclose(shop.p.rank.ranker.weights, before)
    assert shop.p.snapshot().rank.steps == shop.p.rank.ranker.steps


@pytest.mark.parametrize(
    "bad", [{"train_batch": 0}, {"train_max_delay_s": -1.0}, {"ranker_sample": -1}]
)
def test_config_refuses_nonsense(bad: dict) -> None:
    with pytest.raises(ValueError):
        PipelineConfig(**bad)
