"""What the per-method baseline tests share: tiny hand-written streams, the popularity filler's
order, and the checks every recommending baseline must pass on a random stream."""

from __future__ import annotations

import math
import random
from collections.abc import Collection
from typing import Protocol

from feedrec.model.events import Event
from feedrec.streams.tools.evaluation.base import Method
from feedrec.streams.tools.evaluation.popularity import Popularity

T0 = 1_700_000_000_000
HOUR_MS = 3_600_000


class ScoringMethod(Method, Protocol):
    """A method that also shows a user's scores (item-kNN, sequential rules)."""

    def scores(self, user_id: str) -> dict[str, float]: ...


def ev(n: int, user: str, item: str, ts: int = 0, kind: str = "click") -> Event:
    return Event(f"e{n}", user, item, T0 + ts, event_type=kind)


def stream(*steps: tuple[str, str] | tuple[str, str, str]) -> list[Event]:
    """Events one second apart: (user, item) or (user, item, type)."""
    return [ev(n, s[0], s[1], 1000 * n, *s[2:]) for n, s in enumerate(steps)]


def popular(events: list[Event], skip: Collection[str] = frozenset()) -> list[str]:
    """The filler's order: Popularity with a one-hour half-life, less ``skip``."""
    p = Popularity(half_life_s=3600.0)
    p.learn(events)
    return [i for i in p.top(100) if i not in skip]


def random_stream(n: int = 400, seed: int = 1) -> list[Event]:
    """12 users, 40 items skewed to the low ids, every event type, 37 s apart."""
    rng = random.Random(seed)
    kinds = ("browse", "browse", "click", "cart", "purchase")
    return [
        ev(
            i,
            f"u{rng.randrange(12)}",
            f"i{min(rng.randrange(40), rng.randrange(40))}",
            37_000 * i,
            rng.choice(kinds),
        )
        for i in range(n)
    ]


def check_seen_policy(method: ScoringMethod, events: list[Event], seen: str) -> None:
    """``method`` (fed ``events``, with ``seen``) gives k distinct catalogue items, fills up
    with popularity, honours its seen policy, and with ``allow`` lists by its own scores."""
    seen_by: dict[str, set[str]] = {}
    recent: dict[str, list[str]] = {}
    for e in events:
        seen_by.setdefault(e.user_id, set()).add(e.item_id)
        r = recent.setdefault(e.user_id, [])
        if e.item_id in r:
            r.remove(e.item_id)
        r.insert(0, e.item_id)
    now = events[-1].ts
    catalogue = {e.item_id for e in events}
    for user in sorted(seen_by) + ["nobody"]:
        for k in (1, 5, 20):
            recs = method.recommend(user, now, k)
            # Popularity fills up to k from the whole catalogue (less what exclude leaves out).
            left = catalogue - seen_by.get(user, set()) if seen == "exclude" else catalogue
            assert len(recs) == len(set(recs)) == min(k, len(left)), (user, k)
            assert set(recs) <= catalogue
            if seen == "exclude":
                assert not set(recs) & seen_by.get(user, set())
            if seen == "first":  # the user's first=10 most recent items come first
                mine = recent.get(user, [])[: min(k, 10)]
                assert recs[: len(mine)] == mine
        if seen == "allow" and user != "nobody":
            scores = method.scores(user)
            assert method.recommend(user, now, len(scores)) == sorted(
                scores, key=lambda j: (-scores[j], j)
            )


def check_grid(cls: type[ScoringMethod], events: list[Event]) -> None:
    """``cls.GRID`` holds the default, every seen policy and both ends of the decay, and each
    variant learns in two steps and lists 10 distinct items with finite scores."""
    grid = cls.GRID
    assert 6 <= len(grid) <= 12
    assert {} in grid
    assert {v.get("seen", "first") for v in grid} == {"exclude", "allow", "first"}
    assert {v.get("half_life_s") for v in grid} >= {3600.0, None}
    for variant in grid:
        method = cls(**variant)
        method.learn(events[:100])
        method.learn(events[100:])
        recs = method.recommend("u1", events[-1].ts, 10)
        assert len(recs) == len(set(recs)) == 10, variant
        assert not math.isnan(sum(method.scores("u1").values()))
