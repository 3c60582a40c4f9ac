"""Dead letters: byte-equal copies, references for what is too large, and the send fallbacks."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import cast

import pytest
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from prometheus_client import CollectorRegistry

import feedrec.streams.kafka
from feedrec.model.events import Refused
from feedrec.streams import deadletter
from feedrec.streams.deadletter import (
    COPY_LIMIT_BYTES,
    PRODUCER_MESSAGE_MAX_BYTES,
    DeliveryReport,
    Headers,
    dead_letter,
    dead_letter_sink,
    letter_size,
    reference,
    refused_as_too_large,
    send_dead_letter,
)
from feedrec.streams.metrics import Metrics
from feedrec.streams.records import Record, Rejection
from feedrec.streams.topics import DLQ_TOPIC


def rejection(
    value: bytes | None,
    key: bytes | None = b"u1",
    reason: str = "bad_json",
    detail: str = "JSON is malformed",
    topic: str = "events.click",
) -> Rejection:
    return Refused(Record(topic, 3, 1234, value, key), reason, detail)


def headers_of(letter: deadletter.Letter) -> dict[str, bytes]:
    names = [name for name, _ in letter[2]]
    assert len(names) == len(set(names)), "a header name repeats"
    return dict(letter[2])


def test_a_dead_letter_is_the_record_byte_for_byte_with_its_coordinates() -> None:
    value = b'{"event_id":"\xff\xfe"} trailing \x00 bytes'
    key, got, headers = dead_letter(rejection(value, reason="not_utf8", detail="bad byte"))
    assert key == b"u1" and got == value
    assert dict(headers) == {
        "feedrec.reason": b"not_utf8",
        "feedrec.detail": b"bad byte",
        "feedrec.topic": b"events.click",
        "feedrec.partition": b"3",
        "feedrec.offset": b"1234",
    }


def test_a_tombstone_stays_a_tombstone_and_an_empty_value_stays_empty() -> None:
    assert dead_letter(rejection(None))[1] is None
    assert dead_letter(rejection(b""))[1] == b""
    assert "feedrec.sha256" not in headers_of(dead_letter(rejection(b"")))


def test_a_letter_over_the_copy_limit_is_a_reference_with_size_and_digest() -> None:
    rej = rejection(b"x" * 500)
    size = letter_size(b"u1", b"x" * 500, dead_letter(rej)[2])
    assert dead_letter(rej, copy_limit=size)[1] == b"x" * 500  # exactly at the limit: a copy
    key, value, _ = letter = dead_letter(rej, copy_limit=size - 1)
    headers = headers_of(letter)
    assert key == b"u1" and value == b""
    assert headers["feedrec.size"] == b"500"
    assert headers["feedrec.sha256"] == hashlib.sha256(b"x" * 500).hexdigest().encode()
    assert headers["feedrec.reason"] == b"bad_json"
    assert (headers["feedrec.topic"], headers["feedrec.partition"], headers["feedrec.offset"]) == (
        b"events.click",
        b"3",
        b"1234",
    )
    assert b"not copied" in headers["feedrec.detail"]
    assert letter_size(*letter) < 1000


def test_the_default_copy_limit_leaves_room_under_the_producer_limit() -> None:
    big = rejection(b"y" * 2_500_000, reason="too_large")
    assert headers_of(dead_letter(big))["feedrec.size"] == b"2500000"
    fits = rejection(b"y" * (COPY_LIMIT_BYTES - 1000))
    assert dead_letter(fits)[1] == fits.record.value
    assert COPY_LIMIT_BYTES <= PRODUCER_MESSAGE_MAX_BYTES // 2


def test_the_producer_limit_constant_is_the_one_make_producer_sets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[dict] = []
    monkeypatch.setattr(feedrec.streams.kafka, "Producer", seen.append)
    feedrec.streams.kafka.make_producer("localhost:9092")
    assert seen[0]["message.max.bytes"] == PRODUCER_MESSAGE_MAX_BYTES


def test_a_reference_leaves_out_a_huge_key_but_describes_it() -> None:
    key = b"k" * 5000
    got_key, value, _ = letter = reference(rejection(b"v", key=key))
    headers = headers_of(letter)
    assert got_key is None and value == b""
    assert headers["feedrec.key_size"] == b"5000"
    assert headers["feedrec.key_sha256"] == hashlib.sha256(key).hexdigest().encode()
    big_key = rejection(b"v", key=b"k" * 2_000_000)
    assert dead_letter(big_key)[0] is None


def test_headers_encode_whatever_the_detail_and_topic_hold() -> None:
    rej = rejection(b"v", detail="lone \ud800 surrogate " + "d" * 5000, topic="t\udcff")
    headers = headers_of(dead_letter(rej))
    assert headers["feedrec.detail"].startswith(b"lone \\ud800 surrogate")
    assert len(headers["feedrec.detail"]) < 1100
    assert headers["feedrec.topic"] == b"t\\udcff"


def test_refused_as_too_large() -> None:
    assert refused_as_too_large(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
    assert refused_as_too_large(KafkaError(KafkaError.RECORD_LIST_TOO_LARGE))
    assert not refused_as_too_large(KafkaError(KafkaError._MSG_TIMED_OUT))
    assert not refused_as_too_large(None)


# -- sending, with a producer that refuses like librdkafka and a broker -----------------------


@dataclass
class FakeMessage:
    topic_name: str

    def topic(self) -> str:
        return self.topic_name

    def partition(self) -> int:
        return 0


@dataclass
class FakeProducer:
    """Refuses synchronously over ``max_bytes`` (as ``produce`` does over message.max.bytes) and
    in the delivery report over ``broker_max`` (as a broker does); ``full`` calls raise
    BufferError first."""

    max_bytes: int = 10**9
    broker_max: int = 10**9
    full: int = 0
    stored: list[tuple[bytes | None, bytes | None, dict]] = field(default_factory=list)
    reports: list = field(default_factory=list)
    polls: int = 0

    def produce(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: Headers | None = None,
        on_delivery: DeliveryReport | None = None,
    ) -> None:
        if self.full:
            self.full -= 1
            raise BufferError("Local: Queue full")
        size = letter_size(key, value, headers or [])
        if size > self.max_bytes:
            raise KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
        err = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE) if size > self.broker_max else None
        if err is None:
            self.stored.append((key, value, dict(headers or [])))
        if on_delivery is not None:
            self.reports.append((on_delivery, err, FakeMessage(topic)))

    def poll(self, timeout: float = 0) -> int:
        self.polls += 1
        served = 0
        while self.reports:  # callbacks may produce more
            callback, err, msg = self.reports.pop(0)
            callback(err, msg)
            served += 1
        return served

    def as_producer(self) -> Producer:
        """This fake where the code takes confluent_kafka's Producer (it calls only ``produce``
        and ``poll``, which the fake has with the same arguments)."""
        return cast(Producer, self)


class Reports(list):
    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        self.append((err, msg.topic()))


def test_send_copies_a_letter_that_fits() -> None:
    producer, reports = FakeProducer(), Reports()
    send_dead_letter(producer.as_producer(), rejection(b"abc"), on_delivery=reports)
    producer.poll()
    assert [(k, v) for k, v, _ in producer.stored] == [(b"u1", b"abc")]
    assert reports == [(None, DLQ_TOPIC)]


def test_send_falls_back_to_a_reference_when_produce_refuses_the_copy() -> None:
    producer, reports = FakeProducer(max_bytes=10_000), Reports()
    value = b"z" * 50_000
    send_dead_letter(
        producer.as_producer(), rejection(value, reason="too_large"), on_delivery=reports
    )
    producer.poll()
    ((key, stored, headers),) = producer.stored
    assert (key, stored) == (b"u1", b"")
    assert headers["feedrec.sha256"] == hashlib.sha256(value).hexdigest().encode()
    assert headers["feedrec.reason"] == b"too_large"
    assert b"producer refused" in headers["feedrec.detail"]
    assert reports == [(None, DLQ_TOPIC)], "one report, for the reference"


def test_send_falls_back_to_a_reference_when_the_broker_refuses_the_copy() -> None:
    producer, reports = FakeProducer(broker_max=10_000), Reports()
    value = b"z" * 50_000
    send_dead_letter(producer.as_producer(), rejection(value), on_delivery=reports)
    assert producer.stored == []
    producer.poll()
    ((_, stored, headers),) = producer.stored
    assert stored == b"" and headers["feedrec.size"] == b"50000"
    assert b"broker refused" in headers["feedrec.detail"]
    assert reports == [(None, DLQ_TOPIC)], "one report, for the reference"


def test_other_delivery_errors_reach_the_callers_report_unchanged() -> None:
    producer, reports = FakeProducer(), Reports()
    send_dead_letter(producer.as_producer(), rejection(b"abc"), on_delivery=reports)
    callback, _, msg = producer.reports.pop()
    timed_out = KafkaError(KafkaError._MSG_TIMED_OUT)
    callback(timed_out, msg)
    assert reports == [(timed_out, DLQ_TOPIC)]
    assert len(producer.stored) == 1 and producer.reports == []


def test_a_refused_reference_raises_instead_of_vanishing() -> None:
    producer = FakeProducer(max_bytes=10)
    with pytest.raises(KafkaException):
        send_dead_letter(producer.as_producer(), rejection(b"z" * 100))


def test_a_full_queue_is_waited_out_by_polling_or_sleeping() -> None:
    producer = FakeProducer(full=2)
    send_dead_letter(producer.as_producer(), rejection(b"abc"))
    assert producer.polls == 2 and len(producer.stored) == 1
    producer = FakeProducer(full=2)
    send_dead_letter(producer.as_producer(), rejection(b"abc"), serve=False)
    assert producer.polls == 0 and len(producer.stored) == 1


def test_the_sink_sends_counts_and_never_serves_other_reports() -> None:
    producer = FakeProducer(full=1)
    registry = CollectorRegistry()
    sink = dead_letter_sink(producer.as_producer(), Metrics.create(registry).invalid)
    sink(rejection(b"{", reason="bad_json", topic="items"))
    sink(rejection(b'{"item_id":""}', reason="bad_id", topic="items"))
    assert [h["feedrec.topic"] for _, _, h in producer.stored] == [b"items", b"items"]
    assert producer.polls == 0
    for reason, n in (("bad_json", 1), ("bad_id", 1), ("not_utf8", 0)):
        got = registry.get_sample_value("feedrec_invalid_events_total", {"reason": reason})
        assert got == n, reason
