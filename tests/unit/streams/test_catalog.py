"""The catalogue reader survives poison records, consumer errors and a consumer that fails."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException

from feedrec.model.events import CatalogItem
from feedrec.streams.catalog import CatalogTailer
from feedrec.streams.records import Rejection
from feedrec.streams.topics import ITEMS_TOPIC

DEEP = b'{"item_id":"i9","x":' + b"[" * 1000 + b"]" * 1000 + b"}"


@dataclass
class Msg:
    part: int
    off: int
    val: bytes | None
    err: KafkaError | None = None

    def error(self) -> KafkaError | None:
        return self.err

    def value(self) -> bytes | None:
        return self.val

    def key(self) -> bytes:
        return b"k%d" % self.off

    def topic(self) -> str:
        return ITEMS_TOPIC

    def partition(self) -> int:
        return self.part

    def offset(self) -> int:
        return self.off


class Broker:
    """Hands out scripted consumers: each is a list of consume() results, where an exception
    instance is raised instead; ``None`` in place of a script means creating it fails."""

    def __init__(self, scripts: list[list | None]) -> None:
        self.scripts = deque(scripts)
        self.assigned: list[list[tuple[int, int]]] = []
        self.closed = 0
        self.tailer: CatalogTailer | None = None

    def __call__(self, servers: str) -> Broker.Consumer:
        script = self.scripts.popleft() if self.scripts else []
        if script is None:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT))
        return Broker.Consumer(self, deque(script))

    class Consumer:
        def __init__(self, broker: Broker, script: deque) -> None:
            self.broker, self.script = broker, script

        def list_topics(self, topic: str, timeout: float) -> SimpleNamespace:
            meta = SimpleNamespace(partitions={0: None, 1: None}, error=None)
            return SimpleNamespace(topics={ITEMS_TOPIC: meta})

        def assign(self, tps: list) -> None:
            self.broker.assigned.append([(tp.partition, tp.offset) for tp in tps])

        def consume(self, n: int, timeout: float) -> list[Msg]:
            if not self.script:
                if not self.broker.scripts:
                    assert self.broker.tailer is not None
                    self.broker.tailer.stop()
                return []
            step = self.script.popleft()
            if isinstance(step, Exception):
                raise step
            return step

        def close(self) -> None:
            self.broker.closed += 1


def make(
    broker: Broker, reject: Callable[[Rejection], None]
) -> tuple[CatalogTailer, list[CatalogItem]]:
    pending: list[CatalogItem] = []
    tailer = CatalogTailer(
        "fake:9092", pending.append, reject=reject, consumer_factory=broker, retry_s=0.0
    )
    broker.tailer = tailer
    return tailer, pending


def test_poison_errors_and_a_failed_consumer_cost_the_catalogue_nothing() -> None:
    broker = Broker(
        [
            None,  # the broker is not there yet
            [
                [
                    Msg(0, 0, b'{"item_id":"i1"}'),
                    Msg(0, 1, DEEP),
                    Msg(0, -1, None, KafkaError(KafkaError._TRANSPORT)),
                    Msg(1, 0, b'{"item_id":"i2"}'),
                    Msg(1, 1, None),
                ],
                KafkaException(KafkaError(KafkaError._TRANSPORT)),
            ],  # the consumer fails
            [
                [
                    Msg(0, 2, b'{"item_id":""}'),
                    Msg(0, 3, b'{"item_id":"i3","available":false}'),
                    Msg(0, 4, b"{\xff"),
                ]
            ],
        ]
    )
    refused: list[Rejection] = []
    tailer, pending = make(broker, refused.append)
    tailer.run()
    assert [(i.item_id, i.available) for i in pending] == [
        ("i1", True),
        ("i2", True),
        ("i3", False),
    ]
    assert [(r.record.topic, r.record.partition, r.record.offset, r.reason) for r in refused] == [
        (ITEMS_TOPIC, 0, 1, "bad_json"),
        (ITEMS_TOPIC, 0, 2, "bad_id"),
        (ITEMS_TOPIC, 0, 4, "not_utf8"),
    ]
    assert "nests too deep" in refused[0].detail
    assert refused[0].record.value == DEEP and refused[0].record.key == b"k1"
    # The new consumer resumed after the last record read, not from the start.
    assert broker.assigned == [[(0, OFFSET_BEGINNING), (1, OFFSET_BEGINNING)], [(0, 2), (1, 2)]]
    assert tailer.reconnects == 2 and broker.closed == 2
    assert (tailer.records, tailer.refused) == (3, 3)


def test_a_failing_dead_letter_sender_does_not_stop_the_reader() -> None:
    broker = Broker([[[Msg(0, 0, b"junk"), Msg(0, 1, b'{"item_id":"i1"}'), Msg(0, 2, b"[")]]])
    calls: list[int] = []

    def reject(rej: Rejection) -> None:
        calls.append(rej.record.offset)
        raise KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT))

    tailer, pending = make(broker, reject)
    tailer.run()
    assert calls == [0, 2]
    assert [i.item_id for i in pending] == ["i1"]
    assert tailer.reconnects == 0
