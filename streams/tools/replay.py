"""Replay of real datasets in time order: Taobao UserBehavior and a generic CSV.

Formats, detected from the first line:

- Taobao UserBehavior, no header: ``user_id,item_id,category_id,behavior,timestamp`` with the
  timestamp in Unix seconds; ``pv`` -> browse, ``cart`` -> cart, ``buy`` -> purchase, and ``fav``
  dropped unless ``fav_as`` names a type.
- Generic: a header ``ts,user_id,item_id,event_type`` optionally followed by ``category,price``,
  ``ts`` in epoch milliseconds, ``event_type`` one of browse, click, cart, purchase.

Either may be plain or gzip-compressed (detected from the content, not the name). Event ids are
``{file stem}-{line number}``, so a replay of the same file yields the same ids (and the worker's
de-duplication recognises a second replay). A line that does not fit raises
:class:`~streams.exceptions.ReplayFormatError` naming the file, the line and what was expected.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from feedrec.model.clock import Clock, SystemClock
from feedrec.model.events import EVENT_TYPES, MAX_ID_LEN
from feedrec.streams.exceptions import DatasetError, ReplayFormatError
from feedrec.streams.topics import EVENT_TOPIC

TAOBAO_BEHAVIOURS = {"pv": "browse", "cart": "cart", "buy": "purchase"}
GENERIC_HEADER = ["ts", "user_id", "item_id", "event_type"]


def check_dataset(path: str | Path) -> Path:
    """``path`` as a :class:`Path` if it is a readable file; :class:`DatasetError` if not."""
    path = Path(path)
    if not path.exists():
        problem = "no such file"
    elif path.is_dir():
        problem = "a directory, not a file"
    elif not os.access(path, os.R_OK):
        problem = "not readable (permission denied)"
    else:
        return path
    raise DatasetError(
        f"{path}: {problem}; give the path of a Taobao UserBehavior or generic CSV file "
        "(plain or gzip)"
    )


def _open(path: Path) -> io.TextIOBase:
    """Text stream of ``path``, gunzipped when it starts with the gzip magic; a BOM is skipped."""
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    raw = gzip.open(path, "rb") if gz else open(path, "rb")  # noqa: SIM115
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def _stem(path: Path) -> str:
    """File name without ``.gz``/``.csv``: the event-id prefix."""
    name = path.name
    for suffix in (".gz", ".csv"):
        name = name.removesuffix(suffix)
    return name


def read_events(path: str | Path, fav_as: str | None = None) -> Iterator[tuple[str, dict]]:
    """``(topic, event)`` pairs in file order, ``ts`` in epoch milliseconds.

    ``fav_as`` maps Taobao's ``fav`` to an event type (e.g. ``"click"``); by default it is dropped.
    Arguments are checked at the call, the file as it is read.
    """
    path = check_dataset(path)
    if fav_as is not None and fav_as not in EVENT_TYPES:
        raise ValueError(f"fav_as must be one of {', '.join(EVENT_TYPES)}, got {fav_as!r}")
    return _read(path, fav_as)


def _read(path: Path, fav_as: str | None) -> Iterator[tuple[str, dict]]:
    """The generator behind :func:`read_events`: detect the format, then parse."""
    stem = _stem(path)
    try:
        f = _open(path)
    except OSError as exc:  # gone or made unreadable since it was checked
        raise DatasetError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    with f:
        reader = csv.reader(f, strict=True)
        rows = _rows(path, reader)
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
            yield from _taobao(path, stem, behaviours, itertools.chain([first], rows))


def _rows(path: Path, reader: Iterator[list[str]]) -> Iterator[list[str]]:
    """CSV rows, with undecodable bytes and CSV syntax errors turned into format errors."""
    line = 0
    try:
        for line, row in enumerate(reader, start=1):  # noqa: B007 (used after the loop)
            yield row
    except UnicodeDecodeError as exc:
        # Text is decoded in chunks, so the bad bytes are at or somewhat after this line.
        raise ReplayFormatError(
            f"{path}:{line + 1}: expected UTF-8 text at or after this line ({exc})"
        ) from None
    except csv.Error as exc:
        raise ReplayFormatError(f"{path}:{line + 1}: expected CSV ({exc})") from None
    except (EOFError, OSError) as exc:  # a truncated or corrupt gzip file, a read error
        raise ReplayFormatError(
            f"{path}:{line + 1}: the file is cut short or corrupt at or after this line ({exc})"
        ) from None


def _check_ids(path: Path, line: int, user: str, item: str) -> None:
    """The worker refuses empty or over-long ids; say so here, with the line."""
    for name, value in (("user_id", user), ("item_id", item)):
        if not value or len(value) > MAX_ID_LEN:
            raise ReplayFormatError(
                f"{path}:{line}: expected a {name} of 1..{MAX_ID_LEN} characters, got {value!r}"
            )


def _taobao(
    path: Path, stem: str, behaviours: dict[str, str], rows: Iterator[list[str]]
) -> Iterator[tuple[str, dict]]:
    """Taobao rows (no header) as events; seconds become milliseconds."""
    for line, row in enumerate(rows, start=1):
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
            raise ReplayFormatError(
                f"{path}:{line}: unknown behavior {behaviour!r}; expected pv, cart, buy or fav"
            )
        _check_ids(path, line, user, item)
        try:
            seconds = int(ts)
        except ValueError:
            raise ReplayFormatError(
                f"{path}:{line}: timestamp {ts!r} is not Unix seconds"
            ) from None
        kind = behaviours[behaviour]
        event = {
            "event_id": f"{stem}-{line}",
            "user_id": user,
            "item_id": item,
            "ts": seconds * 1000,
        }
        if category:
            event["category"] = category
        yield EVENT_TOPIC[kind], event


def _generic(
    path: Path, stem: str, header: list[str], rows: Iterator[list[str]]
) -> Iterator[tuple[str, dict]]:
    """Generic rows after the header as events."""
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
        _check_ids(path, line, user, item)
        try:
            event = {"event_id": f"{stem}-{line}", "user_id": user, "item_id": item, "ts": int(ts)}
            if width > 4 and row[4]:
                event["category"] = row[4]
            if width > 5 and row[5]:
                price = float(row[5])
                if not price >= 0 or price == float("inf"):
                    raise ValueError(row[5])
                event["price"] = price
        except ValueError:
            raise ReplayFormatError(
                f"{path}:{line}: ts must be epoch milliseconds (an integer) and price a non-negative number; got {row}"
            ) from None
        yield EVENT_TOPIC[kind], event


def replay(
    path: str | Path,
    producer_send: Callable[[str, bytes, bytes], None],
    speedup: float = 0.0,
    limit: int | None = None,
    stop: threading.Event | None = None,
    fav_as: str | None = None,
    clock: Clock | None = None,
    sleep: Callable[[float], object] = time.sleep,
) -> int:
    """Publish the events of ``path`` in file order through ``producer_send(topic, key, value)``
    (key = user id); returns the number sent, at most ``limit``.

    Pacing: with ``speedup`` > 0 an event goes out ``(ts - first ts) / speedup`` after the start,
    so the original gaps are kept, divided by ``speedup``; a step back in time (an unsorted file)
    is sent at once. With ``speedup`` 0 events go out as fast as possible.

    ``ts`` is rewritten so that downstream latency and age checks see live data (a 2017 dataset
    would otherwise be refused as too old): with ``speedup`` > 0 it becomes the replay's start
    time plus the event's scaled offset, i.e. the time it was due (a producer that falls behind
    shows up as lag); with ``speedup`` 0 it is the send time. The original ``ts`` is not kept: the
    schema has no field for it, and it equals ``first ts + (ts - replay start) * speedup``.

    ``stop`` ends the replay early, also during a wait. The pacing and the new timestamps come
    from ``clock`` (:class:`~feedrec.model.clock.SystemClock` by default); waits go to
    ``sleep``.
    """
    if not speedup >= 0 or speedup == float("inf"):
        raise ValueError(
            f"speedup must be 0 (as fast as possible) or a positive factor, got {speedup}"
        )
    if limit is not None and limit < 0:
        raise ValueError(f"limit must not be negative, got {limit}")
    clock = clock if clock is not None else SystemClock()
    if stop is not None and sleep is time.sleep:
        sleep = stop.wait  # wakes at once when stopped
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    sent = 0
    first_ts: int | None = None
    start_clock = clock.monotonic()
    start_wall_ms = clock.now_ms()
    if limit == 0:
        return 0
    for topic, event in read_events(path, fav_as=fav_as):
        if stop is not None and stop.is_set():
            break
        if first_ts is None:
            first_ts = event["ts"]
        if speedup > 0:
            offset_s = (event["ts"] - first_ts) / 1000.0 / speedup
            wait = offset_s - (clock.monotonic() - start_clock)
            if wait > 0:
                sleep(wait)
                if stop is not None and stop.is_set():
                    break
            event["ts"] = start_wall_ms + round(offset_s * 1000)
        else:
            event["ts"] = clock.now_ms()
        producer_send(topic, event["user_id"].encode(), dumps(event).encode())
        sent += 1
        if limit is not None and sent >= limit:
            break
    return sent
