"""Every topic the worker reads or writes, by name: the one place they are spelled out."""

from __future__ import annotations

from feedrec.model.events import EVENT_TYPES

#: Input topic -> the event type it carries.
TOPIC_TYPES: dict[str, str] = {f"events.{t}": t for t in EVENT_TYPES}
#: Event type -> its input topic.
EVENT_TOPIC: dict[str, str] = {t: topic for topic, t in TOPIC_TYPES.items()}
EVENT_TOPICS: tuple[str, ...] = tuple(TOPIC_TYPES)
#: The compacted catalogue (item id -> category, price, availability).
ITEMS_TOPIC = "items"
RECS_TOPIC = "recommendations"
DLQ_TOPIC = "events.dlq"
ALL_TOPICS: tuple[str, ...] = (*EVENT_TOPICS, ITEMS_TOPIC, RECS_TOPIC, DLQ_TOPIC)
