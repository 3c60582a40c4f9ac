"""``feedrec evaluate``: a dataset in (:mod:`.datasets`), a table, a JSON file and a chart out.

The evaluation itself is :mod:`.protocol` (with :mod:`.tuning` and :mod:`.bootstrap`); this
module runs it and writes the results.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from feedrec.index import set_threads
from feedrec.model.exceptions import ConfigError
from feedrec.streams.exceptions import DatasetError
from feedrec.streams.tools.evaluation.bootstrap import paired_ratio
from feedrec.streams.tools.evaluation.datasets import load_dataset, sim_spec
from feedrec.streams.tools.evaluation.protocol import Result
from feedrec.streams.tools.evaluation.registry import EXTRA, METHOD_NAMES, make_method
from feedrec.streams.tools.evaluation.tuning import Tuned, label, run_groups
from feedrec.streams.tools.evaluation.tuning import tune as tune_methods
from feedrec.streams.tools.replay import check_dataset

log = logging.getLogger(__name__)

TUNE_SHARE = 0.7
#: Methods run when none is named: every one whose dependencies are installed is asked for.
DEFAULT_METHODS = METHOD_NAMES


def format_table(result: Result, dataset: str) -> str:
    kmax = result.ks[-1]
    cols = [f"hit_rate@{k}" for k in result.ks] + [f"ndcg@{k}" for k in result.ks] + ["mrr"]
    head = [
        "method",
        *cols,
        f"cold@{kmax}",
        f"1-4@{kmax}",
        f"5+@{kmax}",
        "coverage",
        "div",
        "rec ms",
        "p99 ms",
        "learn µs",
    ]
    rows = []
    for name, m in result.report.items():
        hist = m["by_history"]
        rows.append(
            [
                name,
                *(f"{m[c]:.4f}" for c in cols),
                *(
                    f"{hist[b][f'hit_rate@{kmax}']:.4f}" if b in hist else "-"
                    for b in ("cold", "1-4", "5+")
                ),
                f"{m['coverage']:.3f}",
                f"{m['diversity']:.2f}",
                f"{m['rec_ms_mean']:.2f}",
                f"{m['rec_ms_p99']:.2f}",
                f"{m['learn_us_per_event']:.0f}",
            ]
        )
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]

    def line(r: list) -> str:
        first, *rest = (str(c) for c in r)
        cells = (c.rjust(w) for c, w in zip(rest, widths[1:], strict=True))
        return "  ".join([first.ljust(widths[0]), *cells])

    first = next(iter(result.report.values()), {})
    counts = ", ".join(f"{b} {v['events']}" for b, v in first.get("by_history", {}).items())
    intro = (
        f"{dataset}: {result.events} events; report window: {first.get('events', 0)} "
        f"scored events ({counts})"
    )
    return "\n".join([intro, line(head), *(line(r) for r in rows)])


def to_json(result: Result, dataset: str) -> dict:
    return {
        "dataset": dataset,
        "events": result.events,
        "split_ts": result.split_ts,
        "methods": result.report,
        "tune": result.tune,
    }


def compare(result: Result, name: str = "feedrec") -> dict | None:
    """``name`` against the best other method by HitRate@K (the largest K) on the report window:
    the ratio of hit rates with its 95% paired-bootstrap interval over users; None when there is
    no other method or no scored event."""
    k = result.ks[-1]
    others = [m for m in result.report if m != name]
    if name not in result.report or not others or not result.report_users:
        return None
    best = max(others, key=lambda m: result.report[m][f"hit_rate@{k}"])

    def hits(m: str) -> list[int]:
        return [int(0 < r <= k) for r in result.report_ranks[m]]

    ci = paired_ratio(result.report_users, hits(name), hits(best))
    return {"method": name, "against": best, "metric": f"hit_rate@{k}", **ci.as_dict()}


def format_comparison(cmp: dict) -> str:
    return (
        f"{cmp['method']} / {cmp['against']} {cmp['metric']}: {cmp['ratio']:.3f} "
        f"({100 * cmp['level']:.0f}% CI {cmp['low']:.3f}-{cmp['high']:.3f}, paired bootstrap "
        f"over {cmp['users']} users)"
    )


def write_chart(result: Result, path: Path, dataset: str, buckets: int = 20) -> None:
    """HitRate@K (the largest K) per time slice per method, the report window shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9.5, 4.5), dpi=110)
    points = [p for tl in result.timeline.values() for p in tl]
    # feedrec in black and on top; the others one colour each (the default cycle has only 10).
    tab20 = plt.get_cmap("tab20")  # a qualitative map of 20 colours, in pairs
    colours = [tab20(i) for i in range(20)]
    others = iter(colours[::2] + colours[1::2])
    if points:
        t0 = min(t for t, _ in points)
        span = max(max(t for t, _ in points) - t0, 1)
        for name, tl in result.timeline.items():
            mine = name == "feedrec"
            ts = np.array([t for t, _ in tl], dtype=np.float64)
            hit = np.array([h for _, h in tl], dtype=np.float64)
            b = np.minimum(((ts - t0) / span * buckets).astype(int), buckets - 1)
            n = np.bincount(b, minlength=buckets)
            rate = np.bincount(b, weights=hit, minlength=buckets) / np.maximum(n, 1)
            x = (np.arange(buckets) + 0.5) / buckets * span / 3.6e6
            ax.plot(
                x[n > 0],
                rate[n > 0],
                label=name,
                lw=2.5 if mine else 1.5,
                color="black" if mine else next(others),
                zorder=3 if mine else 2,
            )
        ax.axvspan(
            (result.split_ts - t0) / 3.6e6,
            span / 3.6e6,
            color="grey",
            alpha=0.12,
            label="report window",
        )
    ax.set_xlabel("hours into the stream")
    ax.set_ylabel("HitRate@20 per slice")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.set_title(f"prequential HitRate@20: {dataset}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _one_core() -> None:
    # Timings are per call on one core, as in a worker (and parallel runs do not thrash).
    torch.set_num_threads(1)
    set_threads(1)


def run_evaluation(
    dataset: str,
    methods: Sequence[str] = (),
    json_path: str | None = None,
    chart: str | None = None,
    fav_as: str | None = None,
    limit: int | None = None,
    score_browse: bool = False,
    tune: bool = False,
    jobs: int | None = None,
) -> Result:
    _one_core()
    # Input errors first, before minutes of evaluation: the dataset, where results go, extras.
    if sim_spec(dataset) is None:
        check_dataset(dataset)
    for option, out_path in (("--json", json_path), ("--chart", chart)):
        parent = Path(out_path).resolve().parent if out_path else None
        if parent is not None and not parent.is_dir():
            raise ConfigError(
                f"{option} {out_path}: directory {parent} does not exist; create "
                "it or write the file elsewhere"
            )
    names = list(dict.fromkeys(methods)) or list(DEFAULT_METHODS)
    try:
        for name in names:
            if name in EXTRA:
                make_method(name)  # fails fast on a missing extra
    except ImportError as exc:
        raise ConfigError(f"{exc}; or leave that method out (--method NAME ...)") from None
    jobs = jobs or os.cpu_count() or 1
    events = load_dataset(dataset, fav_as=fav_as, limit=limit)
    if not events:
        raise DatasetError(
            f"{dataset}: no events to evaluate on (an empty file, or only "
            "behaviours that are dropped, such as Taobao 'fav' without --fav-as)"
        )
    shown = Path(dataset).name if sim_spec(dataset) is None else dataset
    tuned: dict[str, Tuned] = {}
    if tune:
        log.info(
            "tuning %s on the first %.0f%% of the time span", ", ".join(names), 100 * TUNE_SHARE
        )
        tuned = tune_methods(events, names, TUNE_SHARE, jobs, setup=_one_core)
        for name, t in tuned.items():
            for variant, score in t.scores.items():
                print(f"tune   {name:<16} {variant:<48} hit_rate@20 {score:.4f}")
            print(f"tune   {name:<16} chosen: {label(t.chosen)}", flush=True)
    log.info("evaluating %s on %d events of %s", ", ".join(names), len(events), shown)
    groups = [{name: (name, tuned[name].chosen if name in tuned else {})} for name in names]
    result = run_groups(events, groups, TUNE_SHARE, jobs, score_browse, setup=_one_core)
    print(format_table(result, shown), flush=True)
    cmp = compare(result)
    if cmp is not None:
        print(format_comparison(cmp), flush=True)
    if json_path:
        out = to_json(result, shown)
        if tuned:
            out["tuned"] = {name: t.as_dict(result.ks[-1]) for name, t in tuned.items()}
        if cmp is not None:
            out["comparison"] = cmp
        Path(json_path).write_text(json.dumps(out, indent=2))
        print(f"json   {json_path}")
    if chart:
        write_chart(result, Path(chart), shown)
        print(f"chart  {chart}")
    return result
