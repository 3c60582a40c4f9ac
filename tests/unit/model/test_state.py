import numpy as np
import pytest

from feedrec.model.events import Event
from feedrec.model.state import (
    CONTEXTS,
    LAST,
    MAX_SESSIONS,
    OPEN_GAPS,
    SessionGaps,
    StateLimits,
    UserState,
    apply_events,
    context_of,
    dump_state,
    is_expired,
    load_state,
    other_sessions,
)

LIMITS = StateLimits(history_len=3, purchased_len=2, dedupe_window=4, browse_rec_interval_ms=1000)


def ev(
    i: int,
    kind: str = "browse",
    item: str | None = None,
    ts: int | None = None,
    rec_id: str | None = None,
    session: str | None = None,
) -> Event:
    return Event(
        f"e{i}",
        "u",
        item or f"i{i}",
        ts if ts is not None else 10_000 + i,
        session_id=session,
        rec_id=rec_id,
        event_type=kind,
    )


def test_round_trip_and_defaults() -> None:
    st = load_state(None)
    assert st == UserState()
    apply_events(st, [ev(1, "purchase")], LIMITS)
    assert load_state(dump_state(st)) == st


def test_history_is_bounded_most_recent_first_without_repeats() -> None:
    st = UserState()
    apply_events(st, [ev(1), ev(2), ev(3, item="i1"), ev(4), ev(5)], LIMITS)
    assert st.recent == ["i5", "i4", "i1"]
    assert st.counts == [5, 0, 0, 0]
    assert st.last_seen == 10_005


def test_duplicates_inside_the_window_are_ignored() -> None:
    st = UserState()
    out = apply_events(st, [ev(1), ev(1), ev(2)], LIMITS)
    assert (out.duplicates, len(out.accepted)) == (1, 2)
    out = apply_events(st, [ev(2, "click")], LIMITS)
    assert out.duplicates == 1 and st.counts == [2, 0, 0, 0]
    apply_events(st, [ev(i) for i in range(3, 10)], LIMITS)
    assert len(st.event_ids) == 4
    out = apply_events(st, [ev(1)], LIMITS)  # fell out of the window: accepted again
    assert out.duplicates == 0


def test_purchases_are_remembered_and_bounded() -> None:
    st = UserState()
    apply_events(st, [ev(1, "purchase"), ev(2, "purchase"), ev(3, "purchase")], LIMITS)
    assert st.purchased == ["i3", "i2"]


def test_feedback_always_triggers_browse_at_most_once_per_interval() -> None:
    st = UserState(last_rec_ts=0)
    out = apply_events(st, [ev(1, ts=5000), ev(2, ts=5500)], LIMITS)
    assert out.trigger is not None and out.trigger.event_id == "e1"
    st.last_rec_ts = 5000
    out = apply_events(st, [ev(3, ts=5600)], LIMITS)
    assert out.trigger is None
    out = apply_events(st, [ev(4, "cart", ts=5700)], LIMITS)
    assert out.trigger is not None and out.trigger.event_id == "e4"


def test_hits_and_rec_clicks_are_judged_against_the_last_list() -> None:
    st = UserState(last_rec_id="r1", last_rec_items=["a", "b"])
    out = apply_events(
        st,
        [
            ev(1, "click", item="a", rec_id="r1"),
            ev(2, "cart", item="z"),
            ev(3, "browse", item="b"),
            ev(4, "click", item="b", rec_id="old"),
        ],
        LIMITS,
    )
    assert (out.feedback, out.hits, out.rec_clicks) == (3, 2, 1)


def test_expiry() -> None:
    st = UserState(last_seen=1000)
    assert is_expired(st, 5000, ttl_ms=3000)
    assert not is_expired(st, 3999, ttl_ms=3000)


def test_contexts_say_what_the_user_did_last() -> None:
    st = UserState()
    out = apply_events(st, [ev(1, "browse"), ev(2, "cart"), ev(3, "purchase")], LIMITS)
    assert [LAST[c.last] for c in out.contexts] == ["none", "browse", "cart"]
    assert LAST[st.last] == "purchase"
    alone, others = context_of(np.array([st.last] * 2), np.array([False, True])).tolist()
    assert (CONTEXTS[alone], CONTEXTS[others]) == ("purchase", "purchase, other sessions open")
    # A user who did nothing yet has no other session either.
    assert context_of(np.array([0, 3, 3]), np.array([True, True, False])).tolist() == [0, 7, 3]
    assert load_state(dump_state(st)).last == st.last


def test_sessions_are_remembered_with_their_latest_item_and_gaps() -> None:
    st = UserState()
    evs = [
        ev(1, session="a", ts=1000),
        ev(2, session="b", ts=2000),
        ev(3, session="a", ts=4000),
        ev(4, session="c", ts=4500),
        ev(5, session="d", ts=5000),
        ev(6, ts=5100),
    ]
    out = apply_events(st, evs, LIMITS)
    # Most recent first, at most MAX_SESSIONS; an event without a session id changes nothing.
    assert MAX_SESSIONS == 3
    assert st.sessions == [("d", "i5", 5000), ("c", "i4", 4500), ("a", "i3", 4000)]
    assert out.session_gaps == [3000]  # only "a" had two events
    assert load_state(dump_state(st)).sessions == st.sessions


def test_other_sessions_are_those_still_open() -> None:
    sessions = [("d", "i5", 5000), ("c", "i4", 4500), ("a", "i3", 1000)]
    assert other_sessions(sessions, now_ms=6000, open_ms=2000) == ["i4"]
    assert other_sessions(sessions, now_ms=6000, open_ms=10_000) == ["i4", "i3"]
    assert other_sessions(sessions, now_ms=6000, open_ms=None) == []
    # The latest session is never another one.
    assert other_sessions(sessions[:1], now_ms=5000, open_ms=10_000) == []
    # Each context holds the sessions as they were just before its event.
    st = UserState()
    out = apply_events(
        st,
        [
            ev(1, session="a", ts=1000),
            ev(2, session="b", ts=1500),
            ev(3, session="b", ts=9000),
            ev(4, session="a", ts=9500),
        ],
        LIMITS,
    )
    assert [
        other_sessions(c.sessions, e.ts, 1000)
        for c, e in zip(out.contexts, out.accepted, strict=True)
    ] == [[], [], [], []]
    assert [
        other_sessions(c.sessions, e.ts, 10_000)
        for c, e in zip(out.contexts, out.accepted, strict=True)
    ] == [[], [], ["i1"], ["i1"]]
    assert out.contexts[3].sessions == [("b", "i3", 9000), ("a", "i1", 1000)]


def test_session_gaps_set_how_long_a_session_stays_open() -> None:
    gaps = SessionGaps(window=1000.0, evidence=10.0)
    gaps.observe([2000] * 9)
    assert gaps.open_ms is None  # not enough evidence yet
    gaps.observe([2000, 2000])
    assert gaps.open_ms == pytest.approx(OPEN_GAPS * 2000)
    # Old gaps fade: after many shorter ones the window follows them.
    for _ in range(50):
        gaps.observe([500] * 100)
    assert gaps.open_ms == pytest.approx(OPEN_GAPS * 500, rel=0.01)
    other = SessionGaps()
    other.load(gaps.state())
    assert other.open_ms == gaps.open_ms
    gaps.observe([])
    assert other.open_ms == gaps.open_ms
