"""Replay of real datasets in time order: Taobao UserBehavior and a generic CSV.

Formats, detected from the first line:

- Taobao UserBehavior, no header: ``user_id,item_id,category_id,behavior,timestamp`` with the
  timestamp in Unix seconds; ``pv`` -> browse, ``cart`` -> cart, ``buy`` -> purchase, and ``fav``
  dropped unless ``fav_as`` names a type.
- Generic: a header ``ts,user_id,item_id,event_type`` optionally followed by ``category,price``,
  ``ts`` in epoch milliseconds, ``event_type`` one of browse, click, cart, purchase.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from model.events import EVENT_TYPES
from streams.exceptions import ReplayFormatError

TAOBAO_BEHAVIOURS = {"pv": "browse", "cart": "cart", "buy": "purchase"}
GENERIC_HEADER = ["ts", "user_id", "item_id", "event_type"]


def _open(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")  # noqa: SIM115


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".csv"):
        name = name.removesuffix(suffix)
    return name


def read_events(path: str | Path, fav_as: str | None = None) -> Iterator[tuple[str, dict]]:
    """``(topic, event)`` pairs in file order, ``ts`` in epoch milliseconds."""
    path = Path(path)
    if fav_as is not None and fav_as not in EVENT_TYPES:
        raise ValueError(f"fav_as must be one of {', '.join(EVENT_TYPES)}, got {fav_as!r}")
    stem = _stem(path)
    with _open(path) as f:
        rows = csv.reader(f)
        first = next(rows, None)
        if first is None:
            return
        header = [c.strip() for c in first]
        if header[:4] == GENERIC_HEADER:
            yield from _generic(path, stem, header, rows)
        else:
            behaviours = dict(TAOBAO_BEHAVIOURS)
            if fav_as is not None:
                behaviours["fav"] = fav_as
            yield from _taobao(path, stem, behaviours, [(1, first)], rows)


def _taobao(path: Path, stem: str, behaviours: dict[str, str], head: list[tuple[int, list[str]]],
            rows: Iterator[list[str]]) -> Iterator[tuple[str, dict]]:
    for line, row in itertools.chain(head, enumerate(rows, start=2)):
        if not row:
            continue
        if len(row) != 5:
            raise ReplayFormatError(
                f"{path}:{line}: expected 5 Taobao columns user_id,item_id,category_id,behavior,"
                f"timestamp (or the generic header {','.join(GENERIC_HEADER)}), got {len(row)}"
            )
        user, item, category, behaviour, ts = row
        if behaviour not in behaviours:
            if behaviour in ("pv", "cart", "buy", "fav"):
                continue
            raise ReplayFormatError(f"{path}:{line}: unknown behavior {behaviour!r}")
        try:
            seconds = int(ts)
        except ValueError:
            raise ReplayFormatError(f"{path}:{line}: timestamp {ts!r} is not Unix seconds") from None
        kind = behaviours[behaviour]
        yield f"events.{kind}", {"event_id": f"{stem}-{line}", "user_id": user, "item_id": item,
                                 "ts": seconds * 1000, "category": category}


def _generic(path: Path, stem: str, header: list[str],
             rows: Iterator[list[str]]) -> Iterator[tuple[str, dict]]:
    extra = header[4:]
    if extra not in ([], ["category"], ["category", "price"]):
        raise ReplayFormatError(
            f"{path}:1: after {','.join(GENERIC_HEADER)} only category,price may follow; got {extra}"
        )
    width = len(header)
    for line, row in enumerate(rows, start=2):
        if not row:
            continue
        if len(row) != width:
            raise ReplayFormatError(f"{path}:{line}: expected {width} columns, got {len(row)}")
        ts, user, item, kind = row[:4]
        if kind not in EVENT_TYPES:
            raise ReplayFormatError(
                f"{path}:{line}: event_type {kind!r} is not one of {', '.join(EVENT_TYPES)}"
            )
        try:
            event = {"event_id": f"{stem}-{line}", "user_id": user, "item_id": item, "ts": int(ts)}
            if width > 4 and row[4]:
                event["category"] = row[4]
            if width > 5 and row[5]:
                event["price"] = float(row[5])
        except ValueError:
            raise ReplayFormatError(
                f"{path}:{line}: ts must be epoch milliseconds and price a number; got {row}"
            ) from None
        yield f"events.{kind}", event


def replay(
    path: str | Path,
    producer_send: Callable[[str, bytes, bytes], None],
    speedup: float = 0.0,
    limit: int | None = None,
    stop: threading.Event | None = None,
    fav_as: str | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Publish ``path`` in order; returns events sent.

    ``ts`` is rewritten to the replay's wall-clock time plus the event's original offset from
    the first event divided by ``speedup``, so downstream latency and age checks see live data.
    With ``speedup`` 0 events go out as fast as possible, each stamped with its send time.
    """
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    sent = 0
    first_ts: int | None = None
    start_clock = clock()
    start_wall_ms = int(time.time() * 1000)
    for topic, event in read_events(path, fav_as=fav_as):
        if (limit is not None and sent >= limit) or (stop is not None and stop.is_set()):
            break
        if first_ts is None:
            first_ts = event["ts"]
        if speedup > 0:
            offset_s = (event["ts"] - first_ts) / 1000.0 / speedup
            wait = offset_s - (clock() - start_clock)
            if wait > 0:
                sleep(wait)
            event["ts"] = start_wall_ms + int(offset_s * 1000)
        else:
            event["ts"] = int(time.time() * 1000)
        producer_send(topic, event["user_id"].encode(), dumps(event).encode())
        sent += 1
    return sent
