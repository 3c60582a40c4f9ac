from collections import Counter

import numpy as np
import pytest

from model.events import Record, decode_batch
from streams.simulator import Shop, SimConfig, run_simulation

SMALL = SimConfig(n_users=300, n_items=800, n_categories=12, seed=7)


def events(shop: Shop, n: int) -> list[tuple[str, dict]]:
    return shop.next_events(1_700_000_000_000, n)


def test_seeded_and_deterministic() -> None:
    assert events(Shop(SMALL), 500) == events(Shop(SMALL), 500)
    assert events(Shop(SMALL), 50) != events(Shop(SimConfig(n_users=300, n_items=800, seed=8)), 50)


def test_every_event_passes_the_workers_validation() -> None:
    evs = events(Shop(SMALL), 3000)
    import msgspec

    records = [Record(t, 0, i, msgspec.json.encode(e)) for i, (t, e) in enumerate(evs)]
    good, bad = decode_batch(records, 1_700_000_000_000)
    assert bad == [] and len(good) == 3000
    assert len({e["event_id"] for _, e in evs}) == 3000
    kinds = Counter(t for t, _ in evs)
    assert kinds["events.browse"] > kinds["events.click"] > kinds["events.cart"] > 0
    assert kinds["events.purchase"] > 0


def test_funnel_order_within_a_session() -> None:
    evs = events(Shop(SMALL), 20_000)
    stage = {"events.browse": 0, "events.click": 1, "events.cart": 2, "events.purchase": 3}
    seen: dict[tuple[str, str], set[int]] = {}
    for topic, e in evs:
        key = (e["session_id"], e["item_id"])
        s = stage[topic]
        if s >= 2 and "rec_id" not in e:
            assert s - 1 in seen.get(key, set()), f"{topic} without the step before it: {e}"
        seen.setdefault(key, set()).add(s)


def test_popularity_is_skewed() -> None:
    evs = events(Shop(SMALL), 20_000)
    counts = Counter(e["item_id"] for t, e in evs if t == "events.browse")
    top = sorted(counts.values(), reverse=True)
    assert sum(top[: SMALL.n_items // 10]) > 0.4 * sum(top)


@pytest.mark.parametrize("seed", [1, 2])
def test_better_recommendations_earn_more_clicks(seed: int) -> None:
    def clicks(good: bool) -> int:
        shop = Shop(SimConfig(n_users=200, n_items=600, n_categories=10, seed=seed))
        for _ in range(30):
            for u in range(200):
                aff = shop.affinity(u, np.arange(600))
                order = np.argsort(-aff if good else aff)[:10]
                shop.observe_recommendations(
                    {"user_id": f"u{u}", "rec_id": f"r{u}", "items": [{"item_id": f"i{i}"} for i in order]})
            events(shop, 400)
        return shop.rec_clicks

    assert clicks(good=True) > 3 * clicks(good=False)


def test_run_simulation_sends_catalogue_then_paced_events() -> None:
    sent: list[tuple[str, bytes, bytes]] = []
    n = run_simulation(lambda t, k, v: sent.append((t, k, v)), rate=2000, duration_s=0.5,
                       config=SMALL, poll_recs=lambda: [])
    topics = Counter(t for t, _, _ in sent)
    assert topics["items"] == SMALL.n_items
    assert n == 1000 == sum(v for t, v in topics.items() if t.startswith("events."))
    assert sent[0][0] == "items"
