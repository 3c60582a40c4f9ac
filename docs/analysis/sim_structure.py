"""What the shop simulator's own rules reach when fed only the events: a ceiling for methods
that learn from the stream.

Run from the repository root:

    .venv/bin/python docs/analysis/sim_structure.py sim:100000

``docs/analysis/sim_ceiling.py`` lets oracles read the simulator's hidden state. This script
sees only what a method sees (the events, in time order, with their session ids) but scores
items with the rules and constants of ``feedrec.streams.tools.simulator.Shop._step``, the state they need
rebuilt from the events:

- each session's stage is its latest event's type, its consideration set its last
  ``consideration_size`` browsed or clicked items;
- the user's cart is what they carted and have not bought;
- a session is open while it has had an event in the last ``--open-s`` seconds; the next step
  is equally likely to be any open session's (the simulator draws sessions uniformly);
- the listing a click lands on is the category's items by their count so far (the user's taste
  is unknown), the consideration set and the cart weighted by recency alone.

It prints HitRate@20 over the scored events of the evaluator's report window (the last 30% of
the time span). No method is told these rules; the figure says how much of the oracle's lead
is reachable from the events by knowing them. The figures are quoted in docs/quality.md.
"""

from __future__ import annotations

import argparse
import heapq
from collections import Counter, defaultdict

from feedrec.streams.tools.evaluation.datasets import load_dataset
from feedrec.streams.tools.evaluation.protocol import SCORED_TYPES, split_time
from feedrec.streams.tools.simulator import SimConfig

K = 20


class _Session:
    __slots__ = ("stage", "items", "ts")

    def __init__(self) -> None:
        self.stage = ""
        self.items: list[str] = []  # consideration set, most recent first
        self.ts = 0


def _recency_odds(items: list[str], decay: float) -> list[tuple[str, float]]:
    """``(item, probability)`` of a pick weighted ``decay ** i`` by recency (most recent first)."""
    weights = [decay**i for i in range(len(items))]
    total = sum(weights)
    return [(item, w / total) for item, w in zip(items, weights, strict=True)]


def main(spec: str, open_s: float) -> None:
    c = SimConfig()
    events = sorted(load_dataset(spec), key=lambda e: e.ts)
    split = split_time(events[0].ts, events[-1].ts, 0.7)
    category: dict[str, str] = {}
    by_category: dict[str, Counter] = defaultdict(Counter)
    sessions: dict[str, dict[str, _Session]] = defaultdict(dict)
    carts: dict[str, list[str]] = defaultdict(list)
    hits = scored = 0
    for e in events:
        user = e.user_id
        if e.ts >= split and e.event_type in SCORED_TYPES:
            scored += 1
            mine = sessions[user]
            open_ = [s for s in mine.values() if e.ts - s.ts <= open_s * 1000]
            if not open_ and mine:
                open_ = [max(mine.values(), key=lambda s: s.ts)]
            odds: dict[str, float] = defaultdict(float)
            cart = carts[user]
            for s in open_:
                w, carry = 1.0 / len(open_), 1.0
                if cart:
                    check = 1.0 if s.stage == "cart" else c.checkout_prob
                    for item, p in _recency_odds(cart, c.consideration_decay):
                        buy = check * p * c.purchase_prob
                        odds[item] += w * buy
                        carry -= buy
                if s.stage == "browse":
                    current = s.items[0]
                    odds[current] += w * carry * c.click_same_item_prob * c.click_prob
                    counts = by_category[category[current]]
                    total = sum(counts.values()) - counts[current]
                    for item, n in counts.most_common(2 * K):
                        if item != current and total > 0:
                            odds[item] += (
                                w * carry * (1 - c.click_same_item_prob) * n / total * c.click_prob
                            )
                elif s.stage == "click":
                    for item, p in _recency_odds(s.items, c.consideration_decay):
                        if item not in cart:
                            odds[item] += w * carry * p * c.cart_prob
            hits += e.item_id in heapq.nlargest(K, odds, key=odds.get)
        category[e.item_id] = e.category
        by_category[e.category][e.item_id] += 1
        s = sessions[user].setdefault(e.session_id or "", _Session())
        s.stage, s.ts = e.event_type, e.ts
        if e.event_type in ("browse", "click"):
            if e.item_id in s.items:
                s.items.remove(e.item_id)
            s.items.insert(0, e.item_id)
            del s.items[c.consideration_size :]
        cart = carts[user]
        if e.event_type == "cart":
            if e.item_id in cart:
                cart.remove(e.item_id)
            cart.insert(0, e.item_id)
            del cart[c.cart_size :]
        elif e.event_type == "purchase":
            if e.item_id in cart:
                cart.remove(e.item_id)
            sessions[user].pop(e.session_id or "", None)  # a purchase ends its session
    print(
        f"{scored} scored events in the report window; the simulator's rules fed the events "
        f"(sessions open {open_s:g} s): HitRate@{K} {hits / scored:.4f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", default="sim:100000")
    parser.add_argument("--open-s", type=float, default=15.0)
    args = parser.parse_args()
    main(args.spec, args.open_s)
