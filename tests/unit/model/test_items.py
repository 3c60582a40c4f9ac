"""Item statistics: popularity at two time scales, categories, availability, the catalogue."""

import math

import numpy as np
import pytest

from feedrec.model.events import CatalogItem
from feedrec.model.items import UNKNOWN_CATEGORY, ItemStats

HOUR_MS = 3_600_000


def test_popularity_halves_every_half_life_at_both_time_scales() -> None:
    stats = ItemStats(4, popularity_half_life_s=3600.0, slow_half_life_s=7200.0)
    stats.observe(np.array([0, 0, 1]), np.ones(3), np.array([0, 0, HOUR_MS]) + 1)
    # Item 0's two events are an hour old at the newest event: one half-life, half a slow one.
    assert stats.popularity[:2] == pytest.approx([1.0, 1.0])
    assert stats.popularity_slow[:2] == pytest.approx([2 * 2**-0.5, 1.0])
    stats.observe(np.array([2]), np.array([1.0]), np.array([3 * HOUR_MS + 1]))
    assert stats.popularity[:3] == pytest.approx([0.25, 0.25, 1.0])
    assert stats.last_ts[:3].tolist() == [1, HOUR_MS + 1, 3 * HOUR_MS + 1]


def test_an_event_older_than_the_newest_adds_its_decayed_weight() -> None:
    stats = ItemStats(2, popularity_half_life_s=3600.0)
    stats.observe(np.array([0]), np.array([1.0]), np.array([10 * HOUR_MS]))
    stats.observe(np.array([1]), np.array([1.0]), np.array([9 * HOUR_MS]))  # late
    assert stats.popularity.tolist() == pytest.approx([1.0, 0.5])


def test_categories_take_the_last_named_and_unknown_is_minus_one() -> None:
    stats = ItemStats(4)
    stats.set_categories(np.array([0, 1, 0, 2]), ["shoes", "hats", "socks", None])
    codes = stats.category_of(np.array([[0, 1], [2, -1]]))
    assert codes[0, 0] == stats.category_code("socks") and codes[0, 1] == stats.category_code(
        "hats"
    )
    assert codes[1].tolist() == [UNKNOWN_CATEGORY, UNKNOWN_CATEGORY]


def test_catalogue_records_wait_for_the_next_batch_and_reach_rows_given_later() -> None:
    stats = ItemStats(4)
    stats.queue(CatalogItem("a", category="toys", available=False))
    stats.queue(CatalogItem("b", category="books"))
    assert stats.available.all()  # nothing applied until the pipeline's thread says so
    assert stats.apply_catalog({"a": 0}) == 2
    assert not stats.available[0] and stats.category[0] == stats.category_code("toys")
    stats.describe(["b"], np.array([3]))  # b gets a row later: its record is remembered
    assert stats.category[3] == stats.category_code("books")


def test_reset_rows_forget_everything_of_their_old_items() -> None:
    stats = ItemStats(3)
    stats.observe(np.array([1]), np.array([5.0]), np.array([1000]))
    stats.set_categories(np.array([1]), ["x"])
    stats.set_keys(np.array([1]), ["item-1"])
    stats.available[1] = False
    stats.reset(np.array([1]))
    assert stats.popularity[1] == stats.popularity_slow[1] == 0 and stats.last_ts[1] == 0
    assert stats.category[1] == UNKNOWN_CATEGORY and stats.available[1] and stats.key[1] == 0


def test_state_round_trip() -> None:
    stats = ItemStats(5)
    stats.observe(np.array([0, 1]), np.array([1.0, 2.0]), np.array([1000, 2000]))
    stats.set_categories(np.array([0, 1]), ["a", "b"])
    stats.set_keys(np.array([0, 1]), ["i0", "i1"])
    twin = ItemStats(5)
    twin.load(stats.state(rows_used=2))
    for name in ("popularity", "popularity_slow", "last_ts", "category", "available", "key"):
        assert np.array_equal(getattr(twin, name), getattr(stats, name)), name
    assert twin.category_code("b") == stats.category_code("b")
    # Both go on decaying from the same clocks.
    for s in (stats, twin):
        s.observe(np.array([2]), np.array([1.0]), np.array([3000 + HOUR_MS]))
    assert twin.popularity.tolist() == stats.popularity.tolist()
    assert math.isclose(twin.popularity_slow[2], 1.0)
