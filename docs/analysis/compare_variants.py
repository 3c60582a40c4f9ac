"""feedrec in one variant against one baseline in one variant, with the paired interval: a
re-measurement without re-tuning (``feedrec evaluate --tune`` chose the variants before).

Run from the repository root, for example:

    .venv/bin/python docs/analysis/compare_variants.py sim-catalog:100000 \\
        --feedrec categories=3,per_category=40 \\
        --baseline popularity half_life_s=604800.0,seen=exclude

Variants are ``name=value`` pairs as the report prints them (``None``, numbers and words are
read as Python literals where they parse). It replays the stream through the evaluator's
protocol (feedrec.streams.tools.evaluation.protocol) with the two methods and prints each one's HitRate@20,
NDCG@20 and MRR over the report window, and feedrec / baseline HitRate@20 with its 95%
interval from the paired bootstrap over users (feedrec.streams.tools.evaluation.bootstrap). The figures are
quoted in docs/quality.md.
"""

from __future__ import annotations

import argparse
import ast

import torch

from feedrec.streams.tools.evaluation.bootstrap import paired_ratio
from feedrec.streams.tools.evaluation.datasets import load_dataset
from feedrec.streams.tools.evaluation.protocol import evaluate, ndcg
from feedrec.streams.tools.evaluation.registry import make_method

K = 20


def variant(text: str) -> dict:
    """``a=1,b=none`` -> ``{"a": 1, "b": "none"}``."""
    out: dict = {}
    for pair in filter(None, text.split(",")):
        key, _, value = pair.partition("=")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("--feedrec", default="", help="feedrec's variant")
    parser.add_argument("--baseline", nargs=2, metavar=("NAME", "VARIANT"), required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)  # the evaluator's setting: deterministic, one core
    name, baseline = args.baseline
    methods = {
        "feedrec": make_method("feedrec", **variant(args.feedrec)),
        name: make_method(name, **variant(baseline)),
    }
    result = evaluate(load_dataset(args.dataset), methods)
    hits = {}
    for method, ranks in result.report_ranks.items():
        hits[method] = [int(0 < r <= K) for r in ranks]
        n = len(ranks)
        print(
            f"{method}: HitRate@{K} {sum(hits[method]) / n:.4f}, "
            f"NDCG@{K} {sum(ndcg(r, K) for r in ranks) / n:.4f}, "
            f"MRR {sum(1 / r for r in ranks if r) / n:.4f} over {n} scored events"
        )
    ci = paired_ratio(result.report_users, hits["feedrec"], hits[name])
    print(
        f"feedrec / {name} HitRate@{K}: {ci.ratio:.3f} (95% CI {ci.low:.3f}-{ci.high:.3f}, "
        f"paired bootstrap over {ci.users} users, {ci.replicates} replicates)"
    )


if __name__ == "__main__":
    main()
