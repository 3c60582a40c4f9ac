"""What a dead letter looks like on the ``events.dlq`` topic, and how it is sent.

A dead letter is the refused record's key and value, byte for byte (a tombstone stays a
tombstone); headers carry the reason, a detail and the record's coordinates (``feedrec.topic``,
``feedrec.partition``, ``feedrec.offset``).

A record too large to copy (over :data:`COPY_LIMIT_BYTES` with its key and headers, or one the
producer or broker refuses as too large) is sent as a *reference* instead: an empty value, the
same headers, plus ``feedrec.size`` and ``feedrec.sha256`` (the value's length in bytes and its
hex SHA-256), so it can be found and checked at its coordinates while the source topic retains
it. A key over :data:`REFERENCE_KEY_MAX_BYTES` is left out of a reference too and described the
same way (``feedrec.key_size``, ``feedrec.key_sha256``). A dead letter is a reference exactly
when it has a ``feedrec.sha256`` header.

Sending (:func:`send_dead_letter`) falls back to the reference by itself, both when ``produce``
refuses the copy synchronously and when the delivery report says the broker refused it as too
large; :func:`reference` and :func:`refused_as_too_large` are there for a sender that does its
own delivery handling.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from prometheus_client import Counter

from feedrec.streams.kafka import send
from feedrec.streams.records import Rejection
from feedrec.streams.topics import DLQ_TOPIC

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]
Letter = tuple[bytes | None, bytes | None, Headers]
DeliveryReport = Callable[[KafkaError | None, Message], None]

#: The producer's ``message.max.bytes`` (streams/kafka.py::make_producer): ``produce`` refuses a
#: larger message (key + value + headers) synchronously with MSG_SIZE_TOO_LARGE.
PRODUCER_MESSAGE_MAX_BYTES = 2 * 1024 * 1024

#: Largest dead letter (key + value + header names and values) sent as a copy. Half the
#: producer's limit, and ~48 KB under a default Kafka broker's 1,048,588-byte record-batch limit
#: (room for the batch and record overhead), so a copy that fits here fits both. The embedded
#: broker (Tansu) enforces no limit of its own: it took single records up to 400 MiB.
COPY_LIMIT_BYTES = 1_000_000

#: A reference keeps the original key up to this size (a key is normally a short id).
REFERENCE_KEY_MAX_BYTES = 1024

#: Delivery errors that mean "this message is too large" (broker or client).
TOO_LARGE_CODES = frozenset({KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE})


def _text(s: str) -> bytes:
    return s.encode("utf-8", "backslashreplace")


def _headers(rej: Rejection, detail: str) -> Headers:
    rec = rej.record
    return [
        ("feedrec.reason", _text(rej.reason)),
        ("feedrec.detail", _text(detail[:1000])),
        ("feedrec.topic", _text(rec.topic)),
        ("feedrec.partition", str(rec.partition).encode()),
        ("feedrec.offset", str(rec.offset).encode()),
    ]


def letter_size(key: bytes | None, value: bytes | None, headers: Headers) -> int:
    """Bytes a message counts against the size limits: key, value, header names and values."""
    return (
        len(key or b"") + len(value or b"") + sum(len(name) + len(data) for name, data in headers)
    )


def reference(rej: Rejection, why: str = "") -> Letter:
    """``(key, value, headers)`` of the reference for ``rej``: an empty value, the coordinates,
    and the size and SHA-256 of the value it stands for; ``why`` is added to the detail."""
    rec = rej.record
    value = rec.value or b""
    detail = f"{rej.detail}; not copied ({why or 'too large to copy'})"
    headers = _headers(rej, detail)
    headers += [
        ("feedrec.size", str(len(value)).encode()),
        ("feedrec.sha256", hashlib.sha256(value).hexdigest().encode()),
    ]
    key = rec.key
    if key is not None and len(key) > REFERENCE_KEY_MAX_BYTES:
        headers += [
            ("feedrec.key_size", str(len(key)).encode()),
            ("feedrec.key_sha256", hashlib.sha256(key).hexdigest().encode()),
        ]
        key = None
    return key, b"", headers


def _letter(rej: Rejection, copy_limit: int) -> tuple[Letter, bool]:
    """The dead letter for ``rej`` and whether it is a copy (else a reference)."""
    rec = rej.record
    headers = _headers(rej, rej.detail)
    size = letter_size(rec.key, rec.value, headers)
    if size > copy_limit:
        why = f"{size} bytes with key and headers; copy limit {copy_limit}"
        return reference(rej, why), False
    return (rec.key, rec.value, headers), True


def dead_letter(rej: Rejection, copy_limit: int = COPY_LIMIT_BYTES) -> Letter:
    """``(key, value, headers)`` of the dead letter for ``rej``: the record's own key and value,
    or :func:`reference` when the copy would exceed ``copy_limit`` bytes."""
    return _letter(rej, copy_limit)[0]


def refused_as_too_large(err: KafkaError | None) -> bool:
    """Whether a delivery report's error says the message was too large to store."""
    return err is not None and err.code() in TOO_LARGE_CODES


def send_dead_letter(
    producer: Producer,
    rej: Rejection,
    on_delivery: DeliveryReport | None = None,
    topic: str = DLQ_TOPIC,
    serve: bool = True,
) -> None:
    """Send the dead letter for ``rej``, falling back to its :func:`reference` when the copy is
    refused as too large: synchronously by ``produce`` (KafkaException), or by the broker in the
    delivery report. ``on_delivery`` gets exactly one report, that of the message finally stored
    (or the last failure). Raises KafkaException only when the reference is refused too."""
    letter, copied = _letter(rej, COPY_LIMIT_BYTES)
    report = _falling_back(producer, rej, topic, on_delivery) if copied else on_delivery
    try:
        send(producer, topic, *letter, on_delivery=report, serve=serve)
        return
    except KafkaException as exc:
        if not copied:
            raise
        log.warning(
            "dead letter for %s[%d]@%d refused (%s); sending a reference",
            rej.record.topic,
            rej.record.partition,
            rej.record.offset,
            exc,
        )
        why = f"the producer refused the copy: {exc}"
    send(producer, topic, *reference(rej, why), on_delivery=on_delivery, serve=serve)


def _falling_back(
    producer: Producer, rej: Rejection, topic: str, on_delivery: DeliveryReport | None
) -> DeliveryReport | None:
    """A delivery report for a copy that sends the reference instead when the broker refused the
    copy as too large, and passes every other outcome to ``on_delivery``."""

    def report(err: KafkaError | None, msg: Message) -> None:
        if not refused_as_too_large(err):
            if on_delivery is not None:
                on_delivery(err, msg)
            return
        log.warning(
            "broker refused the dead letter for %s[%d]@%d (%s); sending a reference",
            rej.record.topic,
            rej.record.partition,
            rej.record.offset,
            err,
        )
        key, value, headers = reference(rej, f"the broker refused the copy: {err}")
        try:
            # Inside a delivery callback: no waiting for queue space (that needs poll()).
            producer.produce(topic, value, key, headers=list(headers), on_delivery=on_delivery)
        except (BufferError, KafkaException) as exc:
            log.error(
                "reference for %s[%d]@%d not sent either: %s",
                rej.record.topic,
                rej.record.partition,
                rej.record.offset,
                exc,
            )
            if on_delivery is not None:
                on_delivery(err, msg)

    return report


def dead_letter_sink(
    producer: Producer, invalid: Counter, topic: str = DLQ_TOPIC
) -> Callable[[Rejection], None]:
    """A callable that sends one rejection's dead letter and counts it in ``invalid`` (the
    ``reason``-labelled counter), for threads other than the one that polls ``producer``
    (the catalogue reader): it never serves other senders' delivery reports."""

    def failed(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            log.error("dead letter not stored in %s: %s", msg.topic(), err)

    def sink(rej: Rejection) -> None:
        send_dead_letter(producer, rej, on_delivery=failed, topic=topic, serve=False)
        invalid.labels(rej.reason).inc()

    return sink
