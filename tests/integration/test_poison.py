"""Poison input against a real worker: every bad record is dead-lettered once, nothing stops.

Good events are interleaved with every family of bad input the decoder knows (a 2 KB record
nested 1,000 levels deep, a 1 MB and a 2.5 MB payload, a tombstone, bad UTF-8, ...); the worker
must stay up and keep recommending, each bad record must land in ``events.dlq`` exactly once
with its reason and its bytes (or, too large to copy, its size and digest), and the catalogue
reader must keep applying catalogue records published after a poison one.
"""

from __future__ import annotations

import hashlib
import subprocess
import uuid
from collections.abc import Callable, Iterator

import msgspec
import pytest
from confluent_kafka import KafkaError, Message, Producer

from feedrec.model.events import Refused
from feedrec.streams.deadletter import COPY_LIMIT_BYTES, dead_letter, letter_size, send_dead_letter
from feedrec.streams.kafka import make_producer
from feedrec.streams.metrics import scrape
from feedrec.streams.records import Record, Rejection
from feedrec.streams.tools.processes import worker_process
from feedrec.streams.topics import DLQ_TOPIC, ITEMS_TOPIC, RECS_TOPIC

from .helpers import (
    TopicReader,
    event,
    eventually,
    header_list,
    headers_of,
    key_of,
    now_ms,
    value_of,
)

FAST = {
    "FEEDREC_CHECKPOINT_INTERVAL_S": "2",
    "FEEDREC_INDEX_REFRESH_S": "0.2",
    "FEEDREC_BATCH_WITHIN_S": "0.02",
    "FEEDREC_BROWSE_REC_INTERVAL_S": "0",
}


@pytest.fixture(scope="module")
def worker(
    bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    data = tmp_path_factory.mktemp("poison-worker")
    with worker_process(
        bootstrap, data, f"feedrec-poison-{uuid.uuid4().hex[:8]}", env=FAST
    ) as running:
        yield running


def big_producer(bootstrap: str) -> Producer:
    """A producer that may publish what the worker's own producer could not copy (2.5 MB)."""
    return make_producer(bootstrap, linger_ms=5, **{"message.max.bytes": 8 * 1024 * 1024})


class Coordinates(dict):
    """Delivery report that records where each key landed: key -> (partition, offset)."""

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        assert err is None, err
        self[msg.key()] = (msg.partition(), msg.offset())


def nested(depth: int, opener: bytes = b"[", closer: bytes = b"]") -> bytes:
    return opener * depth + b"1" + closer * depth


def poison_events(p: str) -> dict[str, tuple[str, bytes | None]]:
    """name -> (reason, value) of one record of every family of bad input."""
    ts = now_ms()
    base = b'{"event_id":"%s-x","user_id":"%s-u","item_id":"%s-i","ts":%d' % (
        p.encode(),
        p.encode(),
        p.encode(),
        ts,
    )
    deep = base + b',"extra":' + nested(1000) + b"}"
    assert 2000 <= len(deep) <= 2200
    # ~1 MB: as large as a record can be and still be copied with its key and headers.
    one_mb = base + b',"pad":"' + b"m" * (COPY_LIMIT_BYTES - 1000 - len(base) - 10) + b'"}'
    assert len(one_mb) == COPY_LIMIT_BYTES - 1000
    return {
        "deep-arrays": ("bad_json", deep),
        "deep-objects": ("bad_json", base + b',"extra":' + nested(1000, b'{"a":', b"}") + b"}"),
        "truncated": ("bad_json", base[:-7]),
        "random": ("not_utf8", bytes(range(256)) * 3),
        "utf8-unknown": ("not_utf8", base + b',"note":"caf\xe9"}'),
        "surrogate": ("bad_json", base + b',"category":"\\ud800"}'),
        "nan": ("bad_json", base + b',"price":NaN}'),
        "infinity": ("bad_json", base + b',"price":Infinity}'),
        "null": (
            "wrong_type",
            base.replace(b'"user_id":"%s-u"' % p.encode(), b'"user_id":null') + b"}",
        ),
        "missing": ("missing_field", b'{"event_id":"x","user_id":"u","item_id":"i"}'),
        "wrong-type": ("wrong_type", base + b',"quantity":"two"}'),
        "absurd-ts": (
            "ts_out_of_range",
            b'{"event_id":"x","user_id":"u","item_id":"i","ts":%d}' % 10**30,
        ),
        "unknown-type": ("unknown_event_type", base + b',"event_type":"wishlist"}'),
        "wide": (
            "too_large",
            base + b"," + b",".join(b'"k%d":%d' % (i, i) for i in range(9000)) + b"}",
        ),
        "1mb": ("too_large", one_mb),
        "2.5mb": ("too_large", base + b',"pad":"' + b"q" * 2_500_000 + b'"}'),
        "tombstone": ("bad_json", None),
        "empty": ("bad_json", b""),
    }


def dead_letters(dlq: TopicReader, keys: set[bytes]) -> dict[bytes, list[Message]]:
    got: dict[bytes, list[Message]] = {}
    for m in dlq.poll():
        if m.key() in keys:
            got.setdefault(key_of(m), []).append(m)
    return got


def record_key(rej: Rejection) -> bytes:
    """The key of a refused record made with one."""
    key = rej.record.key
    assert key is not None
    return key


def recs_for(reader: TopicReader, user: str) -> list[dict]:
    return [msgspec.json.decode(value_of(m)) for m in reader.poll() if m.key() == user.encode()]


def test_poison_is_dead_lettered_once_and_the_worker_and_catalogue_keep_going(
    bootstrap: str, worker: tuple[subprocess.Popen[bytes], str]
) -> None:
    proc, url = worker
    p = uuid.uuid4().hex[:6]
    producer = big_producer(bootstrap)
    where = Coordinates()
    recs = TopicReader(bootstrap, RECS_TOPIC)
    item = f"{p}-item"

    def list_after_clicking_the_item(user: str) -> list[str]:
        producer.produce("events.click", key=user.encode(), value=event(f"{user}-c", user, item))
        producer.flush(10)
        (rec,) = eventually(lambda: recs_for(recs, user), what=f"a recommendation for {user}")
        return [entry["item_id"] for entry in rec["items"]]

    # Warm up, the item among others (a new item gets its row once the model has learned from
    # it), then the control: the item a user just clicked comes back in their list while it is
    # available. Retried with fresh users, as the first clicks may come before the row.
    for n in range(300):
        user = f"{p}-w{n % 30}"
        producer.produce(
            "events.click",
            key=user.encode(),
            value=event(f"{p}-w{n}", user, item if n % 4 == 0 else f"{p}-i{n % 20}"),
        )
    producer.flush(10)
    tries = iter(range(1000))
    eventually(
        lambda: item in list_after_clicking_the_item(f"{p}-before{next(tries)}"),
        what="the control: the clicked item in the clicker's list",
    )
    before = scrape(url)

    # Events: every family of poison, each between two good events of its own user.
    bad = poison_events(p)
    for n, (name, (_, value)) in enumerate(bad.items()):
        user = f"{p}-u{n}"
        producer.produce("events.click", key=user.encode(), value=event(f"{p}-a{n}", user, "i1"))
        producer.produce(
            "events.click", key=f"{p}-bad-{name}".encode(), value=value, on_delivery=where
        )
        producer.produce("events.cart", key=user.encode(), value=event(f"{p}-b{n}", user, "i2"))
    # The catalogue: a poison record, then the item made unavailable, then a bad record, all
    # under the item's key (one partition, in this order): the bad one's dead letter shows the
    # reader went past the poison and the update.
    catalogue = {
        f"{p}-cat-deep": ("bad_json", b'{"item_id":"%s","x":%s}' % (item.encode(), nested(1000))),
        f"{p}-cat-good": (None, msgspec.json.encode({"item_id": item, "available": False})),
        f"{p}-cat-bad": ("bad_id", b'{"item_id":""}'),
    }

    def landed(tag: str) -> Callable[[KafkaError | None, Message], None]:
        """Delivery report recording where the record ``tag`` landed."""

        def report(err: KafkaError | None, msg: Message) -> None:
            where.update({tag.encode(): (msg.partition(), msg.offset())})

        return report

    for tag, (_, value) in catalogue.items():
        producer.produce(ITEMS_TOPIC, key=item.encode(), value=value, on_delivery=landed(tag))
    assert producer.flush(30) == 0
    assert len(where) == len(bad) + len(catalogue)

    dlq = TopicReader(bootstrap, DLQ_TOPIC)
    event_keys = {f"{p}-bad-{name}".encode() for name in bad}

    def all_dead_lettered() -> dict[bytes, list[Message]] | None:
        got = dead_letters(dlq, event_keys | {item.encode()})
        n_items = len(got.get(item.encode(), []))
        return got if event_keys <= set(got) and n_items >= 2 else None

    eventually(all_dead_lettered, what="every bad record in the DLQ")

    # The worker is alive and processes what follows; the catalogue update after the poison
    # was applied: the now unavailable item is left out of the list of the next user to click it.
    assert proc.poll() is None, "the worker died"
    assert item not in list_after_clicking_the_item(f"{p}-after"), (
        "the catalogue reader did not apply the record after the poison one"
    )
    recs.close()
    m = scrape(url)
    assert m.invalid - before.invalid >= len(bad) + 2
    assert m.events - before.events >= 2 * len(bad) + 1

    got = dead_letters(dlq, event_keys | {item.encode()})  # anything repeated shows by now
    dlq.close()
    for name, (reason, value) in bad.items():
        key = f"{p}-bad-{name}".encode()
        (msg,) = got[key]  # exactly once
        headers = headers_of(msg)
        assert headers["feedrec.reason"].decode() == reason, name
        assert headers["feedrec.topic"] == b"events.click"
        assert (int(headers["feedrec.partition"]), int(headers["feedrec.offset"])) == where[key]
        if name == "2.5mb":
            assert value is not None
            assert msg.value() == b"", "too large to copy: a reference"
            assert int(headers["feedrec.size"]) == len(value)
            assert headers["feedrec.sha256"].decode() == hashlib.sha256(value).hexdigest()
        else:
            assert msg.value() == value, f"{name}: the DLQ must keep the original bytes"
            assert "feedrec.sha256" not in headers
        if name.startswith("deep"):
            assert b"nests too deep" in headers["feedrec.detail"]

    letters = sorted(got[item.encode()], key=lambda m: int(headers_of(m)["feedrec.offset"]))
    assert len(letters) == 2, "each bad catalogue record once, the good one not at all"
    for msg, tag in zip(letters, (f"{p}-cat-deep", f"{p}-cat-bad"), strict=True):
        headers = headers_of(msg)
        cat_reason, cat_value = catalogue[tag]
        assert headers["feedrec.topic"] == ITEMS_TOPIC.encode()
        assert headers["feedrec.reason"].decode() == cat_reason
        assert msg.value() == cat_value
        assert (int(headers["feedrec.partition"]), int(headers["feedrec.offset"])) == where[
            tag.encode()
        ]
    assert b"nests too deep" in headers_of(letters[0])["feedrec.detail"]
    assert (
        where[f"{p}-cat-deep".encode()]
        < where[f"{p}-cat-good".encode()]
        < where[f"{p}-cat-bad".encode()]
    )


def test_dead_letters_fit_the_producer_and_broker_limits_or_become_references(
    bootstrap: str,
) -> None:
    """The copy limit holds against the real client and broker: the largest copy is stored
    byte for byte, a larger record is referenced, and a copy the producer refuses (its
    message.max.bytes lowered here) falls back to a reference with one delivery report."""
    p = uuid.uuid4().hex[:6]

    def rej(name: str, size: int) -> Rejection:
        return Refused(
            Record("events.click", 1, 42, b"v" * size, f"{p}-{name}".encode()),
            "too_large",
            "over the payload limit",
        )

    overhead = letter_size(*dead_letter(rej("at-limit", 0)))
    at_limit = rej("at-limit", COPY_LIMIT_BYTES - overhead)
    assert letter_size(*dead_letter(at_limit)) == COPY_LIMIT_BYTES
    over = rej("over", 2_500_000)
    refused = rej("refused", 500_000)

    reports: list[KafkaError | None] = []
    normal = make_producer(bootstrap, linger_ms=5)
    send_dead_letter(normal, at_limit, on_delivery=lambda err, msg: reports.append(err))
    send_dead_letter(normal, over, on_delivery=lambda err, msg: reports.append(err))
    assert normal.flush(30) == 0
    small = make_producer(bootstrap, linger_ms=5, **{"message.max.bytes": 100_000})
    send_dead_letter(small, refused, on_delivery=lambda err, msg: reports.append(err))
    assert small.flush(30) == 0
    assert reports == [None, None, None], "one report each, all stored"

    dlq = TopicReader(bootstrap, DLQ_TOPIC)
    keys = {record_key(r) for r in (at_limit, over, refused)}
    got = eventually(
        lambda: (lambda d: d if set(d) == keys else None)(dead_letters(dlq, keys)),
        what="the three dead letters",
    )
    dlq.close()
    (copy,) = got[record_key(at_limit)]
    assert letter_size(copy.key(), copy.value(), header_list(copy)) <= COPY_LIMIT_BYTES
    assert copy.value() == at_limit.record.value, "the largest copy, byte for byte"
    for r in (over, refused):
        (msg,) = got[record_key(r)]
        headers = headers_of(msg)
        value = r.record.value
        assert value is not None
        assert msg.value() == b""
        assert int(headers["feedrec.size"]) == len(value)
        assert headers["feedrec.sha256"].decode() == hashlib.sha256(value).hexdigest()
        assert (headers["feedrec.partition"], headers["feedrec.offset"]) == (b"1", b"42")
    assert b"producer refused" in headers_of(got[record_key(refused)][0])["feedrec.detail"]
