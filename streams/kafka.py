"""Thin confluent-kafka helpers shared by the worker, the producers and the tests."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from feedrec.streams.exceptions import BrokerUnavailable
from feedrec.streams.topics import ALL_TOPICS, EVENT_TOPICS, ITEMS_TOPIC

log = logging.getLogger(__name__)

#: Keys must land where Faust's (Java-compatible) partitioner puts them, so the state table's
#: changelog partitions line up with the event partitions.
PARTITIONER = "murmur2_random"


#: How long a producer waits to fill a batch. A few more milliseconds per message buy far fewer,
#: larger batches: fewer requests on any broker, and on the embedded one, whose every fetch walks
#: all batches stored in a partition, a fetch cost that grows several times more slowly. At
#: 2,000 events/s on two cores, 20 ms (against 5) took the p99 latency from 1.1-4.7 s to
#: 109-203 ms (docs/benchmarks.md).
PRODUCER_LINGER_MS = 20


def make_producer(bootstrap: str, linger_ms: int = PRODUCER_LINGER_MS, **extra: object) -> Producer:
    conf: dict[str, object] = {
        "bootstrap.servers": bootstrap,
        "partitioner": PARTITIONER,
        "linger.ms": linger_ms,
        "batch.num.messages": 10000,
        "queue.buffering.max.messages": 500000,
        "message.max.bytes": 2 * 1024 * 1024,
        "enable.idempotence": False,
    }
    conf.update(extra)
    return Producer(conf)


def send(
    producer: Producer,
    topic: str,
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes]] | None = None,
    on_delivery: Callable[[KafkaError | None, Message], None] | None = None,
    serve: bool = True,
) -> None:
    """Produce, waiting for queue space instead of failing when the local queue is full: by
    serving delivery reports, or with ``serve=False`` by sleeping (for a thread that must not
    run other senders' callbacks)."""
    # The client's types want a list of its own (wider) header type.
    sent_headers: list[tuple[str, str | bytes | None]] | None = (
        None if headers is None else list(headers)
    )
    while True:
        try:
            producer.produce(
                topic, key=key, value=value, headers=sent_headers, on_delivery=on_delivery
            )
            return
        except BufferError:
            if serve:
                producer.poll(0.05)
            else:
                time.sleep(0.05)


class _Debug:
    """A librdkafka ``logger`` that turns its every line into a debug record."""

    def log(self, level: int, msg: str, *args: object) -> None:
        log.debug("librdkafka: " + msg, *args)


def wait_for_broker(bootstrap: str, timeout: float = 30.0) -> None:
    """Return once a broker at ``bootstrap`` answers; raise :class:`BrokerUnavailable` after
    ``timeout`` seconds.

    This is the first contact of every command, so it keeps quiet while it waits: librdkafka's
    log lines (one per failed connection, many a second) go to this module's logger at debug
    level (``feedrec -v`` shows them) instead of stderr.
    """
    conf: dict[str, Any] = {"bootstrap.servers": bootstrap, "logger": _Debug()}
    admin = AdminClient(conf)
    deadline = time.monotonic() + timeout
    while True:
        try:
            admin.list_topics(timeout=max(min(2.0, deadline - time.monotonic()), 0.1))
            return
        except KafkaException as exc:
            admin.poll(0)  # hands the queued log lines to _Debug
            if time.monotonic() >= deadline:
                raise BrokerUnavailable(
                    f"no Kafka broker answered at {bootstrap} within {timeout:g}s: start one "
                    "(`feedrec broker`) or point KAFKA_BOOTSTRAP_SERVERS at one "
                    "(FEEDREC_CONNECT_TIMEOUT_S sets how long to wait)"
                ) from exc


def ensure_topics(bootstrap: str, partitions: int, topics: Iterable[str] = ALL_TOPICS) -> None:
    """Create missing topics; the catalogue topic is compacted."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = admin.list_topics(timeout=10).topics
    new = []
    for name in topics:
        if name in existing:
            have = len(existing[name].partitions)
            if name in EVENT_TOPICS and have != partitions:
                log.warning("topic %s has %d partitions, expected %d", name, have, partitions)
            continue
        config = {"cleanup.policy": "compact"} if name == ITEMS_TOPIC else {}
        new.append(NewTopic(name, num_partitions=partitions, replication_factor=1, config=config))
    if not new:
        return
    for name, fut in admin.create_topics(new).items():
        try:
            fut.result()
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
        log.info("created topic %s", name)


def latest_values(bootstrap: str, topic: str, timeout: float = 10.0) -> list[bytes]:
    """The values at the tail of every partition of ``topic`` (for resuming monotonic counters).

    Reads from the reported high watermark minus one until nothing more arrives, since some
    brokers (the embedded one) report the mark at the start of the last record batch.
    """
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "feedrec-tail", "enable.auto.commit": False}
    )
    try:
        meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if meta is None or meta.error is not None:
            return []
        wanted = []
        for p in meta.partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            if high > 0:
                wanted.append(TopicPartition(topic, p, high - 1))
        if not wanted:
            return []
        consumer.assign(wanted)
        out: list[bytes] = []
        deadline = time.monotonic() + timeout
        idle_since = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - idle_since < 0.5:
            for msg in consumer.consume(1000, 0.1):
                value = msg.value()
                if msg.error() is None and value is not None:
                    out.append(value)
                    idle_since = time.monotonic()
        return out
    finally:
        consumer.close()
