"""Every retrieval model (every subclass of :class:`feedrec.model.base.RetrievalModel`), on the CPU
and on CUDA where present, honours the same contract."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

import numpy as np
import pytest
import torch

import feedrec.model
from feedrec.model.base import RetrievalModel
from feedrec.model.twotower import EmbeddingModel, ModelConfig

DIM, USERS, ITEMS, HISTORY = 8, 12, 40, 4

#: How to build each model for these checks, small.
FACTORIES: dict[type[RetrievalModel], Callable[[str, int], RetrievalModel]] = {
    EmbeddingModel: lambda device, seed: EmbeddingModel(
        ModelConfig(
            dim=DIM,
            user_capacity=USERS,
            item_capacity=ITEMS,
            history_len=HISTORY,
            negatives=5,
            seed=seed,
        ),
        device=device,
    ),
}
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def implementations() -> set[type[RetrievalModel]]:
    for module in pkgutil.walk_packages(feedrec.model.__path__, "feedrec.model."):
        importlib.import_module(module.name)
    return {
        cls
        for cls in RetrievalModel.__subclasses__()
        if not getattr(cls, "__abstractmethods__", ())
    }


def test_every_model_is_covered() -> None:
    assert implementations() == set(FACTORIES)


@pytest.fixture(
    params=[(cls, d) for cls in FACTORIES for d in DEVICES], ids=lambda p: f"{p[0].__name__}-{p[1]}"
)
def build(request: pytest.FixtureRequest) -> Callable[[int], RetrievalModel]:
    cls, device = request.param

    def make(seed: int = 0) -> RetrievalModel:
        return FACTORIES[cls](device, seed)

    return make


def batches(n: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        b = int(rng.integers(1, 9))
        hist = rng.integers(-1, ITEMS, size=(b, HISTORY))
        out.append(
            (
                rng.integers(0, USERS, b),
                rng.integers(0, ITEMS, b),
                rng.random(b).astype(np.float32) + 0.1,
                hist,
            )
        )
    return out


def snapshot(model: RetrievalModel) -> tuple[np.ndarray, np.ndarray]:
    users = model.user_vectors(np.arange(USERS), np.full((USERS, HISTORY), -1))
    return users, model.item_vectors()


def test_the_same_seed_and_batches_give_the_same_model(
    build: Callable[..., RetrievalModel],
) -> None:
    a, b = build(), build()
    for batch in batches(6):
        assert a.learn_many(*batch) == b.learn_many(*batch)
    for x, y in zip(snapshot(a), snapshot(b), strict=True):
        assert np.array_equal(x, y)
    assert a.version == b.version == 6


def test_state_round_trip_resumes_exactly(build: Callable[..., RetrievalModel]) -> None:
    trained = build()
    for batch in batches(4):
        trained.learn_many(*batch)
    clone = build()
    before = snapshot(clone)
    clone.load(trained.state())
    assert not np.array_equal(before[1], snapshot(clone)[1])  # the state changed it
    for x, y in zip(snapshot(trained), snapshot(clone), strict=True):
        assert np.array_equal(x, y)
    assert clone.version == trained.version
    nxt = batches(1, seed=5)[0]
    assert trained.learn_many(*nxt) == clone.learn_many(*nxt)  # the sampling RNG too
    assert np.array_equal(trained.item_vectors(), clone.item_vectors())


def test_unseen_users_and_items_are_served_and_padding_scores_minus_infinity(
    build: Callable[..., RetrievalModel],
) -> None:
    model = build()
    for batch in batches(3):
        model.learn_many(*batch)
    # A user with no row (-1) is served by their history alone; one with nothing by zeros.
    vecs = model.user_vectors(np.array([-1, -1]), np.array([[3, 5, -1, -1], [-1] * HISTORY]))
    assert vecs.shape == (2, DIM) and np.isfinite(vecs).all() and not vecs[1].any()
    scores = model.score(vecs, np.array([[1, -1, 2], [-1, -1, -1]]))
    assert scores.shape == (2, 3)
    assert np.isneginf(scores[:, 1]).all() and np.isneginf(scores[1]).all()
    assert np.isfinite(scores[0, [0, 2]]).all()


def test_reset_rows_forget_what_was_learned(build: Callable[..., RetrievalModel]) -> None:
    model = build()
    for batch in batches(4):
        model.learn_many(*batch)
    model.pop_dirty_items()
    model.reset_users(np.array([0, 1]))
    model.reset_items(np.array([7]))
    assert not model.user_vectors(np.array([0]), np.full((1, HISTORY), -1)).any()
    assert model.pop_dirty_items().tolist() == [7]
