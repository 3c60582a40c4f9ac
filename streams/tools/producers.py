"""Kafka ends of the simulator and the dataset replay (their logic is Kafka-free)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
from confluent_kafka import OFFSET_END, Consumer, Producer, TopicPartition

from feedrec.streams.kafka import ensure_topics, make_producer, send, wait_for_broker
from feedrec.streams.settings import Settings
from feedrec.streams.tools.replay import replay
from feedrec.streams.tools.simulator import SimConfig, run_simulation
from feedrec.streams.topics import RECS_TOPIC

log = logging.getLogger(__name__)


class RecommendationReader:
    """Non-blocking reader of new recommendations (all partitions, from the end; no group)."""

    def __init__(self, bootstrap: str) -> None:
        # A short fetch wait: the broker may hold a fetch for the whole wait before answering.
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": "feedrec-reader",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 20,
            }
        )
        meta = self._consumer.list_topics(RECS_TOPIC, timeout=10).topics[RECS_TOPIC]
        self._consumer.assign([TopicPartition(RECS_TOPIC, p, OFFSET_END) for p in meta.partitions])
        # A broker may resolve "the end" to the start of the last record batch (Tansu does), so
        # lists emitted before this reader existed are dropped here rather than by every caller.
        self._since_ms = time.time() * 1000
        self.received = 0

    def poll(self, timeout: float = 0.0) -> list[dict]:
        out = []
        for msg in self._consumer.consume(5000, timeout):
            value = msg.value()
            if msg.error() is None and value:
                try:
                    rec = msgspec.json.decode(value)
                except msgspec.DecodeError:
                    continue
                if (
                    isinstance(rec, dict)
                    and rec.get("emitted_ts", self._since_ms) >= self._since_ms
                ):
                    out.append(rec)
        self.received += len(out)
        return out

    def close(self) -> None:
        self._consumer.close()


def _sender(settings: Settings) -> tuple[Producer, Callable[[str, bytes, bytes], None]]:
    producer = make_producer(settings.bootstrap_servers)

    def produce(topic: str, key: bytes, value: bytes) -> None:
        send(producer, topic, key, value)
        producer.poll(0)

    return producer, produce


def simulate(
    settings: Settings,
    rate: float,
    duration_s: float,
    users: int = 2000,
    items: int = 5000,
    seed: int = 0,
    feedback: bool = True,
    stop: threading.Event | None = None,
    on_tick: Callable[[int], None] | None = None,
) -> int:
    """Run the closed-loop simulator against the configured cluster; returns events sent."""
    wait_for_broker(settings.bootstrap_servers, timeout=settings.connect_timeout_s)
    ensure_topics(settings.bootstrap_servers, settings.partitions)
    producer, produce = _sender(settings)
    reader = RecommendationReader(settings.bootstrap_servers) if feedback else None
    try:
        return run_simulation(
            produce,
            rate=rate,
            duration_s=duration_s,
            config=SimConfig(n_users=users, n_items=items, seed=seed),
            poll_recs=reader.poll if reader else None,
            stop=stop,
            on_tick=on_tick,
        )
    finally:
        producer.flush(30)
        if reader is not None:
            reader.close()


def replay_file(
    settings: Settings,
    path: str | Path,
    speedup: float = 0.0,
    limit: int | None = None,
    fav_as: str | None = None,
) -> int:
    """Publish a dataset file in time order; returns events sent."""
    wait_for_broker(settings.bootstrap_servers, timeout=settings.connect_timeout_s)
    ensure_topics(settings.bootstrap_servers, settings.partitions)
    producer, produce = _sender(settings)
    t0 = time.monotonic()
    try:
        sent = replay(path, produce, speedup=speedup, limit=limit, fav_as=fav_as)
    finally:
        producer.flush(30)
    log.info("replayed %d events in %.1fs", sent, time.monotonic() - t0)
    return sent
