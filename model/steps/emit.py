"""Emit: ranked item rows to the messages of the ``recommendations`` topic."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import numpy as np

from feedrec.model.clock import Clock
from feedrec.model.events import Event
from feedrec.model.vocab import Vocab


class ScoredItem(msgspec.Struct):
    item_id: str
    score: float


class Recommendation(msgspec.Struct):
    """One message of the ``recommendations`` topic: a user's list, the event that asked for it
    (``rec_id`` is that event's id with ``-r``) and the model version that ranked it."""

    user_id: str
    rec_id: str
    items: list[ScoredItem]
    model_version: int
    trigger_event_id: str
    event_ts: int
    emitted_ts: int


class Emit:
    """Reads item ids from the vocabulary (:class:`feedrec.model.steps.learn.Learn`'s)."""

    def __init__(self, vocab: Vocab, clock: Clock) -> None:
        self.vocab = vocab
        self.clock = clock

    def __call__(
        self,
        triggers: Sequence[tuple[str, Event]],
        ranked: Sequence[Sequence[tuple[int, float]]],
        version: int,
    ) -> list[Recommendation]:
        """One message per ``(user, trigger)``, its items the ``(row, score)`` of ``ranked``."""
        emitted = self.clock.now_ms()
        recs = []
        for (user, trigger), chosen in zip(triggers, ranked, strict=True):
            ids = self.vocab.items.ids_for(
                np.fromiter((r for r, _ in chosen), np.int64, len(chosen))
            )
            items = [
                ScoredItem(item_id, round(float(s), 6))
                for item_id, (_, s) in zip(ids, chosen, strict=True)
                if item_id is not None
            ]
            recs.append(
                Recommendation(
                    user,
                    f"{trigger.event_id}-r",
                    items,
                    version,
                    trigger.event_id,
                    trigger.ts,
                    emitted,
                )
            )
        return recs
