"""Event schema and the validating batch decoder.

Everything that reaches the learner has passed through :func:`decode_batch`: a record is either a
well-formed :class:`Event` or a :class:`Rejection` with a machine-readable reason that the adapter
sends to the dead-letter topic. Decoding never raises on bad input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

import msgspec

#: Event types in the order used for per-type counters and weights.
EVENT_TYPES: tuple[str, ...] = ("browse", "click", "cart", "purchase")
TOPIC_PREFIX = "events."
#: Input topic name -> event type.
TOPIC_TYPES: dict[str, str] = {TOPIC_PREFIX + t: t for t in EVENT_TYPES}

MAX_ID_LEN = 128

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LEN)]


class Event(msgspec.Struct, omit_defaults=True):
    """One user action on one item. ``event_type`` comes from the topic the event arrived on."""

    event_id: Id
    user_id: Id
    item_id: Id
    ts: int
    session_id: Annotated[str, msgspec.Meta(max_length=MAX_ID_LEN)] | None = None
    category: Annotated[str, msgspec.Meta(max_length=MAX_ID_LEN)] | None = None
    price: Annotated[float, msgspec.Meta(ge=0)] | None = None
    quantity: Annotated[int, msgspec.Meta(ge=1)] | None = None
    rec_id: Annotated[str, msgspec.Meta(max_length=MAX_ID_LEN)] | None = None
    position: Annotated[int, msgspec.Meta(ge=0)] | None = None
    event_type: str | None = None


class CatalogItem(msgspec.Struct, omit_defaults=True):
    """One record of the compacted ``items`` topic."""

    item_id: Id
    category: Annotated[str, msgspec.Meta(max_length=MAX_ID_LEN)] | None = None
    price: Annotated[float, msgspec.Meta(ge=0)] | None = None
    available: bool = True


@dataclass(frozen=True, slots=True)
class Record:
    """A raw message as the adapter received it; the coordinates go into dead letters."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a record was refused; ``reason`` is one of :data:`REASONS`."""

    record: Record
    reason: str
    detail: str


#: Every reason a record can be refused for (the label values of the invalid-events counter).
REASONS: tuple[str, ...] = (
    "too_large",
    "not_utf8",
    "bad_json",
    "missing_field",
    "wrong_type",
    "bad_id",
    "bad_value",
    "unknown_event_type",
    "ts_out_of_range",
    #: The pipeline failed on the batch (a bug); the records are kept for a replay.
    "internal_error",
)


@dataclass(frozen=True, slots=True)
class ValidationLimits:
    """Bounds applied on top of the schema (all in the units their names say)."""

    max_payload_bytes: int = 64 * 1024
    max_age_ms: int = 30 * 24 * 3600 * 1000
    max_future_ms: int = 5 * 60 * 1000


_decoder = msgspec.json.Decoder(Event)
_catalog_decoder = msgspec.json.Decoder(CatalogItem)


def _classify(err: msgspec.ValidationError) -> str:
    text = str(err)
    if text.startswith("Object missing required field"):
        return "missing_field"
    if "of length" in text and any(f"$.{f}" in text for f in ("event_id", "user_id", "item_id")):
        return "bad_id"
    if text.startswith("Expected `") and "got" in text:
        return "wrong_type"
    return "bad_value"


def decode_batch(
    records: Sequence[Record], now_ms: int, limits: ValidationLimits = ValidationLimits()
) -> tuple[list[Event], list[Rejection]]:
    """Decode and validate ``records``; return the good events in input order and the rejections."""
    events: list[Event] = []
    rejected: list[Rejection] = []
    lo = now_ms - limits.max_age_ms
    hi = now_ms + limits.max_future_ms
    decode = _decoder.decode
    for rec in records:
        value = rec.value
        event_type = TOPIC_TYPES.get(rec.topic)
        if event_type is None:
            rejected.append(Rejection(rec, "unknown_event_type", f"no event type for topic {rec.topic!r}"))
            continue
        if value is None or len(value) > limits.max_payload_bytes:
            size = "no value" if value is None else f"{len(value)} bytes"
            rejected.append(
                Rejection(rec, "too_large" if value else "bad_json",
                          f"{size}; limit {limits.max_payload_bytes} bytes")
            )
            continue
        try:
            ev = decode(value)
        except UnicodeDecodeError as exc:
            rejected.append(Rejection(rec, "not_utf8", str(exc)))
            continue
        except msgspec.ValidationError as exc:
            rejected.append(Rejection(rec, _classify(exc), str(exc)))
            continue
        except msgspec.DecodeError as exc:
            rejected.append(Rejection(rec, "bad_json", str(exc)))
            continue
        if ev.event_type is not None and ev.event_type != event_type:
            reason = "unknown_event_type" if ev.event_type not in EVENT_TYPES else "bad_value"
            rejected.append(
                Rejection(rec, reason, f"event_type {ev.event_type!r} on topic {rec.topic!r}")
            )
            continue
        if not lo <= ev.ts <= hi:
            rejected.append(
                Rejection(rec, "ts_out_of_range",
                          f"ts {ev.ts} outside [{lo}, {hi}] (epoch milliseconds expected)")
            )
            continue
        ev.event_type = event_type
        events.append(ev)
    return events, rejected


def decode_catalog_item(value: bytes) -> CatalogItem | None:
    """Decode one catalogue record; ``None`` for a record that cannot be used."""
    try:
        return _catalog_decoder.decode(value)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None


encode = msgspec.json.encode
