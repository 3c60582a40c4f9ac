"""``feedrec evaluate``: datasets in, a table, a JSON file and a chart out.

The evaluation itself is :func:`model.evaluate.evaluate`; this module only reads datasets and
writes results. A dataset is a file in the Taobao UserBehavior or generic CSV format (see
:mod:`streams.replay`), or ``sim`` / ``sim:N``: N events (default 100,000) of the simulator's
shop, open loop, at 100 events/s of simulated time. The simulator's users keep reacting to
lists, but none are shown to them here, so its stream is the same for every method.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import msgspec
import numpy as np
import torch

from index import set_threads
from model.candidates import SourceConfig
from model.evaluate import Result, evaluate, split_time
from model.events import TOPIC_TYPES, Event
from model.exceptions import ConfigError
from model.methods import METHOD_NAMES, Feedrec, make_method
from model.pipeline import PipelineConfig
from streams.exceptions import DatasetError
from streams.replay import check_dataset, read_events
from streams.simulator import Shop, SimConfig

log = logging.getLogger(__name__)

#: What ``--tune`` chooses between: how many of the user's categories feed the category-trending
#: source and how many items each gives. Judged on the tuning window only.
TUNE_GRID: tuple[dict, ...] = tuple(
    {"categories": c, "per_category": n} for c in (2, 3) for n in (10, 20, 40)
)
TUNE_SHARE = 0.7
SIM_RATE = 100.0
SIM_START_MS = 1_700_000_000_000


def _event(topic: str, fields: dict) -> Event:
    ev = msgspec.convert(fields, Event)
    ev.event_type = TOPIC_TYPES[topic]
    return ev


def simulated_events(n: int, seed: int = 0) -> list[Event]:
    shop = Shop(SimConfig(seed=seed))
    out: list[Event] = []
    step = 100
    for k in range(0, n, step):
        now = SIM_START_MS + int(k / SIM_RATE * 1000)
        out.extend(_event(t, e) for t, e in shop.next_events(now, min(step, n - k)))
    return out


def sim_size(spec: str) -> int | None:
    """N of a ``sim`` / ``sim:N`` dataset spec, None for a file; :class:`DatasetError` if N is
    not a whole number >= 1."""
    if spec != "sim" and not spec.startswith("sim:"):
        return None
    text = spec.partition(":")[2]
    if not text:
        return 100_000
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise DatasetError(f"dataset {spec!r}: expected sim or sim:N with N a whole number of "
                           "events >= 1 (e.g. sim:20000), or the path of a dataset file")
    return n


def load_dataset(spec: str, fav_as: str | None = None, limit: int | None = None) -> list[Event]:
    """Events of ``spec``: a dataset file, or ``sim[:N]``."""
    n = sim_size(spec)
    if n is not None:
        return simulated_events(min(n, limit or n))
    out: list[Event] = []
    for topic, fields in read_events(spec, fav_as=fav_as):
        out.append(_event(topic, fields))
        if limit is not None and len(out) >= limit:
            break
    return out


def format_table(result: Result, dataset: str) -> str:
    kmax = result.ks[-1]
    cols = [f"hit_rate@{k}" for k in result.ks] + [f"ndcg@{k}" for k in result.ks] + ["mrr"]
    head = ["method", *cols, f"cold@{kmax}", f"1-4@{kmax}", f"5+@{kmax}", "coverage", "div",
            "rec ms", "p99 ms", "learn µs"]
    rows = []
    for name, m in result.report.items():
        hist = m["by_history"]
        rows.append([
            name,
            *(f"{m[c]:.4f}" for c in cols),
            *(f"{hist[b][f'hit_rate@{kmax}']:.4f}" if b in hist else "-"
              for b in ("cold", "1-4", "5+")),
            f"{m['coverage']:.3f}", f"{m['diversity']:.2f}", f"{m['rec_ms_mean']:.2f}",
            f"{m['rec_ms_p99']:.2f}", f"{m['learn_us_per_event']:.0f}",
        ])
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]

    def line(r: list) -> str:
        first, *rest = (str(c) for c in r)
        cells = (c.rjust(w) for c, w in zip(rest, widths[1:], strict=True))
        return "  ".join([first.ljust(widths[0]), *cells])

    first = next(iter(result.report.values()), {})
    counts = ", ".join(f"{b} {v['events']}" for b, v in first.get("by_history", {}).items())
    intro = (f"{dataset}: {result.events} events; report window: {first.get('events', 0)} "
             f"scored events ({counts})")
    return "\n".join([intro, line(head), *(line(r) for r in rows)])


def to_json(result: Result, dataset: str) -> dict:
    return {"dataset": dataset, "events": result.events, "split_ts": result.split_ts,
            "methods": result.report, "tune": result.tune}


def write_chart(result: Result, path: Path, dataset: str, buckets: int = 20) -> None:
    """HitRate@K (the largest K) per time slice per method, the report window shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    points = [p for tl in result.timeline.values() for p in tl]
    if points:
        t0 = min(t for t, _ in points)
        span = max(max(t for t, _ in points) - t0, 1)
        for name, tl in result.timeline.items():
            ts = np.array([t for t, _ in tl], dtype=np.float64)
            hit = np.array([h for _, h in tl], dtype=np.float64)
            b = np.minimum(((ts - t0) / span * buckets).astype(int), buckets - 1)
            n = np.bincount(b, minlength=buckets)
            rate = np.bincount(b, weights=hit, minlength=buckets) / np.maximum(n, 1)
            x = (np.arange(buckets) + 0.5) / buckets * span / 3.6e6
            ax.plot(x[n > 0], rate[n > 0], label=name, lw=2)
        ax.axvspan((result.split_ts - t0) / 3.6e6, span / 3.6e6, color="grey", alpha=0.12,
                   label="report window")
    ax.set_xlabel("hours into the stream")
    ax.set_ylabel("HitRate@20 per slice")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(f"prequential HitRate@20: {dataset}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _label(params: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in params.items())


def tune_feedrec(events: Sequence[Event], grid: Sequence[dict] = TUNE_GRID,
                 tune_share: float = TUNE_SHARE) -> tuple[dict, dict[str, float]]:
    """The candidate-source settings of ``grid`` with the best HitRate@20 over the tuning
    window alone (events before the report window; none of them is looked at), and every
    setting's score there."""
    if not events:
        raise ValueError("no events to tune on")
    first, last = min(e.ts for e in events), max(e.ts for e in events)
    split = split_time(first, last, tune_share)
    head = [e for e in events if e.ts < split]
    variants = {_label(p): Feedrec(PipelineConfig(sources=SourceConfig(**p))) for p in grid}
    result = evaluate(head, variants, tune_share=0.0)
    kmax = result.ks[-1]
    scores = {name: m[f"hit_rate@{kmax}"] for name, m in result.report.items()}
    best = max(range(len(grid)), key=lambda i: scores[_label(grid[i])])
    return dict(grid[best]), scores


def run_evaluation(dataset: str, methods: Sequence[str] = (), json_path: str | None = None,
                   chart: str | None = None, fav_as: str | None = None,
                   limit: int | None = None, score_browse: bool = False,
                   tune: bool = False) -> Result:
    # Timings are per call on one core, as in a worker (and parallel runs do not thrash).
    torch.set_num_threads(1)
    set_threads(1)
    # Input errors first, before minutes of evaluation: the dataset, where results go, extras.
    if sim_size(dataset) is None:
        check_dataset(dataset)
    for option, out_path in (("--json", json_path), ("--chart", chart)):
        parent = Path(out_path).resolve().parent if out_path else None
        if parent is not None and not parent.is_dir():
            raise ConfigError(f"{option} {out_path}: directory {parent} does not exist; create "
                              "it or write the file elsewhere")
    names = list(dict.fromkeys(methods)) or list(METHOD_NAMES)
    try:
        built = {name: make_method(name) for name in names}  # fails fast on a missing extra
    except ImportError as exc:
        raise ConfigError(f"{exc}; or leave that method out (--method NAME ...)") from None
    events = load_dataset(dataset, fav_as=fav_as, limit=limit)
    if not events:
        raise DatasetError(f"{dataset}: no events to evaluate on (an empty file, or only "
                           "behaviours that are dropped, such as Taobao 'fav' without --fav-as)")
    label = Path(dataset).name if not dataset.startswith("sim") else dataset
    tuned: dict | None = None
    if tune and "feedrec" in built:
        log.info("tuning feedrec on the first %.0f%% of the time span", 100 * TUNE_SHARE)
        chosen, scores = tune_feedrec(events)
        for name, score in scores.items():
            print(f"tune   {name:<30} hit_rate@20 {score:.4f}")
        print(f"tune   chosen: {_label(chosen)}", flush=True)
        built["feedrec"] = Feedrec(PipelineConfig(sources=SourceConfig(**chosen)))
        tuned = {"chosen": chosen, "hit_rate@20": scores}
    log.info("evaluating %s on %d events of %s", ", ".join(names), len(events), label)
    result = evaluate(events, built, score_browse=score_browse, tune_share=TUNE_SHARE,
                      progress=lambda i, n: log.info("%d/%d events", i, n))
    print(format_table(result, label), flush=True)
    if json_path:
        out = to_json(result, label)
        if tuned is not None:
            out["tuned"] = tuned
        Path(json_path).write_text(json.dumps(out, indent=2))
        print(f"json   {json_path}")
    if chart:
        write_chart(result, Path(chart), label)
        print(f"chart  {chart}")
    return result

