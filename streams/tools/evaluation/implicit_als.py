"""``implicit``'s alternating least squares, refitted as the stream goes (needs the ``eval`` extra)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from feedrec.model.events import EVENT_WEIGHTS, Event
from feedrec.streams.tools.evaluation.base import Ids, check_seen, fill
from feedrec.streams.tools.evaluation.popularity import Popularity


class ImplicitALS:
    """``implicit``'s ALS retrained from scratch on everything seen, every ``retrain_every``
    events; in between, a user's factors are recomputed from their interactions so far (its
    ``recalculate_user``), so users new since the last fit are served too. Until the first fit,
    and for users with no item the model knows, recent popularity answers."""

    GRID: ClassVar[tuple[dict, ...]] = tuple(
        {"regularization": r, "seen": s} for r in (0.01, 0.1) for s in ("allow", "exclude")
    )

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 10.0,
        iterations: int = 15,
        retrain_every: int = 10_000,
        seen: str = "allow",
        seed: int = 0,
        weights: Mapping[str, float] = EVENT_WEIGHTS,
    ) -> None:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        # implicit parallelises itself; a BLAS thread pool underneath only gets in its way.
        self._blas = threadpool_limits(1, "blas")

        self._make = lambda: AlternatingLeastSquares(
            factors=factors,
            regularization=regularization,
            alpha=alpha,
            iterations=iterations,
            random_state=seed,
            num_threads=1,
        )
        self.retrain_every = retrain_every
        self._weights = dict(weights)
        self.seen = check_seen(seen)
        self.users, self.items = Ids(), Ids()
        self._rows: list[int] = []
        self._cols: list[int] = []
        self._vals: list[float] = []
        self._since = 0
        self.model: Any = None
        self._fit_items = 0
        self._user_items: dict[int, dict[int, float]] = defaultdict(dict)
        self.popularity = Popularity(weights=weights)
        self.fits = 0

    def learn(self, events: Sequence[Event]) -> None:
        self.popularity.learn(events)
        for e in events:
            u, i = self.users.add(e.user_id), self.items.add(e.item_id)
            w = self._weights[e.event_type or "browse"]
            self._rows.append(u)
            self._cols.append(i)
            self._vals.append(w)
            row = self._user_items[u]
            row[i] = row.get(i, 0.0) + w
        self._since += len(events)
        if self._since >= self.retrain_every:
            self.fit()

    def fit(self) -> None:
        from scipy.sparse import csr_matrix

        m = csr_matrix(
            (self._vals, (self._rows, self._cols)),
            shape=(len(self.users), len(self.items)),
            dtype=np.float32,
        )
        m.sum_duplicates()
        self.model = self._make()
        self.model.fit(m, show_progress=False)
        self._fit_items = len(self.items)
        self._since = 0
        self.fits += 1

    def recommend(self, user_id: str, now_ms: int, k: int) -> list[str]:
        from scipy.sparse import csr_matrix

        u = self.users.row.get(user_id)
        known: dict[int, float] = {}
        if self.model is not None and u is not None:
            known = {i: w for i, w in self._user_items[u].items() if i < self._fit_items}
        exclude = self.seen == "exclude"
        seen = (
            {self.items.names[i] for i in self._user_items[u]}
            if exclude and u is not None
            else set()
        )
        if not known:
            return fill([], k, self.popularity.top(k + len(seen)), seen)
        cols = list(known)
        row = csr_matrix(
            (list(known.values()), ([0] * len(cols), cols)),
            shape=(1, self._fit_items),
            dtype=np.float32,
        )
        ids, _ = self.model.recommend(
            0, row, N=k, filter_already_liked_items=exclude, recalculate_user=True
        )
        chosen = [self.items.names[int(i)] for i in np.asarray(ids).reshape(-1)]
        return fill(
            [x for x in chosen if x not in seen], k, self.popularity.top(2 * k + len(seen)), seen
        )
