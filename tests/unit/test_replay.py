import gzip
from pathlib import Path

import pytest

from streams.exceptions import ReplayFormatError
from streams.replay import read_events, replay

TAOBAO = Path(__file__).resolve().parents[3] / "shared/data/taobao-userbehavior/UserBehavior.csv.gz"


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    if name.endswith(".gz"):
        p.write_bytes(gzip.compress(text.encode()))
    else:
        p.write_text(text)
    return p


def test_taobao_format_maps_behaviours_and_drops_fav(tmp_path: Path) -> None:
    p = write(tmp_path, "tb.csv.gz",
              "1,10,100,pv,1511658000\n2,20,200,fav,1511658001\n1,10,100,cart,1511658002\n"
              "1,10,100,buy,1511658003\n")
    got = list(read_events(p))
    assert [t for t, _ in got] == ["events.browse", "events.cart", "events.purchase"]
    first = got[0][1]
    assert first == {"event_id": "tb-1", "user_id": "1", "item_id": "10", "ts": 1511658000000,
                     "category": "100"}
    assert [t for t, _ in read_events(p, fav_as="click")][1] == "events.click"


def test_generic_format_with_optional_columns(tmp_path: Path) -> None:
    p = write(tmp_path, "g.csv", "ts,user_id,item_id,event_type,category,price\n"
                                 "1700000000000,u1,i1,click,shoes,9.5\n1700000000100,u2,i2,browse,,\n")
    got = list(read_events(p))
    assert got[0] == ("events.click", {"event_id": "g-2", "user_id": "u1", "item_id": "i1",
                                       "ts": 1700000000000, "category": "shoes", "price": 9.5})
    assert got[1][1] == {"event_id": "g-3", "user_id": "u2", "item_id": "i2", "ts": 1700000000100}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("1,2,3,pv\n", ":1: expected 5 Taobao columns"),
        ("1,2,3,pv,1511658000\n1,2,3,like,1511658000\n", ":2: unknown behavior 'like'"),
        ("1,2,3,pv,noon\n", ":1: timestamp 'noon'"),
        ("ts,user_id,item_id,event_type\n1,u,i,wishlist\n", ":2: event_type 'wishlist'"),
        ("ts,user_id,item_id,event_type\nsoon,u,i,click\n", ":2: ts must be epoch"),
        ("ts,user_id,item_id,event_type,colour\n", ":1: after ts,user_id,item_id,event_type"),
    ],
)
def test_errors_name_file_and_line(tmp_path: Path, text: str, needle: str) -> None:
    p = write(tmp_path, "bad.csv", text)
    with pytest.raises(ReplayFormatError, match=needle):
        list(read_events(p))


def test_replay_keeps_gaps_divided_by_speedup(tmp_path: Path) -> None:
    p = write(tmp_path, "g.csv", "ts,user_id,item_id,event_type\n0,u,a,browse\n1000,u,b,click\n"
                                 "3000,u,c,cart\n")
    clock = [0.0]
    sleeps: list[float] = []

    def sleep(s: float) -> None:
        sleeps.append(s)
        clock[0] += s

    sent: list[tuple[str, bytes, bytes]] = []
    n = replay(p, lambda t, k, v: sent.append((t, k, v)), speedup=10, clock=lambda: clock[0],
               sleep=sleep)
    assert n == 3
    assert sleeps == pytest.approx([0.1, 0.2])
    import json

    ts = [json.loads(v)["ts"] for _, _, v in sent]
    assert ts[1] - ts[0] == 100 and ts[2] - ts[0] == 300
    assert [k for _, k, _ in sent] == [b"u"] * 3
    assert replay(p, lambda *a: None, limit=2) == 2


@pytest.mark.skipif(not TAOBAO.exists(), reason="the shared Taobao slice is not on this machine")
def test_reads_the_real_taobao_slice() -> None:
    got = []
    for topic, ev in read_events(TAOBAO):
        got.append((topic, ev))
        if len(got) == 1000:
            break
    assert len(got) == 1000
    assert {t for t, _ in got} <= {"events.browse", "events.cart", "events.purchase"}
    assert all(ev["ts"] >= 1511658000000 for _, ev in got)
