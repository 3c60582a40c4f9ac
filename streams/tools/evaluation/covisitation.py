"""Co-visitation (association rules) over each user's last ``window`` items.

Each event on item ``j`` adds, for every item ``i`` among the user's last ``window`` distinct
items, its type weight to ``i -> j`` and ``backward`` times it to ``j -> i``, decayed with age
(``half_life_s``; None keeps all evidence, as a catalogue spanning months needs). A user's
list: the successors of their recent items, the most recent counting most (``recency_decay``
per step back), under the seen policy, popularity filling what remains.

The strong form on shop sessions puts the user's own recent items first (``seen="first"``); on
a catalogue where nobody comes back to an item it excludes them (``seen="exclude"``). Which one
a stream wants is for ``--tune`` to find on its tuning window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from feedrec.model.events import EVENT_WEIGHTS, Event
from feedrec.streams.tools.evaluation.base import Growth, Histories, check_seen, prune, top_keys
from feedrec.streams.tools.evaluation.popularity import HALF_LIVES, Popularity

#: Successors kept per item (the strongest); pruned to this when a row grows to twice as many.
MAX_SUCCESSORS = 200


class CoVisitation:
    GRID: ClassVar[tuple[dict, ...]] = tuple(
        {"half_life_s": h, "seen": s} for h in HALF_LIVES for s in ("exclude", "allow", "first")
    ) + (
        {"window": 20, "half_life_s": None, "seen": "exclude"},
        {"window": 3, "half_life_s": 86400.0, "seen": "first"},
    )

    def __init__(
        self,
        window: int = 10,
        half_life_s: float | None = 86400.0,
        seen: str = "first",
        recency_decay: float = 0.7,
        neighbours: int = 50,
        backward: float = 0.5,
        weights: Mapping[str, float] = EVENT_WEIGHTS,
    ) -> None:
        self.window, self.recency_decay, self.neighbours = window, recency_decay, neighbours
        self.backward, self.seen = backward, check_seen(seen)
        self._weights = dict(weights)
        self.histories = Histories(window)
        self._pairs: dict[str, dict[str, float]] = {}
        self._growth = Growth(half_life_s)
        self.popularity = Popularity(half_life_s=3600.0)

    def _add(self, i: str, j: str, w: float) -> None:
        row = self._pairs.get(i)
        if row is None:
            row = self._pairs[i] = {}
        row[j] = row.get(j, 0.0) + w
        if len(row) > 2 * MAX_SUCCESSORS:
            prune(row, MAX_SUCCESSORS)

    def learn(self, events: Sequence[Event]) -> None:
        self.popularity.learn(events)
        for e in events:
            w = self._weights[e.event_type or "browse"] * self._growth.factor(e.ts, self._pairs)
            for i in self.histories.items(e.user_id):
                if i != e.item_id:
                    self._add(i, e.item_id, w)
                    if self.backward:
                        self._add(e.item_id, i, self.backward * w)
            self.histories.add(e)

    def scores(self, user_id: str) -> dict[str, float]:
        """Successor scores from the user's recent items (before the seen policy)."""
        score: dict[str, float] = {}
        for p, i in enumerate(self.histories.items(user_id)):
            row = self._pairs.get(i)
            if not row:
                continue
            f = self.recency_decay**p
            for j in top_keys(row, self.neighbours):
                score[j] = score.get(j, 0.0) + f * row[j]
        return score

    def recommend(self, user_id: str, now_ms: int, k: int) -> list[str]:
        return self.histories.rank(user_id, self.scores(user_id), k, self.seen, self.popularity.top)
