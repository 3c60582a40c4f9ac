"""feedrec's own pipeline as a method of the evaluation, driven as the worker drives it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar

from feedrec.model.clock import ManualClock
from feedrec.model.config import PipelineConfig
from feedrec.model.events import Event
from feedrec.model.pipeline import Pipeline


class Feedrec:
    """feedrec's own pipeline, driven exactly as the worker drives it, on the events' clock.

    Keyword arguments other than ``cfg`` are candidate-source settings
    (:class:`~feedrec.model.candidates.SourceConfig`), which is what its ``GRID`` varies."""

    #: How many of the user's categories feed the category-trending source and how many items
    #: each gives.
    GRID: ClassVar[tuple[dict, ...]] = tuple(
        {"categories": c, "per_category": n} for c in (2, 3) for n in (20, 40)
    )

    def __init__(
        self,
        cfg: PipelineConfig | None = None,
        device: str = "cpu",
        index_kind: str = "auto",
        **sources: Any,
    ) -> None:
        cfg = cfg or PipelineConfig()
        if sources:
            cfg = replace(cfg, sources=replace(cfg.sources, **sources))
        self.clock = ManualClock()
        self.pipeline = Pipeline.build(cfg, device=device, index_kind=index_kind, clock=self.clock)
        self.states: dict[str, bytes] = {}

    def learn(self, events: Sequence[Event]) -> None:
        self.clock.advance_to(max(e.ts for e in events))
        users = {e.user_id for e in events}
        result = self.pipeline.process(
            events, {u: self.states.get(u) for u in users}, recommend=False
        )
        self.states.update(result.states)

    def recommend(self, user_id: str, now_ms: int, k: int) -> list[str]:
        self.clock.advance_to(now_ms)
        return self.pipeline.recommend([user_id], self.states, k)[0]
