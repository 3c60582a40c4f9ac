"""A 2 KB record with an unknown field nested 1,000 deep made the decoder raise RecursionError,
which took the whole batch down with it. It must be one refusal (``bad_json``, saying why), and
the records beside it must pass."""

from __future__ import annotations

from feedrec.model.events import decode_events
from tests.unit.model.test_events import DEEP, NOW, good, nested, rec


def test_deep_nesting_is_refused_as_too_deep_and_the_records_beside_it_pass() -> None:
    poison = good()[:-1] + b',"x":' + nested(DEEP) + b"}"
    assert len(poison) < 3000
    records = [
        rec(good(event_id="a"), offset=0),
        rec(poison, offset=1),
        rec(good(event_id="b"), offset=2),
    ]
    events, rejected = decode_events(records, NOW)
    assert [e.event_id for e in events] == ["a", "b"]
    ((bad),) = rejected
    assert (bad.record.offset, bad.reason) == (1, "bad_json")
    assert "nests too deep" in bad.detail
