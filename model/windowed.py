"""A mean over an exponential window of recent observations, for the statistics the pipeline
learns from the stream itself (how often shoppers come back, how long sessions stay open)."""

from __future__ import annotations

import math
from dataclasses import dataclass


class WindowedMean:
    """Total over count of what was observed, each observation's weight fading by ``e`` every
    ``window`` observations; None until ``evidence`` (weighted) observations have been seen."""

    def __init__(self, window: float, evidence: float) -> None:
        self.window, self.evidence = window, evidence
        self.count = 0.0
        self.total = 0.0

    def observe(self, n: int, total: float) -> None:
        """``n`` more observations adding up to ``total``."""
        if n:
            keep = math.exp(-n / self.window)
            self.count = self.count * keep + n
            self.total = self.total * keep + total

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count >= self.evidence else None

    def state(self) -> WindowedMeanState:
        return WindowedMeanState(self.count, self.total)

    def load(self, state: WindowedMeanState) -> None:
        self.count, self.total = float(state.count), float(state.total)


@dataclass(frozen=True, slots=True)
class WindowedMeanState:
    count: float
    total: float
