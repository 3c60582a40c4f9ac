"""Popularity: time-decayed, type-weighted counts; every user gets the same list (less, with
``seen="exclude"``, what they already had)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np

from feedrec.model.decay import add_decayed, rate_per_ms
from feedrec.model.events import EVENT_WEIGHTS, Event
from feedrec.streams.tools.evaluation.base import Histories, Ids, check_seen, top_rows

#: Half-lives from an hour to none.
HALF_LIVES: tuple[float | None, ...] = (3600.0, 86400.0, 7 * 86400.0, None)


class Popularity:
    GRID: ClassVar[tuple[dict, ...]] = tuple(
        {"half_life_s": h, "seen": s} for h in HALF_LIVES for s in ("allow", "exclude")
    )

    def __init__(
        self,
        half_life_s: float | None = 3600.0,
        seen: str = "allow",
        weights: Mapping[str, float] = EVENT_WEIGHTS,
    ) -> None:
        self.seen = check_seen(seen)
        self.items = Ids()
        self._score = np.zeros(1024)
        self._decay_per_ms = rate_per_ms(half_life_s)
        self._weights = dict(weights)
        self._clock = 0
        self._cache: list[str] = []
        self._stale = True
        self.histories = Histories(1)

    def learn(self, events: Sequence[Event]) -> None:
        rows = np.fromiter((self.items.add(e.item_id) for e in events), np.int64, len(events))
        if len(self.items) > len(self._score):
            grown = np.zeros(2 * len(self.items))
            grown[: len(self._score)] = self._score
            self._score = grown
        weights = np.fromiter(
            (self._weights[e.event_type or "browse"] for e in events), np.float64, len(events)
        )
        ts = np.fromiter((e.ts for e in events), np.int64, len(events))
        self._clock = add_decayed(self._score, self._clock, self._decay_per_ms, rows, weights, ts)
        self._stale = True
        if self.seen == "exclude":
            for e in events:
                self.histories.add(e)

    def top(self, k: int) -> list[str]:
        """The ``k`` most popular items now, for everyone."""
        if self._stale or len(self._cache) < k:
            n = len(self.items)
            self._cache = [self.items.names[r] for r in top_rows(self._score[:n], max(k, 200))]
            self._stale = False
        return self._cache[:k]

    def recommend(self, user_id: str, now_ms: int, k: int) -> list[str]:
        if self.seen != "exclude":
            return self.top(k)
        seen = self.histories.seen.get(user_id, set())
        top = self.top(k + len(seen))
        return [i for i in top if i not in seen][:k]
