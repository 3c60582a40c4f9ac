"""A Kafka message as the worker handles it, and one that was refused."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import Message

from feedrec.model.events import Refused
from feedrec.streams.topics import TOPIC_TYPES


@dataclass(frozen=True, slots=True)
class Record:
    """A raw message as the adapter received it; the coordinates go into dead letters. It is
    the core's :class:`feedrec.model.events.Payload`: its source is ``topic/partition``, its
    position the offset."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None

    @classmethod
    def of(cls, msg: Message) -> Record:
        """The record of a consumed message."""
        topic, partition, offset = position(msg)
        return cls(topic, partition, offset, msg.value(), msg.key())

    @property
    def event_type(self) -> str | None:
        return TOPIC_TYPES.get(self.topic)

    @property
    def source(self) -> str:
        return source_name(self.topic, self.partition)

    @property
    def position(self) -> int:
        return self.offset


#: A record refused, with the reason (:data:`feedrec.model.events.REASONS`) and a detail.
Rejection = Refused[Record]


def source_name(topic: str, partition: int) -> str:
    return f"{topic}/{partition}"


def position(msg: Message) -> tuple[str, int, int]:
    """Topic, partition and offset of a consumed message (a consumed message has all three;
    the client's types say they may be missing)."""
    topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
    if topic is None or partition is None or offset is None:
        raise ValueError(f"a consumed message without topic, partition or offset: {msg!r}")
    return topic, partition, offset
