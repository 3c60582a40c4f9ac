"""Decode reads the time from the clock; emit names items by the vocabulary's ids."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from feedrec.model.clock import ManualClock
from feedrec.model.events import Event, ValidationLimits
from feedrec.model.steps.decode import Decode
from feedrec.model.steps.emit import Emit
from feedrec.model.vocab import IdMap, Vocab

NOW = 1_700_000_000_000


@dataclass(frozen=True)
class Raw:
    value: bytes | None
    event_type: str | None = "click"
    source: str = "clicks"
    position: int = 0


def test_timestamps_are_judged_by_the_clock() -> None:
    clock = ManualClock(NOW)
    decode = Decode(ValidationLimits(max_future_ms=60_000), clock)
    ahead = Raw(
        msgspec.json.encode({"event_id": "e", "user_id": "u", "item_id": "i", "ts": NOW + 120_000})
    )
    events, refused = decode([ahead])
    assert events == [] and [r.reason for r in refused] == ["ts_out_of_range"]
    clock.advance_to(NOW + 60_000)
    events, refused = decode([ahead])
    assert [e.event_type for e in events] == ["click"] and refused == []
    _, refused = decode([Raw(b"{}", event_type=None, source="elsewhere/3")])
    assert [(r.reason, r.detail) for r in refused] == [
        ("unknown_event_type", "no event type for 'elsewhere/3'")
    ]


def test_a_list_is_named_by_item_ids_with_its_trigger_and_the_clocks_time() -> None:
    items = IdMap(4)
    items.rows_for(["x", "y"])
    emit = Emit(Vocab(IdMap(1), items), ManualClock(NOW))
    trigger = Event("e9", "u", "x", NOW - 50, event_type="click")
    (rec,) = emit([("u", trigger)], [[(1, 0.12345678), (3, 0.1), (0, -0.5)]], version=7)
    assert (rec.user_id, rec.rec_id, rec.trigger_event_id) == ("u", "e9-r", "e9")
    assert (rec.event_ts, rec.emitted_ts, rec.model_version) == (NOW - 50, NOW, 7)
    # Row 3 holds no item: left out; scores rounded to six places.
    assert [(it.item_id, it.score) for it in rec.items] == [("y", 0.123457), ("x", -0.5)]
    assert emit([], [], 7) == []
