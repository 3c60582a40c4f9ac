"""The hot path's shortcuts give exactly what the plain numpy / torch operations they replace
give, on random inputs of every shape they meet (ties, padding, empty, keys too wide to pack)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from feedrec.model import seen
from feedrec.model.covisit import stable_order, unique_groups
from feedrec.model.items import UNKNOWN_CATEGORY, ItemStats
from feedrec.model.ranking import RankConfig, rank
from feedrec.model.sources.base import Lookup, top_by_sort, top_per_group
from feedrec.model.twotower import EmbeddingModel

SEEDS = range(40)


def described(rows: np.ndarray, stats: ItemStats) -> tuple[np.ndarray, np.ndarray]:
    """The availability and category codes of candidate ``rows``, as retrieval hands them to
    the ranking."""
    return stats.available[np.maximum(rows, 0)], stats.category_of(rows)


@pytest.mark.parametrize("seed", SEEDS)
def test_stable_order_and_unique_groups_match_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 3000))
    high = [5, 10**6, 2**62][seed % 3]  # many ties, few ties, keys too wide to pack
    keys = rng.integers(-1 if seed % 5 == 0 else 0, high, n)
    assert (stable_order(keys) == np.argsort(keys, kind="stable")).all()
    unique, order, group = unique_groups(keys)
    expected, inverse = np.unique(keys, return_inverse=True)
    values = rng.random(n)
    assert (unique == expected).all()
    # Sums in the same order as np.unique's inverse with a bincount: equal to the last bit.
    assert (
        np.bincount(group, weights=values[order], minlength=len(unique))
        == np.bincount(inverse, weights=values, minlength=len(unique))
    ).all()


@pytest.mark.parametrize("seed", SEEDS)
def test_top_per_group_matches_a_full_sort_on_sorted_and_unsorted_groups(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, n_groups, k = int(rng.integers(1, 2000)), int(rng.integers(1, 200)), int(rng.integers(1, 30))
    groups = rng.integers(0, n_groups, n)
    if seed % 2:
        groups = np.sort(groups)  # the per-row path
    values = rng.integers(0, 10**6, n)
    scores = rng.integers(1, 6, n) / 4.0  # many ties: their order must be the input's
    assert (
        top_per_group(groups, values, scores, n_groups, k)
        == top_by_sort(groups, values, scores, n_groups, k)
    ).all()


@pytest.mark.parametrize("seed", SEEDS[:10])
def test_lookup_sums_per_row_key_and_column(seed: int) -> None:
    rng = np.random.default_rng(seed)
    b, width, n = 7, 50, 400
    batch, keys = rng.integers(0, b, n), rng.integers(-1, width, n)
    values, columns = rng.random(n), rng.integers(0, 3, n)
    table = Lookup(batch, keys, values, width, columns, 3)
    query = rng.integers(-1, width, (b, 30))
    got = table(query)
    for row in range(b):
        for c, key in enumerate(query[row]):
            for col in range(3):
                mask = (batch == row) & (keys == key) & (columns == col) & (key >= 0)
                assert got[row, c, col] == pytest.approx(values[mask].sum())


@pytest.mark.parametrize("seed", SEEDS[:10])
def test_matches_finds_every_equal_pair(seed: int) -> None:
    rng = np.random.default_rng(seed)
    left = torch.from_numpy(rng.integers(0, 30, int(rng.integers(0, 200))))
    right = torch.from_numpy(rng.integers(0, 30, int(rng.integers(0, 200))))
    i, j = EmbeddingModel._matches(left, right)
    got = sorted(zip(i.tolist(), j.tolist(), strict=True))
    brute = (left[:, None] == right[None, :]).nonzero().tolist()
    assert got == sorted(map(tuple, brute))


def _reference_add(filters: list[bytearray], count: int, item: str) -> int:
    """One item into a chain of filters, bit by bit, as the module docstring describes."""
    if not filters or count >= seen.PER_FILTER:
        filters.append(bytearray(seen.FILTER_BYTES))
        del filters[: max(len(filters) - seen.MAX_FILTERS, 0)]
        count = 0
    key, new = seen.item_key(item), False
    for j in range(seen.HASHES):
        bit = (key >> (11 * j)) & (seen.FILTER_BYTES * 8 - 1)
        if not filters[-1][bit >> 3] & (1 << (bit & 7)):
            filters[-1][bit >> 3] |= 1 << (bit & 7)
            new = True
    return count + new


@pytest.mark.parametrize("seed", SEEDS[:10])
def test_seen_filters_match_a_bit_by_bit_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    state, count, ref_count = b"", 0, 0
    filters: list[bytearray] = []
    for _ in range(int(rng.integers(1, 60))):
        items = [f"i{x}" for x in rng.integers(0, 4000, int(rng.integers(0, 80)))]
        state, count = seen.add_many(state, count, items)
        for item in items:
            ref_count = _reference_add(filters, ref_count, item)
        assert state == b"".join(filters) and count == ref_count
    probes = [f"i{x}" for x in rng.integers(0, 8000, 200)]
    expected = [
        any(
            all(
                f[b >> 3] & (1 << (b & 7))
                for b in [(seen.item_key(p) >> (11 * j)) & 2047 for j in range(seen.HASHES)]
            )
            for f in filters
        )
        for p in probes
    ]
    assert [seen.has(state, p) for p in probes] == expected
    keys = seen.item_keys(probes).reshape(1, -1)
    assert seen.contains([state], keys)[0].tolist() == expected


def _rank_one_by_one(
    rows: np.ndarray,
    scores: np.ndarray,
    excluded: list[set[int]],
    stats: ItemStats,
    cfg: RankConfig,
    current: list[list[int]],
) -> list[list[tuple[int, float]]]:
    """The per-category cap walked item by item over every candidate, as a reader would: the
    reference of :func:`model.ranking.rank`, which reads only the head of each list first."""
    out = []
    for b in range(len(rows)):
        cands = [
            (float(s), j, int(r))
            for j, (r, s) in enumerate(zip(rows[b], scores[b], strict=True))
            if r >= 0 and stats.available[r] and np.isfinite(s)
        ]
        cands.sort(key=lambda c: (-c[0], c[1]))  # by score, ties in column order
        chosen: list[tuple[int, float]] = []
        per_cat: dict[int, int] = {}
        for s, _, r in cands:
            if r in excluded[b]:
                continue
            cat = int(stats.category[r])
            if cfg.max_per_category and cat != UNKNOWN_CATEGORY and cat not in current[b]:
                if per_cat.get(cat, 0) >= cfg.max_per_category:
                    continue
                per_cat[cat] = per_cat.get(cat, 0) + 1
            chosen.append((r, s))
            if len(chosen) == cfg.top_n:
                break
        out.append(chosen)
    return out


@pytest.mark.parametrize("seed", SEEDS)
def test_rank_matches_the_item_by_item_cap(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_items, b, c = 60, int(rng.integers(1, 30)), int(rng.integers(1, 80))
    stats = ItemStats(n_items)
    stats.category[:] = rng.integers(-1, 6, n_items)  # few categories, some unknown
    stats.available[:] = rng.random(n_items) > 0.1
    rows = np.array(
        [
            rng.permutation(n_items)[:c] if c <= n_items else rng.integers(0, n_items, c)
            for _ in range(b)
        ]
    )
    rows[rng.random(rows.shape) < 0.2] = -1
    scores = rng.integers(0, 5, rows.shape).astype(np.float64)  # many ties
    scores[rng.random(rows.shape) < 0.1] = -np.inf
    excluded = [set(rng.integers(0, n_items, int(rng.integers(0, 4))).tolist()) for _ in range(b)]
    current = [rng.integers(-1, 6, 2).tolist() for _ in range(b)]
    cfg = RankConfig(
        top_n=int(rng.integers(1, 15)),
        candidates=max(c, 15),
        max_per_category=int(rng.integers(0, 4)),
    )
    assert rank(rows, scores, excluded, cfg, *described(rows, stats), current) == _rank_one_by_one(
        rows, scores, excluded, stats, cfg, current
    )
    assert rank(rows, scores, excluded, cfg, *described(rows, stats)) == _rank_one_by_one(
        rows, scores, excluded, stats, cfg, [[]] * b
    )
