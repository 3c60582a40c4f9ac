"""Fold: a batch's events into their users' states, once each, and what the stream says about its
shoppers.

Each user's events are applied in time order (topics interleave arbitrarily) by
:func:`feedrec.model.state.apply_events`: recent items, cart, purchases, sessions, the
deduplication window, and the trigger of the user's next list. With positions, an event at or
below its user's mark for its source was applied before a crash: it is not applied again (nor
does it trigger a list), but it still goes to the learner, which decides by its own marks
whether the model learned it.

While folding, the step learns two habits of the stream: how often shoppers come back to an
item they had (:class:`~feedrec.model.state.RepeatShare`, read by the ranking) and how long
their sessions stay open (:class:`~feedrec.model.state.SessionGaps`, read by retrieval).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from feedrec.model.events import EVENT_TYPES, Event, Position
from feedrec.model.state import (
    Context,
    RepeatShare,
    SessionGaps,
    StateLimits,
    UserState,
    apply_events,
    load_state,
)
from feedrec.model.steps.emit import Recommendation
from feedrec.model.windowed import WindowedMeanState


def _event_ts(ev: Event) -> int:
    return ev.ts


@dataclass(slots=True)
class Folded:
    """What folding one batch produced."""

    #: The batch's users and their states, updated in place.
    states: dict[str, UserState]
    #: Events for the learner (new ones and replayed ones), each with the user's lists just
    #: before it and, when the batch has positions, where it came from.
    learn: list[Event] = field(default_factory=list)
    contexts: list[Context] = field(default_factory=list)
    positions: list[Position] | None = None
    #: The users whose events call for a new list, and the event that does.
    triggers: list[tuple[str, Event]] = field(default_factory=list)
    #: Events applied, by type.
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(EVENT_TYPES, 0))
    duplicates: int = 0
    #: Events already in their user's state (a replay after a crash).
    replayed: int = 0
    feedback: int = 0
    hits: int = 0
    rec_clicks: int = 0


@dataclass(frozen=True, slots=True)
class FoldState:
    repeats: WindowedMeanState
    session_gaps: WindowedMeanState


class Fold:
    def __init__(self, limits: StateLimits) -> None:
        self.limits = limits
        #: How often returning shoppers go back to an item they had (read by :class:`Rank`).
        self.repeats = RepeatShare()
        #: How long a session stays open (read by :class:`Retrieve`).
        self.session_gaps = SessionGaps()

    def __call__(
        self,
        events: Sequence[Event],
        states: Mapping[str, bytes | None],
        positions: Sequence[Position] | None = None,
    ) -> Folded:
        """Apply ``events`` to their users' states (``states`` holds each one's current
        encoded state, or None for a user without one)."""
        at: dict[int, Position] = {}
        by_user: dict[str, list[Event]] = {}
        if positions is None:
            for ev in events:
                by_user.setdefault(ev.user_id, []).append(ev)
        else:
            for ev, pos in zip(events, positions, strict=True):
                by_user.setdefault(ev.user_id, []).append(ev)
                at[id(ev)] = pos
        out = Folded(states={}, positions=[] if at else None)
        counts = out.counts
        gaps: list[int] = []
        for user, evs in by_user.items():
            st = load_state(states.get(user))
            if at:
                evs = self._unapplied(st, evs, at, out)
            evs.sort(key=_event_ts)
            applied = apply_events(st, evs, self.limits)
            out.states[user] = st
            out.duplicates += applied.duplicates
            out.feedback += applied.feedback
            out.hits += applied.hits
            out.rec_clicks += applied.rec_clicks
            self.repeats.observe(applied.returning, applied.repeats)
            gaps += applied.session_gaps
            for ev in applied.accepted:
                counts[ev.event_type or "browse"] += 1
            out.learn += applied.accepted
            out.contexts += applied.contexts
            if out.positions is not None:
                out.positions += [at[id(ev)] for ev in applied.accepted]
            if applied.trigger is not None:
                out.triggers.append((user, applied.trigger))
        self.session_gaps.observe(gaps)
        return out

    @staticmethod
    def _unapplied(
        st: UserState, evs: list[Event], at: Mapping[int, Position], out: Folded
    ) -> list[Event]:
        """The events of ``evs`` that ``st`` has not applied yet, and the marks moved past all.

        Events already applied (a replay after a crash) go to the learner as they are: their
        context is the user's lists now, not as they were then.
        """
        marks = st.marks
        positions = out.positions
        assert positions is not None
        fresh = []
        for ev in evs:
            src, offset = at[id(ev)]
            if offset > marks.get(src, -1):
                # A source's events come in offset order: the mark moves past each fresh one.
                marks[src] = offset
                fresh.append(ev)
                continue
            out.replayed += 1
            out.learn.append(ev)
            out.contexts.append(
                Context(st.recent, st.carted, st.purchased, st.seen, st.last, st.sessions)
            )
            positions.append((src, offset))
        return fresh

    @staticmethod
    def shown(states: Mapping[str, UserState], recommendations: Sequence[Recommendation]) -> None:
        """Record in their users' states the lists they were just sent: the next feedback
        events are judged against them."""
        for rec in recommendations:
            st = states[rec.user_id]
            st.last_rec_id = rec.rec_id
            st.last_rec_items = [it.item_id for it in rec.items]
            st.last_rec_ts = rec.event_ts

    def state(self) -> FoldState:
        return FoldState(self.repeats.state(), self.session_gaps.state())

    def load(self, state: FoldState) -> None:
        self.repeats.load(state.repeats)
        self.session_gaps.load(state.session_gaps)
