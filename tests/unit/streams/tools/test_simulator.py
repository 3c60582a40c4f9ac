import json
import threading
from collections import Counter

import msgspec
import numpy as np
import pytest

from feedrec.model.events import CatalogItem, decode_events
from feedrec.streams.records import Record
from feedrec.streams.tools.simulator import Shop, SimConfig, run_simulation
from tests.clock import SteppingClock

SMALL = SimConfig(n_users=300, n_items=800, n_categories=12, seed=7)
NOW = 1_700_000_000_000
STAGE = {"events.browse": 0, "events.click": 1, "events.cart": 2, "events.purchase": 3}
FIELDS = {
    "event_id": str,
    "user_id": str,
    "item_id": str,
    "ts": int,
    "session_id": str,
    "category": str,
    "price": float,
    "quantity": int,
    "rec_id": str,
    "position": int,
}


def events(shop: Shop, n: int) -> list[tuple[str, dict]]:
    return shop.next_events(NOW, n)


def rec(user: int, items: np.ndarray, rec_id: str) -> dict:
    return {
        "user_id": f"u{user}",
        "rec_id": rec_id,
        "items": [{"item_id": f"i{i}", "score": 1.0} for i in items],
    }


def test_seeded_and_deterministic() -> None:
    a, b = Shop(SMALL), Shop(SMALL)
    assert a.catalogue() == b.catalogue()
    assert events(a, 500) == events(b, 500)
    assert events(a, 500) == events(b, 500)  # and stays in step
    other = SimConfig(n_users=300, n_items=800, n_categories=12, seed=8)
    assert events(Shop(SMALL), 50) != events(Shop(other), 50)
    assert [e["event_id"] for _, e in events(Shop(SMALL), 3)] == ["sim7-1", "sim7-2", "sim7-3"]


def test_every_event_follows_the_public_schema() -> None:
    evs = events(Shop(SMALL), 3000)
    for topic, e in evs:
        assert topic in STAGE
        assert {"event_id", "user_id", "item_id", "ts"} <= e.keys() <= FIELDS.keys(), e
        for k, v in e.items():
            assert type(v) is FIELDS[k], (k, v)
        assert e["ts"] == NOW and e["price"] > 0
        assert ("rec_id" in e) == ("position" in e)
        assert ("quantity" in e) == (topic == "events.purchase")
    assert len({e["event_id"] for _, e in evs}) == 3000
    records = [Record(t, 0, i, msgspec.json.encode(e)) for i, (t, e) in enumerate(evs)]
    good, bad = decode_events(records, NOW)
    assert bad == [] and len(good) == 3000
    kinds = Counter(t for t, _ in evs)
    assert kinds["events.browse"] > kinds["events.click"] > kinds["events.cart"] > 0
    assert kinds["events.purchase"] > 0


def test_catalogue_records() -> None:
    cat = Shop(SMALL).catalogue()
    assert [c["item_id"] for c in cat] == [f"i{i}" for i in range(SMALL.n_items)]
    decoded = [msgspec.json.decode(json.dumps(c), type=CatalogItem) for c in cat]
    assert all(d.available and d.price and d.price > 0 for d in decoded)
    assert len({c["category"] for c in cat}) == SMALL.n_categories
    # Prices are log-normal around a per-category level: categories differ far more than noise.
    by_cat: dict[str, list[float]] = {}
    for c in cat:
        by_cat.setdefault(c["category"], []).append(np.log(c["price"]))
    means = [np.mean(v) for v in by_cat.values() if len(v) > 5]
    within = np.mean([np.std(v) for v in by_cat.values() if len(v) > 5])
    assert np.std(means) > within


def closed_loop(config: SimConfig, batches: int = 40) -> list[tuple[str, dict]]:
    """Events of a shop whose users are shown their best items now and then, so that rec clicks
    (and the carts and purchases they lead to) are in play."""
    shop = Shop(config)
    everything = np.arange(config.n_items)
    evs = []
    for _ in range(batches):
        batch = events(shop, 500)
        for _, e in batch[::5]:
            u = int(e["user_id"][1:])
            shop.observe_recommendations(
                rec(u, np.argsort(-shop.affinity(u, everything))[:10], f"r-{e['event_id']}")
            )
        evs += batch
    return evs


@pytest.mark.parametrize("seed", [7, 11])
def test_sessions_move_between_items_and_carts_outlive_them(seed: int) -> None:
    cfg = SimConfig(n_users=300, n_items=800, n_categories=12, seed=seed)
    evs = closed_loop(cfg)
    users: dict[str, str] = {}
    last: dict[str, tuple[str, dict]] = {}  # session -> its previous event
    considered: dict[str, set[str]] = {}  # session -> items browsed or clicked in it
    rec_clicked: dict[tuple[str, str], set[tuple[str, int]]] = {}  # (user, item) -> (list, pos)
    cart: dict[str, dict[str, None]] = {}  # user -> carted, not yet bought or dropped; oldest first
    cart_session: dict[tuple[str, str], str] = {}
    on_browsed = 0
    bought_later = 0
    for topic, e in evs:
        sid, user, item = e["session_id"], e["user_id"], e["item_id"]
        assert users.setdefault(sid, user) == user
        prev = last.get(sid)
        if topic == "events.click" and "rec_id" in e:
            rec_clicked.setdefault((user, item), set()).add((e["rec_id"], e["position"]))
        elif topic == "events.click":  # on the item just browsed or on one from its listing
            assert prev is not None and prev[0] == "events.browse", e
            assert e["category"] == prev[1]["category"]
            on_browsed += item == prev[1]["item_id"]
        elif topic == "events.cart":
            assert prev is not None and prev[0] == "events.click", e
            assert item in considered[sid] and item not in cart.get(user, {}), e
            cart.setdefault(user, {})[item] = None
            if len(cart[user]) > cfg.cart_size:
                del cart[user][next(iter(cart[user]))]
            cart_session[user, item] = sid
        elif topic == "events.purchase":
            assert item in cart.get(user, {}), f"bought what is not in the cart: {e}"
            del cart[user][item]
            bought_later += cart_session[user, item] != sid
        if "rec_id" in e:  # carts and purchases name the list the item was clicked from
            assert (e["rec_id"], e["position"]) in rec_clicked[user, item], e
        if topic in ("events.browse", "events.click"):
            considered.setdefault(sid, set()).add(item)
        last[sid] = (topic, e)
    kinds = Counter(t for t, _ in evs)
    plain_clicks = sum(t == "events.click" and "rec_id" not in e for t, e in evs)
    assert 0.2 < on_browsed / plain_clicks < 0.45  # about click_same_item_prob
    assert 0.15 < bought_later / kinds["events.purchase"] < 0.85
    rec_kinds = Counter(t for t, e in evs if "rec_id" in e)
    assert rec_kinds["events.cart"] > 0 and rec_kinds["events.purchase"] > 0


def test_scored_events_are_often_but_not_always_on_the_item_just_seen() -> None:
    evs = events(Shop(SMALL), 30_000)
    prev: dict[str, str] = {}
    history: dict[str, list[str]] = {}
    same = recent = scored = 0
    for topic, e in evs:
        user, item = e["user_id"], e["item_id"]
        if topic != "events.browse":
            scored += 1
            same += prev.get(user) == item
            recent += item in history.get(user, [])[-20:]
        prev[user] = item
        h = history.setdefault(user, [])
        if item in h:
            h.remove(item)
        h.append(item)
    assert 0.15 < same / scored < 0.5
    assert 0.4 < recent / scored < 0.8


def test_click_same_item_prob_sets_where_plain_clicks_land() -> None:
    def on_browsed(p: float) -> float:
        evs = events(
            Shop(
                SimConfig(n_users=300, n_items=800, n_categories=12, seed=5, click_same_item_prob=p)
            ),
            10_000,
        )
        last: dict[str, str] = {}
        hits = clicks = 0
        for topic, e in evs:
            if topic == "events.click":
                clicks += 1
                hits += last[e["session_id"]] == e["item_id"]
            last[e["session_id"]] = e["item_id"]
        return hits / clicks

    assert on_browsed(1.0) == 1.0
    assert on_browsed(0.0) == 0.0  # the listing never offers the item just browsed
    assert 0.1 < on_browsed(0.3) < 0.5


def test_a_full_cart_drops_its_oldest_item() -> None:
    shop = Shop(
        SimConfig(n_users=50, n_items=300, n_categories=6, seed=3, cart_size=1, checkout_prob=0.2)
    )
    latest: dict[str, str | None] = {}
    purchases = 0
    for topic, e in events(shop, 20_000):
        if topic == "events.cart":
            latest[e["user_id"]] = e["item_id"]
        elif topic == "events.purchase":
            assert latest[e["user_id"]] == e["item_id"]
            latest[e["user_id"]] = None
            purchases += 1
    assert purchases > 20


def test_deterministic_with_recommendations_and_carts() -> None:
    cfg = SimConfig(n_users=100, n_items=400, n_categories=8, seed=4)
    assert closed_loop(cfg, 10) == closed_loop(cfg, 10)


@pytest.mark.parametrize(
    "bad",
    [
        {"click_same_item_prob": 1.5},
        {"consideration_decay": -0.1},
        {"checkout_prob": 2.0},
        {"consideration_size": 0},
        {"cart_size": 0},
        {"purchase_prob": -1.0},
    ],
)
def test_config_refuses_meaningless_settings(bad: dict) -> None:
    with pytest.raises(ValueError):
        SimConfig(**bad)


def test_popularity_is_skewed() -> None:
    evs = events(Shop(SMALL), 20_000)
    counts = Counter(e["item_id"] for t, e in evs if t == "events.browse")
    top = sorted(counts.values(), reverse=True)
    assert sum(top[: SMALL.n_items // 10]) > 0.4 * sum(top)


def test_users_browse_and_buy_what_they_like() -> None:
    shop = Shop(SMALL)
    evs = events(shop, 20_000)
    aff: dict[str, list[float]] = {t: [] for t in STAGE}
    for t, e in evs:
        aff[t].append(float(shop.true_affinity(e["user_id"], [e["item_id"]])[0]))
    base = float(np.mean(shop.user_taste @ shop.item_vecs.T))
    assert np.mean(aff["events.browse"]) > base + 0.2
    assert np.mean(aff["events.purchase"]) > np.mean(aff["events.browse"])


def test_true_affinity_and_foreign_ids() -> None:
    shop = Shop(SMALL)
    got = shop.true_affinity("u3", ["i0", "i5"])
    assert got.shape == (2,) and np.all(np.abs(got) <= 1 + 1e-9)
    assert got[1] == pytest.approx(float(shop.item_vecs[5] @ shop.user_taste[3]))
    with pytest.raises(ValueError, match="unknown item"):
        shop.true_affinity("u3", ["i999999"])
    with pytest.raises(ValueError, match="unknown user"):
        shop.true_affinity("bob", ["i1"])
    # Lists for strangers or with foreign items are ignored, never an error.
    shop.observe_recommendations({"user_id": "bob", "rec_id": "r", "items": [{"item_id": "i1"}]})
    shop.observe_recommendations({"user_id": "u1", "rec_id": "r", "items": [{"item_id": "x"}]})
    shop.observe_recommendations({"user_id": "u2"})
    events(shop, 1000)


def rec_clicks(seed: int, good: bool, follow: float = 0.5) -> tuple[int, list[dict]]:
    shop = Shop(
        SimConfig(n_users=200, n_items=600, n_categories=10, seed=seed, rec_follow_prob=follow)
    )
    order = {u: np.argsort(shop.affinity(u, np.arange(600))) for u in range(200)}
    attributed = []
    for r in range(30):
        for u in range(200):
            items = order[u][::-1][:10] if good else order[u][:10]
            shop.observe_recommendations(rec(u, items, f"r{r}-{u}"))
        attributed += [e for t, e in events(shop, 400) if t == "events.click" and "rec_id" in e]
    assert shop.rec_clicks == len(attributed)
    return len(attributed), attributed


@pytest.mark.parametrize("seed", [1, 2])
def test_better_recommendations_earn_more_clicks(seed: int) -> None:
    good, clicks = rec_clicks(seed, good=True)
    bad, _ = rec_clicks(seed, good=False)
    assert good > 3 * max(bad, 1) and good > 100
    shop = Shop(SimConfig(n_users=200, n_items=600, n_categories=10, seed=seed))
    for e in clicks:  # the click names the list and the item's place in it
        r, u = e["rec_id"][1:].split("-")
        top = np.argsort(-shop.affinity(int(u), np.arange(600)))[:10]
        assert e["item_id"] == f"i{top[e['position']]}"
    assert Counter(e["position"] for e in clicks)[0] > Counter(e["position"] for e in clicks)[9]


def test_no_follow_no_rec_clicks() -> None:
    assert rec_clicks(3, good=True, follow=0.0)[0] == 0


def test_a_list_gets_one_chance() -> None:
    shop = Shop(
        SimConfig(
            n_users=1,
            n_items=50,
            n_categories=5,
            rec_follow_prob=1.0,
            rec_click_bias=-5.0,
            concurrent_sessions=1,
        )
    )
    shop.observe_recommendations(rec(0, np.arange(3), "r1"))
    evs = events(shop, 20)
    assert sum("rec_id" in e and e["rec_id"] == "r1" and t == "events.click" for t, e in evs) == 1


def test_run_simulation_sends_catalogue_then_paced_events() -> None:
    sent: list[tuple[str, bytes, bytes]] = []
    clock = SteppingClock()
    n = run_simulation(
        lambda t, k, v: sent.append((t, k, v)),
        rate=2000,
        duration_s=0.5,
        config=SMALL,
        poll_recs=lambda: [],
        clock=clock,
        sleep=clock.sleep,
    )
    topics = Counter(t for t, _, _ in sent)
    assert topics["items"] == SMALL.n_items
    assert all(t == "items" for t, _, _ in sent[: SMALL.n_items])
    assert n == 1000 == sum(v for t, v in topics.items() if t.startswith("events."))
    assert clock.t == pytest.approx(0.5, abs=0.011)  # paced over the half second asked for
    stamps = []
    for t, k, v in sent:
        assert b" " not in v  # compact JSON
        d = json.loads(v)
        assert k.decode() == (d["item_id"] if t == "items" else d["user_id"])
        if t != "items":
            stamps.append(d["ts"])
    # Events carry the clock's time when they went out.
    assert stamps == sorted(stamps) and clock.start_ms <= stamps[0] <= stamps[-1] <= clock.now_ms()


def test_pacing_in_ten_ms_batches_without_drift() -> None:
    clock = SteppingClock()
    ticks: list[tuple[float, int]] = []
    n = run_simulation(
        lambda *a: None,
        rate=1000,
        duration_s=2.0,
        config=SMALL,
        on_tick=lambda k: ticks.append((clock.t, k)),
        clock=clock,
        sleep=clock.sleep,
    )
    assert n == 2000
    assert clock.t == pytest.approx(2.0, abs=0.011)
    sizes = [b - a for (_, a), (_, b) in zip(ticks, ticks[1:], strict=False)]
    assert max(sizes) <= 11 and np.mean(sizes) == pytest.approx(10, abs=0.5)
    for t, k in ticks:  # never ahead of schedule, never more than a tick behind
        assert k <= t * 1000 + 1 and k >= min(2000, t * 1000 - 11)


def test_low_rates_sleep_until_the_next_event() -> None:
    clock = SteppingClock()
    n = run_simulation(
        lambda *a: None, rate=5, duration_s=2.0, config=SMALL, clock=clock, sleep=clock.sleep
    )
    assert n == 10 and len(clock.sleeps) == 9
    assert clock.sleeps == pytest.approx([0.2] * 9)


def test_catches_up_without_sleeping_when_behind() -> None:
    clock = SteppingClock()

    def slow_send(topic: str, key: bytes, value: bytes) -> None:
        if topic != "items":
            clock.t += 0.002  # 500 events/s at most, against 1000 asked for

    n = run_simulation(
        slow_send, rate=1000, duration_s=1.0, config=SMALL, clock=clock, sleep=clock.sleep
    )
    assert n == 1000 and clock.sleeps == []


def test_closed_loop_stop_and_bad_rate() -> None:
    stop = threading.Event()
    clock = SteppingClock()
    out: list[dict] = []
    shop = Shop(SMALL)

    def send(topic: str, key: bytes, value: bytes) -> None:
        if topic != "items":
            out.append(json.loads(value))

    def poll() -> list[dict]:  # recommend each recent user their best items
        recent = {e["user_id"] for e in out[-20:]}
        return [
            rec(
                int(u[1:]),
                np.argsort(-shop.affinity(int(u[1:]), np.arange(800)))[:10],
                f"r{len(out)}-{u}",
            )
            for u in recent
        ]

    def on_tick(k: int) -> None:
        if k >= 3000:
            stop.set()

    n = run_simulation(
        send,
        rate=1000,
        duration_s=60,
        config=SMALL,
        poll_recs=poll,
        stop=stop,
        on_tick=on_tick,
        clock=clock,
        sleep=clock.sleep,
    )
    assert 3000 <= n < 3100 and len(out) == n
    assert sum("rec_id" in e for e in out) > 50
    with pytest.raises(ValueError, match="rate"):
        run_simulation(lambda *a: None, rate=0, duration_s=1, config=SMALL)
