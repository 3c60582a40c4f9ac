"""Exponential time decay: the one place that turns a half-life into a rate and keeps decayed
weights, for the pipeline's item statistics and co-visitation tables and for the baselines of
the evaluation.

Two ways of keeping them:

- :func:`add_decayed` decays a whole array to the newest time, then adds the new weights: the
  stored values are in today's units (a popularity that is read as such);
- :class:`MovingOrigin` never decays what is stored: a weight added at ``ts`` is stored as
  ``w * exp(rate * (ts - origin))``, so newer events count more and only comparisons and ratios
  of stored weights mean anything. When the factor would grow too large for float32, the caller
  rescales its stored weights once and the origin moves.
"""

from __future__ import annotations

import math
from typing import Any, overload

import numpy as np

#: :class:`MovingOrigin` moves its origin once a new event's factor passes ``exp(RESCALE_AT)``.
RESCALE_AT = 30.0


def rate_per_ms(half_life_s: float | None) -> float:
    """Decay per millisecond for a half-life in seconds; ``None`` (no decay) gives 0."""
    if half_life_s is None:
        return 0.0
    if half_life_s <= 0:
        raise ValueError(f"half-life must be > 0 seconds or None, got {half_life_s}")
    return math.log(2) / (half_life_s * 1000.0)


def add_decayed(
    scores: np.ndarray,
    clock_ms: int,
    rate: float,
    rows: np.ndarray,
    weights: np.ndarray,
    ts_ms: np.ndarray,
) -> int:
    """Decay ``scores`` (in place) from ``clock_ms`` to the newest time, then add each weight
    decayed from its own timestamp; returns the new clock."""
    newest = int(ts_ms.max(initial=clock_ms))
    if newest > clock_ms:
        if clock_ms:
            scores *= math.exp(-rate * (newest - clock_ms))
        clock_ms = newest
    np.add.at(scores, rows, weights * np.exp(-rate * (clock_ms - ts_ms)))
    return clock_ms


class MovingOrigin:
    """Growth factors ``exp(rate * (ts - origin))`` of weights stored without decay (see the
    module docstring); the origin is the first event's time until a rescale moves it."""

    def __init__(self, half_life_s: float | None, rescale_at: float = RESCALE_AT) -> None:
        self.rate = rate_per_ms(half_life_s)
        self.rescale_at = rescale_at
        self.origin_ms: int | None = None

    @overload
    def exponents(self, ts_ms: int) -> tuple[float, float | None]: ...

    @overload
    def exponents(self, ts_ms: np.ndarray) -> tuple[np.ndarray, float | None]: ...

    def exponents(self, ts_ms: int | np.ndarray) -> tuple[Any, float | None]:
        """``rate * (ts - origin)`` for events at ``ts_ms`` (one time or an int64 array), and
        the factor the caller must first multiply its stored weights by: None unless the
        newest event would pass ``exp(rescale_at)``, when the origin moves to it."""
        if self.origin_ms is None:
            self.origin_ms = int(np.min(ts_ms))
        x = self.rate * (ts_ms - self.origin_ms)
        if (x if isinstance(x, float) else x.max(initial=0.0)) <= self.rescale_at:
            return x, None
        shift = int(np.max(ts_ms)) - self.origin_ms
        self.origin_ms += shift
        x -= self.rate * shift
        return x, math.exp(-self.rate * shift)

    def at(self, now_ms: int) -> float:
        """What a stored weight is multiplied by to read it as of ``now_ms`` (decayed from its
        time to then)."""
        if self.origin_ms is None:
            return 1.0
        return math.exp(-self.rate * (now_ms - self.origin_ms))
