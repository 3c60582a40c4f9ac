"""The catalogue reader: tails the compacted ``items`` topic into the pipeline's item statistics.

It must outlive anything the topic or the broker does to it: a record that cannot be used is
dead-lettered (``feedrec.topic=items``) and skipped, a consumer error is logged and the client
retries, and a consumer that fails outright is closed and a new one resumes where the old one
stopped. A reader that died would leave the worker running on a frozen catalogue.

Every worker reads the whole topic from the start, so each worker dead-letters a bad catalogue
record once per start; the coordinates in the headers identify the repeats.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition

from feedrec.model.events import CatalogItem, Refused, ValidationLimits, decode_catalog_item
from feedrec.streams.records import Record, Rejection
from feedrec.streams.topics import ITEMS_TOPIC

log = logging.getLogger("feedrec.catalog")

#: Longest pause between two attempts to (re)connect, and between two logs of one error.
MAX_RETRY_S = 30.0


def _consumer(bootstrap: str) -> Any:
    # Offsets are assigned explicitly; "earliest" only matters if a resume position was
    # compacted or deleted away, where skipping to the end would lose records.
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "feedrec-catalog",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )


class CatalogTailer(threading.Thread):
    """Reads the compacted ``items`` topic from the start, in every worker, for as long as it runs.

    ``apply`` gets every catalogue record that can be used (the worker passes
    :meth:`feedrec.model.pipeline.Pipeline.add_catalog`, which queues it for the next batch);
    ``reject`` gets the :class:`Rejection` of each record that cannot be used (the worker passes
    :func:`streams.deadletter.dead_letter_sink`); without it such records are only logged.
    ``consumer_factory`` and ``retry_s`` are for tests.
    """

    def __init__(
        self,
        bootstrap: str,
        apply: Callable[[CatalogItem], None],
        reject: Callable[[Rejection], None] | None = None,
        limits: ValidationLimits | None = None,
        consumer_factory: Callable[[str], Any] = _consumer,
        retry_s: float = 1.0,
    ) -> None:
        super().__init__(name="feedrec-catalog", daemon=True)
        self._servers = bootstrap
        self._apply_item = apply
        self._reject = reject
        self._max_bytes = (limits or ValidationLimits()).max_payload_bytes
        self._factory = consumer_factory
        self._retry_s = retry_s
        self._halt = threading.Event()
        #: partition -> next offset to read: where a new consumer resumes.
        self.positions: dict[int, int] = {}
        self.records = 0
        self.refused = 0
        self.reconnects = 0
        self._last_logged: dict[str, float] = {}

    def run(self) -> None:
        pause = self._retry_s
        while not self._halt.is_set():
            consumer = None
            try:
                consumer = self._factory(self._servers)
                self._assign(consumer)
                pause = self._retry_s
                self._tail(consumer)
            except Exception:
                log.exception("catalogue reader failed; reconnecting in %.1fs", pause)
                self.reconnects += 1
                self._halt.wait(pause)
                pause = min(max(pause * 2, 0.1), MAX_RETRY_S)
            finally:
                if consumer is not None:
                    try:
                        consumer.close()
                    except Exception:
                        log.debug("closing the catalogue consumer failed", exc_info=True)

    def stop(self) -> None:
        self._halt.set()

    def _assign(self, consumer: Any) -> None:
        meta = consumer.list_topics(ITEMS_TOPIC, timeout=10).topics.get(ITEMS_TOPIC)
        if meta is None or meta.error is not None:
            raise KafkaException(meta.error if meta is not None else "no items topic")
        consumer.assign(
            [
                TopicPartition(ITEMS_TOPIC, p, self.positions.get(p, OFFSET_BEGINNING))
                for p in sorted(meta.partitions)
            ]
        )

    def _tail(self, consumer: Any) -> None:
        while not self._halt.is_set():
            for msg in consumer.consume(1000, 0.5):
                err = msg.error()
                if err is not None:
                    if err.fatal():
                        raise KafkaException(err)
                    self._log_error(str(err))
                    continue
                self.positions[msg.partition()] = msg.offset() + 1
                try:
                    self._apply(msg)
                except Exception:
                    log.exception(
                        "catalogue record %s[%s]@%s not applied",
                        ITEMS_TOPIC,
                        msg.partition(),
                        msg.offset(),
                    )

    def _apply(self, msg: Message) -> None:
        value = msg.value()
        if value is None:
            return  # a tombstone: compaction's delete marker, not an item
        got = decode_catalog_item(value, self._max_bytes)
        if isinstance(got, CatalogItem):
            self._apply_item(got)
            self.records += 1
            return
        reason, detail = got
        self.refused += 1
        rej: Rejection = Refused(Record.of(msg), reason, detail)
        log.warning(
            "catalogue record %s[%d]@%d refused: %s (%s)",
            rej.record.topic,
            rej.record.partition,
            rej.record.offset,
            reason,
            detail[:200],
        )
        if self._reject is not None:
            self._reject(rej)

    def _log_error(self, text: str) -> None:
        """Log a consumer error, each distinct one at most every :data:`MAX_RETRY_S`."""
        now = time.monotonic()
        if len(self._last_logged) > 100:
            self._last_logged.clear()
        if now - self._last_logged.get(text, -MAX_RETRY_S) >= MAX_RETRY_S:
            self._last_logged[text] = now
            log.warning("catalogue consumer error (the client retries): %s", text)
