import json

import pytest

from feedrec.model.events import (
    REASONS,
    CatalogItem,
    ValidationLimits,
    decode_catalog_item,
    decode_events,
)
from feedrec.streams.records import Record

NOW = 1_700_000_000_000


def rec(value: bytes | None, topic: str = "events.click", offset: int = 0) -> Record:
    return Record(topic, 0, offset, value)


def good(**over: object) -> bytes:
    ev = {"event_id": "e1", "user_id": "u1", "item_id": "i1", "ts": NOW}
    ev.update(over)
    return json.dumps({k: v for k, v in ev.items() if v is not None}).encode()


def reason_of(value: bytes | None, topic: str = "events.click", **limits: int) -> str | None:
    events, rejected = decode_events([rec(value, topic)], NOW, ValidationLimits(**limits))
    assert len(events) + len(rejected) == 1
    return rejected[0].reason if rejected else None


def test_good_event_gets_type_from_topic() -> None:
    events, rejected = decode_events(
        [
            rec(
                good(price=9.5, quantity=2, category="shoes", rec_id="r1", position=3),
                "events.purchase",
            )
        ],
        NOW,
    )
    assert rejected == []
    (ev,) = events
    assert (ev.event_type, ev.item_id, ev.price, ev.position) == ("purchase", "i1", 9.5, 3)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"{not json", "bad_json"),
        (b"", "bad_json"),
        (b'{"event_id":"\xff\xfe","user_id":"u","item_id":"i","ts":1}', "not_utf8"),
        (b"[1, 2]", "wrong_type"),
        (good(ts=None), "missing_field"),
        (good(user_id=None), "missing_field"),
        (good(ts="yesterday"), "wrong_type"),
        (good(ts=1.5), "wrong_type"),
        (good(user_id=42), "wrong_type"),
        (good(user_id=""), "bad_id"),
        (good(item_id="x" * 129), "bad_id"),
        (good(price=-1), "bad_value"),
        (good(ts=0), "ts_out_of_range"),
        (good(ts=NOW // 1000), "ts_out_of_range"),
        (good(ts=NOW + 3600_000), "ts_out_of_range"),
        (good(event_type="wishlist"), "unknown_event_type"),
        (good(event_type="purchase"), "bad_value"),
        (good(session_id="s" * 100_000), "too_large"),
    ],
)
def test_each_kind_of_bad_input_has_its_reason(value: bytes, reason: str) -> None:
    assert reason in REASONS
    assert reason_of(value) == reason


def test_unknown_topic_is_unknown_event_type() -> None:
    assert reason_of(good(), topic="events.wishlist") == "unknown_event_type"


def test_payload_limit_is_configurable() -> None:
    assert reason_of(good(), max_payload_bytes=10) == "too_large"


def test_batch_keeps_order_and_separates_bad_records() -> None:
    records = [rec(good(event_id=f"e{i}"), offset=i) for i in range(5)]
    records.insert(2, rec(b"junk", offset=99))
    events, rejected = decode_events(records, NOW)
    assert [e.event_id for e in events] == [f"e{i}" for i in range(5)]
    assert [(r.record.offset, r.reason) for r in rejected] == [(99, "bad_json")]
    assert "malformed" in rejected[0].detail


# -- poison input: nothing a record holds makes decode_events raise ----------------------------

DEEP = 1000


def nested(depth: int, open_: bytes = b"[", close: bytes = b"]") -> bytes:
    return open_ * depth + b"1" + close * depth


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (good()[:-1] + b',"x":' + nested(DEEP) + b"}", "bad_json"),
        (good()[:-1] + b',"x":' + nested(DEEP, b'{"a":', b"}") + b"}", "bad_json"),
        (good()[:-1] + b',"x":' + nested(20_000) + b"}", "bad_json"),
        (good()[:-1] + b',"x":' + b"[" * 50_000, "bad_json"),
        (nested(DEEP, b'{"a":', b"}"), "bad_json"),
        (nested(DEEP), "wrong_type"),
        (good()[:-1] + b',"x":"\xff"}', "not_utf8"),
        (good()[:-1] + b',"\xc3\x28":1}', "not_utf8"),
        (good()[:-1] + b',"x":"\xed\xa0\x80"}', "not_utf8"),
        (good(category="\ud800"), "bad_json"),
        (good(price=float("nan")), "bad_json"),
        (good(price=float("inf")), "bad_json"),
        (good()[:-1] + b',"price":1e400}', "bad_value"),
        (good(ts=10**30), "ts_out_of_range"),
        (good(ts=-1), "ts_out_of_range"),
        (good(ts=True), "wrong_type"),
        (b'{"event_id":"e","user_id":"u","item_id":"i","ts":null}', "wrong_type"),
        (b'{"event_id":null,"user_id":"u","item_id":"i","ts":1}', "wrong_type"),
        (good(event_type=5), "wrong_type"),
        (b"\xef\xbb\xbf" + good(), "bad_json"),
        (good() + b"\x00", "bad_json"),
        (b"null", "wrong_type"),
    ],
)
def test_poison_records_are_rejected_with_their_reason(value: bytes, reason: str) -> None:
    assert reason_of(value) == reason


def test_invalid_utf8_is_not_utf8_wherever_it_is() -> None:
    # Inside a known field msgspec reports a DecodeError; in an unknown one it would skip it.
    for value in (b'{"event_id":"\xff"}', good()[:-1] + b',"extra":"caf\xe9"}'):
        events, rejected = decode_events([rec(value)], NOW)
        assert events == [] and [r.reason for r in rejected] == ["not_utf8"]
    # Valid UTF-8 beyond ASCII is fine.
    (ev,), _ = decode_events([rec(good(category="chaussures d'été"))], NOW)
    assert ev.category == "chaussures d'été"


def test_a_tombstone_is_bad_json_with_a_detail_that_says_so() -> None:
    _, (rej,) = decode_events([rec(None)], NOW)
    assert rej.reason == "bad_json" and "tombstone" in rej.detail


def test_an_unexpected_decoder_failure_is_one_rejection_not_a_crash() -> None:
    class Weird(bytes):
        def isascii(self) -> bool:
            raise MemoryError("no room")

    records = [rec(good(event_id="a")), rec(Weird(good())), rec(good(event_id="b"))]
    events, rejected = decode_events(records, NOW)
    assert [e.event_id for e in events] == ["a", "b"]
    assert [r.reason for r in rejected] == ["internal_error"]
    assert "no room" in rejected[0].detail


def test_catalog_item_or_why_not() -> None:
    item = decode_catalog_item(b'{"item_id":"i1","category":"c","available":false}')
    assert isinstance(item, CatalogItem) and (item.item_id, item.available) == ("i1", False)
    cases = {
        b'{"item_id":"i1","x":' + nested(DEEP) + b"}": "bad_json",
        b"{oops": "bad_json",
        b'{"item_id":"\xff"}': "not_utf8",
        b'{"category":"c"}': "missing_field",
        b'{"item_id":"i1","available":"no"}': "wrong_type",
        b'{"item_id":""}': "bad_id",
        b'{"item_id":"i1","price":-2}': "bad_value",
        b'{"item_id":"i1","category":"' + b"c" * 70_000 + b'"}': "too_large",
    }
    for value, reason in cases.items():
        got = decode_catalog_item(value)
        assert isinstance(got, tuple), value[:40]
        assert got[0] == reason, (value[:40], got)
        assert got[1]
    tombstone = decode_catalog_item(None)
    assert isinstance(tombstone, tuple) and tombstone[0] == "bad_json"
    oversized = decode_catalog_item(b'{"item_id":"i1"}', max_bytes=5)
    assert isinstance(oversized, tuple) and oversized[0] == "too_large"
