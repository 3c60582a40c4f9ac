"""Small tools the integration tests share: publishing, reading topics, waiting."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import msgspec
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition

T = TypeVar("T")


def now_ms() -> int:
    return int(time.time() * 1000)


def event(event_id: str, user: str, item: str, ts: int | None = None, **extra: object) -> bytes:
    return msgspec.json.encode(
        {"event_id": event_id, "user_id": user, "item_id": item, "ts": ts or now_ms(), **extra}
    )


def eventually(
    probe: Callable[[], T | None],
    timeout: float = 60.0,
    every: float = 0.2,
    what: str = "condition",
) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


class TopicReader:
    """Reads every partition of a topic from the beginning, without a consumer group."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": "feedrec-tests",
                "enable.auto.commit": False,
            }
        )
        meta = self.consumer.list_topics(topic, timeout=10).topics[topic]
        self.consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions])
        self.messages: list[Message] = []

    def poll(self) -> list[Message]:
        fresh = [m for m in self.consumer.consume(1000, 0.2) if m.error() is None]
        self.messages.extend(fresh)
        return self.messages

    def close(self) -> None:
        self.consumer.close()
