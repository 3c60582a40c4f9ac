"""``feedrec bench``: throughput and latency of the worker against the raw-client ceiling.

All three figures come from one run on one broker:

(a) full pipeline: N simulated events are published first, then one worker (every stage on)
    consumes them; events/s from its first processed event to its last;
(b) latency: the simulator publishes at a fixed rate while the worker runs; for every
    recommendation, the time from its triggering event's ``ts`` to its arrival at a consumer;
(a0) the same with the events read through a plain Faust agent (``FEEDREC_CONSUMER=faust``);
(c) ceiling: a bare confluent-kafka loop consumes the same N events, decodes and validates
    them with the same decoder, and produces one message per event, with no Faust.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from feedrec.model.events import decode_events
from feedrec.streams.kafka import PRODUCER_LINGER_MS, ensure_topics, make_producer, send
from feedrec.streams.metrics import histogram_quantile, scrape
from feedrec.streams.records import Record
from feedrec.streams.settings import Settings
from feedrec.streams.tools.processes import cluster, worker_process
from feedrec.streams.tools.producers import RecommendationReader
from feedrec.streams.tools.simulator import Shop, SimConfig, run_simulation
from feedrec.streams.topics import DLQ_TOPIC, EVENT_TOPICS, ITEMS_TOPIC, RECS_TOPIC

RAW_OUT_TOPIC = "bench.raw-out"


def publish_events(
    bootstrap: str, n: int, seed: int = 0, linger_ms: int = PRODUCER_LINGER_MS
) -> float:
    """Publish ``n`` simulated events as fast as possible; returns events/s of the producer."""
    shop = Shop(SimConfig(seed=seed))
    producer = make_producer(bootstrap, linger_ms)
    for item in shop.catalogue():
        send(producer, ITEMS_TOPIC, item["item_id"].encode(), msgspec.json.encode(item))
    encode = msgspec.json.encode
    t0 = time.perf_counter()
    sent = 0
    now_ms = int(time.time() * 1000)
    while sent < n:
        for topic, ev in shop.next_events(now_ms + sent // 10, min(5000, n - sent)):
            send(producer, topic, ev["user_id"].encode(), encode(ev))
            sent += 1
        producer.poll(0)
    producer.flush(60)
    return n / (time.perf_counter() - t0)


def raw_ceiling(bootstrap: str, n: int, timeout: float = 300.0) -> float:
    """Consume, validate and re-produce ``n`` events with bare confluent-kafka; events/s."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-raw-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "fetch.max.bytes": 64 * 1024 * 1024,
        }
    )
    parts = []
    for topic in EVENT_TOPICS:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        parts += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions]
    consumer.assign(parts)
    producer = make_producer(bootstrap)
    done = 0
    t0 = None
    deadline = time.monotonic() + timeout
    while done < n and time.monotonic() < deadline:
        msgs = consumer.consume(5000, 0.5)
        if not msgs:
            continue
        if t0 is None:
            t0 = time.perf_counter()
        records = [Record.of(m) for m in msgs if m.error() is None]
        events, _ = decode_events(records, int(time.time() * 1000))
        for ev in events:
            send(producer, RAW_OUT_TOPIC, ev.user_id.encode(), msgspec.json.encode(ev))
        producer.poll(0)
        done += len(records)
    producer.flush(60)
    consumer.close()
    if t0 is None:
        raise RuntimeError("raw consumer read nothing")
    return done / (time.perf_counter() - t0)


def _processed(url: str) -> float:
    s = scrape(url)
    return s.events + s.invalid


def pipeline_throughput(url: str, n: int, timeout: float = 600.0) -> float:
    """Events/s of a worker working through ``n`` waiting events, first to last."""
    deadline = time.monotonic() + timeout
    while _processed(url) == 0:
        if time.monotonic() > deadline:
            raise RuntimeError("worker processed nothing")
        time.sleep(0.05)
    t0 = time.perf_counter()
    start = _processed(url)
    while (done := _processed(url)) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"worker processed only {done:.0f} of {n} events")
        time.sleep(0.1)
    return (done - start) / (time.perf_counter() - t0)


def _cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) used so far by these processes; 0 where /proc cannot tell."""
    total = 0.0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _broker_pids() -> list[int]:
    """The embedded broker's processes (Linux), to show how much of the machine it takes."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().startswith("tansu"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def latency_run(
    settings: Settings,
    rate: float,
    seconds: float,
    url: str,
    worker_pid: int | None = None,
    linger_ms: int = PRODUCER_LINGER_MS,
) -> dict[str, object]:
    """Latency at a fixed event rate: seen by a consumer of the output topic, and by the worker
    (its histogram from the event's ``ts`` to emission, over the same window). Also the p99 of
    each 10 s of the run and the cores the worker and the embedded broker used meanwhile: on a
    small machine the broker's share decides whether latency holds."""
    before = scrape(url)
    watched = {"worker": [worker_pid] if worker_pid else [], "broker": _broker_pids()}
    cpu0 = {k: _cpu_seconds(v) for k, v in watched.items()}
    started = time.time()
    reader = RecommendationReader(settings.bootstrap_servers)
    producer = make_producer(settings.bootstrap_servers, linger_ms)
    #: ``(arrival time, latency ms)`` of every list.
    lat: list[tuple[float, float]] = []
    stop = threading.Event()

    def collect() -> None:
        while not stop.is_set():
            for rec in reader.poll(0.005):
                now = time.time()
                lat.append((now, now * 1000 - rec["event_ts"]))

    collector = threading.Thread(target=collect, daemon=True)
    collector.start()

    def produce(topic: str, key: bytes, value: bytes) -> None:
        send(producer, topic, key, value)
        producer.poll(0)

    sent = run_simulation(produce, rate=rate, duration_s=seconds, config=SimConfig(seed=1))
    producer.flush(30)
    time.sleep(2.0)
    stop.set()
    collector.join()
    reader.close()
    if not lat:
        raise RuntimeError("no recommendation arrived during the latency run")
    cores = {
        f"{k}_cores": (_cpu_seconds(v) - cpu0[k]) / (time.time() - started)
        for k, v in watched.items()
        if v
    }
    at = np.asarray(lat)
    window = ((at[:, 0] - started) // 10).astype(int)
    by_window = [float(np.percentile(at[window == w, 1], 99)) for w in np.unique(window)]
    arr = at[:, 1]
    after = scrape(url)
    return {
        "events_sent": sent,
        "rate": sent / seconds,
        "recommendations": len(arr),
        "p99_ms_by_10s": by_window,
        **cores,
        "p50_ms": float(np.percentile(arr, 50)),
        "p99_ms": float(np.percentile(arr, 99)),
        "max_ms": float(arr.max()),
        "worker_p50_ms": 1000
        * histogram_quantile(0.5, after.latency_buckets, before.latency_buckets),
        "worker_p99_ms": 1000
        * histogram_quantile(0.99, after.latency_buckets, before.latency_buckets),
    }


def run_bench(
    events: int = 200_000,
    latency_rate: float = 2000.0,
    latency_s: float = 30.0,
    output: str | None = None,
    linger_ms: int = PRODUCER_LINGER_MS,
) -> int:
    """Run (c), (a0), (a) and (b) on one broker. ``linger_ms`` is every producer's batching wait:
    the simulated shop's and the workers' (``FEEDREC_PRODUCER_LINGER_MS``)."""
    work = Path(tempfile.mkdtemp(prefix="feedrec-bench-"))
    results: dict[str, Any] = {
        "events": events,
        "cpus": os.cpu_count(),
        "producer_linger_ms": linger_ms,
    }
    lingering = {"FEEDREC_PRODUCER_LINGER_MS": str(linger_ms)}
    with cluster(work) as bootstrap:
        settings = Settings.from_env(env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap})
        ensure_topics(
            bootstrap,
            settings.partitions,
            [*EVENT_TOPICS, ITEMS_TOPIC, RAW_OUT_TOPIC, RECS_TOPIC, DLQ_TOPIC],
        )
        print(f"publishing {events} simulated events to {bootstrap} ...", flush=True)
        results["producer_events_per_s"] = publish_events(bootstrap, events, linger_ms=linger_ms)
        print("(c) raw confluent-kafka consume-validate-produce ...", flush=True)
        results["raw_events_per_s"] = raw_ceiling(bootstrap, events)
        print("(a0) full pipeline, one worker reading through a plain Faust agent ...", flush=True)
        (work / "a0").mkdir()
        (work / "a").mkdir()
        with worker_process(
            bootstrap,
            work / "a0",
            f"feedrec-bench-{uuid.uuid4().hex[:8]}",
            env={"FEEDREC_CONSUMER": "faust", **lingering},
        ) as (_, url):
            results["faust_agent_events_per_s"] = pipeline_throughput(url, events)
        print("(a) full pipeline, one worker ...", flush=True)
        with worker_process(
            bootstrap, work / "a", f"feedrec-bench-{uuid.uuid4().hex[:8]}", env=lingering
        ) as (proc, url):
            results["pipeline_events_per_s"] = pipeline_throughput(url, events)
            print(
                f"(b) latency at {latency_rate:.0f} events/s for {latency_s:.0f}s ...", flush=True
            )
            results["latency"] = latency_run(
                settings, latency_rate, latency_s, url, proc.pid, linger_ms
            )
    a = float(results["pipeline_events_per_s"])
    c = float(results["raw_events_per_s"])
    lat = results["latency"]
    results["ratio_a_over_c"] = a / c
    print("\nfeedrec bench")
    a0 = float(results["faust_agent_events_per_s"])
    print(f"  (a0) same, plain Faust agent path  {a0:10,.0f} events/s")
    print(f"  (a) full pipeline, one worker      {a:10,.0f} events/s")
    print(
        f"  (b) latency at {latency_rate:,.0f} events/s     p50 {lat['p50_ms']:.0f} ms, "
        f"p99 {lat['p99_ms']:.0f} ms at the consumer; "
        f"p50 {lat['worker_p50_ms']:.0f} ms, p99 {lat['worker_p99_ms']:.0f} ms "
        "in the worker"
    )
    windows = ", ".join(f"{v:.0f}" for v in lat["p99_ms_by_10s"])
    print(
        f"      p99 per 10 s: {windows} ms; cores used: worker "
        f"{lat.get('worker_cores', float('nan')):.2f}, "
        f"embedded broker {lat.get('broker_cores', float('nan')):.2f}"
    )
    print(f"  (c) raw confluent-kafka ceiling    {c:10,.0f} events/s")
    print(f"  ratio (a)/(c)                      {a / c:10.3f}")
    if output:
        Path(output).write_text(json.dumps(results, indent=2))
    return 0
