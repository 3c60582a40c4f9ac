"""Sequential rules (SR) on tiny streams whose rule weights and lists are computed by hand."""

from __future__ import annotations

from typing import Any

import pytest

from feedrec.model.events import Event
from feedrec.streams.tools.evaluation.sequential import SequentialRules, position_weights
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

# All clicks. Harmonic decay: the newest earlier item gets 1, the one before 1/2, ...
EVENTS = stream(
    ("u1", "a"),
    ("u1", "b"),  # u1 had [a]:        a->b += 1
    ("u1", "c"),  # u1 had [b, a]:     b->c += 1, a->c += 1/2
    ("u2", "a"),
    ("u2", "c"),  # u2 had [a]:        a->c += 1             (a->c = 1.5)
    ("u2", "d"),  # u2 had [c, a]:     c->d += 1, a->d += 1/2
    ("u3", "b"),
    ("u3", "d"),  # u3 had [b]:        b->d += 1
    ("u3", "b"),  # u3 had [d, b]; b itself is skipped: d->b += 1
    ("u1", "a"),  # u1 had [c, b, a]; a is skipped:       c->a += 1, b->a += 1/2
    ("u4", "e"),  # u4's first event: no rule
)
# Rules:  a: b 1, c 1.5, d 0.5 | b: c 1, d 1, a 0.5 | c: d 1, a 1 | d: b 1 | e: none.
# Recent items, newest first: u1 [a, c, b], u2 [d, c, a], u3 [b, d], u4 [e].
RULES = {
    "a": {"b": 1.0, "c": 1.5, "d": 0.5},
    "b": {"c": 1.0, "d": 1.0, "a": 0.5},
    "c": {"d": 1.0, "a": 1.0},
    "d": {"b": 1.0},
}
NOW = T0 + 11_000


def learnt(events: list[Event] = EVENTS, **kw: Any) -> SequentialRules:
    sr = SequentialRules(**kw)
    sr.learn(events)
    return sr


def test_rule_weights_by_hand() -> None:
    sr = learnt(seen="allow")
    for i, row in RULES.items():
        for j in "abcde":
            assert sr.weight(i, j, NOW) == pytest.approx(row.get(j, 0.0)), (i, j)
    assert sr.weight("e", "a", NOW) == 0.0


@pytest.mark.parametrize(
    ("user", "seen", "k", "expected"),
    [
        # u1's last item is a: c 1.5, b 1, d 0.5.
        ("u1", "allow", 3, ["c", "b", "d"]),
        # exclude drops u1's a, b, c; popularity can only add e (the one item u1 never had).
        ("u1", "exclude", 3, ["d", "e"]),
        # first: u1's recent items [a, c, b], then the rules (d new), then popularity (e).
        ("u1", "first", 3, ["a", "c", "b"]),
        ("u1", "first", 5, ["a", "c", "b", "d", "e"]),
        # u3's last item is b: c 1 and d 1 tie (by id: c first), a 0.5.
        ("u3", "allow", 3, ["c", "d", "a"]),
        ("u3", "exclude", 3, ["c", "a", "e"]),
        ("u3", "first", 4, ["b", "d", "c", "a"]),
        # u2's last item is d: only b 1.
        ("u2", "exclude", 2, ["b", "e"]),
    ],
)
def test_lists_by_hand(user: str, seen: str, k: int, expected: list[str]) -> None:
    assert learnt(seen=seen).recommend(user, NOW, k) == expected


def test_first_puts_only_the_first_few_recent_items_first() -> None:
    # first=1: only b of u3's [b, d], then b's rules c, d (tied, c by id), a.
    assert learnt(seen="first", first=1).recommend("u3", NOW, 4) == ["b", "c", "d", "a"]


def test_only_the_last_item_counts_by_default_and_sources_add_earlier_ones() -> None:
    # u1 = [a, c, b]. One source: the rules of a only.
    assert learnt().scores("u1") == pytest.approx(RULES["a"])
    # Two sources, recency 0.5: a's rules + 0.5 * c's (d 1, a 1):
    # b 1, c 1.5, d 0.5 + 0.5 = 1.0, a 0.5; ranked c, then b and d tied (b by id), then a.
    sr = learnt(sources=2, recency=0.5, seen="allow")
    assert sr.scores("u1") == pytest.approx({"b": 1.0, "c": 1.5, "d": 1.0, "a": 0.5})
    assert sr.recommend("u1", NOW, 4) == ["c", "b", "d", "a"]


def test_unknown_user_and_a_user_without_rules_get_popularity() -> None:
    for seen in ("exclude", "allow", "first"):
        sr = learnt(seen=seen)
        assert sr.recommend("nobody", NOW, 3) == popular(EVENTS)[:3]
    # u4's only item e has no successors: allow gives popularity as it is.
    assert learnt(seen="allow").recommend("u4", NOW, 5) == popular(EVENTS)
    assert learnt(seen="exclude").recommend("u4", NOW, 5) == popular(EVENTS, skip={"e"})


def test_position_decays_and_the_steps_window() -> None:
    assert position_weights("harmonic", 4) == pytest.approx([1, 1 / 2, 1 / 3, 1 / 4])
    # linear over 10 steps is 1 - 0.1 * (pos - 1).
    assert position_weights("linear", 10) == pytest.approx([1 - 0.1 * p for p in range(10)])
    assert position_weights("none", 3) == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="decay must be one of"):
        SequentialRules(decay="quadratic")
    # One user: a, b, c, d. At d the history is [c, b, a].
    path = stream(("u", "a"), ("u", "b"), ("u", "c"), ("u", "d"))
    linear = learnt(path, steps=3, decay="linear")  # w = 1, 2/3, 1/3
    assert [linear.weight(i, "d", NOW) for i in "cba"] == pytest.approx([1, 2 / 3, 1 / 3])
    flat = learnt(path, steps=3, decay="none")
    assert [flat.weight(i, "d", NOW) for i in "cba"] == pytest.approx([1, 1, 1])
    # Two steps: a is three back from d and gives no rule; b -> d gets 1/2.
    short = learnt(path, steps=2)
    assert short.weight("a", "d", NOW) == 0.0
    assert short.weight("b", "d", NOW) == pytest.approx(0.5)
    assert short.weight("a", "c", NOW) == pytest.approx(0.5)


def test_type_weights_when_typed() -> None:
    # x -> y by two users' clicks (1 + 1), x -> z by one purchase (1; typed: 4).
    events = stream(
        ("u1", "x"),
        ("u1", "z", "purchase"),
        ("u2", "x"),
        ("u2", "y"),
        ("u3", "x"),
        ("u3", "y"),
        ("v", "x"),
    )
    plain = learnt(events, seen="allow")
    assert plain.scores("v") == pytest.approx({"y": 2.0, "z": 1.0})
    assert plain.recommend("v", NOW, 2) == ["y", "z"]
    typed = learnt(events, seen="allow", typed=True)
    assert typed.scores("v") == pytest.approx({"y": 2.0, "z": 4.0})
    assert typed.recommend("v", NOW, 2) == ["z", "y"]


def test_time_decay_halves_a_rule_after_one_half_life() -> None:
    events = [
        ev(1, "u1", "a", 0),
        ev(2, "u1", "b", 0),
        ev(3, "u2", "c", HOUR_MS),
        ev(4, "u2", "d", HOUR_MS),
    ]
    sr = learnt(events, half_life_s=3600.0)
    now = T0 + HOUR_MS
    assert sr.weight("a", "b", now) == pytest.approx(0.5)
    assert sr.weight("c", "d", now) == pytest.approx(1.0)
    assert sr.weight("a", "b", now + HOUR_MS) == pytest.approx(0.25)
    # Without a half-life nothing fades.
    assert learnt(events).weight("a", "b", now + HOUR_MS) == pytest.approx(1.0)


def test_time_decay_survives_the_rescale_of_stored_weights() -> None:
    # 100 half-lives apart: the stored growth factor 2**100 forces a rescale in between.
    events = [
        ev(1, "u1", "a", 0),
        ev(2, "u1", "b", 0),
        ev(3, "u2", "c", 100_000),
        ev(4, "u2", "d", 100_000),
    ]
    sr = learnt(events, half_life_s=1.0)
    now = T0 + 100_000
    assert sr.weight("a", "b", now) == pytest.approx(2.0**-100, rel=1e-6)
    assert sr.weight("c", "d", now) == pytest.approx(1.0)


def test_successors_are_pruned_to_the_strongest() -> None:
    # a -> b three times (weight 3), then a -> c, d, e, f once each. With successors=2 the row
    # is cut when it passes 4 entries (at f): b 3 stays, and c of the four tied at 1 (by id).
    steps = [(u, x) for u in ("p", "q", "r") for x in ("a", "b")]
    steps += [(f"s{x}", y) for x in "cdef" for y in ("a", x)]
    sr = learnt(stream(*steps, ("v", "a")), successors=2)
    assert sr.scores("v") == pytest.approx({"b": 3.0, "c": 1.0})


@pytest.mark.parametrize("seen", ["exclude", "allow", "first"])
def test_seen_policies_and_k_on_a_random_stream(seen: str) -> None:
    events = random_stream(seed=1)
    check_seen_policy(learnt(events, seen=seen), events, seen)


def test_grid_holds_the_default_and_every_variant_runs() -> None:
    events = random_stream(200, seed=1)
    check_grid(SequentialRules, events)
