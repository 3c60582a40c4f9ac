"""``make_index``: every kind by name, and clear errors for a kind that cannot run here."""

import pytest

from feedrec.index import BACKENDS, KINDS, IndexUnavailable, VectorIndexError, make_index
from feedrec.index.faiss_index import gpu_count


def test_every_kind_builds_an_index_of_the_asked_width() -> None:
    for kind in KINDS:
        index = make_index(8, kind=kind)
        assert index.dim == 8 and len(index) == 0
    expected = "faiss-gpu" if gpu_count() else "faiss-cpu"
    assert make_index(8, kind="auto").name == expected
    assert set(BACKENDS) < set(KINDS)


def test_unknown_kinds_and_missing_gpus_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown index kind"):
        make_index(8, kind="hnsw")
    if not gpu_count():
        with pytest.raises(IndexUnavailable, match="no GPU") as err:
            make_index(8, kind="faiss", use_gpu=True)
        assert isinstance(err.value, VectorIndexError)
