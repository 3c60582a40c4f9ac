"""Session-based nearest neighbours: SKNN and V-SKNN (Ludewig & Jannach, "Evaluation of
session-based recommendation algorithms", 2018; the ``session-rec`` framework), on a stream of
users.

Sessions. Each user's events are cut into sessions where the gap between two of their events
exceeds ``gap_s`` (30 minutes by default). A session keeps its distinct items, each with the
position (1-based, counting every event of the session) of its last occurrence, and the time of
its last event. Every session goes into the pool as soon as it starts: a user's open session is
a neighbour candidate for OTHER users while it grows, and is frozen when the user's next event
comes after the gap. An item's sessions are found through an inverted index that keeps, per
item, only the ``index_cap`` sessions that took it most recently (a ``deque``; by default
``sample + 1``, as the asking user's own latest session is usually one of them): a session
that took an item early and went on long after can leave that item's entry before the
sessions that displaced it end, so the sample below is the most recent sessions *found*,
which is session-rec's "recent" sampling up to that cap.

The query. A user's "current session" is their last ``session_len`` distinct items (newest
first), across session boundaries when the open one is shorter. Candidates are the sessions
sharing at least one item with it, less the user's own latest session (which the query already
holds); the user's own earlier sessions compete. Of those, the ``sample`` most recent (by time
of last event) are compared (session-rec's "recent" sampling), and the ``k_neighbours`` most
similar are the neighbours; ties between sessions go to the more recent one.

- ``variant="sknn"``: similarity is the cosine of binary item sets,
  ``|s & n| / sqrt(|s| * |n|)``; ``score(j) = sum over neighbours n of sim(s, n) * [j in n]``.
- ``variant="vsknn"``: the query's items are weighted by position, ``p`` steps back from the
  newest (``p = 0``): ``weighting="linear"`` gives ``max(0, 1 - 0.1 * p)``, ``"div"`` gives
  ``(l - p) / l`` for a query of ``l`` items (session-rec's ``linear`` and ``div``); similarity
  is the dot product of that vector with the neighbour's binary set (session-rec's ``vec``,
  without its division by ``l``, which changes no ranking).
- ``idf=True`` (meant for V-SKNN, allowed for both) multiplies each item's score by
  ``1 + log(N / df(j))`` (session-rec's ``idf_weighting`` of weight 1), ``N`` the sessions in
  the pool and ``df(j)`` those holding ``j``.

The ranked items go through the seen policy (:meth:`Histories.finish`) and popularity
(``Popularity(half_life_s=3600)``) fills the list; ``scores`` gives the raw item scores. The
default policy is ``first`` (the user's own recent items, then the neighbours' picks), the
strong form where shoppers come back to what they looked at; the ``GRID`` also tries ``allow``
(session-rec's ``remind``) and ``exclude``.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Container, Iterator, Sequence
from typing import ClassVar

from feedrec.model.events import Event
from feedrec.streams.tools.evaluation.base import Histories, check_seen
from feedrec.streams.tools.evaluation.popularity import Popularity

VARIANTS = ("sknn", "vsknn")
STAMP_BITS = 40
WEIGHTINGS = ("linear", "div")


class Session:
    """One stored session: its user, ``pos`` (item -> 1-based position of its last occurrence
    among the session's events), ``length`` (events so far) and ``end`` (last event time, ms)."""

    __slots__ = ("end", "length", "pos", "user")

    def __init__(self, user: str, ts: int) -> None:
        self.user = user
        self.pos: dict[str, int] = {}
        self.length = 0
        self.end = ts


class SessionPool:
    """What SKNN, V-SKNN and STAN share: sessions cut by gaps, the item -> sessions index, the
    users' recent items and what they saw, the popularity fill, and the final list."""

    def __init__(
        self,
        k_neighbours: int,
        sample: int,
        session_len: int,
        gap_s: float,
        seen: str,
        index_cap: int | None = None,
    ) -> None:
        if k_neighbours < 1 or sample < 1:
            raise ValueError(f"k_neighbours and sample must be >= 1, got {k_neighbours}, {sample}")
        self.index_cap = sample + 1 if index_cap is None else index_cap
        if self.index_cap < 1:
            raise ValueError(f"index_cap must be >= 1 or None, got {index_cap}")
        if gap_s <= 0:
            raise ValueError(f"gap_s must be > 0 seconds, got {gap_s}")
        self.k_neighbours, self.sample, self.session_len = k_neighbours, sample, session_len
        self.gap_ms = gap_s * 1000.0
        self.seen = check_seen(seen)
        self.histories = Histories(session_len)
        self.popularity = Popularity(half_life_s=3600.0)
        self.sessions: list[Session] = []
        #: item -> ids of the (at most ``index_cap``) sessions that took it most recently.
        self.index: dict[str, deque[int]] = {}
        #: item -> number of sessions holding it.
        self.df: dict[str, int] = {}
        #: user -> id of their latest session.
        self.latest: dict[str, int] = {}
        #: session id -> ``end << 40 | id``: one int that orders sessions by recency.
        self.stamp: list[int] = []

    # -- learning ---------------------------------------------------------------------------

    def learn(self, events: Sequence[Event]) -> None:
        self.popularity.learn(events)
        sessions, latest, index, df, stamp = (
            self.sessions,
            self.latest,
            self.index,
            self.df,
            self.stamp,
        )
        for e in events:
            self.histories.add(e)
            sid = latest.get(e.user_id)
            if sid is None or e.ts - sessions[sid].end > self.gap_ms:
                sid = latest[e.user_id] = len(sessions)
                sessions.append(Session(e.user_id, e.ts))
                stamp.append(0)
            s = sessions[sid]
            s.length += 1
            if e.item_id not in s.pos:
                refs = index.get(e.item_id)
                if refs is None:
                    refs = index[e.item_id] = deque(maxlen=self.index_cap)
                refs.append(sid)
                df[e.item_id] = df.get(e.item_id, 0) + 1
            s.pos[e.item_id] = s.length
            if e.ts > s.end:
                s.end = e.ts
            stamp[sid] = s.end << STAMP_BITS | sid

    # -- neighbours -------------------------------------------------------------------------

    def query(self, user_id: str) -> list[str]:
        """The user's current session: their last ``session_len`` distinct items, newest first."""
        return self.histories.items(user_id)

    def candidates(self, user_id: str, query: Sequence[str]) -> list[int]:
        """The ``sample`` most recent sessions (by last event, then by id) sharing an item
        with ``query``, the user's latest session left out; in no particular order."""
        found: set[int] = set()
        for item in query:
            refs = self.index.get(item)
            if refs:
                found.update(refs)
        own = self.latest.get(user_id)
        if own is not None:
            found.discard(own)
        if len(found) <= self.sample:
            return list(found)
        return sorted(found, key=self.stamp.__getitem__, reverse=True)[: self.sample]

    def top_neighbours(self, sims: list[tuple[float, int, int]]) -> list[tuple[float, int]]:
        """Of ``(similarity, stamp, session id)``, the ``k_neighbours`` most similar as
        ``(similarity, session id)``, best first; ties to the more recent session (the larger
        stamp); sessions of similarity 0 are no neighbours."""
        sims.sort(reverse=True)
        return [(sim, sid) for sim, _, sid in sims[: self.k_neighbours] if sim > 0]

    # -- the list ---------------------------------------------------------------------------

    def scores(self, user_id: str, now_ms: int) -> dict[str, float]:
        """Item -> score from the user's neighbour sessions, before the seen policy and fill."""
        raise NotImplementedError

    def recommend(self, user_id: str, now_ms: int, k: int) -> list[str]:
        if k <= 0:
            return []
        scores = self.scores(user_id, now_ms)
        if self.seen == "exclude":
            seen = self.histories.seen.get(user_id, set())
            ranked = ranked_keys(scores, k, seen)
            more = self._popular(2 * k + len(seen))
        else:
            ranked = ranked_keys(scores, 2 * k)
            more = self._popular(2 * k)
        return self.histories.finish(user_id, ranked, k, self.seen, more)

    def _popular(self, n: int) -> Iterator[str]:
        """The ``n`` most popular items, computed only if the list needs filling."""
        yield from self.popularity.top(n)


def ranked_keys(scores: dict[str, float], k: int, skip: Container[str] = ()) -> list[str]:
    """The ``k`` keys of largest score, ``skip`` left out, ties by key (as :func:`top_keys`)."""
    pairs = ((-v, j) for j, v in scores.items() if j not in skip)
    return [j for _, j in heapq.nsmallest(k, pairs)]


class SessionKNN(SessionPool):
    """SKNN (``variant="sknn"``) or V-SKNN (``variant="vsknn"``); see the module's docstring."""

    #: Entries without ``variant`` serve both ``sknn`` and ``vsknn`` (the registry presets it).
    GRID: ClassVar[tuple[dict, ...]] = (
        {},
        {"k_neighbours": 50},
        {"k_neighbours": 200, "sample": 1000},
        {"sample": 100},
        {"session_len": 3},
        {"session_len": 20},
        {"seen": "allow"},
        {"seen": "exclude"},
        {"variant": "vsknn", "idf": True},
        {"variant": "vsknn", "weighting": "div"},
    )

    def __init__(
        self,
        variant: str = "sknn",
        k_neighbours: int = 100,
        sample: int = 500,
        session_len: int = 10,
        gap_s: float = 1800.0,
        seen: str = "first",
        weighting: str = "linear",
        idf: bool = False,
        index_cap: int | None = None,
    ) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}; got {variant!r}")
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {', '.join(WEIGHTINGS)}; got {weighting!r}")
        super().__init__(k_neighbours, sample, session_len, gap_s, seen, index_cap)
        self.variant, self.weighting, self.idf = variant, weighting, idf

    def query_weights(self, query: Sequence[str]) -> list[float]:
        """Each query item's weight, newest first (all 1 for SKNN)."""
        n = len(query)
        if self.variant == "sknn":
            return [1.0] * n
        if self.weighting == "linear":
            return [max(0.0, 1.0 - 0.1 * p) for p in range(n)]
        return [(n - p) / n for p in range(n)]

    def neighbours(self, user_id: str, now_ms: int = 0) -> list[tuple[float, int]]:
        """``(similarity, session id)`` of the user's neighbour sessions, best first."""
        query = self.query(user_id)
        if not query:
            return []
        sessions, stamp = self.sessions, self.stamp
        sims: list[tuple[float, int, int]] = []
        if self.variant == "sknn":
            norm = math.sqrt(len(query))
            items = set(query)
            for sid in self.candidates(user_id, query):
                pos = sessions[sid].pos
                sim = len(pos.keys() & items) / (norm * math.sqrt(len(pos)))
                sims.append((sim, stamp[sid], sid))
        else:
            weights = list(zip(query, self.query_weights(query), strict=True))
            for sid in self.candidates(user_id, query):
                pos = sessions[sid].pos
                sims.append((sum(w for i, w in weights if i in pos), stamp[sid], sid))
        return self.top_neighbours(sims)

    def scores(self, user_id: str, now_ms: int) -> dict[str, float]:
        out: dict[str, float] = {}
        for sim, sid in self.neighbours(user_id, now_ms):
            for j in self.sessions[sid].pos:
                out[j] = out.get(j, 0.0) + sim
        if self.idf and out:
            n, df = len(self.sessions), self.df
            for j in out:
                out[j] *= 1.0 + math.log(n / df[j])
        return out
