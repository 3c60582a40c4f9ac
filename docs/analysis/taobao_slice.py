"""Where the Taobao slice's scored events fall, and what simple orders can hit in each class.

Run from the repository root (it reads the data in place, it does not copy it):

    .venv/bin/python docs/analysis/taobao_slice.py ../shared/data/taobao-userbehavior/UserBehavior.csv.gz

It uses the evaluator's split (the report window is the last 30% of the time span) and scores
the same events (carts and purchases). Each one is put in one class by what its user had done
earlier in the slice, and for each class it counts the hits in the top 20 of a few orders:

- global popularity over every item (for users with nothing in the target's category);
- popularity within the category of the user's latest event, the user's 10 most recent items
  left out (for the latest-category class), alone and after co-visitation from the user's
  last five items, restricted to that category.

Popularities decay with the half-life named (none: plain counts); ``typed`` weighs events by
type as the baselines do (browse 0.25, click 1, cart 2, purchase 4), ``views`` counts browses
only, ``carts`` carts and purchases only. The figures are quoted in docs/quality.md.
"""

from __future__ import annotations

import heapq
import math
import sys
from collections import Counter, defaultdict

from feedrec.model.events import EVENT_WEIGHTS
from feedrec.streams.tools.evaluation.datasets import load_dataset

HOUR_MS = 3_600_000
ORDERS = {
    "typed, 1 h": (HOUR_MS, lambda k: EVENT_WEIGHTS[k]),
    "typed, 10 min": (HOUR_MS / 6, lambda k: EVENT_WEIGHTS[k]),
    "typed, no decay": (None, lambda k: EVENT_WEIGHTS[k]),
    "views, 1 h": (HOUR_MS, lambda k: 1.0 if k == "browse" else 0.0),
    "carts, 30 min": (HOUR_MS / 2, lambda k: 0.0 if k in ("browse", "click") else 1.0),
    "carts, 1 h": (HOUR_MS, lambda k: 0.0 if k in ("browse", "click") else 1.0),
}


def main(path: str) -> None:
    events = sorted(load_dataset(path), key=lambda e: e.ts)
    t0 = events[0].ts
    split = t0 + 0.7 * (events[-1].ts - t0)
    overall = {name: defaultdict(float) for name in ORDERS}
    by_cat = {name: defaultdict(lambda: defaultdict(float)) for name in ORDERS}
    covisit: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    category: dict[str, str] = {}
    recent: dict[str, list[str]] = defaultdict(list)
    categories: dict[str, list[str]] = defaultdict(list)
    counts, hits = Counter(), Counter()
    for e in events:
        kind = e.event_type or "browse"
        cat = e.category or category.get(e.item_id)
        user = e.user_id
        if e.ts >= split and kind in ("cart", "purchase"):
            mine, cats = recent[user], categories[user]
            cls = (
                "first event"
                if not mine
                else "repeat"
                if e.item_id in mine
                else "latest category"
                if cat == cats[0]
                else "earlier category"
                if cat in cats
                else "new category"
            )
            counts[cls] += 1
            if cls in ("first event", "new category"):
                for name, table in overall.items():
                    hits[cls, name] += e.item_id in heapq.nlargest(20, table, key=table.get)
            elif cls == "latest category":
                skip = set(mine[:10])
                for name, tables in by_cat.items():
                    table = tables[cat]
                    top = [i for i in heapq.nlargest(40, table, key=table.get) if i not in skip]
                    hits[cls, name] += e.item_id in top[:20]
                table = by_cat["typed, 1 h"][cat]
                follow: dict[str, float] = defaultdict(float)
                for pos, item in enumerate(mine[:5]):
                    for nxt, w in covisit[item].items():
                        if category.get(nxt) == cat:
                            follow[nxt] += w * 0.8**pos
                ranked = sorted(
                    set(follow) | set(table),
                    key=lambda i: (-follow.get(i, 0.0), -table.get(i, 0.0)),
                )
                hits[cls, "co-visitation, then typed 1 h"] += (
                    e.item_id in [i for i in ranked if i not in skip][:20]
                )
        for name, (half_life, weight) in ORDERS.items():
            w = weight(kind)
            if w:
                w *= 1.0 if half_life is None else math.exp((e.ts - t0) * math.log(2) / half_life)
                overall[name][e.item_id] += w
                if cat is not None:
                    by_cat[name][cat][e.item_id] += w
        for item in recent[user][:5]:
            if item != e.item_id:
                covisit[item][e.item_id] += 1.0
                covisit[e.item_id][item] += 0.5
        _push(recent[user], e.item_id)
        if cat is not None:
            category[e.item_id] = cat
            _push(categories[user], cat)
    print(f"{sum(counts.values())} scored events in the report window")
    for cls, n in counts.most_common():
        found = {name: h for (c, name), h in hits.items() if c == cls}
        best = ", ".join(f"{name} {h}" for name, h in sorted(found.items(), key=lambda x: -x[1]))
        print(f"  {cls:17s} {n:5d}  {best}")


def _push(items: list[str], value: str) -> None:
    if value in items:
        items.remove(value)
    items.insert(0, value)


if __name__ == "__main__":
    main(sys.argv[1])
