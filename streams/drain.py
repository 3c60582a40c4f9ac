"""Batch consumption of the event partitions that Faust assigned to this worker.

Faust's per-message stream path (an event object, a task and an ack per message) caps one worker
at a few thousand events per second on two cores, less than feedrec's own work costs. So Faust
keeps what it is good at here (group membership, partition assignment, the changelog-backed
state table and its recovery, timers) and the hot path reads the same partitions of the event
topics in batches with confluent-kafka, whose consumer hands over thousands of messages per
call. Offsets are stored after a batch is processed and committed by the client every second,
under their own group id (at least once; repeats are caught by the per-user dedupe window).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from confluent_kafka import Consumer, KafkaException, TopicPartition

from model.events import Record
from streams.kafka import EVENT_TOPICS
from streams.settings import Settings

log = logging.getLogger(__name__)


class PartitionDrain:
    """Reads the event topics' partitions ``want``-ed by the rebalance handler, in batches."""

    def __init__(self, settings: Settings) -> None:
        self.batch_size = settings.batch_size
        self.within_s = settings.batch_within_s
        self.consumer = Consumer({
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"{settings.app_id}-events",
            "enable.auto.commit": True,
            "enable.auto.offset.store": False,
            "auto.commit.interval.ms": 1000,
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 20,
        })
        self._wanted: set[int] = set()
        self._current: set[int] = set()
        self._applied = asyncio.Event()
        self._stopped = False

    def want(self, partitions: set[int]) -> None:
        """Read these partitions (of every event topic) from the next batch on."""
        self._wanted = set(partitions)
        self._applied.clear()

    async def release(self) -> None:
        """Stop reading and return once no batch is in flight (before Faust revokes tables)."""
        self.want(set())
        if self._current:
            await self._applied.wait()

    async def close(self) -> None:
        await self.release()
        self._stopped = True

    def _apply(self) -> None:
        if self._wanted == self._current:
            return
        if self._current:
            try:
                self.consumer.commit(asynchronous=False)
            except KafkaException as exc:  # nothing stored since the last commit
                log.debug("no offsets to commit: %s", exc)
            self.consumer.unassign()
        if self._wanted:
            self.consumer.assign(
                [TopicPartition(t, p) for t in EVENT_TOPICS for p in sorted(self._wanted)]
            )
        log.info("reading event partitions %s", sorted(self._wanted))
        self._current = set(self._wanted)

    async def run(self, handle: Callable[[Sequence[Record]], None]) -> None:
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
            msgs = await asyncio.to_thread(consume, 1, self.within_s)
            if msgs and self.batch_size > 1:
                msgs += consume(self.batch_size - 1, 0)
            if not msgs or self._wanted != self._current:
                # Partitions changed while we waited: leave these for their new owner.
                continue
            records = []
            last: dict[tuple[str, int], int] = {}
            for m in msgs:
                err = m.error()
                if err is not None:
                    log.warning("consumer error: %s", err)
                    continue
                records.append(Record(m.topic(), m.partition(), m.offset(), m.value(), m.key()))
                last[(m.topic(), m.partition())] = m.offset()
            if records:
                handle(records)
                self.consumer.store_offsets(
                    offsets=[TopicPartition(t, p, o + 1) for (t, p), o in last.items()]
                )
        self.consumer.close()
