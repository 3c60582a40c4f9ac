"""Fold: a batch's events into their users' states, once each."""

from __future__ import annotations

from feedrec.model.events import Event
from feedrec.model.state import RepeatShare, SessionGaps, StateLimits, dump_state, load_state
from feedrec.model.steps.emit import Recommendation, ScoredItem
from feedrec.model.steps.fold import Fold

LIMITS = StateLimits(browse_rec_interval_ms=1000)


def ev(
    n: int, user: str, kind: str = "click", ts: int | None = None, session: str | None = None
) -> Event:
    return Event(
        f"e{n}",
        user,
        f"i{n}",
        ts if ts is not None else 1000 * n,
        session_id=session,
        event_type=kind,
    )


def test_each_users_events_are_applied_in_time_order_and_the_last_feedback_triggers() -> None:
    fold = Fold(LIMITS)
    out = fold([ev(3, "a"), ev(1, "b", "browse"), ev(2, "a", "cart"), ev(4, "b")], {})
    assert list(out.states) == ["a", "b"]
    assert out.states["a"].recent == ["i3", "i2"] and out.states["b"].recent == ["i4", "i1"]
    # The learner gets every event with the user's lists just before it, user by user.
    assert [e.event_id for e in out.learn] == ["e2", "e3", "e1", "e4"]
    assert [c.recent for c in out.contexts] == [[], ["i2"], [], ["i1"]]
    assert [(u, t.event_id) for u, t in out.triggers] == [("a", "e3"), ("b", "e4")]
    assert out.counts == {"browse": 1, "click": 2, "cart": 1, "purchase": 0}
    assert out.positions is None


def test_a_replayed_event_is_not_applied_again_but_still_goes_to_the_learner() -> None:
    fold = Fold(LIMITS)
    first = fold([ev(1, "a"), ev(2, "a")], {}, positions=[("s/0", 10), ("s/0", 11)])
    assert first.states["a"].marks == {"s/0": 11}
    states = {"a": dump_state(first.states["a"])}
    # The same two events again (a replay after a crash), and one new.
    again = fold(
        [ev(1, "a"), ev(2, "a"), ev(3, "a")],
        states,
        positions=[("s/0", 10), ("s/0", 11), ("s/0", 12)],
    )
    assert again.replayed == 2 and sum(again.counts.values()) == 1
    assert sum(again.states["a"].counts) == 3 and again.states["a"].marks == {"s/0": 12}
    assert [e.event_id for e in again.learn] == ["e1", "e2", "e3"]
    assert again.positions == [("s/0", 10), ("s/0", 11), ("s/0", 12)]
    assert [t.event_id for _, t in again.triggers] == ["e3"]


def test_repeat_share_and_session_gaps_are_learned_while_folding() -> None:
    fold = Fold(LIMITS)
    fold.repeats, fold.session_gaps = RepeatShare(evidence=1), SessionGaps(evidence=1)
    user = [
        Event("r1", "a", "x", 1000, session_id="s1", event_type="click"),
        Event("r2", "a", "x", 3000, session_id="s1", event_type="click"),
        Event("r3", "a", "y", 7000, session_id="s1", event_type="click"),
    ]
    fold(user, {})
    assert fold.repeats.share == 0.5  # of the two feedback events of a returning user, one repeats
    assert fold.session_gaps.open_ms == 5 * 3000.0  # five times the mean gap (2 s and 4 s)
    twin = Fold(LIMITS)
    twin.load(fold.state())
    assert twin.state() == fold.state()


def test_shown_lists_are_what_the_next_feedback_is_judged_against() -> None:
    fold = Fold(LIMITS)
    out = fold([ev(1, "a")], {})
    rec = Recommendation(
        "a", "e1-r", [ScoredItem("i7", 1.0), ScoredItem("i8", 0.5)], 3, "e1", 1000, 1500
    )
    fold.shown(out.states, [rec])
    st = out.states["a"]
    assert (st.last_rec_id, st.last_rec_items, st.last_rec_ts) == ("e1-r", ["i7", "i8"], 1000)
    later = fold([Event("e2", "a", "i8", 2000, event_type="click")], {"a": dump_state(st)})
    assert later.hits == 1 and later.feedback == 1
    assert load_state(dump_state(later.states["a"])).last_rec_id == "e1-r"
