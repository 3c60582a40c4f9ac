"""A seeded, closed-loop shop: users with latent tastes browse, click, cart and buy, and react to
the recommendations they are shown.

Items belong to categories and carry latent vectors near their category's centre; popularity is
Zipf-skewed; each user likes a couple of categories. A session starts with a browse drawn from
taste x popularity, tends to stay near the current item's category, and funnels browse -> click ->
cart -> purchase with probabilities that rise with the user's true affinity for the item. When a
user has an unseen recommendation list, they look at it with ``rec_follow_prob`` and click an
item with a probability that rises with its true affinity, so better lists earn more clicks.
The pure part (:class:`Shop`) knows nothing of Kafka; :func:`run_simulation` only paces it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

TOPICS = {t: f"events.{t}" for t in ("browse", "click", "cart", "purchase")}


@dataclass(frozen=True, slots=True)
class SimConfig:
    n_users: int = 2000
    n_items: int = 5000
    n_categories: int = 50
    dim: int = 8
    seed: int = 0
    #: Zipf exponent of item popularity.
    popularity_skew: float = 1.1
    #: How sharply users prefer items they like (softmax temperature inverse).
    taste_sharpness: float = 3.0
    #: Sessions open at once; a step advances one of them.
    concurrent_sessions: int = 300
    #: Chance a session ends after any event.
    session_end_prob: float = 0.12
    #: Chance the next browse stays in the current item's category.
    same_category_prob: float = 0.5
    #: Funnel step probabilities at neutral affinity (scaled by affinity).
    click_prob: float = 0.35
    cart_prob: float = 0.3
    purchase_prob: float = 0.4
    #: Chance a user with a fresh recommendation list looks at it on their next step.
    rec_follow_prob: float = 0.5
    #: Click probability on a shown item = sigmoid(rec_click_slope * (affinity - rec_click_bias)).
    rec_click_slope: float = 4.0
    rec_click_bias: float = 0.9


def _sigmoid(x: np.ndarray | float) -> np.ndarray | float:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass(slots=True)
class _Session:
    user: int
    session_id: str
    item: int = -1
    #: 0 nothing yet, 1 browsed, 2 clicked, 3 carted.
    stage: int = 0
    rec_id: str | None = None
    position: int | None = None


@dataclass(slots=True)
class _Shown:
    rec_id: str
    items: list[int]
    seen: bool = False


@dataclass
class Shop:
    config: SimConfig = field(default_factory=SimConfig)

    def __post_init__(self) -> None:
        c = self.config
        self.rng = np.random.default_rng(c.seed)
        rng = self.rng
        centres = rng.normal(size=(c.n_categories, c.dim))
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        cat_weights = 1.0 / np.arange(1, c.n_categories + 1) ** 0.7
        self.item_category = rng.choice(c.n_categories, size=c.n_items, p=cat_weights / cat_weights.sum())
        vecs = centres[self.item_category] + 0.45 * rng.normal(size=(c.n_items, c.dim))
        self.item_vecs = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
        ranks = rng.permutation(c.n_items) + 1
        pop = 1.0 / ranks**c.popularity_skew
        self.log_popularity = np.log(pop / pop.sum())
        cat_price = np.exp(rng.normal(3.0, 0.8, size=c.n_categories))
        self.item_price = np.round(cat_price[self.item_category] * np.exp(rng.normal(0, 0.3, c.n_items)), 2)
        favourites = np.stack([rng.choice(c.n_categories, size=2, replace=False)
                               for _ in range(c.n_users)])
        taste = centres[favourites].mean(axis=1) + 0.3 * rng.normal(size=(c.n_users, c.dim))
        self.user_taste = taste / np.linalg.norm(taste, axis=1, keepdims=True)
        self.category_items = [np.flatnonzero(self.item_category == k) for k in range(c.n_categories)]
        self._cdf: dict[int, np.ndarray] = {}
        self._sessions: list[_Session] = []
        self._session_count = 0
        self._event_count = 0
        self._shown: dict[int, _Shown] = {}
        self.rec_clicks = 0

    # -- facts -------------------------------------------------------------------------------

    @staticmethod
    def user_id(u: int) -> str:
        return f"u{u}"

    @staticmethod
    def item_id(i: int) -> str:
        return f"i{i}"

    def catalogue(self) -> list[dict]:
        """The ``items`` topic records."""
        return [
            {"item_id": self.item_id(i), "category": f"c{self.item_category[i]}",
             "price": float(self.item_price[i]), "available": True}
            for i in range(self.config.n_items)
        ]

    def affinity(self, user: int, items: np.ndarray) -> np.ndarray:
        return self.item_vecs[items] @ self.user_taste[user]

    def true_affinity(self, user_id: str, item_ids: list[str]) -> np.ndarray:
        """Cosine between the user's taste and each item (for offline evaluation)."""
        return self.affinity(int(user_id[1:]), np.array([int(i[1:]) for i in item_ids]))

    # -- choices -----------------------------------------------------------------------------

    def _browse_cdf(self, user: int) -> np.ndarray:
        cdf = self._cdf.get(user)
        if cdf is None:
            logits = self.config.taste_sharpness * (self.item_vecs @ self.user_taste[user])
            logits += self.log_popularity
            p = np.exp(logits - logits.max())
            cdf = np.cumsum(p)
            cdf /= cdf[-1]
            if len(self._cdf) > 5000:
                self._cdf.clear()
            self._cdf[user] = cdf
        return cdf

    def _pick_browse(self, s: _Session) -> int:
        rng = self.rng
        if s.item >= 0 and rng.random() < self.config.same_category_prob:
            pool = self.category_items[self.item_category[s.item]]
            logits = self.config.taste_sharpness * self.affinity(s.user, pool)
            logits += self.log_popularity[pool]
            p = np.exp(logits - logits.max())
            return int(pool[np.searchsorted(np.cumsum(p), rng.random() * p.sum())])
        cdf = self._browse_cdf(s.user)
        return int(min(np.searchsorted(cdf, rng.random()), len(cdf) - 1))

    def _from_recommendations(self, s: _Session) -> tuple[int, int] | None:
        shown = self._shown.get(s.user)
        if shown is None or shown.seen or not shown.items:
            return None
        if self.rng.random() >= self.config.rec_follow_prob:
            return None
        shown.seen = True
        c = self.config
        items = np.array(shown.items)
        p = _sigmoid(c.rec_click_slope * (self.affinity(s.user, items) - c.rec_click_bias))
        p = p / (1.0 + 0.15 * np.arange(len(items)))  # users look at the top first
        for pos in np.flatnonzero(self.rng.random(len(items)) < p):
            return int(items[pos]), int(pos)
        return None

    def _step(self, s: _Session) -> str:
        """Advance one session by one event; returns the event type."""
        c = self.config
        rng = self.rng
        picked = self._from_recommendations(s)
        if picked is not None:
            s.item, pos = picked
            s.rec_id, s.position = self._shown[s.user].rec_id, pos
            s.stage = 2
            self.rec_clicks += 1
            return "click"
        if s.stage >= 1:
            aff = float(self.affinity(s.user, np.array([s.item]))[0])
            lift = 2.0 * float(_sigmoid(4.0 * (aff - 0.5)))
            p_next = (c.click_prob, c.cart_prob, c.purchase_prob)[s.stage - 1] * lift
            if s.stage < 4 and rng.random() < p_next:
                s.stage += 1
                return ("click", "cart", "purchase")[s.stage - 2]
        s.item = self._pick_browse(s)
        s.stage, s.rec_id, s.position = 1, None, None
        return "browse"

    def _new_session(self) -> _Session:
        user = int(self.rng.integers(self.config.n_users))
        self._session_count += 1
        return _Session(user, f"s{self.config.seed}-{self._session_count}")

    def next_events(self, now_ms: int, n: int) -> list[tuple[str, dict]]:
        """The next ``n`` events as ``(topic, event)``, all stamped ``now_ms``."""
        c = self.config
        sessions = self._sessions
        while len(sessions) < c.concurrent_sessions:
            sessions.append(self._new_session())
        out: list[tuple[str, dict]] = []
        picks = self.rng.integers(len(sessions), size=n)
        for k in picks.tolist():
            s = sessions[k]
            kind = self._step(s)
            self._event_count += 1
            ev = {"event_id": f"sim{c.seed}-{self._event_count}", "user_id": self.user_id(s.user),
                  "item_id": self.item_id(s.item), "ts": now_ms, "session_id": s.session_id,
                  "category": f"c{self.item_category[s.item]}", "price": float(self.item_price[s.item])}
            if s.rec_id is not None:
                ev["rec_id"], ev["position"] = s.rec_id, s.position
            if kind == "purchase":
                ev["quantity"] = 1
            out.append((TOPICS[kind], ev))
            if kind == "purchase" or self.rng.random() < c.session_end_prob:
                sessions[k] = self._new_session()
        return out

    def observe_recommendations(self, rec: dict) -> None:
        """Remember the latest list a user was shown; they may act on it at their next step."""
        user_id = rec.get("user_id", "")
        if not user_id.startswith("u") or not user_id[1:].isdigit():
            return
        items = []
        for entry in rec.get("items", []):
            item_id = entry.get("item_id", "")
            if item_id.startswith("i") and item_id[1:].isdigit() and int(item_id[1:]) < self.config.n_items:
                items.append(int(item_id[1:]))
        self._shown[int(user_id[1:])] = _Shown(rec.get("rec_id", ""), items)


def run_simulation(
    producer_send: Callable[[str, bytes, bytes], None],
    rate: float,
    duration_s: float,
    config: SimConfig = SimConfig(),
    poll_recs: Callable[[], list[dict]] | None = None,
    stop: threading.Event | None = None,
    on_tick: Callable[[int], None] | None = None,
) -> int:
    """Publish the catalogue, then events at ``rate``/s for ``duration_s``; returns events sent.

    Events go out in small batches every ~10 ms against an absolute schedule, so the rate does
    not drift; a producer that falls behind catches up without sleeping.
    """
    shop = Shop(config)
    for item in shop.catalogue():
        producer_send("items", item["item_id"].encode(), json.dumps(item).encode())
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    start = time.monotonic()
    sent = 0
    total = int(rate * duration_s)
    while sent < total and not (stop is not None and stop.is_set()):
        elapsed = time.monotonic() - start
        due = min(total, int(elapsed * rate) + 1)
        if due <= sent:
            time.sleep(min(0.01, (sent + 1) / rate - elapsed))
            continue
        if poll_recs is not None:
            for rec in poll_recs():
                shop.observe_recommendations(rec)
        now_ms = int(time.time() * 1000)
        for topic, ev in shop.next_events(now_ms, min(due - sent, 5000)):
            producer_send(topic, ev["user_id"].encode(), dumps(ev).encode())
            sent += 1
        if on_tick is not None:
            on_tick(sent)
    return sent
