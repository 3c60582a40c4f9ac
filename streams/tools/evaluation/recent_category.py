"""The user's recent items, then the popular items of their latest category.

The simplest strong list for shop sessions: shoppers come back to what they just looked at, and
otherwise pick among what is selling in the category they are browsing. Popular items overall
fill what remains (all a user seen for the first time gets).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from feedrec.model.events import EVENT_WEIGHTS, Event
from feedrec.streams.tools.evaluation.base import Growth, Histories, check_seen, top_keys
from feedrec.streams.tools.evaluation.popularity import HALF_LIVES, Popularity


class RecentCategory:
    GRID: ClassVar[tuple[dict, ...]] = tuple(
        {"recent": n, "half_life_s": h, "seen": "first"} for n in (10, 20) for h in HALF_LIVES
    ) + (
        {"recent": 20, "half_life_s": None, "seen": "exclude"},
        {"recent": 20, "half_life_s": 86400.0, "seen": "exclude"},
    )

    def __init__(
        self,
        recent: int = 20,
        half_life_s: float | None = 3600.0,
        seen: str = "first",
        weights: Mapping[str, float] = EVENT_WEIGHTS,
    ) -> None:
        self.recent, self.seen = recent, check_seen(seen)
        self._weights = dict(weights)
        self.histories = Histories(recent)
        self.popularity = Popularity(half_life_s=half_life_s)
        self._growth = Growth(half_life_s)
        self._category: dict[str, str] = {}
        self._latest: dict[str, str] = {}
        self._by_category: dict[str, dict[str, float]] = {}
        self._top: dict[str, list[str]] = {}

    def learn(self, events: Sequence[Event]) -> None:
        self.popularity.learn(events)
        for e in events:
            self.histories.add(e)
            cat = e.category or self._category.get(e.item_id)
            if cat is None:
                continue
            self._category[e.item_id] = cat
            self._latest[e.user_id] = cat
            w = self._weights[e.event_type or "browse"] * self._growth.factor(
                e.ts, self._by_category
            )
            row = self._by_category.setdefault(cat, {})
            row[e.item_id] = row.get(e.item_id, 0.0) + w
            self._top.pop(cat, None)

    def _category_top(self, cat: str, k: int) -> list[str]:
        top = self._top.get(cat)
        if top is None or len(top) < min(k, len(self._by_category.get(cat, ()))):
            top = self._top[cat] = top_keys(self._by_category.get(cat, {}), max(k, 100))
        return top

    def recommend(self, user_id: str, now_ms: int, k: int) -> list[str]:
        cat = self._latest.get(user_id)
        seen = self.histories.seen.get(user_id, ())
        ranked = self._category_top(cat, k + len(seen)) if cat is not None else []
        return self.histories.finish(
            user_id, ranked, k, self.seen, self.popularity.top(k + len(seen))
        )
