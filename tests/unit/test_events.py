import json

import pytest

from model.events import REASONS, Record, ValidationLimits, decode_batch

NOW = 1_700_000_000_000


def rec(value: bytes | None, topic: str = "events.click", offset: int = 0) -> Record:
    return Record(topic, 0, offset, value)


def good(**over: object) -> bytes:
    ev = {"event_id": "e1", "user_id": "u1", "item_id": "i1", "ts": NOW}
    ev.update(over)
    return json.dumps({k: v for k, v in ev.items() if v is not None}).encode()


def reason_of(value: bytes | None, topic: str = "events.click", **limits: int) -> str | None:
    events, rejected = decode_batch([rec(value, topic)], NOW, ValidationLimits(**limits))
    assert len(events) + len(rejected) == 1
    return rejected[0].reason if rejected else None


def test_good_event_gets_type_from_topic() -> None:
    events, rejected = decode_batch(
        [rec(good(price=9.5, quantity=2, category="shoes", rec_id="r1", position=3),
             "events.purchase")], NOW)
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
    events, rejected = decode_batch(records, NOW)
    assert [e.event_id for e in events] == [f"e{i}" for i in range(5)]
    assert [(r.record.offset, r.reason) for r in rejected] == [(99, "bad_json")]
    assert "malformed" in rejected[0].detail
