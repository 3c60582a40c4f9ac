"""Recommenders the evaluator compares: feedrec's own pipeline and four baselines.

Every class follows :class:`model.evaluate.Method`. ``river-mf`` and ``implicit-als`` need the
``eval`` extra (``pip install 'feedrec[eval]'``); the worker never imports them.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from model.events import Event
from model.items import add_decayed
from model.pipeline import DEFAULT_WEIGHTS, Pipeline, PipelineConfig

METHOD_NAMES = ("feedrec", "popularity", "covisitation", "river-mf", "implicit-als")


class _Ids:
    """Dense rows for string ids, growing as they come."""

    def __init__(self) -> None:
        self.row: dict[str, int] = {}
        self.names: list[str] = []

    def __len__(self) -> int:
        return len(self.names)

    def add(self, name: str) -> int:
        r = self.row.get(name)
        if r is None:
            r = self.row[name] = len(self.names)
            self.names.append(name)
        return r


def _top(scores: np.ndarray, k: int, skip: Callable[[int], bool] | None = None) -> list[int]:
    """Rows of the ``k`` largest finite scores, best first (ties by row)."""
    n = len(scores)
    if n == 0 or k <= 0:
        return []
    want = min(n, k + 64 if skip else k)
    part = np.argpartition(-scores, want - 1)[:want] if want < n else np.arange(n)
    order = part[np.lexsort((part, -scores[part]))]
    out = [int(r) for r in order if np.isfinite(scores[r]) and not (skip and skip(int(r)))]
    return out[:k]


class Popularity:
    """Time-decayed, type-weighted counts; everyone gets the same list."""

    def __init__(self, half_life_s: float = 3600.0,
                 weights: Mapping[str, float] = DEFAULT_WEIGHTS) -> None:
        self.items = _Ids()
        self._score = np.zeros(1024)
        self._decay_per_ms = math.log(2) / (half_life_s * 1000)
        self._weights = dict(weights)
        self._clock = 0
        self._cache: list[str] | None = None

    def learn(self, events: Sequence[Event]) -> None:
        rows = np.fromiter((self.items.add(e.item_id) for e in events), np.int64, len(events))
        if len(self.items) > len(self._score):
            grown = np.zeros(2 * len(self.items))
            grown[: len(self._score)] = self._score
            self._score = grown
        weights = np.fromiter((self._weights[e.event_type or "browse"] for e in events),
                              np.float64, len(events))
        ts = np.fromiter((e.ts for e in events), np.int64, len(events))
        self._clock = add_decayed(self._score, self._clock, self._decay_per_ms, rows, weights, ts)
        self._cache = None

    def top(self, k: int) -> list[str]:
        if self._cache is None or len(self._cache) < k:
            n = len(self.items)
            self._cache = [self.items.names[r] for r in _top(self._score[:n], max(k, 100))]
        return self._cache[:k]

    def recommend(self, user_id: str, now_ms: int, k: int) -> list[str]:
        return self.top(k)


def _fill(chosen: list[str], k: int, more: Sequence[str]) -> list[str]:
    """``chosen`` topped up to ``k`` with items of ``more`` not already in it."""
    if len(chosen) >= k:
        return chosen[:k]
    have = set(chosen)
    for x in more:
        if len(chosen) >= k:
            break
        if x not in have:
            chosen.append(x)
            have.add(x)
    return chosen


class CoVisitation:
    """Item-to-item co-visitation over each user's recent items, time-decayed.

    Each event on item ``j`` adds, for every item ``i`` among the user's last ``window`` items
    seen within ``max_gap_s``, a weight to ``i -> j`` (and half of it to ``j -> i``): the event
    type's weight, decayed with age (``half_life_s``). A user's list is the items that follow
    their recent items, the most recent counting most (``recency_decay`` per step back). With
    ``include_history`` (the usual strong form in session-based e-commerce), the user's own
    recent items lead the list, newest first. Recent popularity fills what remains.
    """

    def __init__(self, window: int = 10, max_gap_s: float = 86400.0, half_life_s: float = 86400.0,
                 recency_decay: float = 0.7, neighbours: int = 50, include_history: bool = True,
                 weights: Mapping[str, float] = DEFAULT_WEIGHTS) -> None:
        self.window, self.max_gap_ms = window, max_gap_s * 1000
        self.recency_decay, self.neighbours = recency_decay, neighbours
        self.include_history = include_history
        self._decay_per_ms = math.log(2) / (half_life_s * 1000)
        self._weights = dict(weights)
        self._recent: dict[str, deque[tuple[str, int]]] = defaultdict(
            lambda: deque(maxlen=self.window))
        # Weights are kept as w * exp(decay * (ts - origin)) so old pairs need no rewriting.
        self._pairs: dict[str, dict[str, float]] = defaultdict(dict)
        self._origin: int | None = None
        self.popularity = Popularity(weights=weights)

    def _grow(self, ts: int) -> float:
        if self._origin is None:
            self._origin = ts
        x = self._decay_per_ms * (ts - self._origin)
        if x > 50:  # rescale before the factors overflow
            f = math.exp(-x)
            for nb in self._pairs.values():
                for j in nb:
                    nb[j] *= f
            self._origin, x = ts, 0.0
        return math.exp(x)

    def learn(self, events: Sequence[Event]) -> None:
        self.popularity.learn(events)
        for e in events:
            w = self._weights[e.event_type or "browse"] * self._grow(e.ts)
            recent = self._recent[e.user_id]
            for i, ts in recent:
                if i != e.item_id and e.ts - ts <= self.max_gap_ms:
                    fwd = self._pairs[i]
                    fwd[e.item_id] = fwd.get(e.item_id, 0.0) + w
                    back = self._pairs[e.item_id]
                    back[i] = back.get(i, 0.0) + 0.5 * w
            recent.append((e.item_id, e.ts))

    def recommend(self, user_id: str, now_ms: int, k: int) -> list[str]:
        recent = self._recent.get(user_id)
        chosen: list[str] = []
        if recent:
            history = list(dict.fromkeys(i for i, _ in reversed(recent)))
            if self.include_history:
                chosen = history[:k]
            score: dict[str, float] = defaultdict(float)
            for p, i in enumerate(history):
                nb = self._pairs.get(i)
                if not nb:
                    continue
                f = self.recency_decay**p
                best = sorted(nb.items(), key=lambda kv: -kv[1])[: self.neighbours]
                for j, w in best:
                    score[j] += f * w
            ranked = sorted(score, key=lambda j: -score[j])
            chosen = _fill(chosen, k, ranked)
        return _fill(chosen, k, self.popularity.top(k + len(chosen)))


class RiverMF:
    """River's online biased matrix factorisation, one event at a time.

    Implicit feedback: each event is a positive (target = its type's weight, capped at 1 after
    scaling) followed by ``negatives`` items drawn uniformly from those seen so far with target
    0. Lists are ranked by item bias + user . item over every known item, with the latents read
    straight from river's model (kept in numpy arrays as they change, for speed).
    """

    def __init__(self, n_factors: int = 32, lr: float = 0.05, l2: float = 0.001,
                 negatives: int = 4, seed: int = 0,
                 weights: Mapping[str, float] = DEFAULT_WEIGHTS) -> None:
        from river import optim, reco

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
        self.items = _Ids()
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
        return [self.items.names[r] for r in _top(scores, k)]


class ImplicitALS:
    """``implicit``'s ALS retrained from scratch on everything seen, every ``retrain_every``
    events; in between, a user's factors are recomputed from their interactions so far (its
    ``recalculate_user``), so users new since the last fit are served too. Until the first fit,
    and for users with no item the model knows, recent popularity answers."""

    def __init__(self, factors: int = 64, regularization: float = 0.05, alpha: float = 10.0,
                 iterations: int = 15, retrain_every: int = 10_000, seed: int = 0,
                 weights: Mapping[str, float] = DEFAULT_WEIGHTS) -> None:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        # implicit parallelises itself; a BLAS thread pool underneath only gets in its way.
        self._blas = threadpool_limits(1, "blas")

        self._make = lambda: AlternatingLeastSquares(
            factors=factors, regularization=regularization, alpha=alpha,
            iterations=iterations, random_state=seed, num_threads=1)
        self.retrain_every = retrain_every
        self._weights = dict(weights)
        self.users, self.items = _Ids(), _Ids()
        self._rows: list[int] = []
        self._cols: list[int] = []
        self._vals: list[float] = []
        self._since = 0
        self.model = None
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

        m = csr_matrix((self._vals, (self._rows, self._cols)),
                       shape=(len(self.users), len(self.items)), dtype=np.float32)
        m.sum_duplicates()
        self.model = self._make()
        self.model.fit(m, show_progress=False)
        self._fit_items = len(self.items)
        self._since = 0
        self.fits += 1

    def recommend(self, user_id: str, now_ms: int, k: int) -> list[str]:
        from scipy.sparse import csr_matrix

        u = self.users.row.get(user_id)
        known = {}
        if self.model is not None and u is not None:
            known = {i: w for i, w in self._user_items[u].items() if i < self._fit_items}
        if not known:
            return self.popularity.top(k)
        cols = list(known)
        row = csr_matrix((list(known.values()), ([0] * len(cols), cols)),
                         shape=(1, self._fit_items), dtype=np.float32)
        ids, _ = self.model.recommend(0, row, N=k, filter_already_liked_items=False,
                                      recalculate_user=True)
        chosen = [self.items.names[int(i)] for i in np.asarray(ids).reshape(-1)]
        return _fill(chosen, k, self.popularity.top(2 * k))


class Feedrec:
    """feedrec's own pipeline, driven exactly as the worker drives it, on the events' clock."""

    def __init__(self, cfg: PipelineConfig | None = None, device: str = "cpu",
                 index_kind: str = "auto") -> None:
        self.pipeline = Pipeline.build(cfg or PipelineConfig(), device=device,
                                       index_kind=index_kind)
        self.states: dict[str, bytes] = {}
        self._now_s = 0.0
        self.pipeline.clock = lambda: self._now_s

    def learn(self, events: Sequence[Event]) -> None:
        now_ms = max(e.ts for e in events)
        self._now_s = now_ms / 1000
        users = {e.user_id for e in events}
        result = self.pipeline.process(
            events, {u: self.states.get(u) for u in users}, now_ms, recommend=False
        )
        self.states.update(result.states)

    def recommend(self, user_id: str, now_ms: int, k: int) -> list[str]:
        self._now_s = max(self._now_s, now_ms / 1000)
        return self.pipeline.recommend([user_id], self.states, now_ms, k)[0]


def make_method(name: str, **kw) -> object:
    """A fresh method by its ``--method`` name."""
    factories: dict[str, Callable[..., object]] = {
        "feedrec": Feedrec,
        "popularity": Popularity,
        "covisitation": CoVisitation,
        "river-mf": RiverMF,
        "implicit-als": ImplicitALS,
    }
    try:
        factory = factories[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(METHOD_NAMES)}") from None
    try:
        return factory(**kw)
    except ImportError as exc:
        raise ImportError(
            f"method {name!r} needs the evaluation extra: pip install 'feedrec[eval]' ({exc})"
        ) from exc
