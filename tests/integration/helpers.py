"""Small tools the integration tests share: publishing, reading topics, waiting."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TypeVar

import msgspec
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition

T = TypeVar("T")

#: Worker settings that make the tests quick: frequent checkpoints and index refreshes, small
#: batch waits, a list for every browse, purchased items never recommended.
FAST = {
    "FEEDREC_CHECKPOINT_INTERVAL_S": "2",
    "FEEDREC_INDEX_REFRESH_S": "0.2",
    "FEEDREC_BATCH_WITHIN_S": "0.02",
    "FEEDREC_BROWSE_REC_INTERVAL_S": "0",
    "FEEDREC_EXCLUDE_PURCHASED": "true",
}

#: Generous bounds: only a hang should ever reach them.
EXIT_TIMEOUT_S = 120


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def first_match(pattern: str, text: str) -> str:
    """The first group of ``pattern``'s first match in ``text``; fails the test when none."""
    found = re.search(pattern, text)
    assert found is not None, f"{pattern!r} not found in:\n{text[-3000:]}"
    return found.group(1)


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


def key_of(msg: Message) -> bytes:
    """The key of a message the caller knows was published with one."""
    key = msg.key()
    assert key is not None, f"a message without a key: {msg!r}"
    return key


def value_of(msg: Message) -> bytes:
    """The value of a message the caller knows is not a tombstone."""
    value = msg.value()
    assert value is not None, f"a tombstone where a value was expected: {msg!r}"
    return value


def header_list(msg: Message) -> list[tuple[str, bytes]]:
    """A consumed message's headers, in order; the worker sets every header it writes (bytes)."""
    headers = msg.headers()
    assert headers is not None, f"a message without headers: {msg!r}"
    out: list[tuple[str, bytes]] = []
    for name, data in headers.items() if isinstance(headers, dict) else headers:
        assert isinstance(data, bytes), (name, data)
        out.append((name, data))
    return out


def headers_of(msg: Message) -> dict[str, bytes]:
    """A consumed message's headers by name."""
    return dict(header_list(msg))


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
