"""Retrieve: users' lists and merged candidates with their features; rank: the ranker's order in
the user's context, seen items hidden where nobody comes back, the rules."""

from __future__ import annotations

import numpy as np

from feedrec.model import seen as seen_filters
from feedrec.model.candidates import FEATURES
from feedrec.model.clock import ManualClock
from feedrec.model.config import PipelineConfig
from feedrec.model.events import CatalogItem, Event
from feedrec.model.pipeline import Pipeline
from feedrec.model.ranking import RankConfig
from feedrec.model.state import RepeatShare, SessionGaps, UserState
from feedrec.model.twotower import ModelConfig

NOW = 1_700_000_000_000


def warm() -> Pipeline:
    """A pipeline that has learned a few users' clicks on items a0-a9 (category a) and b0-b9."""
    cfg = PipelineConfig(
        model=ModelConfig(dim=8, user_capacity=16, item_capacity=32),
        ranking=RankConfig(top_n=5, candidates=10),
        train_batch=1,
        index_refresh_interval_s=0.0,
    )
    p = Pipeline.build(cfg, device="cpu", index_kind="exact", clock=ManualClock(NOW))
    events = [
        Event(
            f"e{n}",
            f"u{n % 4}",
            f"{c}{n // 2 % 10}",
            NOW - 60_000 + n,
            category=c,
            event_type="click",
        )
        for n in range(40)
        for c in "ab"[n % 2]
    ]
    p.process(events, {})
    return p


def test_lists_are_rows_of_known_items_and_other_sessions_open_by_the_streams_gaps() -> None:
    p = warm()
    p.fold.session_gaps = SessionGaps(evidence=1)
    p.retrieve.session_gaps = p.fold.session_gaps  # as built: retrieval reads folding's gaps
    p.fold.session_gaps.observe([1000])  # sessions stay open 5 s
    st = UserState(
        recent=["a1", "zz", "b2"],
        carted=["b3"],
        sessions=[("s2", "b2", NOW - 100), ("s1", "a1", NOW - 4000), ("s0", "a5", NOW - 9000)],
    )
    lists = p.retrieve.lists([st], [NOW])
    rows = p.vocab.items.get_rows
    assert lists.recent[0, :3].tolist() == [rows(["a1"])[0], -1, rows(["b2"])[0]]
    assert lists.carted[0, 0] == rows(["b3"])[0]
    assert lists.others.tolist() == [[rows(["a1"])[0], -1]]  # s0 has been silent too long


def test_candidates_carry_the_model_score_and_what_ranking_needs() -> None:
    p = warm()
    p.add_catalog(CatalogItem("a3", available=False))
    p.retrieve.catch_up()
    st = UserState(recent=["a1", "a2"])
    found = p.retrieve.candidates(
        p.vocab.users.get_rows(["u1"]), p.retrieve.lists([st], [NOW]), NOW, 10
    )
    valid = found.rows >= 0
    assert valid.sum() >= 5 and found.features.shape == (*found.rows.shape, len(FEATURES))
    model = found.features[..., FEATURES.index("model")]
    assert np.isfinite(model[valid]).all() and (model[~valid] == 0).all()
    a3 = p.vocab.items.get_rows(["a3"])[0]
    assert not found.available[found.rows == a3].any()
    a = p.retrieve.stats.category_code("a")
    # The latest item's category; no other session is open.
    assert found.shopping[0, 0] == a and (found.shopping[0, 1:] == -1).all()
    assert (found.categories[found.rows == p.vocab.items.get_rows(["b4"])[0]] != a).all()


def test_seen_items_are_hidden_only_where_shoppers_do_not_come_back() -> None:
    p = warm()
    st = UserState(recent=["a1", "a2"])
    st.seen, st.seen_count = seen_filters.add_many(b"", 0, ["a1", "a2"])
    found = p.retrieve.candidates(
        p.vocab.users.get_rows(["u1"]), p.retrieve.lists([st], [NOW]), NOW, 10
    )
    cfg = RankConfig(top_n=10, candidates=10, max_per_category=0)
    mine = {p.vocab.items.get_rows([i])[0] for i in ("a1", "a2")}
    shown = {row for row, _ in p.rank(found, [2], cfg)[0]}
    assert mine <= shown  # the repeat share is not known yet: seen items compete
    p.rank.repeats = RepeatShare(evidence=1)
    p.rank.repeats.observe(100, 0)  # nobody came back
    hidden = {row for row, _ in p.rank(found, [2], cfg)[0]}
    assert not mine & hidden and hidden
    assert {
        row
        for row, _ in p.rank(
            found, [2], RankConfig(top_n=10, candidates=10, max_per_category=0, seen="show")
        )[0]
    } >= mine
