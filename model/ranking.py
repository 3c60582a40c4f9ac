"""Ranking: from retrieval candidates to the list a user is shown.

Scores are blended in one vectorised pass over the whole batch; only the business rules that
depend on the user (already purchased) and the per-category diversity cap walk candidates in
Python, and they stop as soon as ``top_n`` items are chosen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from model.items import UNKNOWN_CATEGORY, ItemStats


@dataclass(frozen=True, slots=True)
class RankConfig:
    top_n: int = 10
    #: Candidates retrieved from the index per user before the rules apply.
    candidates: int = 100
    #: Diversity: at most this many items of one category in a list (0 = no cap).
    max_per_category: int = 3
    popularity_weight: float = 0.05
    recency_weight: float = 0.05
    recency_half_life_s: float = 3600.0

    def __post_init__(self) -> None:
        if self.top_n < 1 or self.candidates < self.top_n:
            raise ValueError(
                f"need 1 <= top_n <= candidates; got top_n={self.top_n}, candidates={self.candidates}"
            )


def blend_scores(
    rows: np.ndarray, model_scores: np.ndarray, stats: ItemStats, cfg: RankConfig, now_ms: int
) -> np.ndarray:
    """Model score plus popularity and recency signals; -inf for padding and unavailable items."""
    valid = rows >= 0
    safe = np.where(valid, rows, 0)
    age_s = np.maximum(now_ms - stats.last_ts[safe], 0) / 1000.0
    recency = np.exp2(-age_s / cfg.recency_half_life_s)
    score = (
        model_scores.astype(np.float64)
        + cfg.popularity_weight * np.log1p(stats.popularity[safe])
        + cfg.recency_weight * recency
    )
    ok = valid & stats.available[safe] & np.isfinite(model_scores)
    return np.where(ok, score, -np.inf)


def rank(
    rows: np.ndarray,
    model_scores: np.ndarray,
    excluded: Sequence[set[int]],
    stats: ItemStats,
    cfg: RankConfig,
    now_ms: int,
) -> list[list[tuple[int, float]]]:
    """Pick each user's top-N ``(row, score)`` from their candidate rows.

    ``rows``/``model_scores`` are ``(B, K)``; ``excluded[b]`` holds rows user ``b`` must not see
    (already purchased).
    """
    score = blend_scores(rows, model_scores, stats, cfg, now_ms)
    order = np.argsort(-score, axis=1, kind="stable")
    ranked_rows = np.take_along_axis(rows, order, axis=1)
    ranked_scores = np.take_along_axis(score, order, axis=1)
    cats = stats.category[np.where(ranked_rows >= 0, ranked_rows, 0)]
    cap = cfg.max_per_category
    out: list[list[tuple[int, float]]] = []
    for b in range(rows.shape[0]):
        chosen: list[tuple[int, float]] = []
        per_cat: dict[int, int] = {}
        skip = excluded[b]
        for row, s, cat in zip(
            ranked_rows[b].tolist(), ranked_scores[b].tolist(), cats[b].tolist(), strict=True
        ):
            if s == -np.inf:
                break
            if row in skip:
                continue
            if cap and cat != UNKNOWN_CATEGORY:
                if per_cat.get(cat, 0) >= cap:
                    continue
                per_cat[cat] = per_cat.get(cat, 0) + 1
            chosen.append((row, s))
            if len(chosen) == cfg.top_n:
                break
        out.append(chosen)
    return out
