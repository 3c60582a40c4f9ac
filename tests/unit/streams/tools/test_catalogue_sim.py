"""The catalogue stream's invariants: no repeats, time order over the whole span, determinism, the
public schema, long histories, drifting tastes, shifting popularity, items released over time
and related picks within a visit."""

import time
from collections import Counter, defaultdict
from typing import TypedDict

import msgspec
import numpy as np
import pytest

from feedrec.model.events import Event
from feedrec.streams.tools.catalogue_sim import START_MS, CatalogueConfig, catalogue_events
from feedrec.streams.topics import EVENT_TOPIC as TOPICS

DAY_MS = 86_400_000
FIELDS = {
    "event_id": str,
    "user_id": str,
    "item_id": str,
    "ts": int,
    "session_id": str,
    "category": str,
    "price": float,
}


class _World(TypedDict):
    n_users: int
    n_items: int
    n_categories: int


#: A small world whose heavy users have hundreds of events, for the drift check.
SMALL: _World = {"n_users": 100, "n_items": 4000, "n_categories": 40}


@pytest.fixture(scope="module")
def stream() -> list[tuple[str, dict]]:
    """50,000 events with the default config (printed: the generation speed)."""
    t = time.process_time()
    evs = catalogue_events(50_000)
    dt = time.process_time() - t
    print(f"\ncatalogue_events(50_000): {dt:.2f} s CPU, {len(evs) / dt:,.0f} events/s")
    return evs


def histories(evs: list[tuple[str, dict]]) -> dict[str, list[dict]]:
    """Each user's events in stream (time) order."""
    by: dict[str, list[dict]] = defaultdict(list)
    for _, e in evs:
        by[e["user_id"]].append(e)
    return by


def day(e: dict) -> float:
    return (e["ts"] - START_MS) / DAY_MS


def test_no_user_touches_an_item_twice(stream: list[tuple[str, dict]]) -> None:
    pairs = [(e["user_id"], e["item_id"]) for _, e in stream]
    assert len(stream) == 50_000
    assert len(set(pairs)) == len(pairs)


def test_sorted_and_spread_over_the_span() -> None:
    evs = catalogue_events(20_000)
    ts = [e["ts"] for _, e in evs]
    assert ts == sorted(ts)
    assert ts[0] >= START_MS and ts[-1] < START_MS + 200 * DAY_MS
    assert ts[-1] - ts[0] > 0.9 * 200 * DAY_MS
    short = catalogue_events(2000, CatalogueConfig(**SMALL, span_days=30.0))
    span = short[-1][1]["ts"] - short[0][1]["ts"]
    assert 0.9 * 30 * DAY_MS < span < 30 * DAY_MS  # n sets the density, span_days the span


def test_deterministic_for_a_seed() -> None:
    cfg = CatalogueConfig(**SMALL, seed=3)
    a = catalogue_events(1500, cfg)
    assert a == catalogue_events(1500, cfg)
    other = catalogue_events(1500, CatalogueConfig(**SMALL, seed=4))
    assert [e["item_id"] for _, e in a] != [e["item_id"] for _, e in other]
    assert [e["event_id"] for _, e in a[:3]] == ["cat3-1", "cat3-2", "cat3-3"]


def test_every_event_follows_the_public_schema(stream: list[tuple[str, dict]]) -> None:
    for topic, fields in stream[:5000]:
        assert topic in TOPICS.values()
        assert fields.keys() == FIELDS.keys()
        for k, v in fields.items():
            assert type(v) is FIELDS[k], (k, v)
        ev = msgspec.convert(fields, Event)
        assert ev.user_id == fields["user_id"] and ev.price is not None and ev.price > 0
        assert fields["user_id"][0] == "u" and fields["item_id"][0] == "i"
        assert fields["category"][0] == "c"
    assert len({e["event_id"] for _, e in stream}) == len(stream)
    # An item keeps its category and price across users and events.
    facts = {(e["item_id"], e["category"], e["price"]) for _, e in stream}
    assert len(facts) == len({e["item_id"] for _, e in stream})
    share = Counter(t for t, _ in stream)
    for kind, expected in zip(TOPICS, (0.40, 0.35, 0.15, 0.10), strict=True):
        assert abs(share[TOPICS[kind]] / len(stream) - expected) < 0.02, share


def test_users_have_long_histories_in_visits_days_apart(stream: list[tuple[str, dict]]) -> None:
    by = histories(stream)
    lengths = sorted((len(h) for h in by.values()), reverse=True)
    assert np.median(lengths) >= 6
    assert lengths[19] >= 50  # the top 20 users have 50+ events each
    within: list[int] = []
    between: list[int] = []
    for h in by.values():
        for a, b in zip(h, h[1:], strict=False):
            (within if a["session_id"] == b["session_id"] else between).append(b["ts"] - a["ts"])
    assert np.median(within) < 10 * 60_000  # a visit: a burst of events minutes apart
    assert np.median(between) > DAY_MS  # visits: days apart
    visits = len({e["session_id"] for _, e in stream})
    assert 2 < len(stream) / visits < 8  # a visit is a few events


def test_tastes_drift() -> None:
    """The category mix of a heavy user's last third of history differs from their first third
    much more than it does when tastes stay put (popularity moves in both streams)."""

    def first_last_distance(cfg: CatalogueConfig) -> float:
        by = histories(catalogue_events(10_000, cfg))
        heavy = sorted(by.values(), key=len, reverse=True)[:30]
        out = []
        for h in heavy:
            k = len(h) // 3
            a = Counter(e["category"] for e in h[:k])
            b = Counter(e["category"] for e in h[-k:])
            out.append(0.5 * sum(abs(a[c] - b[c]) for c in a.keys() | b.keys()) / k)
        assert min(len(h) for h in heavy) >= 60
        return float(np.mean(out))

    drifting = first_last_distance(CatalogueConfig(**SMALL, seed=1))
    still = first_last_distance(CatalogueConfig(**SMALL, seed=1, taste_drift=0.0))
    assert drifting > still + 0.08, (drifting, still)


def test_popularity_shifts_over_weeks(stream: list[tuple[str, dict]]) -> None:
    def top(lo: float, hi: float) -> set[str]:
        counts = Counter(e["item_id"] for _, e in stream if lo <= day(e) < hi)
        return {i for i, _ in counts.most_common(100)}

    first, last = top(0, 30), top(170, 200)
    assert len(first) == len(last) == 100
    assert len(first & last) < 50


def test_items_are_released_over_time(stream: list[tuple[str, dict]]) -> None:
    """New items keep arriving: the last month's best sellers mostly first appeared after day
    100, and a new item's traffic comes soon after it appears (rare old items, too, can first
    be touched late, but neither of these holds for them)."""
    first_seen: dict[str, float] = {}
    for _, e in stream:
        first_seen.setdefault(e["item_id"], day(e))
    last = Counter(e["item_id"] for _, e in stream if day(e) >= 170)
    assert sum(first_seen[i] > 100 for i, _ in last.most_common(100)) > 50
    counts = Counter(e["item_id"] for _, e in stream)
    early = Counter(e["item_id"] for _, e in stream if day(e) < first_seen[e["item_id"]] + 60)
    fresh = [i for i, d in first_seen.items() if 20 < d < 100 and counts[i] >= 5]
    assert len(fresh) > 100
    assert np.mean([early[i] / counts[i] for i in fresh]) > 0.7


def test_consecutive_picks_in_a_visit_share_a_category(stream: list[tuple[str, dict]]) -> None:
    same_visit: list[bool] = []
    across: list[bool] = []
    for h in histories(stream).values():
        for a, b in zip(h, h[1:], strict=False):
            hit = a["category"] == b["category"]
            (same_visit if a["session_id"] == b["session_id"] else across).append(hit)
    share = Counter(e["category"] for _, e in stream)
    chance = sum((v / len(stream)) ** 2 for v in share.values())
    assert np.mean(same_visit) > 2 * np.mean(across) > 2 * chance, (
        np.mean(same_visit),
        np.mean(across),
        chance,
    )


def test_refuses_bad_requests() -> None:
    assert catalogue_events(0) == []
    with pytest.raises(ValueError):
        catalogue_events(-1)
    with pytest.raises(ValueError):  # more events than 2 users may hold without repeats
        catalogue_events(10, CatalogueConfig(n_users=2, n_items=10, n_categories=2))
    with pytest.raises(ValueError):
        CatalogueConfig(n_categories=0)
    with pytest.raises(ValueError):
        # A mix of the wrong length, on purpose: the config must refuse it at run time.
        CatalogueConfig(event_mix=(1.0, 0.0, 0.0))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        CatalogueConfig(span_days=0.0)
    with pytest.raises(ValueError):  # nothing out when the stream starts
        catalogue_events(10, CatalogueConfig(**SMALL, initial_share=0.0))
