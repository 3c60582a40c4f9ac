"""Time as the pipeline reads it: one object handed to everything that needs the time.

A worker runs on the system clock; an offline replay (the evaluator, the regression tests) on a
:class:`ManualClock` that it moves to its events' own timestamps, so that every decision that
depends on time (pooling events for a gradient step, refreshing the index and the trending
lists, validating timestamps, ranking) happens as it would have happened live.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Wall-clock time in epoch milliseconds: what event timestamps are compared with."""
        ...

    def monotonic(self) -> float:
        """Seconds that never go back: what intervals (pooling, refreshes) are timed with."""
        ...


class SystemClock:
    """The machine's clocks."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """Time that moves only when told to, and never back."""

    def __init__(self, now_ms: int = 0) -> None:
        self._now_ms = now_ms

    def now_ms(self) -> int:
        return self._now_ms

    def monotonic(self) -> float:
        return self._now_ms / 1000

    def advance_to(self, now_ms: int) -> None:
        """Move to ``now_ms`` unless the clock is already past it."""
        self._now_ms = max(self._now_ms, now_ms)
