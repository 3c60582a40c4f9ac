"""The prequential evaluator on hand-computed cases, every method on a small stream, tuning on the
tuning window alone, the paired bootstrap on cases with known answers, and the CLI's report."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from feedrec.model.events import Event
from feedrec.streams.cli import main
from feedrec.streams.tools.evaluation import tuning
from feedrec.streams.tools.evaluation.bootstrap import paired_ratio
from feedrec.streams.tools.evaluation.datasets import simulated_events
from feedrec.streams.tools.evaluation.protocol import (
    evaluate,
    history_bucket,
    ndcg,
    rank_of,
    split_time,
)
from feedrec.streams.tools.evaluation.registry import METHOD_NAMES, grid, make_method

T0 = 1_700_000_000_000


def ev(n: int, user: str, item: str, kind: str, ts: int, category: str | None = None) -> Event:
    return Event(f"e{n}", user, item, T0 + ts, category=category, event_type=kind)


class Scripted:
    """Answers fixed lists and logs what it was asked and taught, in order."""

    #: Nothing to tune (the evaluator's protocol asks every method for its variants).
    GRID: ClassVar[tuple[dict, ...]] = ({},)

    def __init__(self, lists: dict[str, list[str]]) -> None:
        self.lists = lists
        self.log: list[tuple[str, str]] = []

    def learn(self, events: Sequence[Event]) -> None:
        self.log += [("learn", e.event_id) for e in events]

    def recommend(self, user_id: str, now_ms: int, k: int) -> list[str]:
        self.log.append(("ask", user_id))
        return self.lists.get(user_id, [])[:k]


def test_rank_and_ndcg_by_hand() -> None:
    assert rank_of("b", ["a", "b", "c"]) == 2
    assert rank_of("z", ["a", "b"]) == 0
    assert ndcg(1, 10) == 1.0
    assert ndcg(3, 10) == pytest.approx(0.5)
    assert ndcg(11, 10) == 0.0 and ndcg(0, 10) == 0.0
    assert [history_bucket(n) for n in (0, 1, 4, 5, 99)] == ["cold", "1-4", "1-4", "5+", "5+"]


def test_metrics_of_a_tiny_stream_by_hand() -> None:
    lists = {"u": ["a", "b", "c", "d"], "v": ["x", "y"]}
    stream = [
        ev(1, "u", "a", "browse", 0),
        ev(2, "u", "b", "click", 10),  # tune window (split at 70% of 0..100 = 70)
        ev(3, "u", "c", "cart", 80),  # rank 3
        ev(4, "v", "q", "purchase", 90),  # absent, cold user
        ev(5, "u", "a", "purchase", 100),  # rank 1, user has 3 earlier events
    ]
    m = Scripted(lists)
    r = evaluate(stream, {"m": m}, ks=(1, 3))
    rep = r.report["m"]
    assert rep["events"] == 3
    assert rep["hit_rate@1"] == pytest.approx(1 / 3)
    assert rep["hit_rate@3"] == pytest.approx(2 / 3)
    assert rep["ndcg@3"] == pytest.approx((0.5 + 0 + 1) / 3)
    assert rep["mrr"] == pytest.approx((1 / 3 + 0 + 1) / 3)
    assert rep["by_type"]["cart"]["hit_rate@3"] == 1.0
    assert rep["by_type"]["purchase"]["events"] == 2
    assert rep["by_history"]["cold"]["events"] == 1
    assert rep["by_history"]["1-4"]["hit_rate@3"] == 1.0
    assert r.tune["m"]["events"] == 1 and r.tune["m"]["hit_rate@3"] == 1.0
    # Lists cut at K = 3: a, b, c for u and x, y for v; the stream has 4 items (a, b, c, q).
    assert rep["coverage"] == pytest.approx(5 / 4)
    assert "browse" not in rep["by_type"]


def test_each_scored_event_is_asked_before_it_is_learned() -> None:
    stream = [
        ev(1, "u", "a", "browse", 0),
        ev(2, "u", "b", "browse", 1),
        ev(3, "u", "c", "click", 2),
        ev(4, "u", "d", "browse", 3),
    ]
    m = Scripted({})
    evaluate(stream, {"m": m})
    assert m.log == [
        ("learn", "e1"),
        ("learn", "e2"),
        ("ask", "u"),
        ("learn", "e3"),
        ("learn", "e4"),
    ]


def test_browse_is_scored_only_when_asked_and_kept_apart() -> None:
    stream = [ev(1, "u", "a", "browse", 0), ev(2, "u", "a", "browse", 100)]
    m = Scripted({"u": ["a"]})
    r = evaluate(stream, {"m": m}, score_browse=True)
    assert r.report["m"]["events"] == 0
    assert r.report["m"]["by_type"]["browse"]["hit_rate@10"] == 1.0


def test_diversity_is_the_share_of_distinct_categories() -> None:
    stream = [
        ev(1, "w", "a", "browse", 0, "c1"),
        ev(2, "w", "b", "browse", 1, "c1"),
        ev(3, "w", "c", "browse", 2, "c2"),
        ev(4, "u", "a", "click", 100),
    ]
    r = evaluate(stream, {"m": Scripted({"u": ["a", "b", "c", "d"]})})
    assert r.report["m"]["diversity"] == pytest.approx(3 / 4)  # c1, c2 and d (no category)


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_every_method_runs_and_learns(name: str) -> None:
    events = simulated_events(3000)
    kw = {"retrain_every": 1000} if name == "implicit-als" else {}
    method = make_method(name, **kw)
    assert grid(name), "every method has variants for --tune"
    r = evaluate(events, {name: method})
    rep = r.report[name]
    assert rep["events"] > 100
    assert rep["hit_rate@20"] > 0.05  # far above chance: 20 of 5000 items is 0.004
    recs = method.recommend(events[-1].user_id, events[-1].ts, 20)
    assert len(recs) == len(set(recs)) and 0 < len(recs) <= 20


def test_unknown_method_names_say_what_exists() -> None:
    with pytest.raises(ValueError, match="popularity"):
        make_method("nope")


def test_cli_writes_the_documented_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "tiny.csv"
    rows = ["ts,user_id,item_id,event_type"]
    for i in range(200):
        rows.append(f"{T0 + 1000 * i},u{i % 7},i{i % 11},{['browse', 'click', 'cart'][i % 3]}")
    csv.write_text("\n".join(rows) + "\n")
    out = tmp_path / "r.json"
    chart = tmp_path / "r.png"
    assert (
        main(
            [
                "evaluate",
                "--dataset",
                str(csv),
                "--method",
                "popularity",
                "--method",
                "covisitation",
                "--json",
                str(out),
                "--chart",
                str(chart),
            ]
        )
        == 0
    )
    data = json.loads(out.read_text())
    assert data["dataset"] == "tiny.csv" and data["events"] == 200
    assert set(data["methods"]) == {"popularity", "covisitation"}
    for m in data["methods"].values():
        for key in ("hit_rate@10", "hit_rate@20", "ndcg@10", "ndcg@20", "mrr"):
            assert 0.0 <= m[key] <= 1.0 and not math.isnan(m[key])
    assert chart.stat().st_size > 1000
    assert "covisitation" in capsys.readouterr().out


class Recorder:
    """Remembers the newest event time it was shown or asked about."""

    GRID = ({"x": 1}, {"x": 2})
    newest = 0

    def __init__(self, x: int) -> None:
        self.x = x
        self.last: dict[str, str] = {}

    def learn(self, events: Sequence[Event]) -> None:
        Recorder.newest = max(Recorder.newest, *(e.ts for e in events))
        self.last |= {e.user_id: e.item_id for e in events}

    def recommend(self, user_id: str, now_ms: int, k: int) -> list[str]:
        Recorder.newest = max(Recorder.newest, now_ms)
        # Variant 2 offers the user's last item (often what they go to next); 1 offers nothing.
        return [self.last[user_id]] if self.x == 2 and user_id in self.last else []


def test_tuning_reads_nothing_of_the_report_window(monkeypatch: pytest.MonkeyPatch) -> None:
    events = simulated_events(3000)
    split = split_time(events[0].ts, events[-1].ts, 0.7)
    monkeypatch.setattr(tuning, "grid", lambda name: Recorder.GRID)
    monkeypatch.setattr(tuning, "make_method", lambda name, **kw: Recorder(**kw))
    Recorder.newest = 0
    tuned = tuning.tune(events, ["rec"], 0.7)
    assert 0 < Recorder.newest < split
    assert tuned["rec"].chosen == {"x": 2} and set(tuned["rec"].scores) == {"x=1", "x=2"}


def test_tuning_a_real_grid_ignores_a_poisoned_report_window() -> None:
    events = simulated_events(3000)
    last = max(e.ts for e in events)
    # Past the split nothing may be read: an event without a type would make evaluate refuse.
    poison = Event("late", "u0", "i0", last, event_type=None)
    tuned = tuning.tune([*events, poison], ["popularity", "covisitation"], 0.7)
    for name, t in tuned.items():
        assert t.chosen in [dict(v) for v in grid(name)]
        assert len(t.scores) == len(grid(name))
        assert t.scores[tuning.label(t.chosen)] == max(t.scores.values())
    # The report window's events change nothing.
    again = tuning.tune(
        [e for e in events if e.ts < split_time(events[0].ts, last, 0.7)] + [poison],
        ["popularity", "covisitation"],
        0.7,
    )
    assert {n: t.scores for n, t in again.items()} == {n: t.scores for n, t in tuned.items()}


def test_bootstrap_of_proportional_hits_is_exact() -> None:
    # Every user's A-hits are twice their B-hits: every resample gives 2, so the interval is [2, 2].
    users = [u for u in "abcdefgh" for _ in range(6)]
    b = [1, 0, 0, 0, 0, 0] * 8
    a = [1, 1, 0, 0, 0, 0] * 8
    ci = paired_ratio(users, a, b, replicates=500)
    assert (ci.ratio, ci.low, ci.high, ci.users) == (2.0, 2.0, 2.0, 8)


def test_bootstrap_matches_the_delta_method_and_covers_the_truth() -> None:
    # Independent users, one event each, A hits with p=0.3 and B with p=0.2 (independently):
    # the delta method gives var(log ratio) ~ (1-pa)/(n pa) + (1-pb)/(n pb).
    rng = np.random.default_rng(7)
    n, pa, pb = 4000, 0.3, 0.2
    users = [str(i) for i in range(n)]
    a, b = rng.random(n) < pa, rng.random(n) < pb
    ci = paired_ratio(users, a.tolist(), b.tolist(), replicates=2000, seed=1)
    se = math.sqrt((1 - pa) / (n * pa) + (1 - pb) / (n * pb))
    width = math.log(ci.high) - math.log(ci.low)
    assert width == pytest.approx(2 * 1.96 * se, rel=0.1)
    # Coverage: over repeated samples the 95% interval holds the true ratio about 95% of the time.
    covered = 0
    for trial in range(200):
        a, b = rng.random(400) < pa, rng.random(400) < pb
        ci = paired_ratio(users[:400], a.tolist(), b.tolist(), replicates=400, seed=trial)
        covered += ci.low <= pa / pb <= ci.high
    assert 0.88 <= covered / 200 <= 0.99


def test_bootstrap_pairs_users() -> None:
    # A wins on the same users B does, plus one more: correlated hits make the interval far
    # narrower than independent ones would, and it stays above 1.
    users = [str(i) for i in range(300)]
    b = [int(i % 3 == 0) for i in range(300)]
    a = [int(i % 3 == 0 or i % 10 == 1) for i in range(300)]
    ci = paired_ratio(users, a, b)
    assert ci.low > 1.0 and ci.high - ci.low < 0.3
    with pytest.raises(ValueError, match="one user per value"):
        paired_ratio(users, a, b[:-1])


def test_cli_tune_records_every_choice_and_the_interval(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.json"
    assert (
        main(
            [
                "evaluate",
                "--dataset",
                "sim:2000",
                "--method",
                "feedrec",
                "--method",
                "popularity",
                "--tune",
                "--jobs",
                "1",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    data = json.loads(out.read_text())
    for name in ("feedrec", "popularity"):
        assert data["tuned"][name]["chosen"] in [dict(p) for p in grid(name)]
        assert len(data["tuned"][name]["hit_rate@20"]) == len(grid(name))
    cmp = data["comparison"]
    assert cmp["against"] == "popularity" and cmp["low"] <= cmp["ratio"] <= cmp["high"]
    assert "chosen:" in capsys.readouterr().out
