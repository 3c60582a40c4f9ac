"""River's online biased matrix factorisation (needs the ``eval`` extra)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np

from feedrec.model.events import EVENT_WEIGHTS, Event
from feedrec.streams.tools.evaluation.base import Histories, Ids, check_seen, top_rows


class RiverMF:
    """River's online biased matrix factorisation, one event at a time.

    Implicit feedback: each event is a positive (target = its type's weight, capped at 1 after
    scaling) followed by ``negatives`` items drawn uniformly from those seen so far with target
    0. Lists are ranked by item bias + user . item over every known item, with the latents read
    straight from river's model (kept in numpy arrays as they change, for speed).
    """

    GRID: ClassVar[tuple[dict, ...]] = tuple(
        {"l2": r, "seen": s} for r in (0.001, 0.01) for s in ("allow", "exclude")
    )

    def __init__(
        self,
        n_factors: int = 32,
        lr: float = 0.05,
        l2: float = 0.001,
        negatives: int = 4,
        seen: str = "allow",
        seed: int = 0,
        weights: Mapping[str, float] = EVENT_WEIGHTS,
    ) -> None:
        from river import optim, reco

        self.seen = check_seen(seen)
        self.histories = Histories(1)

        self.model = reco.BiasedMF(
            n_factors=n_factors,
            bias_optimizer=optim.SGD(lr),
            latent_optimizer=optim.SGD(lr),
            l2_bias=l2,
            l2_latent=l2,
            weight_initializer=optim.initializers.Zeros(),
            latent_initializer=optim.initializers.Normal(mu=0.0, sigma=0.1, seed=seed),
            seed=seed,
        )
        self.negatives = negatives
        self._rng = np.random.default_rng(seed)
        top = max(weights.values())
        self._target = {t: w / top for t, w in weights.items()}
        self.items = Ids()
        self._vec = np.zeros((1024, n_factors))
        self._bias = np.full(1024, -np.inf)

    def _sync(self, item: str) -> None:
        r = self.items.add(item)
        if r >= len(self._bias):
            self._vec = np.concatenate([self._vec, np.zeros_like(self._vec)])
            self._bias = np.concatenate([self._bias, np.full(len(self._bias), -np.inf)])
        self._vec[r] = self.model.i_latents[item]
        self._bias[r] = self.model.i_biases[item]

    def learn(self, events: Sequence[Event]) -> None:
        m = self.model
        for e in events:
            self.histories.add(e)
            m.learn_one(e.user_id, e.item_id, self._target[e.event_type or "browse"])
            self._sync(e.item_id)
            if len(self.items) > 1:
                for r in self._rng.integers(len(self.items), size=self.negatives).tolist():
                    j = self.items.names[r]
                    if j != e.item_id:
                        m.learn_one(e.user_id, j, 0.0)
                        self._sync(j)

    def recommend(self, user_id: str, now_ms: int, k: int) -> list[str]:
        n = len(self.items)
        scores = self._bias[:n].copy()
        if user_id in self.model.u_latents:
            scores += self._vec[:n] @ self.model.u_latents[user_id]
        if self.seen == "exclude":
            seen = self.histories.seen.get(user_id, set())
            return [
                self.items.names[r]
                for r in top_rows(scores, k, lambda r: self.items.names[r] in seen)
            ]
        return [self.items.names[r] for r in top_rows(scores, k)]
