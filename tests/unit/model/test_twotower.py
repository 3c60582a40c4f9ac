"""Conformance of the retrieval model: learning, determinism, round trips, eviction resets."""

from collections.abc import Iterator

import numpy as np
import pytest

from feedrec.model.twotower import EmbeddingModel, ModelConfig

CFG = ModelConfig(
    dim=16, user_capacity=64, item_capacity=200, history_len=5, negatives=32, lr=0.05, seed=3
)


def synthetic_batches(
    n_batches: int, seed: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
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
    clone.load(m.state())
    assert clone.version == 61
    assert np.array_equal(clone.item_vectors(), m.item_vectors())
    batch = next(synthetic_batches(1, seed=9))
    assert m.learn_many(*batch) == pytest.approx(clone.learn_many(*batch))
    assert np.array_equal(clone.item_vectors(), m.item_vectors())


def test_mismatched_checkpoint_is_refused() -> None:
    other = EmbeddingModel(ModelConfig(dim=8, user_capacity=64, item_capacity=200), device="cpu")
    from feedrec.model.exceptions import ConfigError

    with pytest.raises(ConfigError, match="FEEDREC_DATA_DIR"):
        other.load(trained().state())


def test_dirty_rows_and_resets() -> None:
    m = EmbeddingModel(CFG, device="cpu")
    m.learn_many(
        np.array([1, 2]),
        np.array([5, 6]),
        np.ones(2, np.float32),
        np.array([[7, -1, -1, -1, -1], [-1] * 5]),
    )
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


def one_step_batch(b: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    hist = np.full((b, 5), -1, dtype=np.int64)
    hist[0, :2] = [10, 11]
    return np.arange(b), np.arange(20, 20 + b), np.ones(b, np.float32), hist


def test_a_step_only_changes_the_rows_it_touches() -> None:
    cfg = ModelConfig(dim=8, user_capacity=32, item_capacity=100, history_len=5, negatives=0)
    m = EmbeddingModel(cfg, device="cpu")
    before = m.item_vectors()
    m.learn_many(*one_step_batch())
    after = m.item_vectors()
    changed = set(np.flatnonzero((before != after).any(1)).tolist())
    assert changed == {10, 11, 20, 21, 22, 23}
    assert set(m.pop_dirty_items().tolist()) == changed


def test_item_vectors_is_a_copy_not_a_live_view() -> None:
    m = EmbeddingModel(CFG, device="cpu")
    snap = m.item_vectors()
    snap_copy = snap.copy()
    m.learn_many(*one_step_batch())
    assert np.array_equal(snap, snap_copy)


def test_unknown_users_and_zero_weights_are_safe() -> None:
    m = EmbeddingModel(CFG, device="cpu")
    users, items, _, hist = one_step_batch()
    users[1] = -1
    loss = m.learn_many(users, items, np.zeros(4, np.float32), hist)
    assert np.isfinite(loss)
    assert np.isfinite(m.item_vectors()).all()
    loss = m.learn_many(users, items, np.ones(4, np.float32), hist)
    assert np.isfinite(loss) and loss > 0


def test_bad_rows_fail_with_a_clear_message() -> None:
    m = EmbeddingModel(CFG, device="cpu")
    with pytest.raises(ValueError, match="item rows"):
        m.learn_many(
            np.array([0]),
            np.array([CFG.item_capacity]),
            np.ones(1, np.float32),
            np.full((1, 5), -1),
        )
    with pytest.raises(ValueError, match="same length"):
        m.learn_many(np.array([0, 1]), np.array([3]), np.ones(1, np.float32), np.full((1, 5), -1))


def test_version_never_goes_backwards() -> None:
    m = trained()
    old = EmbeddingModel(CFG, device="cpu").state()  # version 0
    m.load(old)
    assert m.version == 61
    m.learn_many(*one_step_batch())
    assert m.version == 62


def test_reset_items_forgets_optimizer_state() -> None:
    m = trained()
    assert m.state().item_moments[3].any()
    m.reset_items(np.array([3]))
    assert not m.state().item_moments[3].any()


def test_seeded_runs_with_histories_are_identical() -> None:
    def run() -> tuple[float, np.ndarray]:
        m = EmbeddingModel(CFG, device="cpu")
        rng = np.random.default_rng(5)
        loss = 0.0
        for _ in range(5):
            loss = m.learn_many(
                rng.integers(0, 64, 32),
                rng.integers(0, 200, 32),
                rng.random(32, dtype=np.float32),
                rng.integers(-1, 200, (32, 5)),
            )
        return loss, m.user_vectors(np.arange(8), rng.integers(-1, 200, (8, 5)))

    (la, va), (lb, vb) = run(), run()
    assert la == lb and np.array_equal(va, vb)


def test_scores_of_padding_are_minus_inf_and_histories_may_be_short() -> None:
    m = trained()
    vecs = m.user_vectors(np.array([0]), np.array([[1, 2]]))  # padded to history_len
    assert vecs.shape == (1, CFG.dim) and vecs.dtype == np.float32
    s = m.score(vecs, np.array([[4, -1]]))
    assert np.isfinite(s[0, 0]) and np.isneginf(s[0, 1])


def test_ranks_the_liked_item_above_random_ones() -> None:
    """Each user has one favourite item; after training it beats random items for most users."""
    cfg = ModelConfig(
        dim=16, user_capacity=100, item_capacity=1000, history_len=5, negatives=32, seed=1
    )
    m = EmbeddingModel(cfg, device="cpu")
    rng = np.random.default_rng(0)
    fav = rng.permutation(1000)[:100]
    for _ in range(150):
        users = rng.integers(0, 100, 256)
        m.learn_many(users, fav[users], np.ones(256, np.float32), np.full((256, 5), -1))
    vecs = m.user_vectors(np.arange(100), np.full((100, 5), -1))
    scores = vecs @ m.item_vectors().T
    ranks = (scores > scores[np.arange(100), fav][:, None]).sum(1)
    assert np.mean(ranks < 10) > 0.9


def test_learn_many_handles_a_production_sized_batch() -> None:
    cfg = ModelConfig(dim=32, user_capacity=5000, item_capacity=5000, history_len=20)
    m = EmbeddingModel(cfg, device="cpu")
    rng = np.random.default_rng(0)
    hist = rng.integers(-1, 5000, (1000, 20))
    loss = m.learn_many(
        rng.integers(0, 5000, 1000),
        rng.integers(0, 5000, 1000),
        rng.random(1000, dtype=np.float32),
        hist,
    )
    assert np.isfinite(loss) and m.version == 1
