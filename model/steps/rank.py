"""Rank: each user's candidates scored by the online ranker in the user's context, then the
business rules and the diversity cap (:func:`feedrec.model.ranking.rank`).

The step owns the ranker (:class:`~feedrec.model.ranker.OnlineRanker`); the learner trains it
through :meth:`Rank.train` on the candidates users had just before what they did next. Whether
lists show items the user already had depends on the stream's repeat share, which folding
learns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from feedrec.model.candidates import FEATURES
from feedrec.model.config import PipelineConfig
from feedrec.model.ranker import OnlineRanker, RankerState
from feedrec.model.ranking import RankConfig, hides_seen, rank
from feedrec.model.state import CONTEXTS, RepeatShare, context_of
from feedrec.model.steps.retrieve import Retrieved

_SEEN = FEATURES.index("seen")


def _contexts(last: Sequence[int], found: Retrieved) -> np.ndarray:
    """Ranking contexts (:data:`CONTEXTS`) of users who did ``last`` (indices into
    :data:`feedrec.model.state.LAST`) and have the other open sessions of ``found``."""
    return context_of(
        np.asarray(last, dtype=np.int64), np.asarray((found.lists.others >= 0).any(axis=1))
    )


class Rank:
    def __init__(self, cfg: PipelineConfig, repeats: RepeatShare) -> None:
        self.ranker = OnlineRanker(lr=cfg.ranker_lr, contexts=len(CONTEXTS))
        self.repeats = repeats

    def __call__(
        self, found: Retrieved, last: Sequence[int], cfg: RankConfig
    ) -> list[list[tuple[int, float]]]:
        """``(item row, score)`` lists, best first, for the users of ``found`` who did ``last``."""
        scores = self.ranker.score(found.features, found.rows >= 0, _contexts(last, found))
        if hides_seen(cfg, self.repeats.share):
            scores = np.where(found.features[..., _SEEN] > 0, -np.inf, scores)
        excluded = [
            set(row[row >= 0].tolist()) if cfg.exclude_purchased else set()
            for row in found.lists.purchased
        ]
        return rank(
            found.rows,
            scores,
            excluded,
            cfg,
            found.available,
            found.categories,
            found.shopping.tolist(),
        )

    def train(
        self, found: Retrieved, target: np.ndarray, weight: np.ndarray, last: Sequence[int]
    ) -> float | None:
        """One step on what the users of ``found`` went to next: ``target`` is its column among
        their candidates (-1: not among them, skipped); the mean loss, or None."""
        return self.ranker.learn(
            found.features, found.rows >= 0, target, weight, _contexts(last, found)
        )

    def weights(self) -> dict[str, float]:
        """The ranker's shared weight per feature."""
        return self.ranker.as_dict()

    def state(self) -> RankerState:
        return self.ranker.state()

    def load(self, state: RankerState) -> None:
        self.ranker.load(state)
