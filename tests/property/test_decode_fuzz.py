"""Property tests: decode_events never raises, whatever the bytes, and sorts good from bad exactly.

Each family of poison comes with the reason it must be refused for; good events are interleaved
with them at random, and must all come out, valid and in order, while every bad record is
refused exactly once.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Literal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedrec.model.events import EVENT_TYPES, REASONS, decode_events
from feedrec.streams.records import Record
from feedrec.streams.topics import TOPIC_TYPES

NOW = 1_700_000_000_000
DAY_MS = 86_400_000
TOPICS = sorted(TOPIC_TYPES)
LIMIT = 64 * 1024

ids = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=40)
texts = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)

#: Whatever a producer may add in fields the schema does not know (skipped by the decoder).
unknown_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(texts, kids, max_size=3),
    max_leaves=10,
)


@st.composite
def good_fields(draw: st.DrawFn) -> dict:
    """A valid event's fields; ``event_id`` is set by the caller (it tracks the order)."""
    ev: dict = {
        "user_id": draw(ids),
        "item_id": draw(ids),
        "ts": NOW + draw(st.integers(-29 * DAY_MS, 4 * 60_000)),
    }
    optional = {
        "session_id": texts,
        "category": texts,
        "rec_id": texts,
        "price": st.floats(0, 1e9, allow_nan=False, allow_infinity=False),
        "quantity": st.integers(1, 10**6),
        "position": st.integers(0, 1000),
    }
    for name in draw(st.sets(st.sampled_from(sorted(optional)))):
        ev[name] = draw(st.none() | optional[name])
    for i in range(draw(st.sampled_from([0, 0, 0, 500, 3000]))):  # wide, within the limit
        ev[f"w{i}"] = i
    ev["x_extra"] = draw(st.none() | unknown_values)
    return ev


def dump(ev: dict) -> bytes:
    return json.dumps(ev, ensure_ascii=False, separators=(",", ":")).encode()


def with_field(ev: dict, raw_field: bytes) -> bytes:
    """``ev`` as JSON with ``raw_field`` (``"name":value``, any bytes) spliced in first."""
    body = dump(ev)
    return b"{" + raw_field + (b"," + body[1:] if len(body) > 2 else b"}")


def deeper_than_the_decoder_follows(
    draw: Callable[[st.SearchStrategy[int]], int], bytes_per_level: int
) -> int:
    """A nesting depth past the interpreter's recursion limit (1,000 by default; Hypothesis
    raises it while a test runs), within the payload limit. The decoder recurses once per level,
    so shallower nesting in an unknown field is simply skipped with the field."""
    extra = draw(st.integers(0, 8000))  # drawn first: what is drawn must not depend on the limit
    limit = sys.getrecursionlimit()
    cap = (LIMIT - 200) // bytes_per_level
    assert 1000 <= limit < cap
    return min(limit + extra, cap)


def utf8_ok(value: bytes) -> bool:
    try:
        value.decode()
        return True
    except UnicodeDecodeError:
        return False


BAD_UTF8 = [
    b"\xff",
    b"\xfe\xff",
    b"\xc3\x28",
    b"\x80",
    b"\xed\xa0\x80",
    b"\xe2\x82",
    b"\xf8\x88\x80\x80\x80",
    b"\xc0\xaf",
]
WRONG_TYPES = {
    "ts": [b'"1700000000000"', b"1.0", b"1e12", b"true", b"[]", b"{}", b"null"],
    "user_id": [b"42", b"null", b"[]", b"{}", b"false"],
    "item_id": [b"1.5", b"null", b'["i"]'],
    "event_id": [b"7", b"null"],
    "price": [b'"9.5"', b"true", b"[]"],
    "quantity": [b"1.5", b'"2"'],
    "position": [b"true", b'"3"'],
    "session_id": [b"1", b"[]"],
    "event_type": [b"5", b"{}"],
}


def precedence(topic: str, value: bytes | None, reason: str) -> tuple[str, bytes | None, str]:
    """An unknown topic is refused first, then a value over the payload limit, whatever else is
    wrong with it (a wide event made deep may be both)."""
    if topic in TOPIC_TYPES and value is not None and len(value) > LIMIT:
        reason = "too_large"
    return topic, value, reason


@st.composite
def poison(draw: st.DrawFn) -> tuple[str, bytes | None, str]:
    """``(topic, value, reason)`` of one record that must be refused for ``reason``."""
    return precedence(*draw(poison_of_each_kind()))


@st.composite
def poison_of_each_kind(draw: st.DrawFn) -> tuple[str, bytes | None, str]:
    topic = draw(st.sampled_from(TOPICS))
    ev = draw(good_fields())
    ev["event_id"] = "bad"
    kind = draw(
        st.sampled_from(
            [
                "truncated",
                "deep",
                "wide_large",
                "huge",
                "bad_utf8",
                "surrogate",
                "nan",
                "null",
                "missing",
                "wrong_type",
                "ts",
                "event_type",
                "topic",
                "tombstone",
                "empty",
                "not_object",
                "bad_id",
            ]
        )
    )
    if kind == "truncated":
        whole = dump(ev)
        cut = whole[: draw(st.integers(0, len(whole) - 1))]
        return topic, cut, "bad_json" if utf8_ok(cut) else "not_utf8"
    if kind == "deep":
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        depth = deeper_than_the_decoder_follows(draw, len(opener) + len(closer))
        inner = opener * depth + b"1" + closer * depth
        if draw(st.booleans()):
            inner = opener * depth  # deep and unterminated
        return topic, with_field(ev, b'"deep":' + inner), "bad_json"
    if kind == "wide_large":
        n = draw(st.integers(LIMIT // 8, LIMIT // 4))
        return topic, with_field(ev, b",".join(b'"k%d":%d' % (i, i) for i in range(n))), "too_large"
    if kind == "huge":
        size = draw(st.integers(1 << 20, 3 << 20))
        return topic, with_field(ev, b'"pad":"' + b"p" * size + b'"'), "too_large"
    if kind == "bad_utf8":
        junk = draw(st.sampled_from(BAD_UTF8))
        where = draw(
            st.sampled_from(
                [b'"category":"a%sb"', b'"unknown":"%s"', b'"k%s":1', b'"user_id":"%s"']
            )
        )
        return topic, with_field(ev, where.replace(b"%s", junk)), "not_utf8"
    if kind == "surrogate":
        esc = draw(st.sampled_from([b"\\ud800", b"\\udfff", b"\\ud83d", b"x\\udc00y"]))
        field = draw(st.sampled_from([b"category", b"user_id", b"unknown"]))
        return topic, with_field(ev, b'"' + field + b'":"' + esc + b'"'), "bad_json"
    if kind == "nan":
        lit = draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"nan", b"inf"]))
        field = draw(st.sampled_from([b"price", b"ts", b"unknown"]))
        return topic, with_field(ev, b'"' + field + b'":' + lit), "bad_json"
    if kind == "null":
        key = draw(st.sampled_from(["event_id", "user_id", "item_id", "ts"]))
        ev[key] = None
        return topic, dump(ev), "wrong_type"
    if kind == "missing":
        for key in draw(
            st.sets(st.sampled_from(["event_id", "user_id", "item_id", "ts"]), min_size=1)
        ):
            del ev[key]
        return topic, dump(ev), "missing_field"
    if kind == "wrong_type":
        key = draw(st.sampled_from(sorted(WRONG_TYPES)))
        ev.pop(key, None)
        raw = draw(st.sampled_from(WRONG_TYPES[key]))
        return topic, with_field(ev, b'"' + key.encode() + b'":' + raw), "wrong_type"
    if kind == "ts":
        ev["ts"] = draw(
            st.sampled_from(
                [0, -1, NOW // 1000, NOW - 31 * DAY_MS, NOW + 301_000, 10**30, -(10**30), 2**63]
            )
        )
        return topic, dump(ev), "ts_out_of_range"
    if kind == "event_type":
        ev["event_type"] = draw(st.text(max_size=12).filter(lambda t: t not in EVENT_TYPES))
        return topic, dump(ev), "unknown_event_type"
    if kind == "topic":
        name = draw(st.text(max_size=20).filter(lambda t: t not in TOPIC_TYPES))
        return name, dump(ev), "unknown_event_type"
    if kind == "tombstone":
        return topic, None, "bad_json"
    if kind == "empty":
        return topic, draw(st.sampled_from([b"", b" ", b"\n\t"])), "bad_json"
    if kind == "not_object":
        return (
            topic,
            draw(st.sampled_from([b"[1,2]", b'"event"', b"42", b"null", b"true"])),
            "wrong_type",
        )
    key = draw(st.sampled_from(["event_id", "user_id", "item_id"]))
    ev[key] = draw(st.sampled_from(["", "x" * 129, "é" * 129]))
    return topic, dump(ev), "bad_id"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("good"), st.sampled_from(TOPICS), good_fields(), st.booleans()),
            st.tuples(st.just("bad"), poison()),
        ),
        max_size=12,
    )
)
def test_good_events_come_out_in_order_and_each_bad_record_is_refused_once(
    mix: list[
        tuple[Literal["good"], str, dict, bool]
        | tuple[Literal["bad"], tuple[str, bytes | None, str]]
    ],
) -> None:
    records, good, expected = [], [], {}
    for offset, entry in enumerate(mix):
        if entry[0] == "good":
            _, topic, ev, typed = entry
            ev = {**ev, "event_id": f"g{offset}"}
            if typed:
                ev["event_type"] = TOPIC_TYPES[topic]
            records.append(Record(topic, 0, offset, dump(ev), b"key"))
            good.append((f"g{offset}", TOPIC_TYPES[topic]))
        else:
            topic, value, reason = entry[1]
            records.append(Record(topic, 0, offset, value, b"key"))
            expected[offset] = reason
    events, rejected = decode_events(records, NOW)
    assert [(e.event_id, e.event_type) for e in events] == good
    assert [r.record.offset for r in rejected] == sorted(expected), "each bad record once, in order"
    for rej in rejected:
        assert rej.record is records[rej.record.offset]
        assert rej.reason == expected[rej.record.offset], (rej.reason, rej.detail, rej.record)
        assert rej.detail


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([*TOPICS, "items", ""]), st.none() | st.binary()), max_size=20
    )
)
def test_arbitrary_bytes_never_raise_and_every_record_is_accounted_for(
    raw: list[tuple[str, bytes | None]],
) -> None:
    records = [Record(topic, 0, i, value) for i, (topic, value) in enumerate(raw)]
    events, rejected = decode_events(records, NOW)
    assert len(events) + len(rejected) == len(records)
    assert len({id(r.record) for r in rejected}) == len(rejected)
    for rej in rejected:
        assert rej.reason in REASONS and rej.reason != "internal_error", rej
        value = rej.record.value
        if value and rej.record.topic in TOPIC_TYPES and not utf8_ok(value):
            assert rej.reason == "not_utf8"


@settings(max_examples=50, deadline=None)
@given(data=st.data(), arrays=st.booleans(), top=st.booleans())
def test_nesting_past_the_recursion_limit_is_bad_json_that_says_why(
    data: st.DataObject, arrays: bool, top: bool
) -> None:
    opener, closer = (b"[", b"]") if arrays else (b'{"a":', b"}")
    depth = deeper_than_the_decoder_follows(data.draw, len(opener) + len(closer))
    inner = opener * depth + b"1" + closer * depth
    value = (
        inner
        if top and not arrays
        else (b'{"event_id":"e","user_id":"u","item_id":"i","ts":%d,"n":%s}' % (NOW, inner))
    )
    assert len(value) <= LIMIT
    good = Record(
        "events.click", 0, 1, b'{"event_id":"e","user_id":"u","item_id":"i","ts":%d}' % NOW
    )
    events, (rej,) = decode_events([Record("events.click", 0, 0, value), good], NOW)
    assert [e.event_id for e in events] == ["e"]
    assert rej.record.offset == 0
    assert rej.reason == "bad_json" and "nests too deep" in rej.detail
