"""The catalogue reader: tails the compacted ``items`` topic into the pipeline's item stats."""

from __future__ import annotations

import logging
import threading

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from model.events import decode_catalog_item
from model.pipeline import Pipeline
from streams.kafka import ITEMS_TOPIC

log = logging.getLogger("feedrec.catalog")


class CatalogTailer(threading.Thread):
    """Reads the compacted ``items`` topic from the start, in every worker, for as long as it runs."""

    def __init__(self, bootstrap: str, pipeline: Pipeline) -> None:
        super().__init__(name="feedrec-catalog", daemon=True)
        self._servers = bootstrap
        self._pipeline = pipeline
        self._halt = threading.Event()
        self.records = 0

    def run(self) -> None:
        consumer = Consumer({"bootstrap.servers": self._servers, "group.id": "feedrec-catalog",
                             "enable.auto.commit": False})
        try:
            meta = consumer.list_topics(ITEMS_TOPIC, timeout=10).topics[ITEMS_TOPIC]
            consumer.assign(
                [TopicPartition(ITEMS_TOPIC, p, OFFSET_BEGINNING) for p in meta.partitions]
            )
            while not self._halt.is_set():
                for msg in consumer.consume(1000, 0.5):
                    if msg.error() is not None or msg.value() is None:
                        continue
                    item = decode_catalog_item(msg.value())
                    if item is not None:
                        self._pipeline.stats.pending.append(item)
                        self.records += 1
        except Exception:
            log.exception("catalogue tailer stopped")
        finally:
            consumer.close()

    def stop(self) -> None:
        self._halt.set()
