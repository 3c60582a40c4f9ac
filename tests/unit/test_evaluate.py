"""The prequential evaluator on hand-computed cases, and every method on a small stream."""

from __future__ import annotations

import json
import math

import pytest

from model.evaluate import evaluate, history_bucket, ndcg, rank_of
from model.events import Event
from model.methods import METHOD_NAMES, CoVisitation, Popularity, make_method
from streams.cli import main
from streams.evaluation import TUNE_GRID, simulated_events, tune_feedrec

T0 = 1_700_000_000_000


def ev(n: int, user: str, item: str, kind: str, ts: int, category: str | None = None) -> Event:
    return Event(f"e{n}", user, item, T0 + ts, category=category, event_type=kind)


class Scripted:
    """Answers fixed lists and logs what it was asked and taught, in order."""

    def __init__(self, lists: dict[str, list[str]]) -> None:
        self.lists = lists
        self.log: list[tuple[str, str]] = []

    def learn(self, events):
        self.log += [("learn", e.event_id) for e in events]

    def recommend(self, user_id, now_ms, k):
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
        ev(2, "u", "b", "click", 10),     # tune window (split at 70% of 0..100 = 70)
        ev(3, "u", "c", "cart", 80),      # rank 3
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
    stream = [ev(1, "u", "a", "browse", 0), ev(2, "u", "b", "browse", 1),
              ev(3, "u", "c", "click", 2), ev(4, "u", "d", "browse", 3)]
    m = Scripted({})
    evaluate(stream, {"m": m})
    assert m.log == [("learn", "e1"), ("learn", "e2"), ("ask", "u"), ("learn", "e3"),
                     ("learn", "e4")]


def test_browse_is_scored_only_when_asked_and_kept_apart() -> None:
    stream = [ev(1, "u", "a", "browse", 0), ev(2, "u", "a", "browse", 100)]
    m = Scripted({"u": ["a"]})
    r = evaluate(stream, {"m": m}, score_browse=True)
    assert r.report["m"]["events"] == 0
    assert r.report["m"]["by_type"]["browse"]["hit_rate@10"] == 1.0


def test_diversity_is_the_share_of_distinct_categories() -> None:
    stream = [ev(1, "w", "a", "browse", 0, "c1"), ev(2, "w", "b", "browse", 1, "c1"),
              ev(3, "w", "c", "browse", 2, "c2"), ev(4, "u", "a", "click", 100)]
    r = evaluate(stream, {"m": Scripted({"u": ["a", "b", "c", "d"]})})
    assert r.report["m"]["diversity"] == pytest.approx(3 / 4)  # c1, c2 and d (no category)


def test_popularity_decays_with_time() -> None:
    p = Popularity(half_life_s=1.0)
    p.learn([ev(1, "u", "old", "purchase", 0)])            # weight 4
    p.learn([ev(2, "u", "new", "click", 3000)])            # weight 1; old decayed to 0.5
    assert p.recommend("x", T0 + 3000, 2) == ["new", "old"]


def test_covisitation_follows_recent_items() -> None:
    c = CoVisitation(include_history=False)
    c.learn([ev(1, "a", "x", "browse", 0), ev(2, "a", "y", "click", 1),
             ev(3, "b", "x", "browse", 2), ev(4, "b", "z", "browse", 3),
             ev(5, "c", "x", "browse", 4)])
    assert c.recommend("c", T0 + 5, 2) == ["y", "z"]  # x -> y (click) outweighs x -> z
    with_history = CoVisitation()
    with_history.learn([ev(1, "a", "x", "browse", 0)])
    assert with_history.recommend("a", T0 + 1, 1) == ["x"]


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_every_method_runs_and_learns(name: str) -> None:
    events = simulated_events(3000)
    kw = {"retrain_every": 1000} if name == "implicit-als" else {}
    method = make_method(name, **kw)
    r = evaluate(events, {name: method})
    rep = r.report[name]
    assert rep["events"] > 100
    assert rep["hit_rate@20"] > 0.05  # far above chance: 20 of 5000 items is 0.004
    recs = method.recommend(events[-1].user_id, events[-1].ts, 20)
    assert len(recs) == len(set(recs)) and 0 < len(recs) <= 20


def test_unknown_method_names_say_what_exists() -> None:
    with pytest.raises(ValueError, match="popularity"):
        make_method("nope")


def test_cli_writes_the_documented_json(tmp_path, capsys) -> None:
    csv = tmp_path / "tiny.csv"
    rows = ["ts,user_id,item_id,event_type"]
    for i in range(200):
        rows.append(f"{T0 + 1000 * i},u{i % 7},i{i % 11},{['browse', 'click', 'cart'][i % 3]}")
    csv.write_text("\n".join(rows) + "\n")
    out = tmp_path / "r.json"
    chart = tmp_path / "r.png"
    assert main(["evaluate", "--dataset", str(csv), "--method", "popularity",
                 "--method", "covisitation", "--json", str(out), "--chart", str(chart)]) == 0
    data = json.loads(out.read_text())
    assert data["dataset"] == "tiny.csv" and data["events"] == 200
    assert set(data["methods"]) == {"popularity", "covisitation"}
    for m in data["methods"].values():
        for key in ("hit_rate@10", "hit_rate@20", "ndcg@10", "ndcg@20", "mrr"):
            assert 0.0 <= m[key] <= 1.0 and not math.isnan(m[key])
    assert chart.stat().st_size > 1000
    assert "covisitation" in capsys.readouterr().out


def test_tuning_looks_at_the_tuning_window_only() -> None:
    events = simulated_events(3000)
    last = max(e.ts for e in events)
    # Past the split nothing may be read: an event without a type would make evaluate refuse.
    poison = Event("late", "u0", "i0", last, event_type=None)
    grid = ({"categories": 1, "per_category": 5}, {"categories": 2, "per_category": 20})
    chosen, scores = tune_feedrec([*events, poison], grid=grid)
    assert chosen in grid
    assert set(scores) == {"categories=1,per_category=5", "categories=2,per_category=20"}
    assert scores[",".join(f"{k}={v}" for k, v in chosen.items())] == max(scores.values())
    assert all(0.0 < s <= 1.0 for s in scores.values())


def test_cli_tune_records_its_choice(tmp_path, capsys) -> None:
    out = tmp_path / "r.json"
    assert main(["evaluate", "--dataset", "sim:2000", "--method", "feedrec", "--tune",
                 "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["tuned"]["chosen"] in [dict(p) for p in TUNE_GRID]
    assert len(data["tuned"]["hit_rate@20"]) == len(TUNE_GRID)
    assert "chosen:" in capsys.readouterr().out
