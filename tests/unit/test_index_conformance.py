"""Every index kind honours the same contract; FAISS agrees with brute force."""

import numpy as np
import pytest

from feedrec.index import make_index
from feedrec.model.refresh import IndexRefresher
from feedrec.model.twotower import EmbeddingModel, ModelConfig

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


def test_repeated_ids_in_one_upsert_keep_the_last_vector(index) -> None:
    v = vectors(3)
    index.upsert(np.array([5, 5, 6]), v)
    assert len(index) == 2
    ids, scores = index.search(v[1:2], 2)
    assert ids[0, 0] == 5 and scores[0, 0] == pytest.approx(float(v[1] @ v[1]), rel=1e-5)


def test_clear_and_reuse(index) -> None:
    index.upsert(np.arange(10), vectors(10))
    index.clear()
    assert len(index) == 0
    assert (index.search(vectors(1), 4)[0] == -1).all()
    index.upsert(np.array([3]), vectors(1))
    assert index.search(vectors(1), 2)[0].tolist() == [[3, -1]]


def test_remove_everything_then_search_pads(index) -> None:
    index.upsert(np.arange(5), vectors(5))
    index.remove(np.arange(5))
    assert len(index) == 0
    ids, scores = index.search(vectors(2), 3)
    assert (ids == -1).all() and np.isneginf(scores).all()


def test_many_removes_keep_the_rest_searchable(index) -> None:
    base = vectors(300)
    index.upsert(np.arange(300), base)
    gone = np.arange(0, 300, 3)
    index.remove(gone)
    assert len(index) == 200
    ids, _ = index.search(base, 300)
    assert not np.isin(ids, gone).any()
    kept = np.setdiff1d(np.arange(300), gone)
    assert all(set(row[row >= 0].tolist()) == set(kept.tolist()) for row in ids[:5])
    # Every surviving vector is found as its own best match's score (self-dot >= others here
    # is not guaranteed, so compare against brute force instead).
    exact = base[kept] @ base[kept].T
    _, scores = index.search(base[kept], 1)
    assert np.allclose(scores[:, 0], exact.max(1), atol=1e-4)


def test_wrong_shapes_fail_clearly(index) -> None:
    with pytest.raises(ValueError, match="dim"):
        index.upsert(np.array([1, 2]), np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        index.search(np.zeros((2, 3), np.float32), 1)
    with pytest.raises(ValueError, match=">= 0"):
        index.upsert(np.array([-1]), np.zeros((1, 8), np.float32))


def test_faiss_matches_exact_at_scale() -> None:
    rng = np.random.default_rng(7)
    base = rng.normal(size=(20_000, 8)).astype(np.float32)
    queries = rng.normal(size=(200, 8)).astype(np.float32)
    ids = rng.choice(10**9, size=20_000, replace=False).astype(np.int64)
    exact, fa = make_index(8, kind="exact"), make_index(8, kind="faiss")
    for idx in (exact, fa):
        idx.upsert(ids, base)
        idx.remove(ids[:1000])
        idx.upsert(ids[1000:2000], base[1000:2000] * 2)
    e_ids, e_scores = exact.search(queries, 10)
    f_ids, f_scores = fa.search(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(e_ids, f_ids, strict=True)])
    assert recall == 1.0
    assert np.allclose(e_scores, f_scores, rtol=1e-4, atol=1e-4)


def test_make_index_rejects_unknown_kinds_and_missing_gpus() -> None:
    from feedrec.index.faiss_index import gpu_count
    from feedrec.model.exceptions import ConfigError

    with pytest.raises(ValueError, match="unknown index kind"):
        make_index(8, kind="hnsw")
    if gpu_count() == 0:
        with pytest.raises(ConfigError, match="no GPU"):
            make_index(8, kind="faiss", use_gpu=True)
        assert make_index(8).name == "faiss-cpu"


@pytest.mark.parametrize("kind", KINDS)
def test_refresher_batches_by_count_and_tracks_evictions(kind: str) -> None:
    cfg = ModelConfig(dim=8, user_capacity=10, item_capacity=50, history_len=4, negatives=0)
    model = EmbeddingModel(cfg, device="cpu")
    idx = make_index(8, kind=kind)
    ref = IndexRefresher(model, idx, interval_s=1e9, min_changes=3)
    model.learn_many(np.array([0]), np.array([5]), np.ones(1, np.float32), np.full((1, 4), -1))
    assert ref.maybe_refresh(now=0.0) == 1  # the first push is due at once
    model.learn_many(np.array([0]), np.array([1]), np.ones(1, np.float32), np.full((1, 4), -1))
    assert ref.maybe_refresh(now=1.0) == 0 and ref.pending == 1
    model.learn_many(np.array([0, 1]), np.array([2, 3]), np.ones(2, np.float32),
                     np.full((2, 4), -1))
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


@pytest.mark.parametrize("kind", KINDS)
def test_full_rebuild_holds_exactly_the_rows_in_use(kind: str) -> None:
    model = EmbeddingModel(ModelConfig(dim=8, user_capacity=10, item_capacity=50), device="cpu")
    idx = make_index(8, kind=kind)
    idx.upsert(np.array([40, 41]), vectors(2))  # stale rows from before a restore
    ref = IndexRefresher(model, idx)
    assert ref.full_rebuild(np.array([0, 1, 2, 2])) == 3
    assert len(idx) == 3
    ids, scores = idx.search(model.item_vectors(np.array([0, 1, 2])), 3)
    assert set(ids.reshape(-1).tolist()) == {0, 1, 2}
    assert ref.maybe_refresh(now=1e9) == 0  # nothing pending after a rebuild
