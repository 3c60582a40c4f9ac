"""Prometheus metrics of the worker, built on a registry the caller passes in."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from feedrec.model.events import EVENT_TYPES, REASONS

#: Event-to-recommendation latency buckets: 5 ms to 10 s, dense where the p99 target (250 ms) is.
LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.25,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    2.0,
    5.0,
    10.0,
)
BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class HitWindow:
    """Share of the last ``size`` feedback events whose item was in the user's last list."""

    def __init__(self, size: int) -> None:
        self._window: deque[tuple[int, int]] = deque()
        self._size = size
        self._feedback = 0
        self._hits = 0

    def add(self, feedback: int, hits: int) -> None:
        if feedback:
            self._window.append((feedback, hits))
            self._feedback += feedback
            self._hits += hits
        while self._window and self._feedback - self._window[0][0] >= self._size:
            f, h = self._window.popleft()
            self._feedback -= f
            self._hits -= h

    @property
    def rate(self) -> float:
        return self._hits / self._feedback if self._feedback else 0.0


@dataclass
class Metrics:
    events: Counter
    invalid: Counter
    duplicates: Counter
    replayed: Counter
    recommendations: Counter
    rec_clicks: Counter
    feedback: Counter
    hits: Counter
    batch_seconds: Histogram
    batch_size: Histogram
    stage_seconds: Histogram
    latency: Histogram
    loss: Gauge
    ranker_loss: Gauge
    ranker_weight: Gauge
    model_version: Gauge
    model_events: Gauge
    index_size: Gauge
    index_refresh_seconds: Gauge
    hit_rate: Gauge
    users: Gauge
    checkpoint_seconds: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry, prefix: str = "feedrec") -> Metrics:
        def name(s: str) -> str:
            return f"{prefix}_{s}"

        m = cls(
            events=Counter(
                name("events"), "Valid events processed, by type.", ["type"], registry=registry
            ),
            invalid=Counter(
                name("invalid_events"),
                "Events sent to the dead-letter topic.",
                ["reason"],
                registry=registry,
            ),
            duplicates=Counter(
                name("duplicate_events"), "Events ignored as duplicates.", registry=registry
            ),
            replayed=Counter(
                name("replayed_events"),
                "Events read again after a crash that their user's state already "
                "held (not applied twice).",
                registry=registry,
            ),
            recommendations=Counter(
                name("recommendations"), "Recommendation lists emitted.", registry=registry
            ),
            rec_clicks=Counter(
                name("recommendation_clicks"),
                "Clicks carrying the rec_id of the user's last list.",
                registry=registry,
            ),
            feedback=Counter(
                name("feedback_events"), "Click, cart and purchase events.", registry=registry
            ),
            hits=Counter(
                name("feedback_hits"),
                "Feedback events whose item was in the user's last list.",
                registry=registry,
            ),
            batch_seconds=Histogram(
                name("batch_seconds"),
                "Time to process one micro-batch.",
                buckets=BATCH_BUCKETS,
                registry=registry,
            ),
            batch_size=Histogram(
                name("batch_size"),
                "Records per micro-batch.",
                buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
                registry=registry,
            ),
            stage_seconds=Histogram(
                name("stage_seconds"),
                "Time per pipeline stage per batch.",
                ["stage"],
                buckets=BATCH_BUCKETS,
                registry=registry,
            ),
            latency=Histogram(
                name("event_to_recommendation_seconds"),
                "From the triggering event's ts to the recommendation's emission.",
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            loss=Gauge(name("training_loss"), "Loss of the last training step.", registry=registry),
            ranker_loss=Gauge(
                name("ranker_loss"),
                "Softmax loss of the ranker's last step on what users did next.",
                registry=registry,
            ),
            ranker_weight=Gauge(
                name("ranker_weight"),
                "The online ranker's weight of each candidate feature.",
                ["feature"],
                registry=registry,
            ),
            model_events=Gauge(
                name("model_events"),
                "Events the model has learned or holds for its next step, over "
                "its life (restored with its checkpoint): each valid event once.",
                registry=registry,
            ),
            model_version=Gauge(
                name("model_version"), "Training steps applied to the model.", registry=registry
            ),
            index_size=Gauge(
                name("index_size"), "Vectors in the retrieval index.", registry=registry
            ),
            index_refresh_seconds=Gauge(
                name("index_refresh_seconds"),
                "Duration of the last index refresh.",
                registry=registry,
            ),
            hit_rate=Gauge(
                name("online_hit_rate"),
                "Share of recent feedback events whose item was in the user's last "
                "list (sliding window).",
                registry=registry,
            ),
            users=Gauge(name("users"), "Users in the state table.", registry=registry),
            checkpoint_seconds=Gauge(
                name("checkpoint_seconds"), "Duration of the last checkpoint.", registry=registry
            ),
        )
        for t in EVENT_TYPES:
            m.events.labels(t)
        for r in REASONS:
            m.invalid.labels(r)
        return m


# -- reading a worker's metrics back (demo, benchmark, tests) ---------------------------------


@dataclass
class Scrape:
    """The figures of one ``/metrics`` read that the demo and the benchmark follow."""

    at: float
    events: float
    invalid: float
    duplicates: float
    replayed: float
    recommendations: float
    rec_clicks: float
    hit_rate: float
    model_version: float
    model_events: float
    loss: float
    #: Cumulative counts of the latency histogram, by upper bound.
    latency_buckets: list[tuple[float, float]]


def scrape(url: str, timeout: float = 2.0) -> Scrape:
    import time
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=timeout) as resp:
        text = resp.read().decode()
    totals: dict[str, float] = {}
    buckets: list[tuple[float, float]] = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "feedrec_event_to_recommendation_seconds_bucket":
                buckets.append((float(sample.labels["le"]), sample.value))
            else:
                totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return Scrape(
        at=time.monotonic(),
        events=totals.get("feedrec_events_total", 0.0),
        invalid=totals.get("feedrec_invalid_events_total", 0.0),
        duplicates=totals.get("feedrec_duplicate_events_total", 0.0),
        replayed=totals.get("feedrec_replayed_events_total", 0.0),
        recommendations=totals.get("feedrec_recommendations_total", 0.0),
        rec_clicks=totals.get("feedrec_recommendation_clicks_total", 0.0),
        hit_rate=totals.get("feedrec_online_hit_rate", 0.0),
        model_version=totals.get("feedrec_model_version", 0.0),
        model_events=totals.get("feedrec_model_events", 0.0),
        loss=totals.get("feedrec_training_loss", 0.0),
        latency_buckets=sorted(buckets),
    )


def histogram_quantile(
    q: float, buckets: list[tuple[float, float]], base: list[tuple[float, float]] | None = None
) -> float:
    """Prometheus-style quantile from cumulative buckets (minus ``base``, an earlier read).

    Interpolates linearly inside the bucket that holds the quantile; NaN when empty.
    """
    if base:
        earlier = dict(base)
        buckets = [(le, n - earlier.get(le, 0.0)) for le, n in buckets]
    if not buckets or buckets[-1][1] <= 0:
        return float("nan")
    rank = q * buckets[-1][1]
    prev_le, prev_n = 0.0, 0.0
    for le, n in buckets:
        if n >= rank:
            if le == float("inf"):
                return prev_le
            if n == prev_n:
                return le
            return prev_le + (le - prev_le) * (rank - prev_n) / (n - prev_n)
        prev_le, prev_n = le, n
    return prev_le
