"""Per-user state: what the stream remembers about each user between events.

The state is a small msgspec struct serialised to bytes, so the adapter can keep it in a
changelog-backed table without knowing its shape. All lists are bounded and most recent first.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import msgspec
import numpy as np

from feedrec.model import seen
from feedrec.model.events import EVENT_TYPES, Event
from feedrec.model.windowed import WindowedMean, WindowedMeanState

_TYPE_INDEX = {t: i for i, t in enumerate(EVENT_TYPES)}


class UserState(msgspec.Struct, omit_defaults=True):
    recent: list[str] = []
    purchased: list[str] = []
    #: Carted and not bought since: what a user is most likely to buy next.
    carted: list[str] = []
    #: Recently seen event ids: the deduplication window.
    event_ids: list[str] = []
    last_rec_id: str = ""
    last_rec_items: list[str] = []
    last_rec_ts: int = 0
    counts: list[int] = msgspec.field(default_factory=lambda: [0, 0, 0, 0])
    #: What the user did last, as an index into :data:`LAST`.
    last: int = 0
    #: The user's latest sessions (of events that carry a session id), most recent first:
    #: ``(session id, its latest item, that event's ts)``.
    sessions: list[tuple[str, str, int]] = []
    last_seen: int = 0
    #: Source (``topic/partition``) -> the highest offset of it applied to this state. It makes
    #: a replay after a crash idempotent: the state and its marks are written as one record.
    marks: dict[str, int] = {}
    #: Every item the user had, as Bloom filters (:mod:`model.seen`), and how many items the
    #: newest filter holds.
    seen: bytes = b""
    seen_count: int = 0


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(UserState)


def load_state(raw: bytes | None) -> UserState:
    return UserState() if raw is None else _decoder.decode(raw)


def dump_state(state: UserState) -> bytes:
    return _encoder.encode(state)


@dataclass(frozen=True, slots=True)
class StateLimits:
    history_len: int = 20
    purchased_len: int = 100
    carted_len: int = 20
    dedupe_window: int = 64
    #: A browse triggers a recommendation only if the last one is at least this old.
    browse_rec_interval_ms: int = 30_000


#: What a user did last: nothing yet, or the type of their latest event.
LAST: tuple[str, ...] = ("none", *EVENT_TYPES)
#: The contexts a list is ranked in: what the user did last, alone or with another of their
#: sessions still open (a shopper with two tabs open may go on in either).
CONTEXTS: tuple[str, ...] = (*LAST, *(f"{t}, other sessions open" for t in EVENT_TYPES))
#: Sessions remembered per user.
MAX_SESSIONS = 3
#: A session is taken as open while its silence is under this many of the stream's mean gaps
#: between two events of one session.
OPEN_GAPS = 5.0


def context_of(last: np.ndarray, others_open: np.ndarray) -> np.ndarray:
    """Indices into :data:`CONTEXTS` of what each user did last (indices into :data:`LAST`) and
    whether another of their sessions is open."""
    return last + len(EVENT_TYPES) * (others_open & (last > 0))


def other_sessions(
    sessions: Sequence[tuple[str, str, int]], now_ms: int, open_ms: float | None
) -> list[str]:
    """The latest item of each of a user's ``sessions`` (:attr:`UserState.sessions`) other than
    their latest one that is still open at ``now_ms``: silent for at most ``open_ms`` (None:
    sessions are not known to be open)."""
    if open_ms is None:
        return []
    return [item for _, item, ts in sessions[1:] if now_ms - ts <= open_ms]


class SessionGaps:
    """How long a session stays open: :data:`OPEN_GAPS` times the mean gap between consecutive
    events of one session, over an exponential window of about ``window`` gaps. A stream whose
    sessions are seconds apart and one whose visits last an hour get the same rule."""

    def __init__(self, window: float = 5000.0, evidence: float = 100.0) -> None:
        self._gaps = WindowedMean(window, evidence)

    def observe(self, gaps_ms: Sequence[int]) -> None:
        self._gaps.observe(len(gaps_ms), float(sum(gaps_ms)))

    @property
    def open_ms(self) -> float | None:
        """None until ``evidence`` gaps have been seen."""
        mean = self._gaps.mean
        return None if mean is None else OPEN_GAPS * mean

    def state(self) -> WindowedMeanState:
        return self._gaps.state()

    def load(self, state: WindowedMeanState) -> None:
        self._gaps.load(state)


class RepeatShare(WindowedMean):
    """The share of recent feedback events of returning users (users with a history) that are
    on an item the user already had, over an exponential window of about ``window`` of them.
    Users seen for the first time cannot come back to anything, so they do not count.

    :meth:`observe` takes ``feedback`` events of returning users and how many of them were on
    an item they had. The ranking hides seen items where hardly anyone comes back
    (:func:`feedrec.model.ranking.hides_seen`)."""

    def __init__(self, window: float = 5000.0, evidence: float = 200.0) -> None:
        super().__init__(window, evidence)

    @property
    def share(self) -> float | None:
        """None until ``evidence`` feedback events have been seen."""
        return self.mean


class Context(NamedTuple):
    """A user's item lists just before one of their events (what the ranker would have seen).

    ``seen`` is as it was before the user's batch: items seen since are in ``recent``."""

    recent: list[str]
    carted: list[str]
    purchased: list[str]
    seen: bytes = b""
    #: What the user did last (index into :data:`LAST`).
    last: int = 0
    #: Their latest sessions, as :attr:`UserState.sessions` (:func:`other_sessions` tells
    #: which were open).
    sessions: list[tuple[str, str, int]] = []


#: ``Context`` from a tuple of its fields, without the Python-level ``__new__`` of a
#: NamedTuple (one is made per event).
_context = functools.partial(tuple.__new__, Context)


@dataclass(slots=True)
class Outcome:
    """What applying a user's events produced."""

    accepted: list[Event] = field(default_factory=list)
    #: For each accepted event, the user's lists just before it.
    contexts: list[Context] = field(default_factory=list)
    duplicates: int = 0
    #: Feedback events (click/cart/purchase) and how many hit the last recommendation list.
    feedback: int = 0
    hits: int = 0
    #: Clicks attributed to the last recommendation list through ``rec_id``.
    rec_clicks: int = 0
    #: Feedback events of a user who had had items before, and those of them on an item the
    #: user had already had (any event type, any time): how often shoppers come back.
    returning: int = 0
    repeats: int = 0
    trigger: Event | None = None
    #: Gaps (ms) between consecutive events of one session, for :class:`SessionGaps`.
    session_gaps: list[int] = field(default_factory=list)


def _push(items: list[str], value: str, limit: int) -> list[str]:
    if items and items[0] == value:
        return items
    if value in items:
        items = [x for x in items if x != value]
    return [value, *items[: limit - 1]] if limit > 0 else []


def apply_events(state: UserState, events: Sequence[Event], limits: StateLimits) -> Outcome:
    """Fold ``events`` (one user's, in order) into ``state`` in place.

    Duplicates (event ids inside the window) are skipped. The trigger is the last event that
    should produce a recommendation: any click, cart or purchase, or a browse when the previous
    recommendation is older than ``browse_rec_interval_ms``.
    """
    out = Outcome()
    ids = set(state.event_ids)
    fresh_ids: list[str] = []
    had = state.seen
    last_rec_ts = state.last_rec_ts
    last_rec = set(state.last_rec_items)
    for ev in events:
        if ev.event_id in ids:
            out.duplicates += 1
            continue
        ids.add(ev.event_id)
        fresh_ids.append(ev.event_id)
        kind = ev.event_type or "browse"
        state.counts[_TYPE_INDEX[kind]] += 1
        if ev.ts > state.last_seen:
            state.last_seen = ev.ts
        sessions = state.sessions
        out.contexts.append(
            _context((state.recent, state.carted, state.purchased, had, state.last, sessions))
        )
        state.last = _TYPE_INDEX[kind] + 1
        sid = ev.session_id
        if sid:
            # A new list each time: the contexts hold the old ones.
            if sessions and sessions[0][0] == sid:  # the latest session goes on
                out.session_gaps.append(max(ev.ts - sessions[0][2], 0))
                state.sessions = [(sid, ev.item_id, ev.ts), *sessions[1:]]
            else:
                rest = []
                for x in sessions:
                    if x[0] == sid:
                        out.session_gaps.append(max(ev.ts - x[2], 0))
                    else:
                        rest.append(x)
                state.sessions = [(sid, ev.item_id, ev.ts), *rest[: MAX_SESSIONS - 1]]
        if kind != "browse" and state.recent:
            out.returning += 1
            if ev.item_id in state.recent or seen.has(had, ev.item_id):
                out.repeats += 1
        state.recent = _push(state.recent, ev.item_id, limits.history_len)
        if kind == "cart":
            state.carted = _push(state.carted, ev.item_id, limits.carted_len)
        elif kind == "purchase":
            state.purchased = _push(state.purchased, ev.item_id, limits.purchased_len)
            if ev.item_id in state.carted:
                state.carted = [x for x in state.carted if x != ev.item_id]
        if kind != "browse":
            out.feedback += 1
            if ev.item_id in last_rec:
                out.hits += 1
            if kind == "click" and ev.rec_id and ev.rec_id == state.last_rec_id:
                out.rec_clicks += 1
            out.trigger = ev
            last_rec_ts = ev.ts
        elif ev.ts - last_rec_ts >= limits.browse_rec_interval_ms:
            out.trigger = ev
            last_rec_ts = ev.ts
        out.accepted.append(ev)
    if fresh_ids:
        # Ids are distinct (``ids`` above), so the window is a plain concatenation.
        window = limits.dedupe_window
        state.event_ids = [*reversed(fresh_ids), *state.event_ids][:window] if window > 0 else []
    if out.accepted:
        state.seen, state.seen_count = seen.add_many(
            state.seen, state.seen_count, [ev.item_id for ev in out.accepted]
        )
    return out


def is_expired(state: UserState, now_ms: int, ttl_ms: int) -> bool:
    return now_ms - state.last_seen > ttl_ms
