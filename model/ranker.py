"""A ranker learned online: a linear score over candidate features, trained on what users did next.

Whenever events are learned from, a sample of them is replayed against the candidates the user
would have been offered just before (same sources, same features): the item the user actually
went to is the target of a softmax over that list. So the weights say how much each source's
evidence is worth on this shop's traffic right now (the user's own history, co-visitation,
category, the embedding model, popularity), and they keep moving as behaviour does. Adagrad keeps
the step sizes sane for features on different scales.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from feedrec.model.candidates import FEATURES

#: Where the weights start: sensible before any feedback has arrived.
INITIAL_WEIGHTS: dict[str, float] = {
    "model": 1.0,
    "history": 2.0,
    "seen": 0.5,
    "carted": 1.0,
    "purchased": 0.0,
    "covisit": 2.0,
    "covisit_long": 1.0,
    "category": 1.0,
    "latest_category": 1.0,
    "in_category": 0.5,
    "popularity": 0.3,
    "popularity_slow": 0.0,
    "recency": 0.1,
    "trending": 1.0,
    "trending_slow": 0.0,
    "other_session": 0.0,
    "other_category": 0.0,
}


class OnlineRanker:
    """``score = features @ (weights + context_weights[context])``; a weighted softmax step per
    call to :meth:`learn`.

    ``context`` is what the user did last (:data:`model.state.CONTEXTS`): a shopper who just
    carted something is about to buy from their cart, one who just browsed an item is about
    to click it or a neighbour of it, so the same evidence is worth different amounts. The
    shared weights learn from every event and each context's offsets (starting at 0) from its
    own, so a rare context starts from what is true on average.
    """

    def __init__(
        self,
        initial: Mapping[str, float] = INITIAL_WEIGHTS,
        lr: float = 0.05,
        l2: float = 1e-4,
        contexts: int = 1,
    ) -> None:
        missing = set(FEATURES) - set(initial)
        if missing:
            raise ValueError(f"initial ranker weights missing for {sorted(missing)}")
        if lr <= 0 or l2 < 0:
            raise ValueError(f"ranker lr must be > 0 and l2 >= 0, got {lr}, {l2}")
        self.weights = np.array([initial[f] for f in FEATURES], dtype=np.float64)
        self.lr, self.l2 = lr, l2
        self._g2 = np.zeros(len(FEATURES))
        if contexts < 1:
            raise ValueError(f"ranker contexts must be >= 1, got {contexts}")
        self.context_weights = np.zeros((contexts, len(FEATURES)))
        self._context_g2 = np.zeros_like(self.context_weights)
        self.steps = 0

    def _row_weights(self, context: np.ndarray | None, rows: int) -> np.ndarray:
        """``(B, F)`` weights of each row's context."""
        ctx = np.zeros(rows, dtype=np.int64) if context is None else np.asarray(context)
        return self.weights + self.context_weights[ctx]

    def score(
        self, feats: np.ndarray, valid: np.ndarray, context: np.ndarray | None = None
    ) -> np.ndarray:
        """``(B, C)`` scores; -inf where not ``valid``. ``context``: ``(B,)`` ints, or None for
        context 0."""
        w = self._row_weights(context, len(feats))
        return np.where(valid, np.matmul(feats, w[:, :, None])[..., 0], -np.inf)

    def learn(
        self,
        feats: np.ndarray,
        valid: np.ndarray,
        target: np.ndarray,
        weight: np.ndarray,
        context: np.ndarray | None = None,
    ) -> float | None:
        """One Adagrad step on the softmax loss of ``target`` (column per row; -1 = not among
        the candidates, skipped); the mean loss, or None when no row had its target."""
        rows = np.flatnonzero(target >= 0)
        if not len(rows):
            return None
        ctx = (
            np.zeros(len(feats), dtype=np.int64)
            if context is None
            else np.asarray(context, dtype=np.int64)
        )[rows]
        f, ok, t, w = feats[rows], valid[rows], target[rows], weight[rows].astype(np.float64)
        s = self.score(f, ok, ctx)
        s -= s.max(axis=1, keepdims=True)
        p = np.exp(s)
        z = p.sum(axis=1, keepdims=True)
        p /= z
        picked = f[np.arange(len(rows)), t]
        per_row = (np.einsum("bc,bcf->bf", p, f) - picked) * (w / w.sum())[:, None]
        grad = per_row.sum(axis=0) + self.l2 * self.weights
        self._g2 += grad * grad
        self.weights -= self.lr * grad / (np.sqrt(self._g2) + 1e-8)
        # Each context's rows summed: a one-hot (contexts, rows) product, cheaper than add.at.
        one_hot = np.arange(len(self.context_weights))[:, None] == ctx[None, :]
        by_context = one_hot @ per_row
        by_context += self.l2 * self.context_weights * one_hot.any(axis=1)[:, None]
        self._context_g2 += by_context * by_context
        self.context_weights -= self.lr * by_context / (np.sqrt(self._context_g2) + 1e-8)
        self.steps += 1
        loss = np.log(z[:, 0]) - s[np.arange(len(rows)), t]
        return float((loss * w).sum() / w.sum())

    def as_dict(self) -> dict[str, float]:
        return {name: float(v) for name, v in zip(FEATURES, self.weights, strict=True)}

    def state(self) -> RankerState:
        return RankerState(
            self.weights.copy(),
            self._g2.copy(),
            self.steps,
            self.context_weights.copy(),
            self._context_g2.copy(),
        )

    def load(self, state: RankerState) -> None:
        self.weights = np.asarray(state.weights, dtype=np.float64).copy()
        self._g2 = np.asarray(state.g2, dtype=np.float64).copy()
        self.steps = int(state.steps)
        self.context_weights = np.asarray(state.context_weights, dtype=np.float64).copy()
        self._context_g2 = np.asarray(state.context_g2, dtype=np.float64).copy()


@dataclass(frozen=True, slots=True)
class RankerState:
    """An :class:`OnlineRanker`'s weights and Adagrad sums, shared and per context."""

    weights: np.ndarray
    g2: np.ndarray
    steps: int
    context_weights: np.ndarray
    context_g2: np.ndarray
