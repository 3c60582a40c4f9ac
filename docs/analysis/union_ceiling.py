"""How many report-window events any variant of any method hits: a ceiling for a recommender
built from the signals the methods already use.

Run from the repository root, for example:

    .venv/bin/python docs/analysis/union_ceiling.py \\
        ../shared/data/taobao-userbehavior/UserBehavior.csv.gz --jobs 2

Every variant of every method's ``--tune`` grid (feedrec.streams.tools.evaluation.registry.grid)
replays the whole stream through the evaluator's protocol
(feedrec.streams.tools.evaluation.protocol), one method's grid per process. It prints, per method, the hits@20 of its best variant on the report window and of the
union of its variants, then the union over every method and variant: the number of scored events
that at least one of them lists in its top 20. A single list of 20 cannot hit more events than
an oracle that, event by event, picks whichever of these lists hits; the figure bounds what a
ranker of these methods' candidates reaches. The figures are quoted in docs/quality.md.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch

from feedrec.streams.tools.evaluation.datasets import load_dataset
from feedrec.streams.tools.evaluation.protocol import evaluate
from feedrec.streams.tools.evaluation.registry import METHOD_NAMES, grid, make_method
from feedrec.streams.tools.evaluation.tuning import label

K = 20


def hits_of(dataset: str, name: str) -> tuple[list[str], dict[str, np.ndarray]]:
    torch.set_num_threads(1)
    methods = {f"{name} {label(v)}": make_method(name, **v) for v in grid(name)}
    result = evaluate(load_dataset(dataset), methods)
    ranks = {key: np.asarray(r) for key, r in result.report_ranks.items()}
    return result.report_users, {key: (r > 0) & (r <= K) for key, r in ranks.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument(
        "--method", action="append", choices=METHOD_NAMES, help="methods to include (default: all)"
    )
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    names = args.method or list(METHOD_NAMES)
    with ProcessPoolExecutor(args.jobs) as pool:
        done = list(pool.map(hits_of, [args.dataset] * len(names), names))
    users = done[0][0]
    union = np.zeros(len(users), bool)
    best_baseline = 0
    print(f"{len(users)} scored events in the report window")
    for name, (_, hits) in zip(names, done, strict=True):
        best_key = max(hits, key=lambda k: hits[k].sum())
        own = np.logical_or.reduce(list(hits.values()))
        union |= own
        if name != "feedrec":
            best_baseline = max(best_baseline, int(hits[best_key].sum()))
        print(
            f"{name}: best variant {best_key!r} {int(hits[best_key].sum())} hits; "
            f"union of its {len(hits)} variants {int(own.sum())}"
        )
    print(
        f"union of every variant of every method: {int(union.sum())} hits "
        f"(HitRate@{K} {union.mean():.4f})"
    )
    print(
        f"best baseline variant on the report window: {best_baseline} hits; "
        f"1.10x that: {1.1 * best_baseline:.1f}"
    )


if __name__ == "__main__":
    main()
