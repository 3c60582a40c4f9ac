import numpy as np
import pytest

from feedrec.model.candidates import FEATURES, IN_CATEGORY_SCALE, Candidates, SourceConfig
from feedrec.model.covisit import CoVisits
from feedrec.model.items import ItemStats
from feedrec.model.ranker import OnlineRanker
from feedrec.model.seen import add_many
from feedrec.model.sources.base import top_per_group

HOUR_MS = 3_600_000


def successors_of(cv: CoVisits, row: int) -> dict[int, float]:
    nb, share = cv.successors(np.array([[row]]))
    return {int(n): float(s) for n, s in zip(nb.ravel(), share.ravel(), strict=True) if n >= 0}


def test_covisits_count_pairs_and_share_per_source() -> None:
    cv = CoVisits(10, slots=4)
    cv.observe(np.array([0, 0, 0, 1]), np.array([1, 1, 2, 0]), np.ones(4), np.zeros(4))
    assert successors_of(cv, 0) == pytest.approx({1: 2 / 3, 2: 1 / 3})
    assert successors_of(cv, 1) == pytest.approx({0: 1.0})
    assert successors_of(cv, 5) == {}


def test_covisits_skip_padding_and_self_pairs() -> None:
    cv = CoVisits(10, slots=4)
    cv.observe(np.array([-1, 3, 4]), np.array([2, 3, -1]), np.ones(3), np.zeros(3))
    assert all(successors_of(cv, r) == {} for r in range(10))


def test_covisits_keep_the_strongest_when_slots_run_out() -> None:
    cv = CoVisits(10, slots=2)
    cv.observe(np.array([0, 0]), np.array([1, 2]), np.array([3.0, 2.0]), np.zeros(2))
    cv.observe(np.array([0]), np.array([3]), np.array([1.0]), np.zeros(1))
    assert set(successors_of(cv, 0)) == {1, 2}
    cv.observe(np.array([0]), np.array([4]), np.array([5.0]), np.zeros(1))
    assert set(successors_of(cv, 0)) == {1, 4}


def test_covisits_newer_pairs_outweigh_older_ones() -> None:
    cv = CoVisits(10, slots=4, half_life_s=3600)
    cv.observe(np.array([0]), np.array([1]), np.ones(1), np.array([0]))
    cv.observe(np.array([0]), np.array([2]), np.ones(1), np.array([HOUR_MS]))
    assert successors_of(cv, 0) == pytest.approx({1: 1 / 3, 2: 2 / 3})


def test_covisits_rescale_keeps_ratios() -> None:
    cv = CoVisits(10, slots=4, half_life_s=60)
    cv.observe(np.array([0]), np.array([1]), np.ones(1), np.array([0]))
    cv.observe(np.array([0]), np.array([2]), np.ones(1), np.array([60_000]))
    late = 100 * HOUR_MS  # far past the float32 range without a rescale
    cv.observe(np.array([5, 5]), np.array([6, 7]), np.ones(2), np.array([late, late]))
    assert successors_of(cv, 5) == pytest.approx({6: 0.5, 7: 0.5})
    assert np.isfinite(cv.weight).all()


def test_covisits_forget_reused_rows_in_both_directions() -> None:
    cv = CoVisits(10, slots=4)
    cv.observe(np.array([0, 1]), np.array([1, 0]), np.ones(2), np.zeros(2))
    cv.reset(np.array([1]))
    assert successors_of(cv, 0) == {}
    assert successors_of(cv, 1) == {}
    cv.observe(np.array([0]), np.array([1]), np.ones(1), np.zeros(1))
    assert successors_of(cv, 0) == pytest.approx({1: 1.0})


def test_covisits_state_round_trip() -> None:
    cv = CoVisits(10, slots=4)
    cv.observe(np.array([0, 0, 2]), np.array([1, 3, 0]), np.ones(3), np.array([0, 5, 9]))
    other = CoVisits(10, slots=4)
    other.load(cv.state(4))
    for r in range(10):
        assert successors_of(other, r) == pytest.approx(successors_of(cv, r))


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
    assert sources.sources["trending"].rows.tolist() == [18, 17]
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


def test_ranker_learns_which_feature_predicts_the_target() -> None:
    rng = np.random.default_rng(0)
    ranker = OnlineRanker(dict.fromkeys(FEATURES, 0.0), lr=0.5)
    b, c, f = 64, 30, len(FEATURES)
    losses = []
    for _ in range(200):
        feats = rng.random((b, c, f))
        target = feats[:, :, 2].argmax(axis=1)  # one column decides
        losses.append(ranker.learn(feats, np.ones((b, c), bool), target, np.ones(b)))
    assert losses[-1] < 0.5 * losses[0]
    assert ranker.weights[2] == ranker.weights.max() > 0


def test_ranker_skips_rows_without_target_and_masks_invalid() -> None:
    ranker = OnlineRanker()
    feats = np.ones((2, 3, len(FEATURES)))
    before = ranker.weights.copy()
    assert ranker.learn(feats, np.ones((2, 3), bool), np.array([-1, -1]), np.ones(2)) is None
    assert (ranker.weights == before).all()
    valid = np.array([[True, False, True]])
    assert ranker.score(feats[:1], valid)[0, 1] == -np.inf


def test_ranker_learns_what_predicts_the_target_in_each_context() -> None:
    # In context 0 column 2 picks the target, in context 1 column 3 does: shared weights alone
    # cannot tell, the context's own offsets can.
    rng = np.random.default_rng(0)
    ranker = OnlineRanker(dict.fromkeys(FEATURES, 0.0), lr=0.5, contexts=2)
    b, c, f = 64, 30, len(FEATURES)
    context = np.arange(b) % 2
    for _ in range(300):
        feats = rng.random((b, c, f))
        target = np.where(
            context == 0, feats[:, :, 2].argmax(axis=1), feats[:, :, 3].argmax(axis=1)
        )
        ranker.learn(feats, np.ones((b, c), bool), target, np.ones(b), context)
    feats = rng.random((b, c, f))
    ok = np.ones((b, c), bool)
    for ctx, column in ((0, 2), (1, 3)):
        picked = ranker.score(feats, ok, np.full(b, ctx)).argmax(axis=1)
        assert (picked == feats[:, :, column].argmax(axis=1)).mean() > 0.75
    # One set of weights for both (contexts=1) can only split the difference.
    shared = OnlineRanker(dict.fromkeys(FEATURES, 0.0), lr=0.5)
    for _ in range(300):
        f_ = rng.random((b, c, f))
        target = np.where(context == 0, f_[:, :, 2].argmax(axis=1), f_[:, :, 3].argmax(axis=1))
        shared.learn(f_, np.ones((b, c), bool), target, np.ones(b))
    picked = shared.score(feats, ok).argmax(axis=1)
    assert (picked == feats[:, :, 2].argmax(axis=1)).mean() < 0.6
    # Without a context, rows are scored in context 0.
    assert (ranker.score(feats, ok) == ranker.score(feats, ok, np.zeros(b, int))).all()
    with pytest.raises(ValueError, match="contexts"):
        OnlineRanker(contexts=0)


def test_ranker_state_round_trip() -> None:
    ranker = OnlineRanker(contexts=3)
    feats = np.random.default_rng(1).random((4, 5, len(FEATURES)))
    ranker.learn(
        feats, np.ones((4, 5), bool), np.array([0, 1, 2, 3]), np.ones(4), np.array([0, 1, 2, 1])
    )
    other = OnlineRanker(contexts=3)
    other.load(ranker.state())
    assert other.as_dict() == ranker.as_dict() and other.steps == 1
    assert (other.context_weights == ranker.context_weights).all()
    assert (ranker.context_weights != 0).any()


def test_trending_offers_this_half_hours_and_these_weeks_sellers() -> None:
    stats = ItemStats(4, popularity_half_life_s=1800.0)
    day = 86_400_000
    # Item 0 sold a lot three days ago; item 1 a little just now; 2 and 3 nothing.
    t0 = 1_700_000_000_000
    stats.observe(np.array([0]), np.array([50.0]), np.array([t0]))
    stats.observe(np.array([1]), np.array([1.0]), np.array([t0 + 3 * day]))
    trending = Candidates(SourceConfig(trending=1), 4, 0.8).sources["trending"]
    trending.refresh(stats, 4)
    # Half-hour popularity: item 1 (item 0's 50 decayed through 144 half-lives); weeks: item 0.
    assert trending.rows.tolist() == [1, 0]
