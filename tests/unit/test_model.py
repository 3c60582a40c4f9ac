"""Conformance of the retrieval model: learning, determinism, round trips, eviction resets."""

import numpy as np
import pytest

from model.twotower import EmbeddingModel, ModelConfig

CFG = ModelConfig(dim=16, user_capacity=64, item_capacity=200, history_len=5, negatives=32,
                  lr=0.05, seed=3)


def synthetic_batches(n_batches: int, seed: int = 0):
    """Users 0-31 like items 0-49, users 32-63 like items 100-149."""
    rng = np.random.default_rng(seed)
    for _ in range(n_batches):
        users = rng.integers(0, 64, 128)
        items = np.where(users < 32, rng.integers(0, 50, 128), rng.integers(100, 150, 128))
        hist = np.full((128, 5), -1, dtype=np.int64)
        yield users, items, np.ones(128, np.float32), hist


def trained(seed: int = 0) -> EmbeddingModel:
    m = EmbeddingModel(CFG, device="cpu")
    m.learn_many(np.array([0]), np.array([199]), np.ones(1, np.float32), np.full((1, 5), -1))
    for batch in synthetic_batches(60, seed):
        m.learn_many(*batch)
    return m


def test_learning_separates_tastes() -> None:
    m = trained()
    vecs = m.user_vectors(np.array([0, 40]), np.full((2, 5), -1))
    items = m.item_vectors()
    scores = vecs @ items.T
    assert scores[0, :50].mean() > scores[0, 100:150].mean() + 0.5
    assert scores[1, 100:150].mean() > scores[1, :50].mean() + 0.5


def test_history_alone_serves_an_unknown_user() -> None:
    m = trained()
    hist = np.array([[100, 101, 102, -1, -1]])
    (vec,) = m.user_vectors(np.array([-1]), hist)
    scores = m.item_vectors() @ vec
    assert scores[100:150].mean() > scores[:50].mean()


def test_seeded_runs_are_identical() -> None:
    a, b = trained(), trained()
    assert np.array_equal(a.item_vectors(), b.item_vectors())


def test_versions_count_steps_and_state_round_trips() -> None:
    m = trained()
    assert m.version == 61
    clone = EmbeddingModel(CFG, device="cpu")
    clone.load_state_dict(m.state_dict())
    assert clone.version == 61
    assert np.array_equal(clone.item_vectors(), m.item_vectors())
    batch = next(synthetic_batches(1, seed=9))
    assert m.learn_many(*batch) == pytest.approx(clone.learn_many(*batch))
    assert np.array_equal(clone.item_vectors(), m.item_vectors())


def test_mismatched_checkpoint_is_refused() -> None:
    other = EmbeddingModel(ModelConfig(dim=8, user_capacity=64, item_capacity=200), device="cpu")
    from model.exceptions import ConfigError

    with pytest.raises(ConfigError, match="FEEDREC_DATA_DIR"):
        other.load_state_dict(trained().state_dict())


def test_dirty_rows_and_resets() -> None:
    m = EmbeddingModel(CFG, device="cpu")
    m.learn_many(np.array([1, 2]), np.array([5, 6]), np.ones(2, np.float32),
                 np.array([[7, -1, -1, -1, -1], [-1] * 5]))
    dirty = set(m.pop_dirty_items().tolist())
    assert {5, 6, 7} <= dirty
    assert m.pop_dirty_items().size == 0
    before = m.item_vectors(np.array([5]))
    m.reset_items(np.array([5]))
    assert not np.array_equal(before, m.item_vectors(np.array([5])))
    assert m.pop_dirty_items().tolist() == [5]
    m.reset_users(np.array([1]))
    assert np.allclose(m.user_vectors(np.array([1]), np.full((1, 5), -1)), 0.0)


def test_score_matches_dot_products() -> None:
    m = trained()
    vecs = m.user_vectors(np.array([0, 1]), np.full((2, 5), -1))
    rows = np.array([[0, 1, 2], [3, 4, 5]])
    expected = np.einsum("bd,bcd->bc", vecs, m.item_vectors(rows.reshape(-1)).reshape(2, 3, -1))
    assert np.allclose(m.score(vecs, rows), expected, atol=1e-5)
