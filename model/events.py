"""Event schema and the validating batch decoder.

Everything that reaches the learner has passed through :func:`decode_events`: an input record is
either a well-formed :class:`Event` or :class:`Refused` with a machine-readable reason (the
worker sends those to its dead-letter topic). Decoding never raises on bad input.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Generic, Protocol, TypeVar

import msgspec

#: Event types in the order used for per-type counters and weights.
EVENT_TYPES: tuple[str, ...] = ("browse", "click", "cart", "purchase")
#: How much an event of each type teaches: purchase > cart > click > browse. The learning
#: weight of the pipeline (``FEEDREC_EVENT_WEIGHTS`` overrides it) and of every baseline of the
#: evaluation.
EVENT_WEIGHTS: Mapping[str, float] = {"browse": 0.25, "click": 1.0, "cart": 2.0, "purchase": 4.0}

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


class Payload(Protocol):
    """An input record as the core sees it: the event type its channel carries (None: a channel
    that carries no events), its bytes, and where it came from: the ``source`` it was read from
    and its ``position`` there, increasing along a source (the worker's records are Kafka
    messages: ``topic/partition`` and offset)."""

    @property
    def event_type(self) -> str | None: ...

    @property
    def value(self) -> bytes | None: ...

    @property
    def source(self) -> str: ...

    @property
    def position(self) -> int: ...


P = TypeVar("P", bound=Payload)

#: Where an input record came from: its source and its position there (see :class:`Payload`).
Position = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Refused(Generic[P]):
    """Why an input record was refused; ``reason`` is one of :data:`REASONS`."""

    record: P
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


#: Default for :attr:`ValidationLimits.max_payload_bytes` (``FEEDREC_MAX_PAYLOAD_BYTES``).
MAX_PAYLOAD_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class ValidationLimits:
    """Bounds applied on top of the schema (all in the units their names say)."""

    max_payload_bytes: int = MAX_PAYLOAD_BYTES
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


#: ``(reason, detail)``: why a record cannot be used; ``reason`` is one of :data:`REASONS`.
Refusal = tuple[str, str]


def _refusal(exc: Exception) -> Refusal:
    """The reason and detail for a decoder failure; every exception maps to one."""
    if isinstance(exc, UnicodeDecodeError):
        return "not_utf8", f"not UTF-8: {exc}"
    if isinstance(exc, msgspec.ValidationError):
        return _classify(exc), str(exc)
    if isinstance(exc, msgspec.DecodeError):
        # msgspec reports invalid UTF-8 inside a string as a DecodeError; values that are not
        # UTF-8 are caught before decoding (see decode_events), this is the fallback.
        if "UTF-8" in str(exc):
            return "not_utf8", str(exc)
        return "bad_json", str(exc)
    if isinstance(exc, RecursionError):
        # The decoder recurses once per level of nesting; an unknown field nested ~1,000 deep
        # (a 2 KB record) exhausts the interpreter's limit; shallower nesting in an unknown field
        # is skipped with the field. No real event nests at all.
        return "bad_json", (
            f"nests too deep: more levels of arrays or objects than the decoder "
            f"follows (about {sys.getrecursionlimit()})"
        )
    return "internal_error", f"the decoder failed: {exc!r}"


def _decodable(value: bytes | None, max_bytes: int) -> bytes | Refusal:
    """``value`` if the decoder may be given it, else why it cannot be decoded at all; raises
    UnicodeDecodeError on bad UTF-8 (msgspec skips unknown fields without checking their
    UTF-8, so it is checked here)."""
    if value is None:
        return "bad_json", "no value (a tombstone)"
    if len(value) > max_bytes:
        return "too_large", f"{len(value)} bytes; limit {max_bytes} bytes"
    if not value.isascii():
        str(value, "utf-8")
    return value


def decode_events(
    records: Sequence[P], now_ms: int, limits: ValidationLimits = ValidationLimits()
) -> tuple[list[Event], list[Refused[P]]]:
    """Decode and validate ``records``; return the good events in input order and the refusals.

    Never raises, whatever the bytes: every record is either an event or exactly one
    refusal, so one poison record never costs the good ones beside it.
    """
    events: list[Event] = []
    rejected: list[Refused[P]] = []
    lo = now_ms - limits.max_age_ms
    hi = now_ms + limits.max_future_ms
    max_bytes = limits.max_payload_bytes
    decode = _decoder.decode
    refusal: Refusal
    for rec in records:
        try:
            event_type = rec.event_type
            if event_type is None:
                refusal = ("unknown_event_type", f"no event type for {rec.source!r}")
            elif isinstance(value := _decodable(rec.value, max_bytes), tuple):
                refusal = value
            else:
                ev = decode(value)
                if ev.event_type is not None and ev.event_type != event_type:
                    refusal = (
                        "unknown_event_type" if ev.event_type not in EVENT_TYPES else "bad_value",
                        f"event_type {ev.event_type!r} on {rec.source!r}",
                    )
                elif not lo <= ev.ts <= hi:
                    refusal = (
                        "ts_out_of_range",
                        f"ts {ev.ts} outside [{lo}, {hi}] (epoch milliseconds expected)",
                    )
                else:
                    ev.event_type = event_type
                    events.append(ev)
                    continue
        except Exception as exc:
            refusal = _refusal(exc)
        rejected.append(Refused(rec, *refusal))
    return events, rejected


def decode_catalog_item(
    value: bytes | None, max_bytes: int = MAX_PAYLOAD_BYTES
) -> CatalogItem | Refusal:
    """Decode one catalogue record: the item, or the ``(reason, detail)`` it cannot be used for.

    Never raises; the same reasons as for events (``too_large`` over ``max_bytes``).
    """
    try:
        usable = _decodable(value, max_bytes)
        if isinstance(usable, tuple):
            return usable
        return _catalog_decoder.decode(usable)
    except Exception as exc:
        return _refusal(exc)


encode = msgspec.json.encode
