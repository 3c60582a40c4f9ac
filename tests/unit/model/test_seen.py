"""Users' seen filters, the share of repeat feedback, and hiding seen items when nobody repeats."""

from __future__ import annotations

import numpy as np
import pytest

from feedrec.model import seen
from feedrec.model.config import PipelineConfig
from feedrec.model.events import Event
from feedrec.model.exceptions import CheckpointError
from feedrec.model.ranking import RankConfig, hides_seen
from feedrec.model.snapshot import Snapshot
from feedrec.model.state import RepeatShare, StateLimits, apply_events, load_state
from tests.unit.model.test_pipeline import NOW, Shop, make


def test_a_filter_holds_what_was_added_and_little_else() -> None:
    ids = [f"item{i}" for i in range(1000)]
    bits, count = seen.add_many(b"", 0, ids)
    # 1000 items: 7 full filters of 128 and 104 in the eighth.
    assert len(bits) == 8 * seen.FILTER_BYTES and count == 1000 - 7 * seen.PER_FILTER
    assert all(seen.has(bits, i) for i in ids)
    others = seen.item_keys([f"other{i}" for i in range(20_000)])
    false_positives = seen.contains([bits], others[None, :]).mean()
    assert false_positives < 0.03  # about 8 filters x 0.24%
    assert seen.contains([bits], seen.item_keys(ids)[None, :]).all()


def test_filters_are_bounded_and_forget_the_oldest() -> None:
    n = seen.MAX_FILTERS * seen.PER_FILTER + 10
    bits, _ = seen.add_many(b"", 0, [f"i{k}" for k in range(n)])
    assert len(bits) == seen.MAX_FILTERS * seen.FILTER_BYTES
    assert seen.has(bits, f"i{n - 1}")
    assert sum(seen.has(bits, f"i{k}") for k in range(50)) < 5  # the first filter went


def test_contains_checks_each_user_against_their_own_filters() -> None:
    a, _ = seen.add_many(b"", 0, ["x", "y"])
    b, _ = seen.add_many(b"", 0, ["z"])
    keys = seen.item_keys(["x", "z", "y", "q"])
    got = seen.contains([a, b, b""], np.stack([keys, keys, keys]))
    assert got.tolist() == [[True, False, True, False], [False, True, False, False], [False] * 4]
    assert seen.item_key("x") == seen.item_key("x") != seen.item_key("y")


def test_state_counts_feedback_on_items_the_user_had() -> None:
    st = load_state(None)
    limits = StateLimits(history_len=2)
    evs = [
        Event(f"e{n}", "u", item, NOW + n, event_type=kind)
        for n, (item, kind) in enumerate([("a", "browse"), ("b", "browse"), ("c", "browse")])
    ]
    out = apply_events(st, evs, limits)
    assert out.repeats == 0 and st.recent == ["c", "b"]
    # "a" fell out of the recent items but not out of the filter; "d" is new.
    later = [
        Event("e9", "u", "a", NOW + 9, event_type="cart"),
        Event("e10", "u", "d", NOW + 10, event_type="click"),
    ]
    out = apply_events(st, later, limits)
    assert (out.feedback, out.returning, out.repeats) == (2, 2, 1)
    # A user's first event cannot be a repeat and does not count towards the share.
    first = apply_events(
        load_state(None), [Event("n1", "new", "a", NOW, event_type="cart")], limits
    )
    assert (first.feedback, first.returning, first.repeats) == (1, 0, 0)
    assert seen.has(st.seen, "d")


def test_repeat_share_hides_seen_items_only_with_evidence_of_no_repeats() -> None:
    auto = RankConfig()
    r = RepeatShare(window=1000, evidence=100)
    r.observe(50, 0)
    assert r.share is None and not hides_seen(auto, r.share)
    r.observe(100, 1)
    assert r.share == pytest.approx(1 / 150, rel=0.05) and hides_seen(auto, r.share)
    assert not hides_seen(RankConfig(seen="show"), r.share)
    assert hides_seen(RankConfig(seen="hide"), RepeatShare().share)
    r.observe(1000, 300)  # the shop changed: people come back now
    assert not hides_seen(auto, r.share)
    with pytest.raises(ValueError, match="auto, show or hide"):
        RankConfig(seen="sometimes")


def feed_catalogue(shop: Shop, users: int, per_user: int) -> None:
    """Every user goes through items in order and never comes back to one."""
    for step in range(per_user):
        shop.send(*[(f"u{u}", f"i{(u + step) % 60}", "click") for u in range(users)])


def test_lists_drop_seen_items_on_a_stream_where_nobody_comes_back() -> None:
    shop = Shop(make(train_batch=8, top_n=10))
    shop.p.fold.repeats.evidence = 50
    feed_catalogue(shop, users=8, per_user=10)
    assert shop.p.fold.repeats.share == 0.0
    (rec,) = shop.send(("u0", "i30", "click")).recommendations
    had = {f"i{(0 + s) % 60}" for s in range(10)} | {"i30"}
    shown = {it.item_id for it in rec.items}
    assert len(shown) >= 5 and not had & shown


def test_lists_keep_seen_items_where_users_come_back() -> None:
    shop = Shop(make(train_batch=8, top_n=10))
    shop.p.fold.repeats.evidence = 50
    for _ in range(10):
        shop.send(*[(f"u{u}", f"i{u}", "click") for u in range(8)])  # the same item again
    share = shop.p.fold.repeats.share
    assert share is not None and share > 0.8
    (rec,) = shop.send(("u0", "i0", "click")).recommendations
    assert "i0" in {it.item_id for it in rec.items}


def test_snapshots_keep_the_repeat_share_and_item_keys() -> None:
    shop = Shop(make(train_batch=4))
    feed_catalogue(shop, users=4, per_user=5)
    twin = make(train_batch=4)
    twin.restore(shop.p.snapshot())
    assert twin.fold.repeats.state() == shop.p.fold.repeats.state()
    used = shop.p.vocab.items.used
    keys, twin_keys = shop.p.retrieve.stats.key, twin.retrieve.stats.key
    assert (twin_keys[:used] == keys[:used]).all() and twin_keys[0] != 0
    old = shop.p.snapshot().to_plain() | {"format": 1}
    with pytest.raises(CheckpointError, match="layout 1"):
        Snapshot.from_plain(old)
    assert PipelineConfig().ranking.seen == "auto"
