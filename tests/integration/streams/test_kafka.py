"""The confluent-kafka helpers every part shares, against the real broker."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import KafkaError, Message
from confluent_kafka.admin import AdminClient, ConfigResource

from feedrec.streams.exceptions import BrokerUnavailable
from feedrec.streams.kafka import ensure_topics, latest_values, make_producer, send, wait_for_broker
from feedrec.streams.tools.broker import free_port
from feedrec.streams.topics import ALL_TOPICS, ITEMS_TOPIC

from ..helpers import value_of


def partitions(bootstrap: str, topic: str) -> int:
    meta = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=10)
    return len(meta.topics[topic].partitions)


def test_waiting_for_a_broker_that_is_not_there_fails_with_what_to_do() -> None:
    with pytest.raises(BrokerUnavailable, match=r"no Kafka broker answered .* within 1s"):
        wait_for_broker(f"localhost:{free_port()}", timeout=1.0)


def test_missing_topics_are_created_once_and_the_catalogue_is_compacted(bootstrap: str) -> None:
    wait_for_broker(bootstrap)
    name = f"feedrec-test-{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, 3, [name, *ALL_TOPICS])
    ensure_topics(bootstrap, 3, [name])  # a second time changes nothing and does not fail
    assert partitions(bootstrap, name) == 3
    admin = AdminClient({"bootstrap.servers": bootstrap})
    assert set(ALL_TOPICS) <= set(admin.list_topics(timeout=10).topics)
    (config,) = admin.describe_configs([ConfigResource("topic", ITEMS_TOPIC)]).values()
    assert config.result()["cleanup.policy"].value == "compact"


def test_send_waits_out_a_full_queue_and_loses_nothing(bootstrap: str) -> None:
    topic = f"feedrec-test-{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, 1, [topic])
    # A local queue of 5 messages: most sends find it full and must wait for deliveries.
    producer = make_producer(bootstrap, **{"queue.buffering.max.messages": 5})
    delivered: list[bytes] = []

    def report(err: KafkaError | None, msg: Message) -> None:
        if err is None:
            delivered.append(value_of(msg))

    for n in range(200):
        send(producer, topic, b"k", str(n).encode(), on_delivery=report)
    producer.flush(30)
    assert delivered == [str(n).encode() for n in range(200)]


def test_latest_values_are_the_tail_of_every_partition(bootstrap: str) -> None:
    topic = f"feedrec-test-{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, 2, [topic])
    assert latest_values(bootstrap, topic) == []
    producer = make_producer(bootstrap)
    for partition in (0, 1):
        for n in range(3):
            producer.produce(topic, value=f"p{partition}-{n}".encode(), partition=partition)
    producer.flush(10)
    got = latest_values(bootstrap, topic, timeout=5.0)
    # The embedded broker may report the mark at the start of the last batch: the tail is at
    # least each partition's last value, and nothing from before its batch.
    every = {f"p{p}-{n}".encode() for p in (0, 1) for n in range(3)}
    assert {b"p0-2", b"p1-2"} <= set(got) <= every
