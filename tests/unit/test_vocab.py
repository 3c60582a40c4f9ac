import numpy as np
import pytest

from model.vocab import IdMap


def test_rows_are_dense_and_stable() -> None:
    m = IdMap(4)
    rows, evicted = m.rows_for(["a", "b", "a"])
    assert rows.tolist() == [0, 1, 0] and evicted.size == 0
    assert m.get_rows(["b", "zz"]).tolist() == [1, -1]
    assert m.ids_for([1, 0, -1]) == ["b", "a", None]
    assert len(m) == 2 and "a" in m and "zz" not in m


def test_least_recently_seen_is_evicted_and_its_row_reused() -> None:
    m = IdMap(3)
    m.rows_for(["a", "b", "c"])
    m.rows_for(["a"])  # b is now the least recently seen
    rows, evicted = m.rows_for(["d"])
    assert evicted.tolist() == [1] and rows.tolist() == [1]
    assert "b" not in m and m.ids_for([1]) == ["d"]


def test_too_many_ids_in_one_call_fail_clearly() -> None:
    with pytest.raises(ValueError, match="capacity"):
        IdMap(2).rows_for(["a", "b", "c"])


def test_state_round_trip_keeps_order_and_rows() -> None:
    m = IdMap(3)
    m.rows_for(["a", "b", "c"])
    m.rows_for(["a"])
    r = IdMap.from_state(m.state())
    assert r.get_rows(["a", "b", "c"]).tolist() == [0, 1, 2]
    assert r.rows_for(["d"])[1].tolist() == m.rows_for(["d"])[1].tolist() == [1]
    assert np.array_equal(r.get_rows(["d"]), m.get_rows(["d"]))
