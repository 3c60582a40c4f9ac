"""Ranking: from scored candidates to the list a user is shown.

The scores come from the ranker (:mod:`feedrec.model.ranker`); availability is applied in one
vectorised pass over the whole batch; only the business rules that depend on the user (already purchased)
and the per-category diversity cap walk candidates in Python, and they stop as soon as ``top_n``
items are chosen.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from feedrec.model.items import UNKNOWN_CATEGORY


@dataclass(frozen=True, slots=True)
class RankConfig:
    top_n: int = 10
    #: Candidates retrieved from the index per user before the rules apply.
    candidates: int = 20
    #: Diversity: at most this many items of one category in a list (0 = no cap), except the
    #: category the user is shopping in right now (that of their most recent item): more of
    #: what they are comparing is what they came for; the cap keeps the rest of the list varied.
    max_per_category: int = 3
    #: Business rule: never show a user what they already bought. Off by default, since shoppers
    #: do come back to items they bought (repeat purchases, accessories, reviews); the ranker
    #: learns how much they do from its ``purchased`` feature.
    exclude_purchased: bool = False
    #: Items the user already had: ``show`` lets them compete on their score, ``hide`` never
    #: lists them, ``auto`` hides them while fewer than ``repeat_floor`` of recent feedback
    #: events (clicks, carts, purchases) of users with a history come back to an item the
    #: user had: a shop whose customers never return to an item should not fill lists with
    #: ones they cannot want.
    seen: str = "auto"
    repeat_floor: float = 0.02

    def __post_init__(self) -> None:
        if self.seen not in ("auto", "show", "hide"):
            raise ValueError(f"RankConfig.seen must be auto, show or hide; got {self.seen!r}")
        if self.top_n < 1 or self.candidates < self.top_n:
            raise ValueError(
                f"need 1 <= top_n <= candidates; got top_n={self.top_n}, candidates={self.candidates}"
            )


def hides_seen(cfg: RankConfig, repeat_share: float | None) -> bool:
    """Whether lists leave out items the user already had, given the share of feedback events
    that go back to one (:class:`feedrec.model.state.RepeatShare`; None: not known yet)."""
    if cfg.seen != "auto":
        return cfg.seen == "hide"
    return repeat_share is not None and repeat_share < cfg.repeat_floor


def rank(
    rows: np.ndarray,
    scores: np.ndarray,
    excluded: Sequence[set[int]],
    cfg: RankConfig,
    available: np.ndarray,
    categories: np.ndarray,
    current: Sequence[Collection[int]] | None = None,
) -> list[list[tuple[int, float]]]:
    """Pick each user's top-N ``(row, score)`` from their candidate rows.

    ``rows``/``scores`` are ``(B, K)`` (-1 rows and -inf scores are padding), ``available`` and
    ``categories`` the items' availability and category codes (-1: unknown), alike;
    ``excluded[b]`` holds rows user ``b`` must not see (already purchased); unavailable items
    are dropped. ``current[b]`` holds the category codes user ``b`` is shopping in (those of
    the latest item of each of their open sessions): they are not capped.
    """
    ok = (rows >= 0) & available & np.isfinite(scores)
    score = np.where(ok, scores.astype(np.float64), -np.inf)
    order = np.argsort(-score, axis=1, kind="stable")
    ranked_rows = np.take_along_axis(rows, order, axis=1)
    ranked_scores = np.take_along_axis(score, order, axis=1)
    cats = np.take_along_axis(categories, order, axis=1)
    # Most lists fill from their first few candidates: those are read into Python first, and
    # the rest only for a list that runs out of them.
    head = min(rows.shape[1], 4 * cfg.top_n)
    lists = (
        ranked_rows[:, :head].tolist(),
        ranked_scores[:, :head].tolist(),
        cats[:, :head].tolist(),
    )
    out: list[list[tuple[int, float]]] = []
    for b in range(rows.shape[0]):
        free = current[b] if current is not None else ()
        chosen, done = _pick(lists[0][b], lists[1][b], lists[2][b], excluded[b], free, cfg)
        if not done and head < rows.shape[1]:
            chosen, _ = _pick(
                ranked_rows[b].tolist(),
                ranked_scores[b].tolist(),
                cats[b].tolist(),
                excluded[b],
                free,
                cfg,
            )
        out.append(chosen)
    return out


def _pick(
    rows: list[int],
    scores: list[float],
    cats: list[int],
    skip: set[int],
    free: Collection[int],
    cfg: RankConfig,
) -> tuple[list[tuple[int, float]], bool]:
    """One user's list from their ranked candidates, and whether it is final (full, or the
    candidates ran out) rather than cut short by the end of ``rows``."""
    chosen: list[tuple[int, float]] = []
    per_cat: dict[int, int] = {}
    cap = cfg.max_per_category
    for row, s, cat in zip(rows, scores, cats, strict=True):
        if s == -math.inf:
            return chosen, True
        if row in skip:
            continue
        if cap and cat != UNKNOWN_CATEGORY and cat not in free:
            if per_cat.get(cat, 0) >= cap:
                continue
            per_cat[cat] = per_cat.get(cat, 0) + 1
        chosen.append((row, s))
        if len(chosen) == cfg.top_n:
            return chosen, True
    return chosen, False
