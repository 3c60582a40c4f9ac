"""The best HitRate@20 any method could reach on the shop simulator: the simulator's own odds.

Run from the repository root:

    .venv/bin/python docs/analysis/sim_ceiling.py 100000

Before each step of a session the simulator's state fixes the odds of every item being that
step's click, cart or purchase (``feedrec.streams.tools.simulator.Shop._step``: a purchase from the cart, a
click on the current item or a similar one of its category, a cart from the items considered).
An oracle knowing that state lists the 20 likeliest; this script computes those odds without
drawing from the simulator's random stream (so the stream is exactly ``sim:N``'s) and reports,
over the scored events of the evaluator's report window (the last 30% of the time span):

- how often the event's item is in the oracle's 20 (its HitRate@20);
- the oracle's expected HitRate@20 (the mean of its 20 odds, normalised over scored outcomes).

No method sees the session's state, only the events, so nothing can beat this ceiling except
by chance. The figures are quoted in docs/quality.md. Recommendation clicks are left out: the
offline stream shows no lists.
"""

from __future__ import annotations

import heapq
import math
import sys
from collections import defaultdict

import numpy as np

from feedrec.streams.tools.evaluation.datasets import SIM_RATE, SIM_START_MS
from feedrec.streams.tools.evaluation.protocol import split_time
from feedrec.streams.tools.simulator import Shop, SimConfig

K = 20


def _pick_odds(shop: Shop, entries: dict, taste: bool = True) -> list[tuple[int, float, float]]:
    """``(item, affinity, probability)`` of :meth:`Shop._pick` over ``entries`` (without
    ``taste``: as if every affinity were the same)."""
    c = shop.config
    seen = list(entries.values())
    weights, f = [], 1.0
    for e in reversed(seen):
        weights.append((e[0], e[1], math.exp(c.taste_sharpness * e[1] * taste) * f))
        f *= c.consideration_decay
    total = sum(w for _, _, w in weights)
    return [(item, aff, w / total) for item, aff, w in weights]


def _pool(shop: Shop, user: int, cat: int, taste: bool) -> tuple[list[float], list[float]]:
    """The browse pool of ``cat`` for ``user``; without ``taste``, popularity alone and every
    affinity at the funnel's pivot."""
    if taste:
        return shop._pool(user, cat)
    logpop = shop._cat_logpop[cat]
    w = np.exp(logpop - logpop.max())
    return np.cumsum(w / w.sum()).tolist(), [shop.config.funnel_pivot] * len(w)


def scored_odds(shop: Shop, s, taste: bool = True) -> dict[int, float]:
    """Item -> probability that this step of session ``s`` is a click, cart or purchase of it.

    Without ``taste``, as an oracle would reckon them that knows the simulator and the
    session's state but not the user's taste: by popularity and recency alone."""
    c = shop.config
    lift = shop._lift if taste else (lambda _: 1.0)
    odds: dict[int, float] = defaultdict(float)
    carry = 1.0  # probability that the step gets past the checkout
    cart = shop._carts.get(s.user)
    if cart:
        check = 1.0 if s.stage == 3 else c.checkout_prob
        for item, aff, p in _pick_odds(shop, cart, taste):
            buy = check * p * min(1.0, c.purchase_prob * lift(aff))
            odds[item] += buy
            carry -= buy
    if s.stage == 1:
        same = c.click_same_item_prob
        odds[s.item] += carry * same * min(1.0, c.click_prob * lift(s.affinity))
        cat = shop._item_cat[s.item]
        cdf, aff = _pool(shop, s.user, cat, taste)
        k = shop._item_pos[s.item]
        width = cdf[k] - (cdf[k - 1] if k else 0.0)
        if width < 1.0 - 1e-9:
            items = shop.category_items[cat]
            prev = 0.0
            for j, edge in enumerate(cdf):
                p = edge - prev
                prev = edge
                if j != k and p > 0:
                    odds[int(items[j])] += (
                        carry
                        * (1 - same)
                        * p
                        / (1.0 - width)
                        * min(1.0, c.click_prob * lift(aff[j]))
                    )
        else:
            odds[s.item] += carry * (1 - same) * min(1.0, c.click_prob * lift(s.affinity))
    elif s.stage == 2:
        for item, aff, p in _pick_odds(shop, s.seen, taste):
            if not cart or item not in cart:
                odds[item] += carry * p * min(1.0, c.cart_prob * lift(aff))
    return odds


def user_odds(shop: Shop, user: int, taste: bool) -> dict[int, float]:
    """:func:`scored_odds` averaged over the user's open sessions: the next session to act is
    drawn uniformly from all open ones, so given that it is this user's, each of theirs is as
    likely."""
    mine = [s for s in shop._sessions if s.user == user]
    odds: dict[int, float] = defaultdict(float)
    for s in mine:
        for item, p in scored_odds(shop, s, taste).items():
            odds[item] += p / len(mine)
    return odds


#: The oracles: what each knows beyond the events.
ORACLES = {
    "knows the acting session's state and the user's taste": lambda shop, s: scored_odds(shop, s),
    "knows the state of every open session of the user, not which acts, and their taste": lambda shop, s: (
        user_odds(shop, s.user, True)
    ),
    "knows the state of every open session of the user, not which acts, nor their taste": lambda shop, s: (
        user_odds(shop, s.user, False)
    ),
}


def main(n: int) -> None:
    shop = Shop(SimConfig(seed=0))
    records: list[tuple[int, list[bool], float]] = []  # (ts, hit per oracle, expected hit)
    step_of = shop._step
    now = [0]

    def step(s):
        odds = (
            [oracle(shop, s) for oracle in ORACLES.values()]
            if shop._shown.get(s.user) is None
            else None
        )
        kind, entry = step_of(s)
        if kind != "browse" and odds is not None:
            hits = [entry[0] in heapq.nlargest(K, o, key=o.get) for o in odds]
            first = odds[0]
            total = sum(first.values())
            top = heapq.nlargest(K, first, key=first.get)
            records.append((now[0], hits, sum(first[i] for i in top) / total if total else 0.0))
        return kind, entry

    shop._step = step
    first = last = None
    for k in range(0, n, 100):
        now[0] = SIM_START_MS + int(k / SIM_RATE * 1000)
        first = now[0] if first is None else first
        last = now[0]
        shop.next_events(now[0], min(100, n - k))
    split = split_time(first, last, 0.7)
    report = [(hits, exp) for ts, hits, exp in records if ts >= split]
    print(f"{len(report)} scored events in the report window (recommendation clicks: none)")
    for j, name in enumerate(ORACLES):
        print(f"oracle that {name}: HitRate@{K} {sum(h[j] for h, _ in report) / len(report):.4f}")
    print(f"expected HitRate@{K} of the first: {sum(e for _, e in report) / len(report):.4f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
