"""A seeded, closed-loop shop: users with latent tastes browse, click, cart and buy, and react to
the recommendations they are shown.

Items belong to categories and carry unit latent vectors near their category's centre; popularity
is Zipf-skewed; prices are log-normal around a per-category level. Each user's taste is a weighted
mixture of a few favourite categories, and some users are far more active than others.

A session starts with a browse drawn from ``softmax(taste_sharpness * taste . item + log
popularity)`` and tends to stay in the current item's category. Sessions move between items, as
real ones do, so that neither "the item just viewed" nor any other single signal predicts the next
action perfectly:

- after a browse the user may click: the browsed item itself with ``click_same_item_prob``,
  otherwise a similar item from a listing of the same category (drawn like a browse), which then
  becomes the session's current item;
- after a click they may cart an item from the session's consideration set (the last
  ``consideration_size`` items browsed or clicked, weighted by recency and affinity);
- the cart belongs to the user and outlives the session (at most ``cart_size`` items, the oldest
  dropped); right after carting, and with ``checkout_prob`` at any other step, the user picks a
  cart item to buy, so items carted in one session may be bought in a later one.

Each step happens with a probability that rises with the user's true affinity for its item. When a
user has an unseen recommendation list, their next step inspects it with ``rec_follow_prob``: they
scan it top-down and click the first item that attracts them, with a probability that rises with
its true affinity (a sigmoid) and falls with its position. So better lists earn more clicks; the
click, and any cart or purchase of that item it leads to, carries ``rec_id`` and ``position``.

The pure part (:class:`Shop`) knows nothing of Kafka; :func:`run_simulation` only paces it.
Speed comes from caching per-user sampling tables as Python lists (``bisect`` beats small numpy
calls) and drawing uniforms in bulk; on one core it produces a few tens of thousands events/s.
"""

from __future__ import annotations

import bisect
import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from feedrec.model.clock import Clock, SystemClock
from feedrec.streams.topics import EVENT_TOPIC, ITEMS_TOPIC


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything that shapes the simulated shop; the same config and seed give the same events."""

    n_users: int = 2000
    n_items: int = 5000
    n_categories: int = 50
    #: Dimension of the latent taste / item space.
    dim: int = 8
    seed: int = 0
    #: Zipf exponent of item popularity (1.1: the top 10% of items get most of the traffic).
    popularity_skew: float = 1.1
    #: Zipf exponent of category sizes.
    category_skew: float = 0.7
    #: Spread of item vectors around their category centre (smaller: tighter clusters).
    item_spread: float = 0.45
    #: Spread of a user's taste around the mixture of their favourite categories.
    taste_noise: float = 0.3
    #: Each user likes between 1 and this many categories.
    max_favourites: int = 3
    #: Sigma of the log-normal user activity weights (0: every user equally active).
    user_activity_sigma: float = 1.0
    #: Inverse temperature of the browse softmax over taste . item.
    taste_sharpness: float = 3.0
    #: Mean and sigma of log(category price level), and sigma of item price around it.
    price_log_mean: float = 3.0
    price_log_sigma: float = 0.8
    item_price_sigma: float = 0.3
    #: Sessions open at once; each event advances one of them picked at random.
    concurrent_sessions: int = 300
    #: Chance a session ends after any event (a purchase always ends it).
    session_end_prob: float = 0.12
    #: Chance the next browse stays in the current item's category.
    same_category_prob: float = 0.5
    #: Funnel step probabilities browse->click, click->cart, checkout->purchase at affinity
    #: ``funnel_pivot``; they are scaled by ``2 * sigmoid(funnel_slope * (affinity - pivot))``.
    click_prob: float = 0.35
    cart_prob: float = 0.33
    purchase_prob: float = 0.3
    funnel_slope: float = 4.0
    funnel_pivot: float = 0.5
    #: Chance a click is on the item just browsed rather than a similar one from its category.
    click_same_item_prob: float = 0.3
    #: Items a session remembers as cart candidates, and the weight lost per step back in time.
    consideration_size: int = 8
    consideration_decay: float = 0.6
    #: Items a user's cart holds across sessions (the oldest is dropped when it overflows).
    cart_size: int = 10
    #: Chance a user with a non-empty cart heads for checkout on a step other than right after
    #: carting.
    checkout_prob: float = 0.03
    #: Chance a user with a fresh recommendation list inspects it on their next step.
    rec_follow_prob: float = 0.5
    #: Click probability of a shown item = sigmoid(slope * (affinity - bias)) / (1 + decay * pos).
    rec_click_slope: float = 4.0
    rec_click_bias: float = 0.9
    rec_position_decay: float = 0.15

    def __post_init__(self) -> None:
        """Refuse configs that would make the shop meaningless rather than fail obscurely later."""
        if (
            min(
                self.n_users,
                self.n_items,
                self.n_categories,
                self.dim,
                self.concurrent_sessions,
                self.max_favourites,
                self.consideration_size,
                self.cart_size,
            )
            < 1
        ):
            raise ValueError(f"sizes must be positive: {self}")
        if self.n_categories > self.n_items:
            raise ValueError("n_categories must not exceed n_items")
        for name in (
            "session_end_prob",
            "same_category_prob",
            "click_prob",
            "cart_prob",
            "purchase_prob",
            "rec_follow_prob",
            "click_same_item_prob",
            "consideration_decay",
            "checkout_prob",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability, got {getattr(self, name)}")


def _sigmoid(x: float) -> float:
    """Logistic function for scalars (math is cheaper than numpy on one value)."""
    return 1.0 / (1.0 + math.exp(-x))


def _cdf(weights: np.ndarray) -> list[float]:
    """Normalised cumulative weights as a list, for sampling with :func:`bisect.bisect`."""
    c = np.cumsum(weights)
    return (c / c[-1]).tolist()


#: An item a user considered, in a session's consideration set or in their cart: ``(item,
#: affinity, rec_id, position)``; the last two name the list it was clicked from, if any, so that
#: carting and buying it later are attributed to that list. A tuple rather than a dataclass since
#: every browse makes one, and a tuple is ~20x cheaper to build.
_Seen = tuple[int, float, str | None, int | None]


@dataclass(slots=True)
class _Session:
    """One open session; ``stage`` is the last step taken (0 none, 1 browsed, 2 clicked, 3 carted)
    and ``seen`` its consideration set by item, oldest first."""

    user: int
    session_id: str
    item: int = -1
    affinity: float = 0.0
    stage: int = 0
    seen: dict[int, _Seen] = field(default_factory=dict)


@dataclass(slots=True)
class _Shown:
    """The latest list a user was shown; ``seen`` once they have had their chance to act on it."""

    rec_id: str
    items: np.ndarray
    seen: bool = False


@dataclass
class Shop:
    """The simulated shop and its users; deterministic for a given :class:`SimConfig`."""

    config: SimConfig = field(default_factory=SimConfig)

    def __post_init__(self) -> None:
        """Draw the catalogue, popularity, prices and users' tastes from the seed."""
        c = self.config
        self.rng = np.random.default_rng(c.seed)
        rng = self.rng
        centres = rng.normal(size=(c.n_categories, c.dim))
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        cat_w = 1.0 / np.arange(1, c.n_categories + 1) ** c.category_skew
        # Every category gets at least one item; the rest follow the skewed sizes.
        self.item_category = np.concatenate(
            [
                np.arange(c.n_categories),
                rng.choice(c.n_categories, size=c.n_items - c.n_categories, p=cat_w / cat_w.sum()),
            ]
        )
        rng.shuffle(self.item_category)
        vecs = centres[self.item_category] + c.item_spread * rng.normal(size=(c.n_items, c.dim))
        self.item_vecs = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
        pop = 1.0 / (rng.permutation(c.n_items) + 1.0) ** c.popularity_skew
        self.log_popularity = np.log(pop / pop.sum())
        cat_level = rng.normal(c.price_log_mean, c.price_log_sigma, size=c.n_categories)
        self.item_price = np.round(
            np.exp(cat_level[self.item_category] + rng.normal(0, c.item_price_sigma, c.n_items)), 2
        )
        self.item_price = np.maximum(self.item_price, 0.01)
        # Tastes: a Dirichlet-weighted mixture of 1..max_favourites favourite categories.
        taste = np.empty((c.n_users, c.dim))
        n_fav = rng.integers(1, min(c.max_favourites, c.n_categories) + 1, size=c.n_users)
        for u in range(c.n_users):
            fav = rng.choice(c.n_categories, size=n_fav[u], replace=False)
            taste[u] = rng.dirichlet(np.ones(n_fav[u])) @ centres[fav]
        taste += c.taste_noise * rng.normal(size=taste.shape)
        self.user_taste = taste / np.linalg.norm(taste, axis=1, keepdims=True)
        self._user_cdf = _cdf(rng.lognormal(0.0, c.user_activity_sigma, c.n_users))
        self.category_items = [
            np.flatnonzero(self.item_category == k) for k in range(c.n_categories)
        ]
        self._cat_vecs = [self.item_vecs[p] for p in self.category_items]
        self._cat_logpop = [self.log_popularity[p] for p in self.category_items]
        self._item_pos = [0] * c.n_items  # an item's place in its category's list
        for p in self.category_items:
            for j, i in enumerate(p.tolist()):
                self._item_pos[i] = j
        # Per-event lookups as Python lists: indexing them is much cheaper than numpy scalars.
        self._item_ids = [f"i{i}" for i in range(c.n_items)]
        self._item_cat = self.item_category.tolist()
        self._cat_names = [f"c{k}" for k in range(c.n_categories)]
        self._prices = self.item_price.tolist()
        self._user_ids = [f"u{u}" for u in range(c.n_users)]
        self._user_cat_cdf: dict[int, list[float]] = {}
        self._pool_cache: dict[tuple[int, int], tuple[list[float], list[float]]] = {}
        #: One uniform draw; a generator's ``__next__`` is several times cheaper to call than a
        #: method, and the simulator makes several draws per event.
        self._u: Callable[[], float] = self._uniforms().__next__
        self._sessions: list[_Session] = []
        self._session_count = 0
        self._event_count = 0
        self._shown: dict[int, _Shown] = {}
        #: Each user's cart by item, oldest first; it outlives their sessions.
        self._carts: dict[int, dict[int, _Seen]] = {}
        #: Clicks made on recommended items so far (the closed loop's success signal).
        self.rec_clicks = 0

    # -- facts -------------------------------------------------------------------------------

    @staticmethod
    def user_id(u: int) -> str:
        """External id of user index ``u``."""
        return f"u{u}"

    @staticmethod
    def item_id(i: int) -> str:
        """External id of item index ``i``."""
        return f"i{i}"

    def catalogue(self) -> list[dict]:
        """The ``items`` topic records (all items available)."""
        return [
            {
                "item_id": self._item_ids[i],
                "category": self._cat_names[self._item_cat[i]],
                "price": self._prices[i],
                "available": True,
            }
            for i in range(self.config.n_items)
        ]

    def affinity(self, user: int, items: np.ndarray) -> np.ndarray:
        """True affinity (cosine of taste and item vectors, in [-1, 1]) by indexes."""
        return self.item_vecs[items] @ self.user_taste[user]

    def true_affinity(self, user_id: str, item_ids: list[str]) -> np.ndarray:
        """Cosine between the user's taste and each item, for offline evaluation of rec lists."""
        user = self._index(user_id, "u", self.config.n_users)
        if user is None:
            raise ValueError(f"unknown user id {user_id!r}")
        idx = [self._index(i, "i", self.config.n_items) for i in item_ids]
        bad = [i for i, k in zip(item_ids, idx, strict=True) if k is None]
        if bad:
            raise ValueError(f"unknown item ids {bad[:5]!r}")
        return self.affinity(user, np.asarray(idx, dtype=np.int64))

    @staticmethod
    def _index(ext: str, prefix: str, n: int) -> int | None:
        """Index of an external id like ``u12``, or None when it is not one of ours."""
        if not isinstance(ext, str) or not ext.startswith(prefix) or not ext[1:].isdigit():
            return None
        k = int(ext[1:])
        return k if k < n else None

    # -- randomness and choices ----------------------------------------------------------------

    def _uniforms(self) -> Iterator[float]:
        """Uniform draws, drawn in bulk when needed (a scalar rng call costs ~10x more)."""
        while True:
            yield from self.rng.random(4096).tolist()

    def _category_cdf(self, user: int) -> list[float]:
        """Exact marginal of the browse softmax over categories, cached per user (small)."""
        cdf = self._user_cat_cdf.get(user)
        if cdf is None:
            logits = self.config.taste_sharpness * (self.item_vecs @ self.user_taste[user])
            logits += self.log_popularity
            w = np.bincount(
                self.item_category,
                weights=np.exp(logits - logits.max()),
                minlength=self.config.n_categories,
            )
            cdf = self._user_cat_cdf[user] = _cdf(w)
        return cdf

    def _pool(self, user: int, cat: int) -> tuple[list[float], list[float]]:
        """Browse softmax within one category (cdf) and the user's affinities for its items."""
        key = (user, cat)
        hit = self._pool_cache.get(key)
        if hit is None:
            aff = self._cat_vecs[cat] @ self.user_taste[user]
            logits = self.config.taste_sharpness * aff + self._cat_logpop[cat]
            hit = (_cdf(np.exp(logits - logits.max())), aff.tolist())
            if len(self._pool_cache) >= 200_000:  # bound memory on huge configs
                self._pool_cache.clear()
            self._pool_cache[key] = hit
        return hit

    def _lift(self, affinity: float) -> float:
        """Factor on a funnel step's base probability: 1 at ``funnel_pivot``, up to 2 above it."""
        c = self.config
        return 2.0 * _sigmoid(c.funnel_slope * (affinity - c.funnel_pivot))

    def _pick(self, entries: dict[int, _Seen]) -> _Seen:
        """One of a few remembered items, weighted by ``exp(taste_sharpness * affinity)`` and by
        recency: each step further back multiplies the weight by ``consideration_decay``."""
        seen = list(entries.values())
        c = self.config
        acc, f = 0.0, 1.0
        cum: list[float] = []
        for e in reversed(seen):
            acc += math.exp(c.taste_sharpness * e[1]) * f
            cum.append(acc)
            f *= c.consideration_decay
        k = min(bisect.bisect(cum, self._u() * acc), len(cum) - 1)
        return seen[-1 - k]

    def _consider(
        self,
        s: _Session,
        item: int,
        affinity: float,
        rec_id: str | None = None,
        position: int | None = None,
    ) -> _Seen:
        """Make ``item`` the session's current item and its most recent consideration."""
        s.item, s.affinity = item, affinity
        seen = s.seen
        seen.pop(item, None)
        e = seen[item] = (item, affinity, rec_id, position)
        if len(seen) > self.config.consideration_size:
            del seen[next(iter(seen))]
        return e

    def _browse(self, s: _Session) -> _Seen:
        """Move the session to a new item: same category or taste x popularity over all items.

        Sampling the category from its exact marginal and then the item within it draws from
        the full softmax without a per-user table over every item.
        """
        if s.item >= 0 and self._u() < self.config.same_category_prob:
            cat = self._item_cat[s.item]
        else:
            cdf = self._category_cdf(s.user)
            cat = min(bisect.bisect(cdf, self._u()), len(cdf) - 1)
        cdf, aff = self._pool(s.user, cat)
        j = min(bisect.bisect(cdf, self._u()), len(cdf) - 1)
        s.stage = 1
        return self._consider(s, int(self.category_items[cat][j]), aff[j])

    def _similar(self, s: _Session) -> tuple[int, float]:
        """Another item from the current item's category, drawn as a browse would be (the listing
        or "similar items" a click lands on).

        The current item is left out of the draw (its slice of the cdf is skipped), otherwise
        browses concentrating on a user's favourites would make ``click_same_item_prob``
        understate how often clicks land on the item just browsed.
        """
        cat = self._item_cat[s.item]
        cdf, aff = self._pool(s.user, cat)
        k = self._item_pos[s.item]
        lo = cdf[k - 1] if k else 0.0
        width = cdf[k] - lo
        if width >= 1.0 - 1e-9:  # nothing else in the category gets any weight
            return s.item, s.affinity
        r = self._u() * (1.0 - width)
        j = min(bisect.bisect(cdf, r if r < lo else r + width), len(cdf) - 1)
        return int(self.category_items[cat][j]), aff[j]

    def _from_recommendations(self, s: _Session) -> _Seen | None:
        """Let the user act on an unseen list; the clicked item, if they clicked one."""
        shown = self._shown.get(s.user)
        if shown is None or shown.seen:
            return None
        shown.seen = True  # one chance per list: the next step either uses it or ignores it
        if self._u() >= self.config.rec_follow_prob or len(shown.items) == 0:
            return None
        c = self.config
        affs = (self.item_vecs[shown.items] @ self.user_taste[s.user]).tolist()
        for pos, aff in enumerate(affs):  # scanned top-down: the first attractive item wins
            p = _sigmoid(c.rec_click_slope * (aff - c.rec_click_bias))
            if self._u() < p / (1.0 + c.rec_position_decay * pos):
                s.stage = 2
                self.rec_clicks += 1
                return self._consider(s, int(shown.items[pos]), aff, shown.rec_id, pos)
        return None

    def _step(self, s: _Session) -> tuple[str, _Seen]:
        """Advance one session by one event; returns its type and item."""
        clicked = self._from_recommendations(s)
        if clicked is not None:
            return "click", clicked
        c = self.config
        cart = self._carts.get(s.user)
        if cart and (s.stage == 3 or self._u() < c.checkout_prob):
            e = self._pick(cart)
            if self._u() < c.purchase_prob * self._lift(e[1]):
                del cart[e[0]]
                return "purchase", e
        if s.stage == 1:
            if self._u() < c.click_same_item_prob:
                item, aff = s.item, s.affinity
            else:
                item, aff = self._similar(s)
            if self._u() < c.click_prob * self._lift(aff):
                s.stage = 2
                return "click", self._consider(s, item, aff)
        elif s.stage == 2:
            e = self._pick(s.seen)
            if cart is None:
                cart = self._carts[s.user] = {}
            if e[0] not in cart and self._u() < c.cart_prob * self._lift(e[1]):
                cart[e[0]] = e
                if len(cart) > c.cart_size:
                    del cart[next(iter(cart))]
                s.stage = 3
                return "cart", e
        return "browse", self._browse(s)

    def _new_session(self) -> _Session:
        """A fresh session for a user drawn by activity."""
        user = min(bisect.bisect(self._user_cdf, self._u()), self.config.n_users - 1)
        self._session_count += 1
        return _Session(user, f"s{self.config.seed}-{self._session_count}")

    # -- the stream ----------------------------------------------------------------------------

    def next_events(self, now_ms: int, n: int) -> list[tuple[str, dict]]:
        """The next ``n`` events as ``(topic, event)``, all stamped ``ts = now_ms``."""
        c = self.config
        sessions = self._sessions
        while len(sessions) < c.concurrent_sessions:
            sessions.append(self._new_session())
        out: list[tuple[str, dict]] = []
        picks = self.rng.integers(len(sessions), size=n).tolist()
        seed = c.seed
        for k in picks:
            s = sessions[k]
            kind, (item, _, rec_id, position) = self._step(s)
            self._event_count += 1
            ev = {
                "event_id": f"sim{seed}-{self._event_count}",
                "user_id": self._user_ids[s.user],
                "item_id": self._item_ids[item],
                "ts": now_ms,
                "session_id": s.session_id,
                "category": self._cat_names[self._item_cat[item]],
                "price": self._prices[item],
            }
            if rec_id is not None:
                ev["rec_id"] = rec_id
                ev["position"] = position
            if kind == "purchase":
                r = self._u()
                ev["quantity"] = 1 + (r < 0.15) + (r < 0.04)
            out.append((EVENT_TOPIC[kind], ev))
            if kind == "purchase" or self._u() < c.session_end_prob:
                sessions[k] = self._new_session()
        return out

    def observe_recommendations(self, rec: dict) -> None:
        """Remember the latest list a user was shown; their next step may act on it.

        Lists for users or items this shop does not know are ignored (foreign traffic).
        """
        user = self._index(rec.get("user_id", ""), "u", self.config.n_users)
        if user is None:
            return
        items = [
            k
            for e in rec.get("items") or ()
            if isinstance(e, dict)
            and (k := self._index(e.get("item_id", ""), "i", self.config.n_items)) is not None
        ]
        self._shown[user] = _Shown(str(rec.get("rec_id", "")), np.asarray(items, dtype=np.int64))


def run_simulation(
    producer_send: Callable[[str, bytes, bytes], None],
    rate: float,
    duration_s: float,
    config: SimConfig = SimConfig(),
    poll_recs: Callable[[], list[dict]] | None = None,
    stop: threading.Event | None = None,
    on_tick: Callable[[int], None] | None = None,
    *,
    tick_s: float = 0.01,
    clock: Clock | None = None,
    sleep: Callable[[float], object] | None = None,
) -> int:
    """Publish the catalogue to ``items``, then ``rate`` events/s for ``duration_s``; returns
    the number of events sent (catalogue records not counted).

    Events go out in batches every ``tick_s`` against an absolute schedule (event ``k`` is due at
    ``k / rate`` seconds after the start), so the rate never drifts; when sending falls behind,
    the next batches are larger and no time is spent sleeping. Between batches ``poll_recs`` is
    called and its lists are fed to the shop, closing the loop; ``on_tick`` gets the running
    total. ``stop`` ends the run early (also during a sleep). The schedule runs on ``clock``
    (:class:`~feedrec.model.clock.SystemClock` by default), which also stamps the events, and
    waits with ``sleep``.
    """
    if not rate > 0 or not math.isfinite(rate):
        raise ValueError(f"rate must be a positive number of events/s, got {rate}")
    if duration_s < 0:
        raise ValueError(f"duration_s must not be negative, got {duration_s}")
    clock = clock if clock is not None else SystemClock()
    wait_for: Callable[[float], object] = (
        sleep if sleep is not None else stop.wait if stop is not None else time.sleep
    )
    shop = Shop(config)
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    for item in shop.catalogue():
        producer_send(ITEMS_TOPIC, item["item_id"].encode(), dumps(item).encode())
    total = int(rate * duration_s)
    start = clock.monotonic()
    sent = 0
    while sent < total and not (stop is not None and stop.is_set()):
        # + 1: the first event goes out at once.
        due = min(total, int((clock.monotonic() - start) * rate) + 1)
        if due > sent:
            if poll_recs is not None:
                for rec in poll_recs():
                    shop.observe_recommendations(rec)
            for topic, ev in shop.next_events(clock.now_ms(), min(due - sent, 10_000)):
                producer_send(topic, ev["user_id"].encode(), dumps(ev).encode())
            sent += min(due - sent, 10_000)
            if on_tick is not None:
                on_tick(sent)
        # Wake at the next tick boundary, or later when the next event is not due by then.
        now = clock.monotonic() - start
        wait = max((int(now / tick_s) + 1) * tick_s, sent / rate) - now
        if sent < total and sent >= min(total, int(now * rate) + 1):
            wait_for(wait)
    return sent
