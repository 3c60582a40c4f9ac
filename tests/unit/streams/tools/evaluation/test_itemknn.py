"""Incremental item-kNN on tiny streams whose cosine similarities and lists are computed by hand."""

from __future__ import annotations

import math
from typing import Any

import pytest

from feedrec.model.events import Event
from feedrec.streams.tools.evaluation.itemknn import ItemKNN
from tests.unit.streams.tools.evaluation.baseline_checks import (
    HOUR_MS,
    T0,
    check_grid,
    check_seen_policy,
    ev,
    popular,
    random_stream,
    stream,
)

R6 = math.sqrt(6)


# Users' items: u1 {a, b, c}, u2 {a, b}, u3 {b, c, d}, u4 {a, d}, u5 {e}; repeats change
# nothing but the order of recent items.
EVENTS = stream(
    ("u1", "a"),
    ("u2", "a"),
    ("u1", "b"),
    ("u3", "b"),
    ("u2", "b"),
    ("u1", "c"),
    ("u3", "c"),
    ("u4", "a"),
    ("u3", "d"),
    ("u4", "d"),
    ("u1", "a"),
    ("u2", "b"),
    ("u5", "e"),
)
# Degrees n: a 3 (u1 u2 u4), b 3 (u1 u2 u3), c 2 (u1 u3), d 2 (u3 u4), e 1.
# Co-occurrences: a-b 2 (u1 u2), a-c 1 (u1), a-d 1 (u4), b-c 2 (u1 u3), b-d 1 (u3), c-d 1 (u3).
# Cosine c / sqrt(n n):
SIM = {
    ("a", "b"): 2 / 3,  # 2 / sqrt(3 * 3)
    ("a", "c"): 1 / R6,  # 1 / sqrt(3 * 2) = 0.408
    ("a", "d"): 1 / R6,
    ("b", "c"): 2 / R6,  # 0.816
    ("b", "d"): 1 / R6,
    ("c", "d"): 1 / 2,  # 1 / sqrt(2 * 2)
}
# Recent items, newest first: u1 [a, c, b], u2 [b, a], u3 [d, c, b], u4 [d, a], u5 [e].
NOW = T0 + 13_000


def learnt(events: list[Event] = EVENTS, **kw: Any) -> ItemKNN:
    """An ItemKNN fed ``events``; plain cosine (lam 0) unless ``kw`` says otherwise."""
    knn = ItemKNN(**({"lam": 0.0} | kw))
    knn.learn(events)
    return knn


def test_cosine_similarities_by_hand() -> None:
    knn = learnt()
    for a in "abcde":
        for b in "abcde":
            expected = 0.0 if a == b else SIM.get((a, b), SIM.get((b, a), 0.0))
            assert knn.similarity(a, b) == pytest.approx(expected), (a, b)


def test_shrinkage() -> None:
    # The default lam = 20: a-b 2 / (3 + 20).
    knn = ItemKNN()
    knn.learn(EVENTS)
    assert knn.similarity("a", "b") == pytest.approx(2 / 23)
    # lam = 1: a-b 2 / (3 + 1) = 0.5, c-d 1 / (2 + 1), a-c 1 / (sqrt 6 + 1).
    knn = learnt(lam=1.0)
    assert knn.similarity("a", "b") == pytest.approx(0.5)
    assert knn.similarity("c", "d") == pytest.approx(1 / 3)
    assert knn.similarity("a", "c") == pytest.approx(1 / (R6 + 1))


@pytest.mark.parametrize(
    ("user", "seen", "k", "expected"),
    [
        # window 1. u4's last item d: c 0.5, then a and b tied at 0.408 (a first, by id).
        ("u4", "allow", 3, ["c", "a", "b"]),
        ("u4", "exclude", 3, ["c", "b", "e"]),  # u4 had a and d; popularity adds e
        ("u4", "first", 4, ["d", "a", "c", "b"]),
        # u1's last item a (the repeat moved it to the front): b 0.667, then c and d at 0.408.
        ("u1", "allow", 3, ["b", "c", "d"]),
        ("u1", "exclude", 3, ["d", "e"]),  # u1 had a, b, c: only d and e are left
    ],
)
def test_lists_from_the_last_item_by_hand(
    user: str, seen: str, k: int, expected: list[str]
) -> None:
    assert learnt(window=1, seen=seen).recommend(user, NOW, k) == expected


@pytest.mark.parametrize(
    ("seen", "k", "expected"),
    [
        # window 2, recency 0.5: u3 = [d, c, b] scores sim(d, .) + 0.5 * sim(c, .):
        #   a 0.408 + 0.5 * 0.408 = 0.612, b 0.408 + 0.5 * 0.816 = 0.816, c 0.5, d 0.5 * 0.5 = 0.25.
        ("allow", 4, ["b", "a", "c", "d"]),
        ("exclude", 4, ["a", "e"]),
        ("first", 5, ["d", "c", "b", "a", "e"]),
    ],
)
def test_lists_from_a_window_by_hand(seen: str, k: int, expected: list[str]) -> None:
    knn = learnt(window=2, recency_decay=0.5, seen=seen)
    assert knn.scores("u3") == pytest.approx({"a": 1.5 / R6, "b": 2 / R6, "c": 0.5, "d": 0.25})
    assert knn.recommend("u3", NOW, k) == expected


def test_first_puts_only_the_first_few_recent_items_first() -> None:
    # first=1: only d of u3's [d, c, b], then the window-2 ranking b, a, c (d is in), then e.
    knn = learnt(window=2, recency_decay=0.5, seen="first", first=1)
    assert knn.recommend("u3", NOW, 5) == ["d", "b", "a", "c", "e"]


def test_unknown_user_and_a_user_without_neighbours_get_popularity() -> None:
    for seen in ("exclude", "allow", "first"):
        assert learnt(seen=seen).recommend("nobody", NOW, 3) == popular(EVENTS)[:3]
    # u5's only item e co-occurs with nothing.
    assert learnt(seen="allow").recommend("u5", NOW, 5) == popular(EVENTS)
    assert learnt(seen="exclude").recommend("u5", NOW, 5) == popular(EVENTS, skip={"e"})


def test_neighbours_and_history_caps() -> None:
    # One neighbour each: d's best is c (0.5).
    assert learnt(window=1, neighbours=1).scores("u4") == pytest.approx({"c": 0.5})
    # history=1: at c, u only looks back at b, so a and c never meet.
    path = stream(("u", "a"), ("u", "b"), ("u", "c"))
    assert learnt(path, history=1).similarity("a", "c") == 0.0
    assert learnt(path, history=1).similarity("b", "c") == pytest.approx(1.0)
    assert learnt(path).similarity("a", "c") == pytest.approx(1.0)  # 1 / sqrt(1 * 1)


def test_type_weighted_incidence_rising_with_the_strongest_event() -> None:
    events = stream(
        ("u1", "x"),  # r(1, x) 1; n x 1
        ("u1", "y"),  # r(1, y) 1; n y 1; c(x, y) 1
        ("u1", "z"),  # r(1, z) 1; n z 1; c(y, z) 1, c(x, z) 1
        ("u1", "y", "purchase"),  # r(1, y) 1 -> 4; n y 16; c(z, y) += 3 * 1, c(x, y) += 3 * 1
        ("u2", "x", "purchase"),  # r(2, x) 4; n x 1 + 16 = 17
        ("u2", "z"),  # r(2, z) 1; n z 2; c(x, z) += 4 * 1
    )
    # Columns over (u1, u2): x (1, 4), y (4, 0), z (1, 1): c(x, y) 4, c(x, z) 5, c(y, z) 4.
    typed = learnt(events, typed=True, window=1, seen="allow")
    assert typed.similarity("x", "y") == pytest.approx(4 / (math.sqrt(17) * 4))  # 0.243
    assert typed.similarity("x", "z") == pytest.approx(5 / (math.sqrt(17) * math.sqrt(2)))
    assert typed.similarity("y", "z") == pytest.approx(4 / (4 * math.sqrt(2)))  # 0.707
    # u1's last item is y: z 0.707 beats x 0.243.
    assert typed.recommend("u1", NOW, 2) == ["z", "x"]
    # Binary: x (1, 1), y (1, 0), z (1, 1): y-x and y-z both 1 / sqrt 2, so x first by id.
    plain = learnt(events, window=1, seen="allow")
    assert plain.similarity("y", "x") == pytest.approx(1 / math.sqrt(2))
    assert plain.similarity("y", "z") == pytest.approx(1 / math.sqrt(2))
    assert plain.similarity("x", "z") == pytest.approx(1.0)
    assert plain.recommend("u1", NOW, 2) == ["x", "z"]


def test_time_decay_halves_a_co_occurrence_after_one_half_life() -> None:
    events = [
        ev(1, "u1", "a", 0),
        ev(2, "u1", "b", 0),
        ev(3, "u2", "c", HOUR_MS),
        ev(4, "u2", "d", HOUR_MS),
    ]
    knn = learnt(events, half_life_s=3600.0)
    now = T0 + HOUR_MS
    # Each pair has one user and degrees 1 (which do not decay): 1 / sqrt(1 * 1), aged.
    assert knn.similarity("a", "b", now) == pytest.approx(0.5)
    assert knn.similarity("c", "d", now) == pytest.approx(1.0)
    assert knn.similarity("a", "b", now + HOUR_MS) == pytest.approx(0.25)
    assert learnt(events).similarity("a", "b", now + HOUR_MS) == pytest.approx(1.0)
    # 100 half-lives apart the stored values are rescaled in between; the ratio holds.
    far = [
        ev(1, "u1", "a", 0),
        ev(2, "u1", "b", 0),
        ev(3, "u2", "c", 100_000),
        ev(4, "u2", "d", 100_000),
    ]
    knn = learnt(far, half_life_s=1.0)
    assert knn.similarity("a", "b", T0 + 100_000) == pytest.approx(2.0**-100, rel=1e-6)
    assert knn.similarity("c", "d", T0 + 100_000) == pytest.approx(1.0)


def test_rows_are_pruned_to_the_most_similar() -> None:
    # a meets b through p and q (c 2, n b 2: 2 / sqrt 2 = 1.41 per sqrt n(a)), then c and d
    # once each (1 / sqrt 1 = 1). pairs=1 cuts a's row when it passes 2 entries: b stays.
    events = stream(
        ("p", "a"),
        ("p", "b"),
        ("q", "a"),
        ("q", "b"),
        ("r", "a"),
        ("r", "c"),
        ("s", "a"),
        ("s", "d"),
        ("v", "a"),
    )
    # n(a) = 5 (p q r s v): sim(a, b) = 2 / sqrt(5 * 2).
    assert learnt(events, pairs=1).scores("v") == pytest.approx({"b": 2 / math.sqrt(10)})
    assert set(learnt(events).scores("v")) == {"b", "c", "d"}


@pytest.mark.parametrize("seen", ["exclude", "allow", "first"])
def test_seen_policies_and_k_on_a_random_stream(seen: str) -> None:
    events = random_stream(seed=2)
    check_seen_policy(learnt(events, seen=seen), events, seen)


def test_grid_holds_the_default_and_every_variant_runs() -> None:
    events = random_stream(200, seed=2)
    check_grid(ItemKNN, events)
