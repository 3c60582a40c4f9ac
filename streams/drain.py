"""Batch consumption of the event partitions that Faust assigned to this worker.

Faust's per-message stream path (an event object, a task and an ack per message) caps one worker
at a few thousand events per second on two cores, less than feedrec's own work costs. So Faust
keeps what it is good at here (group membership, partition assignment, the changelog-backed
state table and its recovery, timers) and the hot path reads the same partitions of the event
topics in batches with confluent-kafka, whose consumer hands over thousands of messages per
call. A batch's offsets are stored only once its state writes and dead letters are delivered
(the worker's outbox says when), and the client commits stored offsets every second under their
own group id. A replay after a crash therefore starts at or before the first event whose effects
may be missing; the per-source marks in each user's state keep it from applying anything twice.
A restart reads from the earlier of the committed offset and the first offset the restored model
has not learned, so the model too sees every event once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from feedrec.streams.records import Record, source_name
from feedrec.streams.settings import Settings
from feedrec.streams.topics import EVENT_TOPICS

log = logging.getLogger(__name__)

#: ``(topic, partition)`` -> the next offset to read there.
Offsets = dict[tuple[str, int], int]


class PartitionDrain:
    """Reads the event topics' partitions ``want``-ed by the rebalance handler, in batches."""

    def __init__(
        self,
        settings: Settings,
        resume: Callable[[], dict[str, int]] | None = None,
        settle: Callable[[], None] | None = None,
        pump: Callable[[], None] | None = None,
        begin: Callable[[dict[str, int]], None] | None = None,
    ) -> None:
        """``resume`` gives, per source, the first offset the model has not learned; ``begin``
        is told where each newly assigned source starts; ``settle`` waits until every batch
        handed over is delivered (its offsets stored); ``pump`` serves delivery reports
        (called while waiting for records)."""
        self.batch_size = settings.batch_size
        self.within_s = settings.batch_within_s
        self.consumer = Consumer(
            {
                "bootstrap.servers": settings.bootstrap_servers,
                "group.id": f"{settings.app_id}-events",
                "enable.auto.commit": True,
                "enable.auto.offset.store": False,
                "auto.commit.interval.ms": 1000,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 20,
            }
        )
        self._resume = resume or dict
        self._settle = settle or (lambda: None)
        self._pump = pump or (lambda: None)
        self._begin = begin or (lambda starts: None)
        self._wanted: set[int] = set()
        self._current: set[int] = set()
        self._applied = asyncio.Event()
        self._stopped = False
        #: The run loop has returned or died: nothing is in flight any more.
        self._ended = False

    def want(self, partitions: set[int]) -> None:
        """Read these partitions (of every event topic) from the next batch on."""
        self._wanted = set(partitions)
        self._applied.clear()

    async def release(self) -> None:
        """Stop reading and return once no batch is in flight (before Faust revokes tables)."""
        self.want(set())
        if self._current and not self._ended:
            await self._applied.wait()

    async def close(self) -> None:
        await self.release()
        self._stopped = True

    def _apply(self) -> None:
        if self._wanted == self._current:
            return
        if self._current:
            # The next owner must find every handed-over batch's effects and offsets in place.
            self._settle()
            try:
                self.consumer.commit(asynchronous=False)
            except KafkaException as exc:  # nothing stored since the last commit
                log.debug("no offsets to commit: %s", exc)
            self.consumer.unassign()
        if self._wanted:
            self.consumer.assign(self._start_positions(sorted(self._wanted)))
            log.warning(
                "ready: reading partitions %s of %s", sorted(self._wanted), ", ".join(EVENT_TOPICS)
            )
        else:
            log.info("reading no event partitions")
        self._current = set(self._wanted)

    def _start_positions(self, partitions: list[int]) -> list[TopicPartition]:
        """Each partition from the earlier of its committed offset and the model's resume point
        (the broker's earliest offset when neither is known)."""
        tps = [TopicPartition(t, p) for t in EVENT_TOPICS for p in partitions]
        committed = self.consumer.committed(tps, timeout=10)
        resume = self._resume()
        out = []
        for tp in committed:
            at = [
                o
                for o in (tp.offset, resume.get(source_name(tp.topic, tp.partition), -1))
                if o >= 0
            ]
            out.append(TopicPartition(tp.topic, tp.partition, min(at) if at else OFFSET_BEGINNING))
        self._begin({source_name(tp.topic, tp.partition): tp.offset for tp in out})
        return out

    def store(self, offsets: Offsets) -> None:
        """Mark ``offsets`` (those of a batch whose effects are durable) for the next commit."""
        mine = [TopicPartition(t, p, o) for (t, p), o in offsets.items() if p in self._current]
        if not mine:
            return
        try:
            self.consumer.store_offsets(offsets=mine)
        except KafkaException as exc:  # revoked meanwhile: the next owner replays them
            log.debug("offsets not stored: %s", exc)

    async def run(self, handle: Callable[[Sequence[Record]], None]) -> None:
        try:
            await self._run(handle)
        finally:
            # Also when a batch raised: whoever waits in release() must not wait forever.
            self._ended = True
            self._applied.set()

    async def _run(self, handle: Callable[[Sequence[Record]], None]) -> None:
        consume = self.consumer.consume
        while not self._stopped:
            self._apply()
            self._applied.set()
            if not self._current:
                await asyncio.sleep(0.05)
                continue
            # Adaptive batching: wait for the first message only, then take whatever the client
            # has already prefetched. Under load that is a full batch; when quiet, a small one
            # that goes out at once instead of waiting for company.
            msgs = await asyncio.to_thread(self._wait, self.within_s)
            if msgs and self.batch_size > 1:
                msgs += consume(self.batch_size - 1, 0)
            if not msgs or self._wanted != self._current:
                # Partitions changed while we waited: leave these for their new owner.
                continue
            records = []
            for m in msgs:
                err = m.error()
                if err is not None:
                    log.warning("consumer error: %s", err)
                    continue
                records.append(Record.of(m))
            if records:
                handle(records)
        self.consumer.close()

    def _wait(self, timeout: float) -> list:
        """The first record(s) to arrive within ``timeout``, serving delivery reports meanwhile
        so that finished batches release their lists without waiting for the next batch."""
        deadline = time.monotonic() + timeout
        while True:
            msgs = self.consumer.consume(1, min(0.01, timeout))
            self._pump()
            if msgs or time.monotonic() >= deadline:
                return msgs
