import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from index import make_index

floats = st.floats(-10, 10, allow_nan=False, width=32)


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(["exact", "faiss"]),
    ids=st.lists(st.integers(0, 10_000), min_size=0, max_size=40, unique=True),
    data=st.data(),
    k=st.integers(1, 12),
)
def test_search_returns_at_most_k_unique_known_ids_best_first(kind, ids, data, k) -> None:
    idx = make_index(4, kind=kind)
    if ids:
        idx.upsert(np.array(ids), data.draw(arrays(np.float32, (len(ids), 4), elements=floats)))
    queries = data.draw(arrays(np.float32, (3, 4), elements=floats))
    got_ids, got_scores = idx.search(queries, k)
    assert got_ids.shape == got_scores.shape == (3, k)
    for row, scores in zip(got_ids, got_scores, strict=True):
        real = row[row >= 0]
        assert len(real) == min(k, len(ids))
        assert len(set(real.tolist())) == len(real)
        assert set(real.tolist()) <= set(ids)
        finite = scores[row >= 0]
        assert np.all(finite[:-1] >= finite[1:] - 1e-3)
