import gzip
import json
import threading
from pathlib import Path

import msgspec
import pytest

from feedrec.model.events import decode_events
from feedrec.streams.exceptions import ReplayFormatError
from feedrec.streams.records import Record
from feedrec.streams.tools.replay import read_events, replay
from tests.clock import SteppingClock


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    if name.endswith(".gz"):
        p.write_bytes(gzip.compress(text.encode()))
    else:
        p.write_text(text)
    return p


def test_taobao_format_maps_behaviours_and_drops_fav(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "tb.csv.gz",
        "1,10,100,pv,1511658000\n2,20,200,fav,1511658001\n1,10,100,cart,1511658002\n"
        "1,10,100,buy,1511658003\n",
    )
    got = list(read_events(p))
    assert [t for t, _ in got] == ["events.browse", "events.cart", "events.purchase"]
    first = got[0][1]
    assert first == {
        "event_id": "tb-1",
        "user_id": "1",
        "item_id": "10",
        "ts": 1511658000000,
        "category": "100",
    }
    assert [e["event_id"] for _, e in got] == ["tb-1", "tb-3", "tb-4"]  # ids are line numbers
    assert list(read_events(p)) == got  # deterministic
    with_fav = list(read_events(p, fav_as="click"))
    assert [t for t, _ in with_fav] == [
        "events.browse",
        "events.click",
        "events.cart",
        "events.purchase",
    ]
    assert with_fav[1][1]["event_id"] == "tb-2"
    with pytest.raises(ValueError, match="fav_as"):
        read_events(p, fav_as="like")  # checked at the call, not at the first row


def test_taobao_plain_csv_and_blank_lines(tmp_path: Path) -> None:
    p = write(tmp_path, "UserBehavior.csv", "7,8,9,buy,1511658000\n\n7,8,,pv,1511658001\n")
    got = list(read_events(p))
    assert [(t, e["event_id"]) for t, e in got] == [
        ("events.purchase", "UserBehavior-1"),
        ("events.browse", "UserBehavior-3"),
    ]
    assert "category" not in got[1][1]
    # gzip is recognised from the content, whatever the name says
    q = tmp_path / "renamed.csv"
    q.write_bytes(gzip.compress(p.read_bytes()))
    assert [t for t, _ in read_events(q)] == [t for t, _ in got]


def test_generic_header_only_and_bom(tmp_path: Path) -> None:
    p = write(tmp_path, "x.csv.gz", "\ufeffts,user_id,item_id,event_type\n5,u,i,purchase\n")
    assert list(read_events(p)) == [
        ("events.purchase", {"event_id": "x-2", "user_id": "u", "item_id": "i", "ts": 5})
    ]
    p = write(tmp_path, "c.csv", "ts,user_id,item_id,event_type,category\n5,u,i,cart,toys\n")
    assert list(read_events(p))[0][1]["category"] == "toys"
    assert list(read_events(write(tmp_path, "empty.csv", ""))) == []


def test_generic_format_with_optional_columns(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "g.csv",
        "ts,user_id,item_id,event_type,category,price\n"
        "1700000000000,u1,i1,click,shoes,9.5\n1700000000100,u2,i2,browse,,\n",
    )
    got = list(read_events(p))
    assert got[0] == (
        "events.click",
        {
            "event_id": "g-2",
            "user_id": "u1",
            "item_id": "i1",
            "ts": 1700000000000,
            "category": "shoes",
            "price": 9.5,
        },
    )
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
        ("ts,user_id,item_id,event_type,category,price\n1,u,i,cart,c,-3\n", ":2: ts must be"),
        ("ts,user_id,item_id,event_type\n1,u,i,cart\n2,u,i\n", ":3: expected 4 columns"),
        ("ts,user_id,item_id,event_type\n1,,i,cart\n", ":2: expected a user_id"),
        (
            "1,2,3,pv,1511658000\n1,,3,pv,1511658000\n",
            ":2: expected a item_id|:2: expected a user_id",
        ),
        ("1,2,3,pv,1511658000\n1,,3,pv,1511658000\n", "bad.csv:2"),
        ("ts,user,item,event_type\n", ":1: expected 5 Taobao columns.*generic header"),
    ],
)
def test_errors_name_file_and_line(tmp_path: Path, text: str, needle: str) -> None:
    p = write(tmp_path, "bad.csv", text)
    with pytest.raises(ReplayFormatError, match=needle):
        list(read_events(p))


def test_undecodable_bytes_name_the_line(tmp_path: Path) -> None:
    p = tmp_path / "bin.csv"
    p.write_bytes(b"1,2,3,pv,1511658000\n" * 3000 + b"\xff\xfe,2,3,pv,1\n")
    with pytest.raises(ReplayFormatError, match="bin.csv.*UTF-8"):
        list(read_events(p))


def test_csv_errors_name_the_line(tmp_path: Path) -> None:
    p = tmp_path / "nul.csv"
    p.write_bytes(b'1,2,3,pv,"1511658000\n')  # an unterminated quote at the end of the file
    with pytest.raises(ReplayFormatError, match=r"nul.csv:1: expected CSV"):
        list(read_events(p))


def test_good_rows_before_a_bad_one_are_yielded(tmp_path: Path) -> None:
    p = write(tmp_path, "b.csv", "1,2,3,pv,1511658000\n1,2,3,pv,x\n")
    it = read_events(p)
    assert next(it)[1]["event_id"] == "b-1"
    with pytest.raises(ReplayFormatError, match="b.csv:2"):
        next(it)


def test_replay_keeps_gaps_divided_by_speedup(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "g.csv",
        "ts,user_id,item_id,event_type\n0,u,a,browse\n1000,u,b,click\n3000,u,c,cart\n",
    )
    clock = SteppingClock()
    sent: list[tuple[str, bytes, bytes]] = []
    n = replay(
        p, lambda t, k, v: sent.append((t, k, v)), speedup=10, clock=clock, sleep=clock.sleep
    )
    assert n == 3
    assert clock.sleeps == pytest.approx([0.1, 0.2])
    ts = [json.loads(v)["ts"] for _, _, v in sent]
    # Each event is stamped with the time it was due: the start plus its scaled offset.
    assert ts == [clock.start_ms, clock.start_ms + 100, clock.start_ms + 300]
    assert [k for _, k, _ in sent] == [b"u"] * 3
    assert replay(p, lambda *a: None, limit=2) == 2
    assert replay(p, lambda *a: None, limit=0) == 0
    with pytest.raises(ValueError, match="speedup"):
        replay(p, lambda *a: None, speedup=-1)


def test_replay_as_fast_as_possible_stamps_send_time(tmp_path: Path) -> None:
    p = write(tmp_path, "tb.csv", "1,10,100,pv,1511658000\n2,20,200,cart,1511669000\n")
    clock = SteppingClock()
    sent: list[tuple[str, bytes, bytes]] = []

    def send(topic: str, key: bytes, value: bytes) -> None:
        sent.append((topic, key, value))
        clock.t += 0.25  # sending takes a quarter of a second

    assert replay(p, send, clock=clock, sleep=clock.sleep) == 2
    evs = [json.loads(v) for _, _, v in sent]
    assert [e["ts"] for e in evs] == [clock.start_ms, clock.start_ms + 250]
    assert clock.sleeps == []
    assert [(t, k) for t, k, _ in sent] == [("events.browse", b"1"), ("events.cart", b"2")]
    assert evs[0] == {
        "event_id": "tb-1",
        "user_id": "1",
        "item_id": "10",
        "ts": evs[0]["ts"],
        "category": "100",
    }


def test_a_stop_during_a_wait_ends_the_replay(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "g.csv",
        "ts,user_id,item_id,event_type\n0,u,a,browse\n2000,u,b,click\n600000,u,c,cart\n",
    )
    clock = SteppingClock()
    stop = threading.Event()

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if len(clock.sleeps) == 2:
            stop.set()  # stopped while waiting for the third event

    assert replay(p, lambda *a: None, speedup=20, stop=stop, clock=clock, sleep=sleep) == 2
    # 2 s at speedup 20 is 0.1 s; the third event was 30 s away.
    assert clock.sleeps == pytest.approx([0.1, 29.9])


def test_reads_a_file_in_the_taobao_slice_layout(tmp_path: Path) -> None:
    """The shared slice's own layout (gzip, no header, fav rows among the others), written
    here so that the test runs on every clone."""
    rows = ["543462,1715,1464116,pv,1511658000", "662867,2244074,1575622,fav,1511658000"]
    rows += [
        f"{1000 + n},{n % 97},{n % 7},{('pv', 'cart', 'buy', 'fav')[n % 4]},{1511658000 + n // 3}"
        for n in range(1200)
    ]
    path = write(tmp_path, "UserBehavior.csv.gz", "\n".join(rows) + "\n")
    got = list(read_events(path))
    assert len(got) == 1 + 900  # fav rows skipped
    assert got[0] == (
        "events.browse",
        {
            "event_id": "UserBehavior-1",
            "user_id": "543462",
            "item_id": "1715",
            "ts": 1511658000000,
            "category": "1464116",
        },
    )
    assert {t for t, _ in got} == {"events.browse", "events.cart", "events.purchase"}
    ts = [ev["ts"] for _, ev in got]
    assert ts == sorted(ts)
    lines = [int(ev["event_id"].split("-")[1]) for _, ev in got]
    assert lines == sorted(lines) and 2 not in lines  # line 2 is a fav
    records = [Record(t, 0, i, msgspec.json.encode(e)) for i, (t, e) in enumerate(got)]
    good, bad = decode_events(records, ts[-1])
    assert bad == [] and len(good) == len(got)
