"""Every method of the evaluation (:data:`feedrec.streams.tools.evaluation.registry.METHOD_NAMES`)
honours the same contract on a small simulated stream."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import torch

from feedrec.model.events import Event
from feedrec.streams.tools.evaluation.base import Method
from feedrec.streams.tools.evaluation.datasets import simulated_events
from feedrec.streams.tools.evaluation.registry import METHOD_NAMES, grid, make_method

K = 10


@pytest.fixture(scope="module")
def stream() -> list[Event]:
    return simulated_events(1500, seed=3)


def replay(method: Method, stream: Sequence[Event], users: Sequence[str]) -> list[list[str]]:
    """Feed the stream in three parts; after each, every user's list."""
    torch.set_num_threads(1)
    out = []
    third = len(stream) // 3
    for part in (stream[:third], stream[third : 2 * third], stream[2 * third :]):
        method.learn(part)
        out += [method.recommend(user, part[-1].ts, K) for user in users]
    return out


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_lists_are_short_unique_known_and_repeatable(name: str, stream: list[Event]) -> None:
    users = sorted({e.user_id for e in stream})[:15] + ["never-seen"]
    first = replay(make_method(name), stream, users)
    for n, items in enumerate(first):
        known = {e.item_id for e in stream[: (n // len(users) + 1) * (len(stream) // 3)]}
        assert len(items) <= K and len(set(items)) == len(items), items
        assert set(items) <= known | {e.item_id for e in stream}, "an item nobody had"
    # A user never seen gets a list (popular items), not an error.
    assert first[-1], "no list for a user never seen"
    assert replay(make_method(name), stream, users) == first, "not repeatable"


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_every_variant_knows_nothing_before_it_learns(name: str) -> None:
    for variant in grid(name):
        assert make_method(name, **variant).recommend("anyone", 0, K) == [], variant
