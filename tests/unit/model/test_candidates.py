import numpy as np
import pytest

from feedrec.model.candidates import FEATURES, IN_CATEGORY_SCALE, Candidates, SourceConfig
from feedrec.model.items import ItemStats
from feedrec.model.seen import add_many
from feedrec.model.sources.base import top_per_group
from feedrec.model.sources.trending import Trending


def test_top_per_group() -> None:
    out = top_per_group(
        np.array([1, 0, 1, 1]),
        np.array([10, 11, 12, 13]),
        np.array([0.5, 1.0, 2.0, 1.0]),
        n_groups=3,
        k=2,
    )
    assert out.tolist() == [[11, -1], [12, 13], [-1, -1]]


def shop(capacity: int = 20) -> tuple[Candidates, ItemStats]:
    """Items 0-9 in category 0, 10-19 in category 1; popularity rises with the row."""
    stats = ItemStats(capacity)
    stats.category[:] = np.arange(capacity) // 10
    stats.observe(np.arange(capacity), np.arange(1.0, capacity + 1), np.full(capacity, 1000))
    stats.set_keys(np.arange(capacity), [f"i{r}" for r in range(capacity)])
    cfg = SourceConfig(covisit=5, categories=1, per_category=3, trending=2)
    sources = Candidates(cfg, capacity, 0.8)
    sources.refresh(stats, capacity, now_s=0.0)
    return sources, stats


def test_candidates_merge_every_source_once() -> None:
    sources, stats = shop()
    # Users go from item 2 to item 5.
    sources.observe(np.array([[2, -1]]), np.array([5]), np.ones(1), np.array([1000]))
    hist = np.array([[2, 3], [-1, -1]])
    ann = np.array([[7, 2], [-1, -1]])
    carted = np.array([[11], [-1]])
    purchased = np.array([[3], [-1]])
    # User 0 had item 7 long ago: it is no longer in their recent items, only in their filter.
    seen = [add_many(b"", 0, ["i2", "i3", "i7"])[0], b""]
    cand, feats, _ = sources.collect(hist, carted, purchased, seen, ann, stats, now_ms=1000)
    warm = set(cand[0][cand[0] >= 0].tolist())
    # history 2, 3; cart 11; co-visitation 5; index 7; category 0's trending 9, 8, 7;
    # trending 19, 18.
    assert warm == {2, 3, 11, 5, 7, 9, 8, 19, 18}
    assert len(cand[0][cand[0] >= 0]) == len(warm)
    cold = set(cand[1][cand[1] >= 0].tolist())
    assert cold == {19, 18}
    col = {name: i for i, name in enumerate(FEATURES)}
    f = {int(r): feats[0, j] for j, r in enumerate(cand[0]) if r >= 0}
    assert f[2][col["history"]] == 1.0 and f[3][col["history"]] == pytest.approx(0.8)
    assert f[2][col["seen"]] == f[3][col["seen"]] == f[7][col["seen"]] == 1.0
    assert f[5][col["seen"]] == f[11][col["seen"]] == 0.0
    assert f[11][col["carted"]] == 1.0 and f[2][col["carted"]] == 0.0
    assert f[5][col["covisit"]] == pytest.approx(1.0) and f[7][col["covisit"]] == 0.0
    assert f[5][col["covisit_long"]] == pytest.approx(1.0)
    assert f[3][col["purchased"]] == 1.0 and f[2][col["purchased"]] == 0.0
    assert f[9][col["category"]] == pytest.approx(1.0) and f[19][col["category"]] == 0.0
    # Item 9 has 10 of the 55 popularity points of category 0, the user's only category.
    assert f[9][col["in_category"]] == pytest.approx(np.log1p(IN_CATEGORY_SCALE * 10 / 55))
    assert f[19][col["in_category"]] == 0.0
    assert f[9][col["trending"]] == 0.0 and f[9][col["popularity"]] > 0
    assert f[9][col["popularity_slow"]] > f[8][col["popularity_slow"]] > 0
    g = {int(r): feats[1, j] for j, r in enumerate(cand[1]) if r >= 0}
    # A cold user's items carry only their popularity, in the trending columns.
    assert g[19][col["trending"]] > g[18][col["trending"]] > 0
    assert g[19][col["trending_slow"]] > g[18][col["trending_slow"]] > 0
    cold_cols = [col["trending"], col["trending_slow"]]
    assert all(np.count_nonzero(np.delete(v, cold_cols)) == 0 for v in g.values())


def test_other_open_sessions_bring_their_items_and_categories() -> None:
    sources, stats = shop()
    col = {name: i for i, name in enumerate(FEATURES)}
    # The user's latest event is on item 2 (category 0); another open session of theirs is on
    # item 13 (category 1): it and its category's trending items 19, 18, 17 are candidates.
    hist = np.array([[2, 3]])
    cand, feats, _ = sources.collect(
        hist,
        np.full((1, 1), -1),
        np.full((1, 1), -1),
        [b""],
        np.full((1, 1), -1),
        stats,
        now_ms=1000,
        others=np.array([[13, -1]]),
    )
    f = {int(r): feats[0, j] for j, r in enumerate(cand[0]) if r >= 0}
    assert {13, 19, 18, 17, 9, 8, 7} <= set(f)
    assert f[13][col["other_session"]] == 1.0 and f[2][col["other_session"]] == 0.0
    assert f[19][col["other_category"]] == f[13][col["other_category"]] == 1.0
    assert f[9][col["other_category"]] == 0.0
    # Both sessions' categories are what the user is shopping in now.
    assert f[19][col["latest_category"]] == f[9][col["latest_category"]] == 1.0
    # Without other sessions nothing changes and the new columns stay 0.
    alone, feats_alone, _ = sources.collect(
        hist,
        np.full((1, 1), -1),
        np.full((1, 1), -1),
        [b""],
        np.full((1, 1), -1),
        stats,
        now_ms=1000,
    )
    assert not set(alone[0].tolist()) & {13, 17}
    assert (feats_alone[..., [col["other_session"], col["other_category"]]] == 0).all()


def test_trending_skips_unavailable_items() -> None:
    sources, stats = shop()
    stats.available[19] = False
    sources.refresh(stats, 20, now_s=100.0)
    trending = sources.sources["trending"]
    assert isinstance(trending, Trending)
    assert trending.rows.tolist() == [18, 17]
    assert sources.category.by_category[1].tolist() == [18, 17, 16]


def test_trending_refreshes_only_when_due() -> None:
    sources, stats = shop()
    assert not sources.refresh(stats, 20, now_s=1.0)
    assert sources.refresh(stats, 20, now_s=sources.cfg.trending_refresh_s)


def test_source_config_is_validated() -> None:
    with pytest.raises(ValueError, match="covisit_window"):
        SourceConfig(covisit_window=0)
    with pytest.raises(ValueError, match="history_decay"):
        Candidates(SourceConfig(), 4, history_decay=1.5)


def test_trending_offers_this_half_hours_and_these_weeks_sellers() -> None:
    stats = ItemStats(4, popularity_half_life_s=1800.0)
    day = 86_400_000
    # Item 0 sold a lot three days ago; item 1 a little just now; 2 and 3 nothing.
    t0 = 1_700_000_000_000
    stats.observe(np.array([0]), np.array([50.0]), np.array([t0]))
    stats.observe(np.array([1]), np.array([1.0]), np.array([t0 + 3 * day]))
    trending = Candidates(SourceConfig(trending=1), 4, 0.8).sources["trending"]
    assert isinstance(trending, Trending)
    trending.refresh(stats, 4)
    # Half-hour popularity: item 1 (item 0's 50 decayed through 144 half-lives); weeks: item 0.
    assert trending.rows.tolist() == [1, 0]
