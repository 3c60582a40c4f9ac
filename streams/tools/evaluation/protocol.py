"""Prequential ("test, then train") evaluation of recommenders on an event stream, with no I/O.

Events are replayed in time order. Before a method learns from a click, cart or purchase, it is
asked for that user's top-K from the state it has at that moment; the rank of the event's item in
that list is recorded, then the method learns from the event. Browse events are learned from and,
only when asked (``score_browse``), scored into a separate ``browse`` split.

Events between two scored events are handed to a method together (``learn`` takes a batch), which
changes nothing about what each method could know when asked and lets batch learners stay fast.

The stream's time span is split: the first ``tune_share`` (70%) warms the methods up and is where
settings may be tuned; the metrics that count come from the rest (the report window), with the
warm-up state carried over. Both windows are measured.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from feedrec.model.events import Event
from feedrec.streams.tools.evaluation.base import Method

SCORED_TYPES = ("click", "cart", "purchase")
#: History buckets by the number of the user's earlier events (any type).
HISTORY_BUCKETS = (("cold", 0, 0), ("1-4", 1, 4), ("5+", 5, math.inf))


def rank_of(item: str, items: Sequence[str]) -> int:
    """1-based position of ``item`` in ``items``; 0 when absent."""
    for i, x in enumerate(items):
        if x == item:
            return i + 1
    return 0


def ndcg(rank: int, k: int) -> float:
    """NDCG@k of one relevant item at ``rank`` (1-based, 0 = absent); the ideal DCG is 1."""
    return 1.0 / math.log2(rank + 1) if 0 < rank <= k else 0.0


def history_bucket(n: int) -> str:
    for name, lo, hi in HISTORY_BUCKETS:
        if lo <= n <= hi:
            return name
    raise ValueError(f"history length must be >= 0, got {n}")


@dataclass(slots=True)
class _Acc:
    """Sums over scored events of one split."""

    ks: tuple[int, ...]
    n: int = 0
    hits: dict[int, int] = field(default_factory=dict)
    ndcg: dict[int, float] = field(default_factory=dict)
    rr: float = 0.0

    def add(self, rank: int) -> None:
        self.n += 1
        for k in self.ks:
            self.hits[k] = self.hits.get(k, 0) + (0 < rank <= k)
            self.ndcg[k] = self.ndcg.get(k, 0.0) + ndcg(rank, k)
        self.rr += 1.0 / rank if rank else 0.0

    def summary(self) -> dict[str, float]:
        out: dict[str, float] = {"events": self.n}
        n = max(self.n, 1)
        for k in self.ks:
            out[f"hit_rate@{k}"] = self.hits.get(k, 0) / n
        for k in self.ks:
            out[f"ndcg@{k}"] = self.ndcg.get(k, 0.0) / n
        out["mrr"] = self.rr / n
        return out


@dataclass
class _Window:
    """Everything measured for one method over one window."""

    ks: tuple[int, ...]
    overall: _Acc = field(init=False)
    by_type: dict[str, _Acc] = field(init=False)
    by_history: dict[str, _Acc] = field(init=False)
    recommended: set[str] = field(default_factory=set)
    diversity: list[float] = field(default_factory=list)
    rec_seconds: list[float] = field(default_factory=list)
    learn_seconds: float = 0.0
    learned: int = 0

    def __post_init__(self) -> None:
        self.overall = _Acc(self.ks)
        self.by_type = defaultdict(lambda: _Acc(self.ks))
        self.by_history = defaultdict(lambda: _Acc(self.ks))

    def summary(self, catalogue: int) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.overall.summary())
        rec = np.asarray(self.rec_seconds) * 1000
        out |= {
            "coverage": len(self.recommended) / max(catalogue, 1),
            "diversity": float(np.mean(self.diversity)) if self.diversity else 0.0,
            "rec_ms_mean": float(rec.mean()) if len(rec) else 0.0,
            "rec_ms_p99": float(np.percentile(rec, 99)) if len(rec) else 0.0,
            "learn_us_per_event": 1e6 * self.learn_seconds / max(self.learned, 1),
            "by_type": {t: a.summary() for t, a in sorted(self.by_type.items())},
            "by_history": {
                name: self.by_history[name].summary()
                for name, _, _ in HISTORY_BUCKETS
                if name in self.by_history
            },
        }
        return out


@dataclass
class Result:
    """What :func:`evaluate` measured: per method, the report window and the tuning window."""

    events: int
    split_ts: int
    ks: tuple[int, ...]
    report: dict[str, dict]
    tune: dict[str, dict]
    #: Per method, ``(ts, hit@max_k)`` of every scored event (browse excluded), for charts.
    timeline: dict[str, list[tuple[int, int]]]
    #: The user of every scored event of the report window (browse excluded), in order, and per
    #: method the rank it gave that event's item (0: not in its list): what paired comparisons
    #: such as :func:`feedrec.streams.tools.evaluation.bootstrap.paired_ratio` resample.
    report_users: list[str] = field(default_factory=list)
    report_ranks: dict[str, list[int]] = field(default_factory=dict)


def split_time(first_ts: int, last_ts: int, tune_share: float) -> int:
    """Where the report window starts: ``tune_share`` of the way through the time span."""
    if not 0 <= tune_share < 1:
        raise ValueError(f"tune_share must be in [0, 1), got {tune_share}")
    return first_ts + int(tune_share * (last_ts - first_ts))


def evaluate(
    events: Iterable[Event],
    methods: Mapping[str, Method],
    ks: Sequence[int] = (10, 20),
    tune_share: float = 0.7,
    score_browse: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Result:
    """Replay ``events`` (sorted here by ``ts``, stably) prequentially through every method."""
    ks = tuple(sorted(set(ks)))
    if not ks or ks[0] < 1:
        raise ValueError(f"ks must be positive cut-offs, got {ks}")
    stream = sorted(events, key=lambda e: e.ts)
    if not stream:
        raise ValueError("no events to evaluate")
    if any(e.event_type is None for e in stream):
        raise ValueError("every event needs its event_type")
    split_ts = split_time(stream[0].ts, stream[-1].ts, tune_share)
    kmax = ks[-1]
    windows = {name: (_Window(ks), _Window(ks)) for name in methods}
    timeline: dict[str, list[tuple[int, int]]] = {name: [] for name in methods}
    report_users: list[str] = []
    report_ranks: dict[str, list[int]] = {name: [] for name in methods}
    seen_by_user: dict[str, int] = defaultdict(int)
    category: dict[str, str] = {}
    items: set[str] = set()
    scored = set(SCORED_TYPES) | ({"browse"} if score_browse else set())

    pending: list[Event] = []

    def learn() -> None:
        if not pending:
            return
        report_window = pending[-1].ts >= split_ts
        for name, method in methods.items():
            w = windows[name][report_window]
            t = time.perf_counter()
            method.learn(pending)
            w.learn_seconds += time.perf_counter() - t
            w.learned += len(pending)
        pending.clear()

    for i, ev in enumerate(stream):
        if ev.event_type in scored:
            learn()
            history = seen_by_user[ev.user_id]
            report_window = ev.ts >= split_ts
            if report_window and ev.event_type != "browse":
                report_users.append(ev.user_id)
            for name, method in methods.items():
                w = windows[name][report_window]
                t = time.perf_counter()
                recs = method.recommend(ev.user_id, ev.ts, kmax)[:kmax]
                w.rec_seconds.append(time.perf_counter() - t)
                r = rank_of(ev.item_id, recs)
                w.by_type[ev.event_type].add(r)
                if ev.event_type != "browse":
                    w.overall.add(r)
                    w.by_history[history_bucket(history)].add(r)
                    timeline[name].append((ev.ts, int(0 < r <= kmax)))
                    if report_window:
                        report_ranks[name].append(r)
                w.recommended.update(recs)
                if recs:
                    cats = {category.get(x, x) for x in recs}
                    w.diversity.append(len(cats) / len(recs))
        pending.append(ev)
        seen_by_user[ev.user_id] += 1
        items.add(ev.item_id)
        if ev.category is not None:
            category[ev.item_id] = ev.category
        if progress is not None and i % 10_000 == 0:
            progress(i, len(stream))
    learn()
    catalogue = len(items)
    return Result(
        events=len(stream),
        split_ts=split_ts,
        ks=ks,
        report={name: w[1].summary(catalogue) for name, w in windows.items()},
        tune={name: w[0].summary(catalogue) for name, w in windows.items()},
        timeline=timeline,
        report_users=report_users,
        report_ranks=report_ranks,
    )
