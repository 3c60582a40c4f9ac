from model.events import Event
from model.state import StateLimits, UserState, apply_events, dump_state, is_expired, load_state

LIMITS = StateLimits(history_len=3, purchased_len=2, dedupe_window=4, browse_rec_interval_ms=1000)


def ev(i: int, kind: str = "browse", item: str | None = None, ts: int | None = None,
       rec_id: str | None = None) -> Event:
    return Event(f"e{i}", "u", item or f"i{i}", ts if ts is not None else 10_000 + i,
                 rec_id=rec_id, event_type=kind)


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
        [ev(1, "click", item="a", rec_id="r1"), ev(2, "cart", item="z"), ev(3, "browse", item="b"),
         ev(4, "click", item="b", rec_id="old")],
        LIMITS,
    )
    assert (out.feedback, out.hits, out.rec_clicks) == (3, 2, 1)


def test_expiry() -> None:
    st = UserState(last_seen=1000)
    assert is_expired(st, 5000, ttl_ms=3000)
    assert not is_expired(st, 3999, ttl_ms=3000)
