"""Item-based k-nearest neighbours, item-kNN (Sarwar et al., "Item-based collaborative filtering
recommendation algorithms", WWW 2001; the session baseline of Hidasi et al., "Session-based
recommendations with recurrent neural networks", ICLR 2016, and of Ludewig & Jannach, 2018),
maintained incrementally over the user-item incidence of a stream.

Similarity. The cosine of two items' user columns,
``sim(i, j) = c(i, j) / (sqrt(n(i) * n(j)) + lam)``: with binary incidence ``c(i, j)`` is the
number of users who had both and ``n(i)`` the number who had ``i``
(``|U_i & U_j| / sqrt(|U_i| |U_j|)``); ``lam`` is the shrinkage of Hidasi et al.'s item-kNN
(20 by default, as theirs; 0: plain cosine), which damps pairs seen by few users.

Learning. When user ``u`` first has item ``j``, ``c(i, j)`` and ``c(j, i)`` grow by 1 for
every item ``i`` among ``u``'s ``history`` most recent distinct items, and ``n(j)`` by 1; only
pairs within that many items of each other count, which keeps a long history's update cheap
(and on the simulated shop, 20 items beat 100: nearby items say more about each other).
``typed=True`` makes the incidence weighted: ``r(u, j)`` is the largest type weight
(:data:`EVENT_WEIGHTS`) of ``u``'s events on ``j``, ``c(i, j)`` sums ``r(u, i) * r(u, j)`` and
``n(j)`` sums ``r(u, j) ** 2``; when ``r(u, j)`` rises, the pairs with ``u``'s recent items
grow by the difference. ``half_life_s`` (None: no decay) ages the co-occurrences, not the
degrees ``n``: ``c`` is stored as ``w * exp(rate * (ts - origin))``, which only ever compares
with values stored the same way (:class:`feedrec.streams.tools.evaluation.base.Growth`). Each item row
keeps its ``pairs`` most similar co-occurrences, pruned back to that when the row doubles.

Recommending. ``score(j) = sum over the user's last window items i (p = 0 the newest) of
recency_decay ** p * sim(i, j)``, over the ``neighbours`` most similar items of each ``i``.
``window=1`` (the default) is the standard session form: items like the last one. The ranked
items go through the seen policy (:meth:`Histories.finish`; ``first`` puts the user's ``first``
most recent items first) and popularity (``Popularity(half_life_s=3600)``) fills the list, less
the user's items under ``exclude``.
``similarity`` gives one pair's similarity and ``scores`` the raw item scores.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from typing import ClassVar

from feedrec.model.events import EVENT_WEIGHTS, Event
from feedrec.streams.tools.evaluation.base import Growth, Histories, check_seen
from feedrec.streams.tools.evaluation.popularity import Popularity


class ItemKNN:
    """Incremental item-kNN with cosine similarity; see the module docstring."""

    GRID: ClassVar[tuple[dict, ...]] = (
        {},  # the default: binary cosine, lam 20, from the last item, no time decay, seen first
        {"seen": "exclude"},
        {"seen": "allow"},
        {"lam": 0.0},
        {"history": 100},
        {"window": 3, "recency_decay": 0.5},
        {"typed": True},
        {"half_life_s": 3600.0},
        {"half_life_s": 86400.0, "seen": "exclude"},
        # Long histories (a catalogue): more context, nothing the user had.
        {"window": 5, "recency_decay": 0.6, "history": 100, "seen": "exclude"},
    )

    def __init__(
        self,
        history: int = 20,
        window: int = 1,
        recency_decay: float = 0.5,
        neighbours: int = 100,
        lam: float = 20.0,
        half_life_s: float | None = None,
        typed: bool = False,
        seen: str = "first",
        first: int = 10,
        pairs: int = 100,
        weights: Mapping[str, float] = EVENT_WEIGHTS,
    ) -> None:
        if min(history, window, neighbours, first, pairs) < 1:
            raise ValueError(
                f"history, window, neighbours, first and pairs must be >= 1, got "
                f"{history}, {window}, {neighbours}, {first}, {pairs}"
            )
        if lam < 0 or not 0 <= recency_decay <= 1:
            raise ValueError(
                f"need lam >= 0 and recency_decay in [0, 1], got {lam}, {recency_decay}"
            )
        self.history, self.window, self.recency_decay = history, window, recency_decay
        self.neighbours, self.lam, self.typed, self.pairs = neighbours, lam, typed, pairs
        self.seen = check_seen(seen)
        self._weights = dict(weights)
        #: What pairs are learnt from and lists scored from.
        self.histories = Histories(max(history, window))
        #: What the seen policy uses: the ``first`` recent items ``seen="first"`` puts first,
        #: and everything each user had (what ``exclude`` leaves out).
        self.recent = Histories(first)
        #: Per user, the incidence ``r(u, i)`` of every item they had.
        self._r: dict[str, dict[str, float]] = {}
        #: Item degrees ``n(i)``, their square roots, and co-occurrences ``c(i, j)`` (stored
        #: scale).
        self._n: dict[str, float] = {}
        self._root: dict[str, float] = {}
        self._c: dict[str, dict[str, float]] = {}
        self._growth = Growth(half_life_s)
        self.popularity = Popularity(half_life_s=3600.0)

    def _prune(self, i: str, row: dict[str, float]) -> None:
        """Keep the ``pairs`` entries of ``i``'s ``row`` most similar to ``i`` (in place)."""
        root, lam, ri = self._root, self.lam, self._root[i]
        keep = heapq.nlargest(
            self.pairs, row.items(), key=lambda kv: kv[1] / (ri * root[kv[0]] + lam)
        )
        row.clear()
        row.update(keep)

    def learn(self, events: Sequence[Event]) -> None:
        self.popularity.learn(events)
        for e in events:
            u, j = e.user_id, e.item_id
            r = self._r.get(u)
            if r is None:
                r = self._r[u] = {}
            old = r.get(j, 0.0)
            new = max(old, self._weights[e.event_type or "browse"]) if self.typed else 1.0
            if new > old:
                r[j] = new
                n = self._n[j] = self._n.get(j, 0.0) + new * new - old * old
                self._root[j] = math.sqrt(n)
                g = (new - old) * self._growth.factor(e.ts, self._c)
                c, cap = self._c, 2 * self.pairs
                mine = c.get(j)
                if mine is None:
                    mine = c[j] = {}
                for i in self.histories.items(u)[: self.history]:
                    if i == j:
                        continue
                    w = g * r[i]
                    mine[i] = mine.get(i, 0.0) + w
                    row = c.get(i)
                    if row is None:
                        row = c[i] = {}
                    row[j] = row.get(j, 0.0) + w
                    if len(row) > cap:
                        self._prune(i, row)
                if len(mine) > cap:
                    self._prune(j, mine)
            self.histories.add(e)
            self.recent.add(e)

    def similarity(self, i: str, j: str, now_ms: int | None = None) -> float:
        """``sim(i, j)``; with a half-life, as of ``now_ms`` (stored scale when None)."""
        c = self._c.get(i, {}).get(j, 0.0)
        if not c:
            return 0.0
        if now_ms is not None:
            c *= self._growth.at(now_ms)
        return c / (self._root[i] * self._root[j] + self.lam)

    def neighbours_of(self, i: str) -> list[tuple[str, float]]:
        """``i``'s ``neighbours`` most similar items with their similarity (stored scale), most
        similar first, ties by id."""
        row = self._c.get(i)
        if not row:
            return []
        root, lam, ri = self._root, self.lam, self._root[i]
        ranked = [(-c / (ri * root[j] + lam), j) for j, c in row.items()]
        ranked = heapq.nsmallest(self.neighbours, ranked)
        return [(j, -s) for s, j in ranked]

    def scores(self, user_id: str) -> dict[str, float]:
        """Item scores from the user's last ``window`` items (stored scale)."""
        score: dict[str, float] = {}
        for p, i in enumerate(self.histories.items(user_id)[: self.window]):
            f = self.recency_decay**p
            if not f:
                break
            for j, s in self.neighbours_of(i):
                score[j] = score.get(j, 0.0) + f * s
        return score

    def recommend(self, user_id: str, now_ms: int, k: int) -> list[str]:
        return self.recent.rank(user_id, self.scores(user_id), k, self.seen, self.popularity.top)
