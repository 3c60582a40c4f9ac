"""feedrec's own pipeline as a method of the evaluation, driven as the worker drives it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import ClassVar

from feedrec.model.events import Event
from feedrec.model.pipeline import Pipeline, PipelineConfig


class Feedrec:
    """feedrec's own pipeline, driven exactly as the worker drives it, on the events' clock.

    Keyword arguments other than ``cfg`` are candidate-source settings (:class:`SourceConfig`),
    which is what its ``GRID`` varies."""

    #: How many of the user's categories feed the category-trending source and how many items
    #: each gives.
    GRID: ClassVar[tuple[dict, ...]] = tuple(
        {"categories": c, "per_category": n} for c in (2, 3) for n in (20, 40))

    def __init__(self, cfg: PipelineConfig | None = None, device: str = "cpu",
                 index_kind: str = "auto", **sources) -> None:
        cfg = cfg or PipelineConfig()
        if sources:
            cfg = replace(cfg, sources=replace(cfg.sources, **sources))
        self.pipeline = Pipeline.build(cfg, device=device, index_kind=index_kind)
        self.states: dict[str, bytes] = {}
        self._now_s = 0.0
        self.pipeline.clock = lambda: self._now_s

    def learn(self, events: Sequence[Event]) -> None:
        now_ms = max(e.ts for e in events)
        self._now_s = now_ms / 1000
        users = {e.user_id for e in events}
        result = self.pipeline.process(
            events, {u: self.states.get(u) for u in users}, now_ms, recommend=False
        )
        self.states.update(result.states)

    def recommend(self, user_id: str, now_ms: int, k: int) -> list[str]:
        self._now_s = max(self._now_s, now_ms / 1000)
        return self.pipeline.recommend([user_id], self.states, now_ms, k)[0]
