"""Faust patches: table recovery that does not trust the broker's high watermark alone, and a
restart that does not sit idle.

Faust restores a table by reading its changelog up to the high watermark the broker reports.
The embedded broker (Tansu, as pinned) reports the base offset of the partition's last record
batch plus one, not the offset after its last record, so a restore stopped short by up to a
batch and silently lost the newest user states. Before recovery starts we read each changelog
partition from the reported mark to its real end and raise the mark to the last offset found.
Against a broker that reports correctly this reads one record per partition and changes nothing.

A restarted worker used to wait on Faust twice for nothing, measured on the embedded broker:
its table manager sleeps 1 s before recovery starts (for tables declared late; ours are all
declared before the app starts), and its consumer holds every fetch up to a hard-coded 1.5 s,
so recovery's offset requests and changelog reads queue behind idle fetches (2-2.5 s of the
restart). The fetch wait drops to :data:`FETCH_MAX_WAIT_MS` and the sleep goes.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any, cast

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from faust.stores.memory import Store as MemoryStore
from faust.tables.manager import TableManager
from faust.tables.recovery import Recovery
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP

from feedrec.streams.records import position

log = logging.getLogger(__name__)

_original = Recovery._build_highwaters
_create_worker_consumer = AIOKafkaConsumerThread._create_worker_consumer
_IDLE_S = 0.5
#: Longest a fetch of Faust's consumer (tables, the assignment topic) waits for data.
FETCH_MAX_WAIT_MS = 100


def true_last_offsets(
    bootstrap: str, marks: Mapping[TP, int], timeout: float = 10.0
) -> dict[TP, int]:
    """Last offset actually present in each partition, scanning forward from ``marks``."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"feedrec-hw-{uuid.uuid4()}",
            "enable.auto.commit": False,
        }
    )
    last = dict(marks)
    try:
        todo = {(tp.topic, tp.partition): tp for tp, mark in marks.items() if mark >= 0}
        if not todo:
            return last
        consumer.assign([TopicPartition(t, p, marks[tp]) for (t, p), tp in todo.items()])
        deadline = time.monotonic() + timeout
        idle_since = time.monotonic()
        while todo and time.monotonic() < deadline and time.monotonic() - idle_since < _IDLE_S:
            for msg in consumer.consume(1000, 0.1):
                if msg.error() is not None:
                    continue
                topic, partition, offset = position(msg)
                tp = todo.get((topic, partition))
                if tp is None:
                    continue
                last[tp] = max(last[tp], offset)
                idle_since = time.monotonic()
    finally:
        consumer.close()
    return last


def read_changelog(
    bootstrap: str, ends: Mapping[TP, int], timeout: float = 120.0
) -> dict[TP, dict[bytes, bytes | None]]:
    """The last value of every key in each partition, read from its start through ``ends``."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"feedrec-cl-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 20,
        }
    )
    out: dict[TP, dict[bytes, bytes | None]] = {tp: {} for tp in ends}
    try:
        todo = {(tp.topic, tp.partition): tp for tp, end in ends.items() if end >= 0}
        if not todo:
            return out
        consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in todo])
        deadline = time.monotonic() + timeout
        while todo:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"changelog partitions {sorted(todo)} not read to their "
                    f"ends within {timeout:.0f}s"
                )
            for msg in consumer.consume(10_000, 0.1):
                if msg.error() is not None:
                    continue
                topic, partition, offset = position(msg)
                tp = todo.get((topic, partition))
                if tp is None:
                    continue
                key = msg.key()
                if offset <= ends[tp] and key is not None:
                    out[tp][key] = msg.value()
                if offset >= ends[tp]:
                    del todo[(topic, partition)]
    finally:
        consumer.close()
    return out


async def _build_highwaters(
    self: Recovery, consumer: Any, tps: Any, destination: Any, title: str
) -> None:
    await _original(self, consumer, tps, destination, title)
    if not destination:
        return
    bootstrap = ",".join(f"{u.host}:{u.port or 9092}" for u in self.app.conf.broker)
    fixed = await asyncio.to_thread(true_last_offsets, bootstrap, dict(destination))
    for tp, offset in fixed.items():
        if offset != destination[tp]:
            log.info("%s: high watermark %d raised to last offset %d", tp, destination[tp], offset)
            destination[tp] = offset
    if title == "active":
        await _restore_actives(self, bootstrap, destination)


async def _restore_actives(self: Recovery, bootstrap: str, ends: Mapping[TP, int]) -> None:
    """Restore in-memory tables from their changelogs with confluent-kafka, then tell Faust the
    partitions are read to their ends, so its own per-record recovery has nothing left to do.

    Faust's recovery handles each changelog record as an event object in Python (about 30 µs
    each): 3.4 s of a restart after a 20-kill run had piled up the changelog. This reads the
    same records in C and keeps only each key's last value.
    """
    mine = {
        tp: end
        for tp, end in ends.items()
        if isinstance(getattr(self.tp_to_table.get(tp), "data", None), MemoryStore)
    }
    if not mine:
        return
    t0 = time.perf_counter()
    values = await asyncio.to_thread(read_changelog, bootstrap, mine)
    keys = 0
    for tp, latest in values.items():
        # Only tables on memory stores are read here (above): their store's dict is ``data``.
        data = cast(Any, self.tp_to_table[tp]).data.data
        for key, value in latest.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        keys += len(latest)
        self.active_offsets[tp] = mine[tp]
    log.info(
        "restored %d keys of %d changelog partitions in %.2fs",
        keys,
        len(mine),
        time.perf_counter() - t0,
    )


def _worker_consumer(self: AIOKafkaConsumerThread, transport: Any) -> Any:
    consumer = _create_worker_consumer(self, transport)
    consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read by the fetcher it builds on start
    return consumer


async def _table_manager_on_start(self: TableManager) -> None:
    """Faust's own, less its 1 s sleep."""
    if not self.should_stop:
        await self._update_channels()
        await self.recovery.start()


def install() -> None:
    """Patch Faust once per process (idempotent)."""
    # Replacing faust's methods is what this module is for; mypy objects to every assignment.
    Recovery._build_highwaters = _build_highwaters  # type: ignore[method-assign]
    AIOKafkaConsumerThread._create_worker_consumer = _worker_consumer  # type: ignore[method-assign]
    TableManager.on_start = _table_manager_on_start  # type: ignore[method-assign]
