"""The partition drain against the real broker: it reads the partitions it is given, from where
the model resumes, in offset order, and a new drain of the same group goes on after the offsets
the first one stored."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from confluent_kafka import Consumer, TopicPartition

from feedrec.streams.drain import PartitionDrain
from feedrec.streams.kafka import make_producer
from feedrec.streams.records import Record, source_name
from feedrec.streams.settings import Settings
from feedrec.streams.topics import EVENT_TOPICS


def ends(bootstrap: str) -> dict[tuple[str, int], int]:
    """The next offset of partitions 0 and 1 of every event topic."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "feedrec-tests"})
    try:
        return {
            (t, p): consumer.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1]
            for t in EVENT_TOPICS
            for p in (0, 1)
        }
    finally:
        consumer.close()


def publish(bootstrap: str, marker: str, per_partition: int) -> None:
    producer = make_producer(bootstrap)
    for topic in EVENT_TOPICS:
        for partition in (0, 1):
            for n in range(per_partition):
                producer.produce(
                    topic, value=f"{marker}/{partition}/{n}".encode(), partition=partition
                )
    producer.flush(10)


def drain_until(drain: PartitionDrain, done: Callable[[list[Record]], bool]) -> list[Record]:
    """Run ``drain`` on partition 0 until ``done`` holds of what it read; then close it."""
    got: list[Record] = []

    async def main() -> None:
        drain.want({0})
        task = asyncio.create_task(drain.run(got.extend))
        for _ in range(600):
            if done(got):
                break
            await asyncio.sleep(0.05)
        await drain.close()
        await task

    asyncio.run(main())
    return got


def mine(records: list[Record], marker: str) -> list[bytes]:
    """The values of ``records`` that this test published (``marker`` first)."""
    return [r.value for r in records if r.value is not None and r.value.startswith(marker.encode())]


def test_a_drain_reads_its_partitions_from_the_resume_point_and_hands_over_at_its_commit(
    bootstrap: str, app_id: str
) -> None:
    settings = Settings.from_env(
        {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "FEEDREC_APP_ID": app_id, "FEEDREC_BATCH_SIZE": "7"}
    )
    start = ends(bootstrap)
    marker = uuid.uuid4().hex
    publish(bootstrap, marker, 10)
    begun: dict[str, int] = {}
    first = PartitionDrain(
        settings,
        resume=lambda: {source_name(t, p): o for (t, p), o in start.items()},
        begin=begun.update,
    )
    # Once everything is read, the first drain stores the offsets after the first 6 records of
    # each topic, as the worker does once a batch is durable; closing commits them.
    stored = {(t, 0): start[(t, 0)] + 6 for t in EVENT_TOPICS}

    def read_all_then_store(got: list[Record]) -> bool:
        if len(mine(got, marker)) < 40:
            return False
        first.store(stored)
        return True

    got = drain_until(first, read_all_then_store)
    # Only partition 0, from the model's resume point (nothing before it), in offset order.
    assert {r.partition for r in got} == {0}
    assert begun == {source_name(t, 0): start[(t, 0)] for t in EVENT_TOPICS}
    for topic in EVENT_TOPICS:
        offsets = [r.offset for r in got if r.topic == topic]
        assert offsets == list(range(start[(topic, 0)], start[(topic, 0)] + 10))
    assert sorted(mine(got, marker)) == sorted(
        f"{marker}/0/{n}".encode() for _ in EVENT_TOPICS for n in range(10)
    )

    # A new drain of the same group, with no model to resume from, goes on from the commit.
    again_begun: dict[str, int] = {}
    again = PartitionDrain(settings, begin=again_begun.update)
    rest = drain_until(again, lambda got: len(mine(got, marker)) == 16)
    assert again_begun == {source_name(t, 0): stored[(t, 0)] for t in EVENT_TOPICS}
    assert sorted(mine(rest, marker)) == sorted(
        f"{marker}/0/{n}".encode() for _ in EVENT_TOPICS for n in range(6, 10)
    )
