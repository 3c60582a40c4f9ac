"""Datasets of ``feedrec evaluate``: a file in the Taobao UserBehavior or generic CSV format (see
:mod:`feedrec.streams.tools.replay`), or a simulated stream: ``sim`` / ``sim:N`` is N events
(default 100,000) of the simulator's shop sessions, open loop, at 100 events/s of simulated
time; ``sim-catalog`` / ``sim-catalog:N`` is N events of the catalogue regime
(:mod:`feedrec.streams.tools.catalogue_sim`: long histories over months, no repeat interactions).
"""

from __future__ import annotations

import msgspec

from feedrec.model.events import Event
from feedrec.streams.exceptions import DatasetError
from feedrec.streams.tools.catalogue_sim import CatalogueConfig, catalogue_events
from feedrec.streams.tools.replay import read_events
from feedrec.streams.tools.simulator import Shop, SimConfig
from feedrec.streams.topics import TOPIC_TYPES

SIM_RATE = 100.0
SIM_START_MS = 1_700_000_000_000
#: Simulated regimes by spec prefix, and their default sizes.
SIM_KINDS = {"sim": 100_000, "sim-catalog": 100_000}


def _event(topic: str, fields: dict) -> Event:
    ev = msgspec.convert(fields, Event)
    ev.event_type = TOPIC_TYPES[topic]
    return ev


def simulated_events(n: int, seed: int = 0) -> list[Event]:
    """N events of the simulator's shop sessions."""
    shop = Shop(SimConfig(seed=seed))
    out: list[Event] = []
    step = 100
    for k in range(0, n, step):
        now = SIM_START_MS + int(k / SIM_RATE * 1000)
        out.extend(_event(t, e) for t, e in shop.next_events(now, min(step, n - k)))
    return out


def catalogue_stream(n: int, seed: int = 0) -> list[Event]:
    """N events of the catalogue regime."""
    return [_event(t, e) for t, e in catalogue_events(n, CatalogueConfig(seed=seed))]


def sim_spec(spec: str) -> tuple[str, int] | None:
    """``(kind, N)`` of a simulated dataset spec (``sim[:N]``, ``sim-catalog[:N]``), None for a
    file; :class:`DatasetError` if N is not a whole number >= 1."""
    kind, sep, text = spec.partition(":")
    if kind not in SIM_KINDS:
        return None
    if not sep:
        return kind, SIM_KINDS[kind]
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise DatasetError(
            f"dataset {spec!r}: expected {kind} or {kind}:N with N a whole "
            "number of events >= 1 (e.g. sim:20000), or the path of a dataset file"
        )
    return kind, n


def sim_size(spec: str) -> int | None:
    """N of a simulated dataset spec, None for a file."""
    sim = sim_spec(spec)
    return None if sim is None else sim[1]


def load_dataset(spec: str, fav_as: str | None = None, limit: int | None = None) -> list[Event]:
    """Events of ``spec``: a dataset file, or a simulated stream."""
    sim = sim_spec(spec)
    if sim is not None:
        kind, n = sim
        n = min(n, limit or n)
        return simulated_events(n) if kind == "sim" else catalogue_stream(n)
    out: list[Event] = []
    for topic, fields in read_events(spec, fav_as=fav_as):
        out.append(_event(topic, fields))
        if limit is not None and len(out) >= limit:
            break
    return out
