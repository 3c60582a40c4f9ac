"""Property tests: any index, any data, the search contract holds and matches brute force."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from feedrec.index import BACKENDS, make_index

floats = st.floats(-10, 10, allow_nan=False, width=32)
KINDS = st.sampled_from(BACKENDS)


@settings(max_examples=60, deadline=None)
@given(
    kind=KINDS,
    ids=st.lists(st.integers(0, 10_000), min_size=0, max_size=40, unique=True),
    data=st.data(),
    k=st.integers(1, 12),
)
def test_search_returns_at_most_k_unique_known_ids_best_first(
    kind: str, ids: list[int], data: st.DataObject, k: int
) -> None:
    idx = make_index(4, kind=kind)
    if ids:
        idx.upsert(np.array(ids), data.draw(arrays(np.float32, (len(ids), 4), elements=floats)))
    queries = data.draw(arrays(np.float32, (3, 4), elements=floats))
    got_ids, got_scores = idx.search(queries, k)
    assert got_ids.shape == got_scores.shape == (3, k)
    assert got_ids.dtype == np.int64 and got_scores.dtype == np.float32
    for row, scores in zip(got_ids, got_scores, strict=True):
        real = row[row >= 0]
        assert len(real) == min(k, len(ids))
        assert (row[len(real) :] == -1).all() and np.isneginf(scores[len(real) :]).all()
        assert len(set(real.tolist())) == len(real)
        assert set(real.tolist()) <= set(ids)
        finite = scores[row >= 0]
        assert np.all(finite[:-1] >= finite[1:] - 1e-3)


ops = st.lists(
    st.tuples(
        st.sampled_from(["upsert", "remove"]), st.lists(st.integers(0, 30), min_size=1, max_size=10)
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(kind=KINDS, script=ops, seed=st.integers(0, 2**16))
def test_any_sequence_of_upserts_and_removes_matches_a_dict(
    kind: str, script: list[tuple[str, list[int]]], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    idx = make_index(4, kind=kind)
    truth: dict[int, np.ndarray] = {}
    for op, keys in script:
        arr = np.array(keys, dtype=np.int64)
        if op == "upsert":
            vecs = rng.normal(size=(len(keys), 4)).astype(np.float32)
            idx.upsert(arr, vecs)
            truth.update(zip(keys, vecs, strict=True))  # last occurrence wins
        else:
            idx.remove(arr)
            for key in keys:
                truth.pop(key, None)
    assert len(idx) == len(truth)
    q = rng.normal(size=(2, 4)).astype(np.float32)
    k = len(truth) + 2
    got_ids, got_scores = idx.search(q, k)
    for row, scores, query in zip(got_ids, got_scores, q, strict=True):
        assert sorted(row[row >= 0].tolist()) == sorted(truth)
        expected = {key: float(v @ query) for key, v in truth.items()}
        for key, score in zip(row[row >= 0].tolist(), scores, strict=False):
            assert abs(expected[key] - score) < 1e-4
