"""Every index kind (:data:`feedrec.index.BACKENDS`, on the GPU too where faiss sees one) honours
the same contract, and agrees with brute force."""

import numpy as np
import pytest

from feedrec.index import BACKENDS, VectorIndex, make_index
from feedrec.index.faiss_index import gpu_count

#: ``(label, make_index arguments)`` of every kind there is on this machine.
VARIANTS = [(kind, {"kind": kind}) for kind in BACKENDS] + (
    [("faiss-gpu", {"kind": "faiss", "use_gpu": True})] if gpu_count() else []
)


@pytest.fixture(params=VARIANTS, ids=[label for label, _ in VARIANTS])
def index(request: pytest.FixtureRequest) -> VectorIndex:
    _, kwargs = request.param
    return make_index(8, **kwargs)


def vectors(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 8)).astype(np.float32)


def test_empty_index_pads(index: VectorIndex) -> None:
    ids, scores = index.search(vectors(2), 3)
    assert ids.tolist() == [[-1] * 3] * 2 and np.isneginf(scores).all()


def test_search_is_sorted_unique_and_padded(index: VectorIndex) -> None:
    index.upsert(np.array([10, 20, 30]), vectors(3))
    ids, scores = index.search(vectors(4, seed=1), 5)
    assert ids.shape == (4, 5)
    for row_ids, row_scores in zip(ids, scores, strict=True):
        found = row_ids[row_ids >= 0]
        assert sorted(found.tolist()) == [10, 20, 30]
        assert np.all(np.diff(row_scores[:3]) <= 1e-6)
        assert np.isneginf(row_scores[3:]).all()


def test_upsert_replaces_and_remove_drops(index: VectorIndex) -> None:
    v = vectors(3)
    index.upsert(np.array([1, 2, 3]), v)
    index.upsert(np.array([2]), -v[1:2] * 10)
    index.remove(np.array([3, 99]))
    assert len(index) == 2
    ids, _ = index.search(v[1:2], 2)
    assert ids[0, 0] == 1  # row 2 now points the other way


def test_every_kind_matches_brute_force(index: VectorIndex) -> None:
    base, queries = vectors(500), vectors(20, seed=2)
    ids = np.arange(1000, 1500)
    exact = make_index(8, kind="exact")
    for idx in (exact, index):
        idx.upsert(ids, base)
    e_ids, e_scores = exact.search(queries, 10)
    f_ids, f_scores = index.search(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(e_ids, f_ids, strict=True)])
    assert recall == 1.0
    assert np.allclose(e_scores, f_scores, atol=1e-4)


def test_search_gives_at_most_k_unique_known_ids_and_repeats_itself(index: VectorIndex) -> None:
    ids = np.arange(50, 90)
    index.upsert(ids, vectors(40, seed=3))
    queries = vectors(7, seed=4)
    got, scores = index.search(queries, 12)
    for row in got:
        real = row[row >= 0]
        assert len(real) == len(set(real.tolist())) <= 12
        assert set(real.tolist()) <= set(ids.tolist())
    again, again_scores = index.search(queries, 12)
    assert (again == got).all() and (again_scores == scores).all()


def test_unknown_ids_are_ignored_and_an_empty_index_pads(index: VectorIndex) -> None:
    index.remove(np.array([5, 6]))  # never added
    assert len(index) == 0
    ids, scores = index.search(vectors(1), 4)
    assert (ids == -1).all() and np.isneginf(scores).all()


def test_repeated_ids_in_one_upsert_keep_the_last_vector(index: VectorIndex) -> None:
    v = vectors(3)
    index.upsert(np.array([5, 5, 6]), v)
    assert len(index) == 2
    ids, scores = index.search(v[1:2], 2)
    assert ids[0, 0] == 5 and scores[0, 0] == pytest.approx(float(v[1] @ v[1]), rel=1e-5)


def test_clear_and_reuse(index: VectorIndex) -> None:
    index.upsert(np.arange(10), vectors(10))
    index.clear()
    assert len(index) == 0
    assert (index.search(vectors(1), 4)[0] == -1).all()
    index.upsert(np.array([3]), vectors(1))
    assert index.search(vectors(1), 2)[0].tolist() == [[3, -1]]


def test_remove_everything_then_search_pads(index: VectorIndex) -> None:
    index.upsert(np.arange(5), vectors(5))
    index.remove(np.arange(5))
    assert len(index) == 0
    ids, scores = index.search(vectors(2), 3)
    assert (ids == -1).all() and np.isneginf(scores).all()


def test_many_removes_keep_the_rest_searchable(index: VectorIndex) -> None:
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


def test_wrong_shapes_fail_clearly(index: VectorIndex) -> None:
    with pytest.raises(ValueError, match="dim"):
        index.upsert(np.array([1, 2]), np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        index.search(np.zeros((2, 3), np.float32), 1)
    with pytest.raises(ValueError, match=">= 0"):
        index.upsert(np.array([-1]), np.zeros((1, 8), np.float32))


def test_faiss_matches_brute_force_at_scale() -> None:
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
