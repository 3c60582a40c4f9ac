"""Co-visitation tables: bounded, decayed, vectorised successors of every item row."""

import numpy as np
import pytest

from feedrec.model.covisit import CoVisits

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
