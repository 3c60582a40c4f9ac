"""Session-kNN (SKNN, V-SKNN) and STAN on tiny streams whose neighbours and lists are worked out
by hand in the comments; times are in seconds (``ev`` turns them into ms)."""

from __future__ import annotations

import math
from typing import TypeVar

import pytest

from feedrec.model.events import Event
from feedrec.streams.tools.evaluation.datasets import simulated_events
from feedrec.streams.tools.evaluation.popularity import Popularity
from feedrec.streams.tools.evaluation.registry import grid, make_method
from feedrec.streams.tools.evaluation.sknn import SessionKNN, SessionPool
from feedrec.streams.tools.evaluation.stan import DAY, HOUR, STAN

_n = 0


def ev(user: str, item: str, t_s: float, kind: str = "click") -> Event:
    global _n
    _n += 1
    return Event(event_id=f"e{_n}", user_id=user, item_id=item, ts=int(t_s * 1000), event_type=kind)


def stream(*rows: tuple[str, str, float]) -> list[Event]:
    return [ev(u, i, t) for u, i, t in rows]


def items_of(m: SessionPool, sid: int) -> set[str]:
    return set(m.sessions[sid].pos)


# Four users, no gap over 30 minutes, so each has one (open) session:
#   S0 = u1 {A, B, C} (ends t=20)   S1 = u2 {B, C, D} (t=50)   S2 = u3 {A, E} (t=70)
#   S3 = u4 {C, A} (t=90), u4's own latest session: never its neighbour.
BASE = stream(
    ("u1", "A", 0),
    ("u1", "B", 10),
    ("u1", "C", 20),
    ("u2", "B", 30),
    ("u2", "C", 40),
    ("u2", "D", 50),
    ("u3", "A", 60),
    ("u3", "E", 70),
    ("u4", "C", 80),
    ("u4", "A", 90),
)
NOW = 100_000

_Pool = TypeVar("_Pool", bound=SessionPool)


def learnt(method: _Pool, events: list[Event] = BASE) -> _Pool:
    method.learn(events)
    return method


# -- SKNN ----------------------------------------------------------------------------------


def test_sknn_cosine_neighbours_and_scores_by_hand() -> None:
    m = learnt(SessionKNN(seen="allow"))
    # u4's query (newest first) is [A, C], |s| = 2. Other users' open sessions are candidates:
    #   S0 {A,B,C}: shared {A,C} -> 2 / sqrt(2*3) = 0.81650
    #   S2 {A,E}:   shared {A}   -> 1 / sqrt(2*2) = 0.5
    #   S1 {B,C,D}: shared {C}   -> 1 / sqrt(2*3) = 0.40825
    got = m.neighbours("u4", NOW)
    assert [sid for _, sid in got] == [0, 2, 1]
    assert [s for s, _ in got] == pytest.approx([2 / math.sqrt(6), 0.5, 1 / math.sqrt(6)])
    assert 3 not in [sid for _, sid in got]  # the user's own open session
    # score(j) = sum of sims of the neighbours holding j:
    #   A = S0 + S2 = 1.31650, B = C = S0 + S1 = 1.22474, E = S2 = 0.5, D = S1 = 0.40825
    a, b = 2 / math.sqrt(6), 1 / math.sqrt(6)
    assert m.scores("u4", NOW) == pytest.approx(
        {"A": a + 0.5, "B": a + b, "C": a + b, "D": b, "E": 0.5}
    )
    # B and C tie: by key.
    assert m.recommend("u4", NOW, 5) == ["A", "B", "C", "E", "D"]
    assert m.recommend("u4", NOW, 2) == ["A", "B"]


def test_sknn_k_neighbours_keeps_the_most_similar() -> None:
    m = learnt(SessionKNN(seen="allow", k_neighbours=2))
    # Neighbours S0 (0.81650) and S2 (0.5); S1 (0.40825) drops, and with it D:
    #   A = 1.31650, B = C = 0.81650, E = 0.5
    a = 2 / math.sqrt(6)
    assert m.scores("u4", NOW) == pytest.approx({"A": a + 0.5, "B": a, "C": a, "E": 0.5})
    assert m.recommend("u4", NOW, 5)[:4] == ["A", "B", "C", "E"]


def test_seen_policies_on_the_hand_computed_list() -> None:
    # Same ranking A, B, C, E, D; u4 has seen A and C (newest A).
    exclude = learnt(SessionKNN(seen="exclude"))
    first = learnt(SessionKNN(seen="first"))
    # exclude: B, E, D, and no popular item is left that u4 has not seen.
    assert exclude.recommend("u4", NOW, 5) == ["B", "E", "D"]
    # first: u4's own items newest first, then the ranking without repeats.
    assert first.recommend("u4", NOW, 5) == ["A", "C", "B", "E", "D"]
    assert first.recommend("u4", NOW, 1) == ["A"]


def test_fill_comes_from_popularity_and_exclude_keeps_seen_out_of_it() -> None:
    # u5..u7 click F (x3) and G (x2) at t=95, all in sessions sharing nothing with u4's query.
    # Popularity (half-life 1 h, weights 2^(t/3600)): F 3 x 1.0185 = 3.055;
    #   A at 0, 60, 90: 1 + 1.0116 + 1.0175 = 3.029;  C at 20, 40, 80: 1.0039 + 1.0077 +
    #   1.0155 = 3.027;  G 2 x 1.0185 = 2.037;  B at 10, 30: 2.008;  E (70) 1.013;  D (50) 1.010
    #   -> F, A, C, G, B, E, D.
    extra = stream(
        ("u5", "F", 95), ("u5", "G", 95), ("u6", "F", 95), ("u6", "G", 95), ("u7", "F", 95)
    )
    # k_neighbours=1: the one neighbour S0 {A,B,C} (0.81650) scores A = B = C.
    m = learnt(SessionKNN(seen="exclude", k_neighbours=1), BASE + extra)
    assert m.popularity.top(7) == ["F", "A", "C", "G", "B", "E", "D"]
    # exclude: B (A, C seen), then popularity less what u4 saw: F, G, E.
    assert m.recommend("u4", NOW, 4) == ["B", "F", "G", "E"]
    # allow: A, B, C (ties by key), then F, G.
    allow = learnt(SessionKNN(seen="allow", k_neighbours=1), BASE + extra)
    assert allow.recommend("u4", NOW, 5) == ["A", "B", "C", "F", "G"]


def test_unknown_user_gets_popularity() -> None:
    # Clicks: B x3, A x2, C x1, all at t=0 (no decay between them): popularity B, A, C.
    events = stream(
        ("u1", "B", 0),
        ("u2", "B", 0),
        ("u3", "B", 0),
        ("u1", "A", 0),
        ("u2", "A", 0),
        ("u3", "C", 0),
    )
    for m in (SessionKNN(), SessionKNN(variant="vsknn"), STAN()):
        m.learn(events)
        assert m.scores("nobody", 1000) == {}
        assert m.recommend("nobody", 1000, 3) == ["B", "A", "C"]
        assert m.recommend("nobody", 1000, 2) == ["B", "A"]
    pop = Popularity(half_life_s=3600)
    pop.learn(events)
    assert pop.top(3) == ["B", "A", "C"]


# -- sessions ------------------------------------------------------------------------------


def test_sessions_split_where_the_gap_exceeds_gap_s() -> None:
    m = SessionKNN(gap_s=60)
    m.learn(
        stream(
            ("u1", "A", 0),
            ("u1", "B", 60),  # gap 60: not over 60, same session
            ("u1", "C", 121),  # gap 61 > 60: a new session
            ("u2", "A", 130),
            ("u1", "D", 150),
        )
    )  # u1 stays in its second session
    assert [(s.user, set(s.pos), s.end) for s in m.sessions] == [
        ("u1", {"A", "B"}, 60_000),
        ("u1", {"C", "D"}, 150_000),
        ("u2", {"A"}, 130_000),
    ]
    assert m.latest == {"u1": 1, "u2": 2}
    # Positions count every event of the session, a repeat moving its item: u1's second
    # session C (1), D (2); a repeat of C makes it C 3.
    m.learn([ev("u1", "C", 160)])
    assert m.sessions[1].pos == {"C": 3, "D": 2}


def test_gap_exactly_gap_s_stays_and_past_it_splits() -> None:
    d = SessionKNN()  # gap_s = 1800
    d.learn(stream(("u1", "A", 0), ("u1", "B", 1800), ("u1", "C", 3601)))
    # 1800 - 0 = 1800: not over; 3601 - 1800 = 1801: over.
    assert [set(s.pos) for s in d.sessions] == [{"A", "B"}, {"C"}]


def test_query_spans_sessions_and_own_earlier_sessions_are_neighbours() -> None:
    m = SessionKNN(gap_s=60, seen="allow")
    m.learn(
        stream(
            ("u1", "A", 0),
            ("u1", "B", 10),  # S0 = u1 {A, B}
            ("u1", "C", 200),  # S1 = u1 {C} (gap 190 > 60)
            ("u2", "C", 205),
            ("u2", "E", 206),
        )
    )  # S2 = u2 {C, E}
    # u1's query crosses the boundary: [C, B, A], |s| = 3.
    assert m.query("u1") == ["C", "B", "A"]
    # S1 is u1's latest, left out; S0 (own, earlier) 2/sqrt(3*2) = 0.81650,
    # S2: 1/sqrt(3*2) = 0.40825.
    got = m.neighbours("u1", 300_000)
    assert [sid for _, sid in got] == [0, 2]
    assert [s for s, _ in got] == pytest.approx([2 / math.sqrt(6), 1 / math.sqrt(6)])
    # A = B = 0.81650, C = E = 0.40825.
    assert m.recommend("u1", 300_000, 4) == ["A", "B", "C", "E"]


def test_sample_keeps_only_the_most_recent_sessions() -> None:
    # Three sessions share X: S0 u1 {X, A} ends t=1, S1 u2 {X, B} t=11, S2 u3 {X, C} t=21;
    # u4 clicks X. Each: 1 / sqrt(1*2) = 0.70711.
    events = stream(
        ("u1", "X", 0),
        ("u1", "A", 1),
        ("u2", "X", 10),
        ("u2", "B", 11),
        ("u3", "X", 20),
        ("u3", "C", 21),
        ("u4", "X", 30),
    )
    s = 1 / math.sqrt(2)
    m3 = learnt(SessionKNN(sample=3), events)
    assert m3.scores("u4", NOW) == pytest.approx({"X": 3 * s, "A": s, "B": s, "C": s})
    # sample=2: only S1 and S2, the two most recent; A (only in S0) is gone.
    m2 = learnt(SessionKNN(sample=2), events)
    assert sorted(sid for _, sid in m2.neighbours("u4", NOW)) == [1, 2]
    assert m2.scores("u4", NOW) == pytest.approx({"X": 2 * s, "B": s, "C": s})


def test_sample_is_by_last_event_not_by_start() -> None:
    # u1 starts first but goes on last: S0 u1 {X, A} ends t=40, S1 u2 {X, B} t=11,
    # S2 u3 {X, C} t=21. With sample=2 (and an index that holds all three) S0 and S2 are the
    # most recent; S1 and its B go.
    events = stream(
        ("u1", "X", 0),
        ("u2", "X", 10),
        ("u2", "B", 11),
        ("u3", "X", 20),
        ("u3", "C", 21),
        ("u1", "A", 40),
        ("u4", "X", 50),
    )
    s = 1 / math.sqrt(2)
    m = learnt(SessionKNN(sample=2, index_cap=10), events)
    assert m.scores("u4", NOW) == pytest.approx({"X": 2 * s, "A": s, "C": s})
    # The index capped at its default sample + 1 = 3 only holds the three sessions that took
    # X last (S1, S2 and u4's own S3): S0 is not found, the documented approximation.
    capped = learnt(SessionKNN(sample=2), events)
    assert list(capped.index["X"]) == [1, 2, 3]
    assert capped.scores("u4", NOW) == pytest.approx({"X": 2 * s, "B": s, "C": s})


# -- V-SKNN --------------------------------------------------------------------------------

# u4 clicks D, C, A instead: query [A, C, D] (newest first).
V_BASE = BASE[:8] + stream(("u4", "D", 80), ("u4", "C", 85), ("u4", "A", 90))


def test_vsknn_linear_position_weights_by_hand() -> None:
    m = learnt(SessionKNN(variant="vsknn", seen="allow"), V_BASE)
    # Linear weights: A 1.0, C 0.9, D 0.8. Dot products with the binary sets:
    #   S0 {A,B,C}: 1.0 + 0.9 = 1.9;  S1 {B,C,D}: 0.9 + 0.8 = 1.7;  S2 {A,E}: 1.0
    got = m.neighbours("u4", NOW)
    assert [sid for _, sid in got] == [0, 1, 2]
    assert [s for s, _ in got] == pytest.approx([1.9, 1.7, 1.0])
    # A = 1.9 + 1.0 = 2.9, B = C = 1.9 + 1.7 = 3.6, D = 1.7, E = 1.0
    assert m.scores("u4", NOW) == pytest.approx({"A": 2.9, "B": 3.6, "C": 3.6, "D": 1.7, "E": 1.0})
    assert m.recommend("u4", NOW, 5) == ["B", "C", "A", "D", "E"]


def test_vsknn_and_sknn_pick_different_neighbours() -> None:
    # k_neighbours=1. SKNN (cosine, |s| = 3): S0 2/sqrt(9) = 0.6667 ties S1 2/sqrt(9): the more
    # recent S1 (ends t=50) wins -> B, C, D. V-SKNN: S0 (1.9) beats S1 (1.7) -> A, B, C.
    sknn = learnt(SessionKNN(k_neighbours=1, seen="allow"), V_BASE)
    vsknn = learnt(SessionKNN(variant="vsknn", k_neighbours=1, seen="allow"), V_BASE)
    # object: a score within tolerance of 2/3 (pytest.approx), not a float itself.
    expected: list[tuple[object, int]] = [(pytest.approx(2 / 3), 1)]
    assert sknn.neighbours("u4", NOW) == expected
    assert sknn.recommend("u4", NOW, 3) == ["B", "C", "D"]
    assert vsknn.recommend("u4", NOW, 3) == ["A", "B", "C"]


def test_vsknn_div_weighting_and_weights() -> None:
    m = learnt(SessionKNN(variant="vsknn", weighting="div", seen="allow"), V_BASE)
    # div, l = 3: A 3/3, C 2/3, D 1/3. S0: 1 + 2/3 = 1.6667; S1: 2/3 + 1/3 = 1; S2: 1.
    sims = {sid: s for s, sid in m.neighbours("u4", NOW)}
    assert sims == pytest.approx({0: 5 / 3, 1: 1.0, 2: 1.0})
    assert m.query_weights(["a", "b", "c", "d"]) == pytest.approx([1, 0.75, 0.5, 0.25])
    lin = SessionKNN(variant="vsknn", session_len=12)
    # 1 - 0.1 p, floored at 0 from p = 10 on.
    assert lin.query_weights(list("abcdefghijkl")) == pytest.approx(
        [1, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0, 0]
    )
    assert SessionKNN().query_weights(["a", "b"]) == [1.0, 1.0]


def test_vsknn_idf_reorders_by_rarity() -> None:
    # k_neighbours=2: S0 (1.9), S1 (1.7). Plain: A 1.9, B = C 3.6, D 1.7 -> B, C, A, D.
    # IDF over the 4 sessions (S3 = u4's own {D, C, A} counts): df A 3, B 2, C 3, D 2, so
    # factors 1 + ln(4/3) = 1.28768 (A, C), 1 + ln 2 = 1.69315 (B, D):
    #   A 1.9 * 1.28768 = 2.4466, B 3.6 * 1.69315 = 6.0953, C 3.6 * 1.28768 = 4.6357,
    #   D 1.7 * 1.69315 = 2.8784 -> B, C, D, A.
    plain = learnt(SessionKNN(variant="vsknn", k_neighbours=2, seen="allow"), V_BASE)
    idf = learnt(SessionKNN(variant="vsknn", k_neighbours=2, seen="allow", idf=True), V_BASE)
    assert plain.recommend("u4", NOW, 4) == ["B", "C", "A", "D"]
    fa, fb = 1 + math.log(4 / 3), 1 + math.log(2)
    assert idf.scores("u4", NOW) == pytest.approx(
        {"A": 1.9 * fa, "B": 3.6 * fb, "C": 3.6 * fa, "D": 1.7 * fb}
    )
    assert idf.recommend("u4", NOW, 4) == ["B", "C", "D", "A"]


# -- STAN ----------------------------------------------------------------------------------

# S0 = u1 A, B, C, D (positions 1-4, ends t=3); S1 = u2 C, E (positions 1, 2, ends t=11);
# u3 clicks B then C: query [C, B].
S_BASE = stream(
    ("u1", "A", 0),
    ("u1", "B", 1),
    ("u1", "C", 2),
    ("u1", "D", 3),
    ("u2", "C", 10),
    ("u2", "E", 11),
    ("u3", "B", 20),
    ("u3", "C", 21),
)


def test_stan_three_decays_by_hand() -> None:
    m = learnt(STAN(lambda_1=1.0, lambda_2=None, lambda_3=1.0, seen="allow"), S_BASE)
    e1 = math.exp(-1)
    # (1) query weights: C (p=0) 1, B (p=1) e^-1 = 0.36788; l = 2.
    #   S0 {A,B,C,D}: (1 + 0.36788) / sqrt(2*4) = 0.48362;  S1 {C,E}: 1 / sqrt(2*2) = 0.5
    s0, s1 = (1 + e1) / math.sqrt(8), 0.5
    got = m.neighbours("u3", NOW)
    assert [sid for _, sid in got] == [1, 0]
    assert [s for s, _ in got] == pytest.approx([s1, s0])
    # (3) the shared item nearest the end: S0 -> C (position 3), S1 -> C (position 1).
    #   S0: A |1-3| -> e^-2, B e^-1, C 1, D e^-1;  S1: C 1, E e^-1.
    #   A 0.48362 * 0.13534 = 0.06545; B = D = 0.48362 * 0.36788 = 0.17791;
    #   C 0.48362 + 0.5 = 0.98362; E 0.5 * 0.36788 = 0.18394
    want = {"A": s0 * math.exp(-2), "B": s0 * e1, "C": s0 + s1, "D": s0 * e1, "E": s1 * e1}
    assert m.scores("u3", NOW) == pytest.approx(want)
    assert m.recommend("u3", NOW, 5) == ["C", "E", "B", "D", "A"]
    ex = learnt(STAN(lambda_1=1.0, lambda_2=None, lambda_3=1.0, seen="exclude"), S_BASE)
    assert ex.recommend("u3", NOW, 3) == ["E", "D", "A"]


def test_stan_without_decays_is_sknn() -> None:
    # All lambdas off: S0 2/sqrt(8) = 0.70711, S1 0.5 -> A = B = D 0.70711, C 1.20711, E 0.5:
    # C, A, B, D, E (STAN above put E second).
    stan = learnt(STAN(lambda_1=None, lambda_2=None, lambda_3=None, seen="allow"), S_BASE)
    sknn = learnt(SessionKNN(seen="allow"), S_BASE)
    r = 1 / math.sqrt(2)
    assert stan.scores("u3", NOW) == pytest.approx(sknn.scores("u3", NOW))
    assert stan.scores("u3", NOW) == pytest.approx({"A": r, "B": r, "C": r + 0.5, "D": r, "E": 0.5})
    assert stan.recommend("u3", NOW, 5) == sknn.recommend("u3", NOW, 5) == ["C", "A", "B", "D", "E"]


def test_stan_lambda_2_downweights_an_old_session_by_the_exact_factor() -> None:
    # S0 = u1 {A, B} ends t=1; S1 = u2 {A, C} ends t=3601; u3 clicks A at t=7200, asked at
    # t=7201: ages 7200 s and 3600 s. sim1 = 1 / sqrt(1*2) for both; lambda_2 = 1 hour:
    #   S0: 0.70711 * e^-2,  S1: 0.70711 * e^-1.
    events = stream(
        ("u1", "A", 0), ("u1", "B", 1), ("u2", "A", 3600), ("u2", "C", 3601), ("u3", "A", 7200)
    )
    now = 7_201_000
    m = learnt(STAN(lambda_2=HOUR, seen="allow"), events)
    got = m.neighbours("u3", now)
    r = 1 / math.sqrt(2)
    assert [sid for _, sid in got] == [1, 0]
    assert [s for s, _ in got] == pytest.approx([r * math.exp(-1), r * math.exp(-2)])
    # B and C each sit one step after A (w3 = e^(-1/2.05)): their ratio is the decay alone.
    scores = m.scores("u3", now)
    assert scores["B"] / scores["C"] == pytest.approx(math.exp(-1))
    assert m.recommend("u3", now, 3) == ["A", "C", "B"]
    # Without the time decay the two tie (B first by key).
    flat = learnt(STAN(lambda_2=None, seen="allow"), events)
    assert flat.scores("u3", now)["B"] == pytest.approx(flat.scores("u3", now)["C"])
    assert flat.recommend("u3", now, 3) == ["A", "B", "C"]


def test_stan_defaults_are_documented_values() -> None:
    m = STAN()
    assert (m.lambda_1, m.lambda_2, m.lambda_3) == (1.02, 5 * DAY, 2.05)
    assert (m.k_neighbours, m.sample, m.session_len) == (100, 500, 10)
    lambda_2s = {kw["lambda_2"] for kw in STAN.GRID if "lambda_2" in kw}
    assert min(lambda_2s) <= 2 * HOUR and max(lambda_2s) >= 30 * DAY


# -- contract ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"variant": "x"},
        {"weighting": "log"},
        {"seen": "never"},
        {"k_neighbours": 0},
        {"sample": 0},
        {"gap_s": 0},
        {"index_cap": 0},
    ],
)
def test_bad_arguments_raise(bad: dict) -> None:
    with pytest.raises(ValueError):
        SessionKNN(**bad)


def test_bad_stan_lambda_raises() -> None:
    with pytest.raises(ValueError):
        STAN(lambda_2=0)


SIM = sorted(simulated_events(1500), key=lambda e: e.ts)


@pytest.mark.parametrize("name", ["sknn", "vsknn", "stan"])
def test_every_grid_entry_runs_with_at_most_k_distinct_items(name: str) -> None:
    variants = grid(name)
    assert 6 <= len(variants) <= 12
    assert {} in variants  # the default
    catalogue = {e.item_id for e in SIM[:1000]}
    for kw in variants:
        m = make_method(name, **kw)
        assert isinstance(m, SessionPool)  # sknn, vsknn and stan all keep their histories
        m.learn(SIM[:1000])
        for e in SIM[1000:1100]:
            for k in (1, 20):
                recs = m.recommend(e.user_id, e.ts, k)
                assert len(recs) == len(set(recs)) == min(k, len(catalogue)), (kw, recs)
                if kw.get("seen") == "exclude":
                    assert not set(recs) & m.histories.seen.get(e.user_id, set())
            m.learn([e])


def test_grids_cover_the_knobs() -> None:
    keys = set().union(*SessionKNN.GRID)
    assert {"k_neighbours", "sample", "session_len", "seen", "variant", "idf", "weighting"} <= keys
    assert {
        "k_neighbours",
        "sample",
        "session_len",
        "seen",
        "lambda_1",
        "lambda_2",
        "lambda_3",
    } <= set().union(*STAN.GRID)
    assert all(kw.get("variant", "vsknn") == "vsknn" for kw in grid("vsknn")) and any(
        kw.get("idf") for kw in grid("vsknn")
    )
    assert not any(kw.get("idf") for kw in grid("sknn"))
