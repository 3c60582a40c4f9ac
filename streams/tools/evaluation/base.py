"""The contract every method of the evaluation follows, and the small parts baselines share.

A method learns from batches of events in time order and, when asked, returns a user's top-k
item ids from what it knows at that moment (:class:`Method`). Its hyperparameters are
constructor arguments; its ``GRID`` is the small set of variants ``--tune`` searches, each a
dict of those arguments, judged on the tuning window exactly as feedrec's are.

What a user has already seen is handled alike by every baseline that can (:data:`SEEN_POLICIES`):
``exclude`` never lists an item the user had, ``allow`` lets it compete on its score, ``first``
puts the user's own recent items first (the usual strong form for e-commerce sessions, where
shoppers come back to what they looked at).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import ClassVar, Protocol

import numpy as np

from feedrec.model.decay import MovingOrigin
from feedrec.model.events import EVENT_WEIGHTS, Event

SEEN_POLICIES = ("exclude", "allow", "first")


class Method(Protocol):
    """A recommender as the evaluator drives it."""

    #: Variants ``--tune`` chooses between: constructor keyword arguments.
    GRID: ClassVar[tuple[dict, ...]]

    def learn(self, events: Sequence[Event]) -> None:
        """Learn from events, oldest first."""

    def recommend(self, user_id: str, now_ms: int, k: int) -> list[str]:
        """The user's top ``k`` item ids, best first (fewer if the method knows fewer)."""


def weight_of(ev: Event, weights: Mapping[str, float] = EVENT_WEIGHTS) -> float:
    return weights[ev.event_type or "browse"]


def check_seen(policy: str) -> str:
    if policy not in SEEN_POLICIES:
        raise ValueError(f"seen must be one of {', '.join(SEEN_POLICIES)}; got {policy!r}")
    return policy


class Ids:
    """Dense rows for string ids, growing as they come."""

    def __init__(self) -> None:
        self.row: dict[str, int] = {}
        self.names: list[str] = []

    def __len__(self) -> int:
        return len(self.names)

    def add(self, name: str) -> int:
        r = self.row.get(name)
        if r is None:
            r = self.row[name] = len(self.names)
            self.names.append(name)
        return r


def top_rows(scores: np.ndarray, k: int, skip: Callable[[int], bool] | None = None) -> list[int]:
    """Rows of the ``k`` largest finite scores, best first (ties by row), ``skip`` left out."""
    n = len(scores)
    if n == 0 or k <= 0:
        return []
    want = min(n, k)
    while True:
        part = np.argpartition(-scores, want - 1)[:want] if want < n else np.arange(n)
        order = part[np.lexsort((part, -scores[part]))]
        out = [int(r) for r in order if np.isfinite(scores[r]) and not (skip and skip(int(r)))]
        if len(out) >= k or want == n:
            return out[:k]
        want = min(n, 2 * want + 64)


def top_keys(scores: Mapping[str, float], k: int, skip: Iterable[str] = ()) -> list[str]:
    """The ``k`` keys with the largest scores, best first (ties by key), ``skip`` left out;
    a heap, not a full sort."""
    banned = set(skip)
    return [
        key
        for _, key in heapq.nsmallest(
            k, ((-s, key) for key, s in scores.items() if key not in banned)
        )
    ]


class Growth:
    """Weights kept in dicts of dicts with a moving origin (:class:`feedrec.model.decay.MovingOrigin`):
    decay without rewriting old pairs. Call :meth:`factor` with an event's time and the table it
    feeds; when the origin moves, every stored weight of the table is rescaled."""

    def __init__(self, half_life_s: float | None) -> None:
        self._origin = MovingOrigin(half_life_s, rescale_at=50.0)

    def factor(self, ts: int, table: Mapping[str, dict[str, float]]) -> float:
        x, rescale = self._origin.exponents(ts)
        if rescale is not None:
            for row in table.values():
                for j in row:
                    row[j] *= rescale
        return math.exp(x)

    def at(self, now_ms: int) -> float:
        """What a stored weight is multiplied by to read it as of ``now_ms``."""
        return self._origin.at(now_ms)


def prune(row: dict[str, float], keep: int) -> None:
    """Keep the ``keep`` strongest entries of ``row`` in place."""
    if len(row) > 2 * keep:
        for key in top_keys(row, len(row))[keep:]:
            del row[key]


def fill(chosen: list[str], k: int, more: Iterable[str], skip: Iterable[str] = ()) -> list[str]:
    """``chosen`` topped up to ``k`` with items of ``more`` not already in it nor in ``skip``."""
    if len(chosen) >= k:
        return chosen[:k]
    have = set(chosen) | set(skip)
    for x in more:
        if len(chosen) >= k:
            break
        if x not in have:
            chosen.append(x)
            have.add(x)
    return chosen


class Histories:
    """Per user: their last ``window`` distinct items (newest first) with the time of each, and
    every item they ever had (what ``exclude`` leaves out)."""

    def __init__(self, window: int) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.window = window
        self.recent: dict[str, deque[tuple[str, int]]] = {}
        self.seen: dict[str, set[str]] = {}

    def add(self, ev: Event) -> None:
        recent = self.recent.get(ev.user_id)
        if recent is None:
            recent = self.recent[ev.user_id] = deque(maxlen=self.window)
            self.seen[ev.user_id] = set()
        if ev.item_id in self.seen[ev.user_id]:
            for n, (item, _) in enumerate(recent):
                if item == ev.item_id:
                    del recent[n]
                    break
        recent.appendleft((ev.item_id, ev.ts))
        self.seen[ev.user_id].add(ev.item_id)

    def items(self, user_id: str) -> list[str]:
        """The user's recent distinct items, newest first."""
        return [i for i, _ in self.recent.get(user_id, ())]

    def rank(
        self,
        user_id: str,
        scores: Mapping[str, float],
        k: int,
        policy: str,
        popular: Callable[[int], list[str]],
    ) -> list[str]:
        """A list of ``k`` from ``scores`` under the seen ``policy``, topped up from ``popular(n)``
        (the ``n`` most popular items): enough of both is taken to fill ``k`` whatever the policy
        leaves out or puts first."""
        more = 2 * k + (len(self.seen.get(user_id, ())) if policy == "exclude" else 0)
        return self.finish(user_id, top_keys(scores, more), k, policy, popular(more))

    def finish(
        self, user_id: str, ranked: Iterable[str], k: int, policy: str, more: Iterable[str] = ()
    ) -> list[str]:
        """A list of ``k`` from ``ranked`` (best first) under the seen ``policy``, topped up from
        ``more`` (usually popularity)."""
        if policy == "exclude":
            seen = self.seen.get(user_id, set())
            return fill(fill([], k, ranked, seen), k, more, seen)
        start = self.items(user_id)[:k] if policy == "first" else []
        return fill(fill(start, k, ranked), k, more)
