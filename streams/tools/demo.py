"""``feedrec demo``: the whole loop on one machine, with live figures and a chart at the end.

Starts the embedded broker (unless ``KAFKA_BOOTSTRAP_SERVERS`` names a cluster), a worker process
and the closed-loop simulator, prints progress every few seconds from the worker's own metrics,
then shuts everything down and writes a PNG of online hit rate and CTR over time.

Ctrl-C ends the traffic early, and the demo still stops things in order (simulator, worker,
broker) and prints its summary. The terminal sends Ctrl-C to every process of the foreground
group, so the broker and the worker run in sessions of their own: only the demo hears it, and
the broker cannot go first and leave the others retrying their connections.
"""

from __future__ import annotations

import math
import os
import signal
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from feedrec.streams.metrics import Scrape, histogram_quantile, scrape
from feedrec.streams.settings import Settings
from feedrec.streams.tools.processes import cluster, worker_process

PROGRESS_EVERY_S = 5.0


@dataclass
class Point:
    t: float
    events_per_s: float
    recs_per_s: float
    hit_rate: float
    ctr: float
    p50_ms: float
    p99_ms: float


def interval(prev: Scrape, cur: Scrape, t0: float) -> Point:
    dt = max(cur.at - prev.at, 1e-9)
    recs = cur.recommendations - prev.recommendations
    clicks = cur.rec_clicks - prev.rec_clicks
    return Point(
        t=cur.at - t0,
        events_per_s=(cur.events - prev.events) / dt,
        recs_per_s=recs / dt,
        hit_rate=cur.hit_rate,
        ctr=clicks / recs if recs else float("nan"),
        p50_ms=1000 * histogram_quantile(0.5, cur.latency_buckets, prev.latency_buckets),
        p99_ms=1000 * histogram_quantile(0.99, cur.latency_buckets, prev.latency_buckets),
    )


def _fmt(x: float, spec: str) -> str:
    return "   -" if math.isnan(x) else format(x, spec)


def write_chart(points: list[Point], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    ts = [p.t for p in points]
    ax.plot(ts, [p.hit_rate for p in points], label="online hit rate (sliding window)", lw=2)
    ax.plot(ts, [p.ctr for p in points], label="CTR of recommendations (per interval)", lw=2)
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("share")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    ax.set_title("feedrec demo: the loop learns while it runs")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def settled(url: str, timeout: float = 15.0) -> Scrape:
    """The worker's figures once it has finished what is in flight (or after ``timeout``;
    another Ctrl-C stops waiting)."""
    deadline = time.monotonic() + timeout
    last = scrape(url)
    try:
        while time.monotonic() < deadline:
            time.sleep(1.0)
            cur = scrape(url)
            if cur.events == last.events:
                break
            last = cur
    except KeyboardInterrupt:
        pass
    return last


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_demo(
    duration_s: float = 120.0, rate: float = 600.0, chart: str = "feedrec-demo.png", seed: int = 0
) -> int:
    from feedrec.streams.tools.producers import simulate

    # The broker and the worker have sessions of their own, so a closed terminal (SIGHUP) or a
    # SIGTERM no longer reaches them: both stop the demo the way Ctrl-C does, in order. SIGINT
    # is set too: a process started in the background of a script inherits it ignored, and
    # Python then raises no KeyboardInterrupt for it.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)

    work = Path(tempfile.mkdtemp(prefix="feedrec-demo-"))
    print(
        f"feedrec demo: {duration_s:.0f}s of simulated shop traffic at {rate:.0f} events/s "
        f"(logs in {work})",
        flush=True,
    )
    points: list[Point] = []
    with cluster(work) as bootstrap:
        print(f"  broker     {bootstrap}", flush=True)
        app_id = f"feedrec-demo-{uuid.uuid4().hex[:8]}"
        with worker_process(bootstrap, work, app_id) as (_, url):
            print(f"  worker     metrics at {url}", flush=True)
            settings = Settings.from_env(env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap})
            stop = threading.Event()
            sent = [0]
            sim = threading.Thread(
                target=lambda: sent.__setitem__(
                    0, simulate(settings, rate=rate, duration_s=duration_s, seed=seed, stop=stop)
                ),
                name="simulator",
                daemon=True,
            )
            first = prev = scrape(url)
            t0 = first.at
            sim.start()
            print("  simulator  started; Ctrl-C stops early\n", flush=True)
            print("  time  events/s  recs/s  hit-rate   CTR   p50 ms  p99 ms  model", flush=True)
            try:
                while sim.is_alive():
                    sim.join(PROGRESS_EVERY_S)
                    cur = scrape(url)
                    if cur.at - prev.at < PROGRESS_EVERY_S / 2:
                        break  # the simulator just finished: a stub interval says nothing
                    p = interval(prev, cur, t0)
                    points.append(p)
                    prev = cur
                    print(
                        f"  {p.t:4.0f}s {p.events_per_s:8.0f} {p.recs_per_s:7.0f} "
                        f"{p.hit_rate:8.3f} {_fmt(p.ctr, '6.3f')} {_fmt(p.p50_ms, '7.0f')} "
                        f"{_fmt(p.p99_ms, '7.0f')}  v{cur.model_version:.0f}",
                        flush=True,
                    )
            except KeyboardInterrupt:
                # First the simulator, while the broker and the worker still serve it.
                print("\n  interrupted: stopping the simulator ...", flush=True)
                stop.set()
                sim.join()
            last = settled(url)
            total = interval(first, last, t0)
            print("\n  stopping worker and broker ...", flush=True)
    events = last.events - first.events
    print("\nsummary")
    print(f"  events sent          {sent[0]}")
    print(f"  events processed     {events:.0f} ({total.events_per_s:.0f}/s)")
    print(f"  invalid events       {last.invalid - first.invalid:.0f}")
    print(f"  recommendations      {last.recommendations - first.recommendations:.0f}")
    print(f"  online hit rate      {last.hit_rate:.3f} (last window)")
    print(f"  CTR, whole run       {_fmt(total.ctr, '.3f')}")
    if len(points) >= 4:
        q = max(len(points) // 4, 1)
        early = [p.ctr for p in points[:q] if not math.isnan(p.ctr)]
        late = [p.ctr for p in points[-q:] if not math.isnan(p.ctr)]
        if early and late:
            print(f"  CTR first quarter    {sum(early) / len(early):.3f}")
            print(f"  CTR last quarter     {sum(late) / len(late):.3f}")
    print(f"  latency p50 / p99    {_fmt(total.p50_ms, '.0f')} / {_fmt(total.p99_ms, '.0f')} ms")
    print(f"  model version        {last.model_version:.0f}")
    if points:
        write_chart(points, Path(chart))
        print(f"  chart                {Path(chart).resolve()}")
    return 0
