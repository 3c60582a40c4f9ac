"""Sequential rules, SR (Ludewig & Jannach, "Evaluation of session-based recommendation
algorithms", User Modeling and User-Adapted Interaction 28, 2018; ``sr.py`` of the
``session-rec`` framework), on a stream of users.

Learning. Each event on item ``j`` by a user adds, for every item ``i`` among that user's
``steps`` most recent distinct items other than ``j`` (``i`` at position ``pos``, 1 the newest),
``w(pos)`` to the rule ``i -> j``:

- ``decay="harmonic"``: ``w(pos) = 1 / pos`` (session-rec's ``div``, SR's default);
- ``decay="linear"``: ``w(pos) = 1 - (pos - 1) / steps`` (``1 - 0.1 * (pos - 1)`` for 10 steps);
- ``decay="none"``: ``w(pos) = 1``.

``typed=True`` multiplies that by the event's type weight (:data:`EVENT_WEIGHTS`), so a purchase
after ``i`` says more than a browse. ``half_life_s`` (None: no decay, SR's form) ages rules:
a weight is stored as ``w * exp(rate * (ts - origin))`` and only compared with weights stored
the same way, so nothing is swept; everything is rescaled once when the factor grows large
(:class:`feedrec.streams.tools.evaluation.base.Growth`). Each source item keeps its ``successors``
strongest rules, pruned back to that when its row doubles, so memory stays bounded.

Recommending. SR's standard form scores items by the rules from the user's LAST item:
``score(j) = rule(last, j)``. ``sources > 1`` adds the rules of the user's earlier items too,
the ``p``-th most recent (``p = 0`` the newest) weighted ``recency ** p``. The ranked items go
through the seen policy (:meth:`Histories.finish`: ``exclude`` / ``allow`` / ``first``, which
puts the user's ``first`` most recent items first) and popularity
(``Popularity(half_life_s=3600)``) fills the list, less the user's items under ``exclude``. ``scores`` gives the raw item scores and ``weight`` one rule's weight now.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from feedrec.model.events import EVENT_WEIGHTS, Event
from feedrec.streams.tools.evaluation.base import Growth, Histories, check_seen, prune
from feedrec.streams.tools.evaluation.popularity import Popularity

DECAYS = ("harmonic", "linear", "none")


def position_weights(decay: str, steps: int) -> list[float]:
    """``w(pos)`` for ``pos = 1 .. steps`` under ``decay`` (see the module docstring)."""
    if decay == "harmonic":
        return [1.0 / pos for pos in range(1, steps + 1)]
    if decay == "linear":
        return [1.0 - (pos - 1) / steps for pos in range(1, steps + 1)]
    if decay == "none":
        return [1.0] * steps
    raise ValueError(f"decay must be one of {', '.join(DECAYS)}; got {decay!r}")


class SequentialRules:
    """Sequential rules (SR) over each user's history; see the module docstring."""

    GRID: ClassVar[tuple[dict, ...]] = (
        {},  # the default: harmonic decay over 10 steps, no time decay, last item, seen first
        {"seen": "exclude"},
        {"seen": "allow"},
        {"half_life_s": 3600.0},
        {"half_life_s": 86400.0},
        {"half_life_s": 86400.0, "seen": "exclude"},
        {"typed": True},
        {"sources": 3},
        {"steps": 5, "decay": "linear"},
        {"steps": 20, "decay": "none", "seen": "exclude"},
    )

    def __init__(
        self,
        steps: int = 10,
        decay: str = "harmonic",
        half_life_s: float | None = None,
        typed: bool = False,
        sources: int = 1,
        recency: float = 0.5,
        seen: str = "first",
        first: int = 10,
        successors: int = 150,
        weights: Mapping[str, float] = EVENT_WEIGHTS,
    ) -> None:
        if min(steps, sources, first, successors) < 1:
            raise ValueError(
                f"steps, sources, first and successors must be >= 1, got {steps}, "
                f"{sources}, {first}, {successors}"
            )
        if not 0 <= recency <= 1:
            raise ValueError(f"recency must be in [0, 1], got {recency}")
        self.steps, self.sources, self.recency = steps, sources, recency
        self.typed, self.successors = typed, successors
        self.seen = check_seen(seen)
        self._position = position_weights(decay, steps)
        self._weights = dict(weights)
        #: What rules are learnt from: one more than ``steps`` items, so that ``steps`` remain
        #: when the event's own item is among them.
        self.histories = Histories(max(steps + 1, sources))
        #: What the seen policy uses: the ``first`` recent items ``seen="first"`` puts first,
        #: and everything each user had (what ``exclude`` leaves out).
        self.recent = Histories(first)
        self._rules: dict[str, dict[str, float]] = {}
        self._growth = Growth(half_life_s)
        self.popularity = Popularity(half_life_s=3600.0)

    def learn(self, events: Sequence[Event]) -> None:
        self.popularity.learn(events)
        rules, position, steps = self._rules, self._position, self.steps
        for e in events:
            j = e.item_id
            w = self._growth.factor(e.ts, self._rules)
            if self.typed:
                w *= self._weights[e.event_type or "browse"]
            before = [i for i in self.histories.items(e.user_id) if i != j][:steps]
            for pos, i in enumerate(before):
                row = rules.get(i)
                if row is None:
                    row = rules[i] = {}
                row[j] = row.get(j, 0.0) + w * position[pos]
                if len(row) > 2 * self.successors:
                    prune(row, self.successors)
            self.histories.add(e)
            self.recent.add(e)

    def weight(self, i: str, j: str, now_ms: int) -> float:
        """The rule ``i -> j``'s weight as of ``now_ms`` (decayed, when there is a half-life)."""
        stored = self._rules.get(i, {}).get(j, 0.0)
        return stored * self._growth.at(now_ms) if stored else stored

    def scores(self, user_id: str) -> dict[str, float]:
        """Item scores from the rules of the user's ``sources`` last items (stored scale)."""
        recent = self.histories.items(user_id)[: self.sources]
        if len(recent) == 1:
            return dict(self._rules.get(recent[0], {}))
        score: dict[str, float] = {}
        for p, i in enumerate(recent):
            f = self.recency**p
            for j, w in self._rules.get(i, {}).items():
                score[j] = score.get(j, 0.0) + f * w
        return score

    def recommend(self, user_id: str, now_ms: int, k: int) -> list[str]:
        return self.recent.rank(user_id, self.scores(user_id), k, self.seen, self.popularity.top)
