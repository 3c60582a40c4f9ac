"""Which of a stream's scored events feedrec and recent-category each hit, by class of event.

Run from the repository root:

    .venv/bin/python docs/analysis/sim_classes.py sim:100000

It replays the stream through ``feedrec evaluate``'s protocol (feedrec.streams.tools.evaluation.protocol) with
feedrec and recent-category in the variants ``--tune`` chose on the shop simulator, then puts
each scored event of the report window in one class by what its user had done before it: the
target among the user's recent items (by position, most recent first), a new item of the
category of their latest event, of an earlier category of theirs, or of a new one. Per class
it counts the events both methods hit in their top 20, feedrec alone, recent-category alone,
and neither. The figures are quoted in docs/quality.md.
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict

from feedrec.streams.tools.evaluation.datasets import load_dataset
from feedrec.streams.tools.evaluation.protocol import SCORED_TYPES, evaluate, split_time
from feedrec.streams.tools.evaluation.registry import make_method


def classes(events: list, split: int) -> list[str]:
    recent: dict[str, list[str]] = defaultdict(list)
    categories: dict[str, list[str]] = defaultdict(list)
    out = []
    for e in events:
        mine, cats = recent[e.user_id], categories[e.user_id]
        if e.ts >= split and e.event_type in SCORED_TYPES:
            pos = mine.index(e.item_id) if e.item_id in mine else -1
            out.append(
                "first event"
                if not mine
                else "recent, 1st"
                if pos == 0
                else "recent, 2nd-10th"
                if 0 < pos < 10
                else "recent, 11th-20th"
                if 10 <= pos < 20
                else "recent, older"
                if pos >= 20
                else "latest category"
                if e.category == cats[0]
                else "earlier category"
                if e.category in cats
                else "new category"
            )
        for items, value in ((mine, e.item_id), (cats, e.category)):
            if value in items:
                items.remove(value)
            items.insert(0, value)
    return out


def main(spec: str) -> None:
    events = sorted(load_dataset(spec), key=lambda e: e.ts)
    methods = {
        "feedrec": make_method("feedrec", categories=3, per_category=20),
        "recent-category": make_method(
            "recent-category", recent=10, half_life_s=3600.0, seen="first"
        ),
    }
    result = evaluate(events, methods)
    split = split_time(events[0].ts, events[-1].ts, 0.7)
    table: dict[str, Counter] = defaultdict(Counter)
    ranks = zip(result.report_ranks["feedrec"], result.report_ranks["recent-category"], strict=True)
    for cls, (f, r) in zip(classes(events, split), ranks, strict=True):
        table[cls][
            ("both" if 0 < r <= 20 else "feedrec only")
            if 0 < f <= 20
            else "recent-category only"
            if 0 < r <= 20
            else "neither"
        ] += 1
    print(
        f"{'class':18s} {'events':>6s} {'both':>6s} {'feedrec only':>13s} "
        f"{'recent-category only':>21s} {'neither':>8s}"
    )
    for cls, c in sorted(table.items(), key=lambda kv: -sum(kv[1].values())):
        print(
            f"{cls:18s} {sum(c.values()):6d} {c['both']:6d} {c['feedrec only']:13d} "
            f"{c['recent-category only']:21d} {c['neither']:8d}"
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "sim:100000")
