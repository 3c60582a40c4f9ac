"""Every index kind honours the same contract; FAISS agrees with brute force."""

import numpy as np
import pytest

from index import make_index
from index.refresh import IndexRefresher
from model.twotower import EmbeddingModel, ModelConfig

KINDS = ["exact", "faiss"]


@pytest.fixture(params=KINDS)
def index(request):
    return make_index(8, kind=request.param)


def vectors(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 8)).astype(np.float32)


def test_empty_index_pads(index) -> None:
    ids, scores = index.search(vectors(2), 3)
    assert ids.tolist() == [[-1] * 3] * 2 and np.isneginf(scores).all()


def test_search_is_sorted_unique_and_padded(index) -> None:
    index.upsert(np.array([10, 20, 30]), vectors(3))
    ids, scores = index.search(vectors(4, seed=1), 5)
    assert ids.shape == (4, 5)
    for row_ids, row_scores in zip(ids, scores, strict=True):
        found = row_ids[row_ids >= 0]
        assert sorted(found.tolist()) == [10, 20, 30]
        assert np.all(np.diff(row_scores[:3]) <= 1e-6)
        assert np.isneginf(row_scores[3:]).all()


def test_upsert_replaces_and_remove_drops(index) -> None:
    v = vectors(3)
    index.upsert(np.array([1, 2, 3]), v)
    index.upsert(np.array([2]), -v[1:2] * 10)
    index.remove(np.array([3, 99]))
    assert len(index) == 2
    ids, _ = index.search(v[1:2], 2)
    assert ids[0, 0] == 1  # row 2 now points the other way


def test_faiss_matches_exact() -> None:
    base, queries = vectors(500), vectors(20, seed=2)
    ids = np.arange(1000, 1500)
    exact, faiss = make_index(8, kind="exact"), make_index(8, kind="faiss")
    for idx in (exact, faiss):
        idx.upsert(ids, base)
    e_ids, e_scores = exact.search(queries, 10)
    f_ids, f_scores = faiss.search(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(e_ids, f_ids, strict=True)])
    assert recall == 1.0
    assert np.allclose(e_scores, f_scores, atol=1e-4)


@pytest.mark.parametrize("kind", KINDS)
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
