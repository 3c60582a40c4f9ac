"""A Kafka message as the core sees it: its source, position and event type."""

from __future__ import annotations

import pytest

from feedrec.streams.records import Record, position, source_name
from feedrec.streams.topics import EVENT_TOPIC, EVENT_TOPICS, TOPIC_TYPES


class Message:
    """The three coordinates of a consumed confluent-kafka message, and its bytes."""

    def __init__(self, topic: str | None, partition: int | None, offset: int | None) -> None:
        self._coords = (topic, partition, offset)

    def topic(self) -> str | None:
        return self._coords[0]

    def partition(self) -> int | None:
        return self._coords[1]

    def offset(self) -> int | None:
        return self._coords[2]

    def value(self) -> bytes:
        return b"{}"

    def key(self) -> bytes:
        return b"k"


def test_a_record_is_a_payload_of_its_topics_event_type() -> None:
    r = Record.of(Message("events.cart", 2, 41))  # type: ignore[arg-type]  # a stand-in message
    assert (r.source, r.position, r.event_type, r.value, r.key) == (
        "events.cart/2",
        41,
        "cart",
        b"{}",
        b"k",
    )
    assert Record("items", 0, 1, None).event_type is None
    assert source_name("t", 3) == "t/3"


def test_a_message_without_coordinates_is_an_error_not_a_record() -> None:
    with pytest.raises(ValueError, match="without topic, partition or offset"):
        position(Message("events.cart", None, 3))  # type: ignore[arg-type]


def test_every_event_type_has_one_topic_and_back() -> None:
    assert {TOPIC_TYPES[EVENT_TOPIC[t]] for t in EVENT_TOPIC} == set(EVENT_TOPIC)
    assert tuple(TOPIC_TYPES) == EVENT_TOPICS
