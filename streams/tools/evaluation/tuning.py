"""Running methods side by side, and ``--tune``: every method's variant chosen on the tuning
window alone.

Each method runs in its own process (they share nothing but the stream), so a two-core machine
evaluates two at once; a method's variants run together in one pass over the stream. Tuning sees
only the events before the report window: :func:`tuning_window` cuts them off before any method
is built, and the chosen variant is the one with the best HitRate@k there.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from feedrec.model.events import Event
from feedrec.streams.tools.evaluation.protocol import Result, evaluate, split_time
from feedrec.streams.tools.evaluation.registry import grid, make_method

#: A method to run: its registry name and constructor arguments.
Spec = tuple[str, dict]


def label(params: Mapping) -> str:
    """``key=value,...`` of a variant; ``default`` for none."""
    return ",".join(f"{k}={v}" for k, v in params.items()) or "default"


def tuning_window(events: Sequence[Event], tune_share: float) -> list[Event]:
    """The events before the report window (``tune_share`` of the stream's time span)."""
    if not events:
        raise ValueError("no events to tune on")
    split = split_time(min(e.ts for e in events), max(e.ts for e in events), tune_share)
    return [e for e in events if e.ts < split]


def _init_worker(setup: Callable[[], None] | None) -> None:
    if setup is not None:
        setup()


def _run(
    events: Sequence[Event], specs: Mapping[str, Spec], tune_share: float, score_browse: bool
) -> Result:
    methods = {key: make_method(name, **kw) for key, (name, kw) in specs.items()}
    return evaluate(events, methods, tune_share=tune_share, score_browse=score_browse)


def merge(results: Sequence[Result]) -> Result:
    """One result of several runs over the same stream (each with its own methods)."""
    first = results[0]
    out = Result(first.events, first.split_ts, first.ks, {}, {}, {}, first.report_users, {})
    for r in results:
        if r.report_users != first.report_users:
            raise ValueError("results come from different streams")
        out.report |= r.report
        out.tune |= r.tune
        out.timeline |= r.timeline
        out.report_ranks |= r.report_ranks
    return out


def run_groups(
    events: Sequence[Event],
    groups: Sequence[Mapping[str, Spec]],
    tune_share: float,
    jobs: int = 1,
    score_browse: bool = False,
    setup: Callable[[], None] | None = None,
) -> Result:
    """Evaluate each group of methods in one pass over ``events``, ``jobs`` groups at a time
    (each in its own process when ``jobs > 1``; ``setup`` runs first in each), merged."""
    if jobs <= 1 or len(groups) <= 1:
        if setup is not None:
            setup()
        return merge([_run(events, g, tune_share, score_browse) for g in groups])
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        min(jobs, len(groups)), mp_context=ctx, initializer=_init_worker, initargs=(setup,)
    ) as pool:
        futures = [pool.submit(_run, events, g, tune_share, score_browse) for g in groups]
        return merge([f.result() for f in futures])


@dataclass(frozen=True, slots=True)
class Tuned:
    """A method's chosen variant and every variant's HitRate@k over the tuning window."""

    chosen: dict
    scores: dict[str, float]

    def as_dict(self, k: int) -> dict:
        return {"chosen": self.chosen, f"hit_rate@{k}": self.scores}


def tune(
    events: Sequence[Event],
    names: Sequence[str],
    tune_share: float,
    jobs: int = 1,
    setup: Callable[[], None] | None = None,
    k: int = 20,
) -> dict[str, Tuned]:
    """Per method, the variant of its grid with the best HitRate@``k`` on the tuning window
    (ties: the earlier variant); a method with a grid of one is not run."""
    head = tuning_window(events, tune_share)
    grids = {name: grid(name) for name in names}
    groups = [
        {f"{name}|{label(v)}": (name, v) for v in variants}
        for name, variants in grids.items()
        if len(variants) > 1
    ]
    # Big grids are split so that the processes stay busy.
    groups = [dict(list(g.items())[i : i + 6]) for g in groups for i in range(0, len(g), 6)]
    result = run_groups(head, groups, 0.0, jobs, setup=setup) if groups else None
    out = {}
    for name, variants in grids.items():
        if len(variants) <= 1 or result is None:
            out[name] = Tuned(dict(variants[0]) if variants else {}, {})
            continue
        scores = {label(v): result.report[f"{name}|{label(v)}"][f"hit_rate@{k}"] for v in variants}
        best = max(range(len(variants)), key=lambda i: (scores[label(variants[i])], -i))
        out[name] = Tuned(dict(variants[best]), scores)
    return out
