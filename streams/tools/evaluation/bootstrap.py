"""A paired bootstrap over users: how sure is "method A hits more often than method B"?

Scored events of one user are not independent (a user who buys what they carted does so for
every method at once), so users, not events, are resampled: each replicate draws as many users
as there are, with replacement, and recomputes both methods' hit rates on the same draw. The
ratio's percentile interval then carries the pairing: two methods that win and lose on the same
users give a narrow interval even when each hit rate alone is uncertain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class RatioInterval:
    """``ratio`` = total A / total B on the data itself, and its bootstrap interval."""

    ratio: float
    low: float
    high: float
    level: float
    users: int
    replicates: int

    def as_dict(self) -> dict:
        return {
            "ratio": self.ratio,
            "low": self.low,
            "high": self.high,
            "level": self.level,
            "users": self.users,
            "replicates": self.replicates,
        }


def per_user(users: Sequence[str], values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Users in first-seen order (as codes) and each one's sum of ``values``."""
    codes: dict[str, int] = {}
    idx = np.fromiter((codes.setdefault(u, len(codes)) for u in users), np.int64, len(users))
    return idx, np.bincount(idx, weights=np.asarray(values, dtype=np.float64), minlength=len(codes))


def paired_ratio(
    users: Sequence[str],
    a: Sequence[float],
    b: Sequence[float],
    replicates: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> RatioInterval:
    """Ratio of ``sum(a) / sum(b)`` over scored events (one entry per event, ``users[i]`` its
    user; e.g. 1 for a hit, 0 for a miss), with a ``level`` percentile interval from
    ``replicates`` paired resamples of users. Equal event counts make it the ratio of hit rates.
    A replicate where B scores nothing counts as an infinite ratio (or 1 when A scores nothing
    too), so an interval may be open-ended."""
    if not len(users) == len(a) == len(b):
        raise ValueError(
            f"need one user per value; got {len(users)} users, {len(a)} and {len(b)} values"
        )
    if not users:
        raise ValueError("no scored events to compare")
    if not 0 < level < 1 or replicates < 1:
        raise ValueError(f"need 0 < level < 1 and replicates >= 1; got {level}, {replicates}")
    idx, sum_a = per_user(users, a)
    _, sum_b = per_user(users, b)
    n = len(sum_a)
    rng = np.random.default_rng(seed)
    ratios = np.empty(replicates)
    step = max(1, 2_000_000 // n)  # replicates per block, so a block's counts stay small
    for start in range(0, replicates, step):
        m = min(step, replicates - start)
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=m).astype(np.float64)
        ta, tb = counts @ sum_a, counts @ sum_b
        with np.errstate(divide="ignore", invalid="ignore"):
            r = ta / tb
        ratios[start : start + m] = np.where(tb > 0, r, np.where(ta > 0, np.inf, 1.0))
    total_a, total_b = float(sum_a.sum()), float(sum_b.sum())
    ratio = total_a / total_b if total_b else (np.inf if total_a else 1.0)
    tail = (1 - level) / 2
    low, high = np.quantile(ratios, [tail, 1 - tail], method="linear")
    return RatioInterval(float(ratio), float(low), float(high), level, n, replicates)
