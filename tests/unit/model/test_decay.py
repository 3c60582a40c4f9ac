"""Half-lives, decayed arrays and weights stored with a moving origin."""

import math

import numpy as np
import pytest

from feedrec.model.decay import MovingOrigin, add_decayed, rate_per_ms


def test_a_half_life_is_a_rate_and_none_is_no_decay() -> None:
    assert math.exp(-rate_per_ms(10.0) * 10_000) == pytest.approx(0.5)
    assert rate_per_ms(None) == 0.0
    with pytest.raises(ValueError, match="half-life"):
        rate_per_ms(0.0)


def test_add_decayed_moves_the_clock_to_the_newest_event() -> None:
    scores = np.zeros(2)
    clock = add_decayed(
        scores, 0, rate_per_ms(1.0), np.array([0]), np.array([4.0]), np.array([5000])
    )
    clock = add_decayed(
        scores, clock, rate_per_ms(1.0), np.array([1]), np.array([1.0]), np.array([7000])
    )
    assert clock == 7000 and scores.tolist() == pytest.approx([1.0, 1.0])


def test_a_moving_origin_keeps_ratios_through_a_rescale() -> None:
    origin = MovingOrigin(half_life_s=1.0, rescale_at=5.0)
    x, rescale = origin.exponents(np.array([0, 1000]))
    assert rescale is None and np.exp(x).tolist() == pytest.approx([1.0, 2.0])
    stored = np.exp(x)
    # 10 s later the factor would be 2**10 > e**5: the origin moves and the old weights shrink.
    x, rescale = origin.exponents(np.array([10_000]))
    assert rescale == pytest.approx(2.0**-10) and origin.origin_ms == 10_000
    stored = np.r_[stored * rescale, np.exp(x)]
    assert stored / stored[-1] == pytest.approx([2.0**-10, 2.0**-9, 1.0])
    assert origin.at(11_000) == pytest.approx(0.5)


def test_one_time_and_arrays_give_the_same_factors() -> None:
    a, b = MovingOrigin(3600.0), MovingOrigin(3600.0)
    for ts in (1_000, 5_000_000, 9_000_000):
        one, _ = a.exponents(ts)
        many, _ = b.exponents(np.array([ts]))
        assert one == many[0]
    assert MovingOrigin(None).exponents(np.array([0, 10**12]))[0].tolist() == [0.0, 0.0]
