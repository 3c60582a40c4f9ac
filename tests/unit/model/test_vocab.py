from dataclasses import replace

import numpy as np
import pytest

from feedrec.model.vocab import IdMap, Vocab


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


def test_evicted_rows_are_reported_once_per_call_and_reused() -> None:
    m = IdMap(2)
    m.rows_for(["a", "b"])
    rows, evicted = m.rows_for(["c", "d", "c"])
    assert rows.tolist() == [0, 1, 0] and sorted(evicted.tolist()) == [0, 1]
    assert m.ids_for(rows) == ["c", "d", "c"] and len(m) == 2


def test_failed_call_changes_nothing() -> None:
    m = IdMap(2)
    m.rows_for(["a", "b"])
    before = m.state()
    with pytest.raises(ValueError, match="capacity of 2"):
        m.rows_for(["x", "y", "z", "x"])
    assert m.state() == before


def test_touching_a_full_map_does_not_evict() -> None:
    m = IdMap(2)
    m.rows_for(["a", "b"])
    rows, evicted = m.rows_for(["b", "a", "b"])
    assert rows.tolist() == [1, 0, 1] and evicted.size == 0


def test_released_ids_free_their_rows_for_the_next_new_ids() -> None:
    m = IdMap(3)
    m.rows_for(["a", "b", "c"])
    assert m.release(["b", "unknown"]).tolist() == [1]
    assert "b" not in m and len(m) == 2 and m.ids_for([1]) == [None]
    rows, evicted = m.rows_for(["d", "e"])
    # d takes b's freed row; e finds the map full and evicts the least recently seen (a).
    assert rows.tolist() == [1, 0] and evicted.tolist() == [0]
    assert m.ids() == ["c", "d", "e"]


def test_state_round_trips_and_is_checked() -> None:
    m = IdMap(4)
    m.rows_for(["a", "b", "c"])
    m.release(["b"])
    state = m.state()
    r = IdMap.from_state(state)
    assert r.ids() == m.ids() and r.ids_for([0, 1, 2, 3]) == ["a", None, "c", None]
    assert r.rows_for(["x"])[0].tolist() == m.rows_for(["x"])[0].tolist() == [1]
    with pytest.raises(ValueError, match="inconsistent"):
        IdMap.from_state(replace(state, rows=[0, 0]))
    with pytest.raises(ValueError, match="inconsistent"):
        IdMap.from_state(replace(state, free=[0]))  # a's row cannot also be free


def test_vocab_item_rows_cut_and_pad_each_list() -> None:
    items = IdMap(8)
    items.rows_for(["a", "b", "c"])
    vocab = Vocab(IdMap(2), items)
    rows = vocab.item_rows([["c", "a"], [], ["b", "zz", "a", "c"]], width=3)
    assert rows.tolist() == [[2, 0, -1], [-1, -1, -1], [1, -1, 0]]


def test_matches_a_reference_lru() -> None:
    """Random traffic against a plain-list LRU model: same ids live, same evictions."""
    rng = np.random.default_rng(1)
    m = IdMap(50)
    lru: list[str] = []  # least recent first
    owner: dict[int, str] = {}
    for _ in range(200):
        batch = [f"id{x}" for x in rng.integers(0, 120, rng.integers(1, 40))]
        rows, evicted = m.rows_for(batch)
        expected_evicted = []
        for key in batch:
            if key in lru:
                lru.remove(key)
            elif len(lru) == 50:
                expected_evicted.append(lru.pop(0))
            lru.append(key)
        assert m.ids() == lru
        assert sorted(owner[r] for r in evicted.tolist()) == sorted(expected_evicted)
        assert m.ids_for(rows) == batch
        owner.update(zip(rows.tolist(), batch, strict=True))
