"""The refresher keeps an index in step with a model that keeps learning."""

import numpy as np
import pytest

from feedrec.index import BACKENDS, make_index
from feedrec.model.refresh import IndexRefresher
from feedrec.model.twotower import EmbeddingModel, ModelConfig


def vectors(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 8)).astype(np.float32)


@pytest.mark.parametrize("kind", BACKENDS)
def test_refresher_pushes_changed_rows(kind: str) -> None:
    model = EmbeddingModel(ModelConfig(dim=8, user_capacity=10, item_capacity=50), device="cpu")
    idx = make_index(8, kind=kind)
    ref = IndexRefresher(model, idx, interval_s=10.0, min_changes=1000)
    model.learn_many(np.array([0]), np.array([4]), np.ones(1, np.float32), np.full((1, 20), -1))
    assert ref.maybe_refresh(now=0.0) > 0  # first refresh is due at once
    model.learn_many(np.array([0]), np.array([7]), np.ones(1, np.float32), np.full((1, 20), -1))
    assert ref.maybe_refresh(now=1.0) == 0  # not due, too few changes
    assert ref.maybe_refresh(now=11.0) > 0
    ids, _ = idx.search(model.item_vectors(np.array([7])), 1)
    assert ids[0, 0] == 7
    ref.remove(np.array([7]))
    ids, _ = idx.search(model.item_vectors(np.array([7])), len(idx))
    assert 7 not in ids


@pytest.mark.parametrize("kind", BACKENDS)
def test_refresher_batches_by_count_and_tracks_evictions(kind: str) -> None:
    cfg = ModelConfig(dim=8, user_capacity=10, item_capacity=50, history_len=4, negatives=0)
    model = EmbeddingModel(cfg, device="cpu")
    idx = make_index(8, kind=kind)
    ref = IndexRefresher(model, idx, interval_s=1e9, min_changes=3)
    model.learn_many(np.array([0]), np.array([5]), np.ones(1, np.float32), np.full((1, 4), -1))
    assert ref.maybe_refresh(now=0.0) == 1  # the first push is due at once
    model.learn_many(np.array([0]), np.array([1]), np.ones(1, np.float32), np.full((1, 4), -1))
    assert ref.maybe_refresh(now=1.0) == 0 and ref.pending == 1
    model.learn_many(
        np.array([0, 1]), np.array([2, 3]), np.ones(2, np.float32), np.full((2, 4), -1)
    )
    assert ref.maybe_refresh(now=2.0) == 3  # min_changes reached
    assert len(idx) == 4 and ref.last_pushed == 3 and ref.last_duration >= 0
    # Eviction: row 2 is reset for a new item and must leave the index until learnt again.
    model.reset_items(np.array([2]))
    ref.remove(np.array([2]))
    assert ref.maybe_refresh(now=3.0, force=True) == 0 and len(idx) == 3
    # A forced push sends exactly the rows' current vectors.
    model.learn_many(np.array([1]), np.array([2]), np.ones(1, np.float32), np.full((1, 4), -1))
    assert ref.maybe_refresh(now=4.0, force=True) == 1
    ids, scores = idx.search(model.item_vectors(np.array([2])), 3)
    vec = model.item_vectors(np.array([2]))[0]
    assert 2 in ids[0]
    assert scores[0][ids[0] == 2][0] == pytest.approx(float(vec @ vec), rel=1e-5)


@pytest.mark.parametrize("kind", BACKENDS)
def test_full_rebuild_holds_exactly_the_rows_in_use(kind: str) -> None:
    model = EmbeddingModel(ModelConfig(dim=8, user_capacity=10, item_capacity=50), device="cpu")
    idx = make_index(8, kind=kind)
    idx.upsert(np.array([40, 41]), vectors(2))  # stale rows from before a restore
    ref = IndexRefresher(model, idx)
    assert ref.full_rebuild(np.array([0, 1, 2, 2]), now=0.0) == 3
    assert len(idx) == 3
    ids, scores = idx.search(model.item_vectors(np.array([0, 1, 2])), 3)
    assert set(ids.reshape(-1).tolist()) == {0, 1, 2}
    assert ref.maybe_refresh(now=1e9) == 0  # nothing pending after a rebuild
