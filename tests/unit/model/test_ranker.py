"""The online ranker: a linear score over candidate features, learned from what users do next,
with offsets per context."""

import numpy as np
import pytest

from feedrec.model.candidates import FEATURES
from feedrec.model.ranker import OnlineRanker


def test_ranker_learns_which_feature_predicts_the_target() -> None:
    rng = np.random.default_rng(0)
    ranker = OnlineRanker(dict.fromkeys(FEATURES, 0.0), lr=0.5)
    b, c, f = 64, 30, len(FEATURES)
    losses: list[float | None] = []
    for _ in range(200):
        feats = rng.random((b, c, f))
        target = feats[:, :, 2].argmax(axis=1)  # one column decides
        losses.append(ranker.learn(feats, np.ones((b, c), bool), target, np.ones(b)))
    first, last = losses[0], losses[-1]
    assert first is not None and last is not None
    assert last < 0.5 * first
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
