import numpy as np
import pytest

from feedrec.model.items import ItemStats
from feedrec.model.ranking import RankConfig, rank


def described(rows: np.ndarray, stats: ItemStats) -> tuple[np.ndarray, np.ndarray]:
    """The availability and category codes of candidate ``rows``, as retrieval hands them to
    the ranking."""
    return stats.available[np.maximum(rows, 0)], stats.category_of(rows)


def stats_with_categories(cats: list[int]) -> ItemStats:
    st = ItemStats(len(cats))
    st.category[:] = cats
    return st


def test_orders_by_score_and_respects_top_n() -> None:
    st = stats_with_categories([-1] * 6)
    rows = np.array([[0, 1, 2, 3, 4, 5]])
    scores = np.array([[0.1, 0.9, 0.5, 0.3, 0.8, 0.2]], dtype=np.float32)
    cfg = RankConfig(top_n=3, candidates=6)
    (out,) = rank(rows, scores, [set()], cfg, *described(rows, st))
    assert [r for r, _ in out] == [1, 4, 2]


def test_drops_purchased_unavailable_and_padding() -> None:
    st = stats_with_categories([-1] * 5)
    st.available[2] = False
    rows = np.array([[0, 1, 2, 3, -1]])
    scores = np.array([[0.9, 0.8, 0.7, 0.6, -np.inf]], dtype=np.float32)
    cfg = RankConfig(top_n=5, candidates=5)
    (out,) = rank(rows, scores, [{0}], cfg, *described(rows, st))
    assert [r for r, _ in out] == [1, 3]


def test_caps_items_per_category() -> None:
    st = stats_with_categories([7, 7, 7, 8, 7, 8])
    rows = np.arange(6)[None, :]
    scores = np.linspace(1.0, 0.5, 6, dtype=np.float32)[None, :]
    cfg = RankConfig(top_n=4, candidates=6, max_per_category=2)
    (out,) = rank(rows, scores, [set()], cfg, *described(rows, st))
    assert [r for r, _ in out] == [0, 1, 3, 5]


def test_the_category_a_user_is_shopping_in_is_not_capped() -> None:
    st = stats_with_categories([7, 7, 7, 7, 8, 9])
    rows = np.arange(6)[None, :].repeat(2, axis=0)
    scores = np.linspace(1.0, 0.5, 6, dtype=np.float32)[None, :].repeat(2, axis=0)
    cfg = RankConfig(top_n=5, candidates=6, max_per_category=2)
    capped, free = rank(rows, scores, [set(), set()], cfg, *described(rows, st), current=[[8], [7]])
    assert [r for r, _ in capped] == [0, 1, 4, 5]
    assert [r for r, _ in free] == [0, 1, 2, 3, 4]


def test_the_categories_of_every_open_session_are_not_capped() -> None:
    # Items 0-2 of category 7 (the latest session's), 3-5 of category 8 (another open session's).
    st = stats_with_categories([7, 7, 7, 8, 8, 8, 9])
    rows = np.arange(7)[None, :]
    scores = np.linspace(1.0, 0.4, 7, dtype=np.float32)[None, :]
    cfg = RankConfig(top_n=7, candidates=7, max_per_category=1)
    (latest_only,) = rank(rows, scores, [set()], cfg, *described(rows, st), current=[[7]])
    (both,) = rank(rows, scores, [set()], cfg, *described(rows, st), current=[[7, 8]])
    assert [r for r, _ in latest_only] == [0, 1, 2, 3, 6]
    assert [r for r, _ in both] == [0, 1, 2, 3, 4, 5, 6]


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="top_n"):
        RankConfig(top_n=20, candidates=10)
