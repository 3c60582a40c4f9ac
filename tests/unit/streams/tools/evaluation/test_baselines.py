"""Popularity, co-visitation and recent-then-category lists on tiny streams computed by hand."""

from __future__ import annotations

import pytest

from feedrec.model.events import Event
from feedrec.streams.tools.evaluation.base import Histories, top_rows
from feedrec.streams.tools.evaluation.covisitation import CoVisitation
from feedrec.streams.tools.evaluation.popularity import Popularity
from feedrec.streams.tools.evaluation.recent_category import RecentCategory

T0 = 1_700_000_000_000


def ev(n: int, user: str, item: str, kind: str, ts: int, category: str | None = None) -> Event:
    return Event(f"e{n}", user, item, T0 + ts, category=category, event_type=kind)


def test_popularity_decays_with_time_and_may_leave_out_what_was_seen() -> None:
    events = [ev(1, "u", "old", "purchase", 0), ev(2, "v", "new", "click", 3000)]
    p = Popularity(half_life_s=1.0)
    p.learn(events[:1])
    p.learn(events[1:])  # old: 4 * 2**-3 = 0.5 < new: 1
    assert p.recommend("x", T0 + 3000, 2) == ["new", "old"]
    flat = Popularity(half_life_s=None, seen="exclude")
    flat.learn(events)  # no decay: old 4 > new 1
    assert flat.recommend("x", T0 + 3000, 2) == ["old", "new"]
    assert flat.recommend("u", T0 + 3000, 2) == ["new"]
    with pytest.raises(ValueError, match="seen must be one of"):
        Popularity(seen="never")


STREAM = [
    ev(1, "a", "x", "browse", 0),
    ev(2, "a", "y", "click", 1),
    ev(3, "b", "x", "browse", 2),
    ev(4, "b", "z", "browse", 3),
    ev(5, "c", "x", "browse", 4),
]


@pytest.mark.parametrize(
    ("user", "seen", "expected"),
    [
        # c's history is [x]: x -> y 1 (a's click), x -> z 0.25 (b's browse); popularity (clicks 1,
        # browses 0.25 each: y 1, x 0.75, z 0.25) fills.
        ("c", "allow", ["y", "z", "x"]),
        ("c", "exclude", ["y", "z"]),
        ("c", "first", ["x", "y", "z"]),
        # a's history is [y, x]: from y (weight 1): y -> x 0.5 (backward half of x -> y); from x
        # (weight 0.7): x -> y 0.7, x -> z 0.175. So y 0.7, x 0.5, z 0.175.
        ("a", "allow", ["y", "x", "z"]),
        ("a", "exclude", ["z"]),
        ("a", "first", ["y", "x", "z"]),
        ("nobody", "exclude", ["y", "x", "z"]),
    ],
)
def test_covisitation_by_hand(user: str, seen: str, expected: list[str]) -> None:
    c = CoVisitation(half_life_s=None, seen=seen)
    c.learn(STREAM)
    assert c.recommend(user, T0 + 5, 5) == expected


def test_covisitation_scores_by_hand_and_decay() -> None:
    c = CoVisitation(half_life_s=None)
    c.learn(STREAM)
    assert c.scores("a") == pytest.approx({"x": 0.5, "y": 0.7, "z": 0.175})
    # One half-life between the two pairs: the older one counts half.
    d = CoVisitation(half_life_s=1.0, backward=0.0)
    d.learn(
        [
            ev(1, "a", "x", "browse", 0),
            ev(2, "a", "y", "click", 1),
            ev(3, "b", "x", "browse", 1000),
            ev(4, "b", "z", "click", 1001),
        ]
    )
    s = d.scores("b")  # b's history [z, x]: from x (0.7): y 1 * 2**-1, z 1
    assert s["z"] / s["y"] == pytest.approx(2.0, rel=1e-3)


def test_recent_items_then_their_latest_category() -> None:
    r = RecentCategory(half_life_s=None)
    r.learn(
        [
            ev(1, "u", "a", "browse", 0, "c1"),
            ev(2, "v", "d", "click", 1, "c2"),
            ev(3, "w", "e", "cart", 2, "c2"),
            ev(4, "u", "b", "browse", 3, "c2"),
        ]
    )
    # u's latest category is c2: e (cart 2), d (click 1), b (browse 0.25); u's recent items first.
    assert r.recommend("u", T0 + 4, 4) == ["b", "a", "e", "d"]
    r_ex = RecentCategory(half_life_s=None, seen="exclude")
    r_ex.learn(
        [
            ev(1, "u", "a", "browse", 0, "c1"),
            ev(2, "v", "d", "click", 1, "c2"),
            ev(3, "w", "e", "cart", 2, "c2"),
            ev(4, "u", "b", "browse", 3, "c2"),
        ]
    )
    assert r_ex.recommend("u", T0 + 4, 4) == ["e", "d"]
    # No history: popularity overall (e 2, d 1, a and b 0.25 each, ties by id).
    assert r_ex.recommend("new", T0 + 4, 4) == ["e", "d", "a", "b"]


def test_histories_keep_distinct_recent_items_and_everything_seen() -> None:
    h = Histories(2)
    for n, item in enumerate("abca"):
        h.add(ev(n, "u", item, "browse", n))
    assert h.items("u") == ["a", "c"]
    assert h.seen["u"] == {"a", "b", "c"}
    assert h.finish("u", ["b", "d", "a"], 3, "exclude", ["e"]) == ["d", "e"]
    assert h.finish("u", ["b", "d", "a"], 3, "first") == ["a", "c", "b"]


def test_top_rows_skips_and_pads_nothing() -> None:
    import numpy as np

    scores = np.array([1.0, 5.0, 3.0, -np.inf, 2.0])
    assert top_rows(scores, 3) == [1, 2, 4]
    assert top_rows(scores, 10, skip=lambda r: r == 1) == [2, 4, 0]
