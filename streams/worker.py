"""The Faust worker: agents that move data between Kafka and the pure pipeline.

One agent consumes all four event topics in micro-batches (``take_events``), keeps per-user state
in a changelog-backed table, hands the batch to :class:`feedrec.model.pipeline.Pipeline`, and
produces recommendations and dead letters with a confluent-kafka producer. Timers checkpoint the
model and expire idle users; a thread tails the compacted catalogue topic.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import faust
import msgspec
import torch
from confluent_kafka import KafkaError, Message
from faust.types import TableT
from prometheus_client import CollectorRegistry, start_http_server

from feedrec.index import set_threads
from feedrec.model.batch import BatchRunner
from feedrec.model.clock import Clock, SystemClock
from feedrec.model.exceptions import ConfigError
from feedrec.model.pipeline import BatchResult, Pipeline
from feedrec.model.state import is_expired, load_state
from feedrec.model.steps.emit import Recommendation
from feedrec.streams import compat
from feedrec.streams.catalog import CatalogTailer
from feedrec.streams.checkpoint import load_snapshot, save_snapshot
from feedrec.streams.deadletter import dead_letter_sink, send_dead_letter
from feedrec.streams.drain import Offsets, PartitionDrain
from feedrec.streams.kafka import ensure_topics, latest_values, make_producer, send, wait_for_broker
from feedrec.streams.metrics import HitWindow, Metrics
from feedrec.streams.outbox import Outbox, Ticket
from feedrec.streams.records import Record, Rejection
from feedrec.streams.settings import Settings
from feedrec.streams.topics import DLQ_TOPIC, EVENT_TOPICS, RECS_TOPIC

log = logging.getLogger("feedrec.worker")

_encode = msgspec.json.encode


class _VersionOnly(msgspec.Struct):
    model_version: int = 0


@dataclass(slots=True)
class _Shipment:
    """What a batch shows once its durable writes are delivered: its lists and its offsets."""

    recommendations: list[Recommendation]
    offsets: Offsets


class Runtime:
    """Everything the agents share; built once per worker process."""

    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.registry = registry or CollectorRegistry()
        self.metrics = Metrics.create(self.registry)
        torch.set_num_threads(settings.torch_threads)
        set_threads(settings.torch_threads)
        self.clock: Clock = SystemClock()
        self.pipeline = Pipeline.build(
            settings.pipeline_config(),
            device=settings.device,
            index_kind=settings.index_kind,
            clock=self.clock,
        )
        self.runner: BatchRunner[Record] = BatchRunner(self.pipeline)
        self.outbox: Outbox[_Shipment] = Outbox()
        self._release_lock = threading.Lock()
        #: Called with each released batch's offsets (the drain stores them for commit).
        self.on_durable: Callable[[Offsets], None] | None = None
        self.hit_window = HitWindow(settings.hit_rate_window)
        self.producer = make_producer(settings.bootstrap_servers, settings.producer_linger_ms)
        self.tailer: CatalogTailer | None = None
        self._last_checkpoint_version = -1
        self._checkpointing = asyncio.Lock()
        self.ready = threading.Event()
        self._warm_error: BaseException | None = None

    # -- start and stop ----------------------------------------------------------------------

    def prepare(self) -> None:
        """What must hold before Faust starts (the broker answers already, see
        :func:`run_worker`): the topics, the restored checkpoint, the metrics endpoint."""
        s = self.settings
        ensure_topics(s.bootstrap_servers, s.partitions)
        snap = load_snapshot(s.checkpoint_dir)
        if snap is not None:
            self.pipeline.restore(snap)
            log.info("resumed from checkpoint at model version %d", self.pipeline.version)
        self._last_checkpoint_version = self.pipeline.version
        self.metrics.model_version.set(self.pipeline.version)
        if s.metrics_port:
            try:
                start_http_server(s.metrics_port, registry=self.registry)
            except OSError as exc:
                raise ConfigError(
                    f"FEEDREC_METRICS_PORT={s.metrics_port}: cannot serve /metrics on that port "
                    f"({exc.strerror or exc}): stop what listens there, or set "
                    "FEEDREC_METRICS_PORT to a free port (0 turns the endpoint off)."
                ) from None
            log.info("metrics on http://localhost:%d/metrics", s.metrics_port)

    def warm_up(self) -> None:
        """What may overlap Faust's group join (about a second of a restart): the version
        floor, the collector's settings, the catalogue reader. Sets :attr:`ready` when done;
        the consumers and timers wait for it."""
        try:
            s = self.settings
            emitted = [
                msgspec.json.decode(v, type=_VersionOnly).model_version
                for v in latest_values(s.bootstrap_servers, RECS_TOPIC)
                if v.startswith(b"{")
            ]
            floor = max(emitted, default=0)
            if floor > self.pipeline.version:
                log.info(
                    "model version %d raised to %d, the highest already emitted",
                    self.pipeline.version,
                    floor,
                )
                self.pipeline.learn.raise_version(floor)
            self.metrics.model_version.set(self.pipeline.version)
            # Long-lived objects (torch, faust, the model) leave the collector's view, and young
            # collections run less often: full collections were pausing batches by 100s of ms.
            gc.collect()
            gc.freeze()
            gc.set_threshold(50_000, 20, 100)
            self.tailer = CatalogTailer(
                s.bootstrap_servers,
                self.pipeline.add_catalog,
                limits=s.validation_limits(),
                reject=dead_letter_sink(self.producer, self.metrics.invalid),
            )
            self.tailer.start()
        except BaseException as exc:
            self._warm_error = exc
            raise
        finally:
            self.ready.set()

    async def wait_ready(self) -> None:
        """Return once :meth:`warm_up` is done; raise what made it fail."""
        await asyncio.to_thread(self.ready.wait)
        if self._warm_error is not None:
            raise self._warm_error

    def begin(self, starts: dict[str, int]) -> None:
        """The model starts learning these sources here; a new one is checkpointed at once
        (see :meth:`feedrec.model.steps.learn.Learn.begin`)."""
        if self.pipeline.learn.begin(starts):
            snap = self.pipeline.snapshot()
            save_snapshot(self.settings.checkpoint_dir, snap)
            self._last_checkpoint_version = snap.version

    async def checkpoint(self) -> None:
        if not self.ready.is_set():  # never save a model not yet set up over its checkpoint
            return
        async with self._checkpointing:  # the timer's and the shutdown's, one at a time
            if (
                self.pipeline.version == self._last_checkpoint_version
                and not self.pipeline.learn.pending
            ):
                return
            t0 = time.perf_counter()
            snap = self.pipeline.snapshot()
            await asyncio.to_thread(save_snapshot, self.settings.checkpoint_dir, snap)
            self._last_checkpoint_version = snap.version
            self.metrics.checkpoint_seconds.set(time.perf_counter() - t0)

    async def shutdown(self) -> None:
        if self.tailer is not None:
            self.tailer.stop()
        await asyncio.to_thread(self.settle)
        await self.checkpoint()
        await asyncio.to_thread(self.producer.flush, 10)

    # -- the hot path ------------------------------------------------------------------------

    def handle(self, records: Sequence[Record], table: TableT) -> None:
        """Run one micro-batch of raw event records through the pipeline and send its effects.

        The states (to the table and its changelog) and dead letters go out first; the batch's
        lists and offsets wait in the outbox until those writes are delivered (:meth:`pump`).
        """
        t0 = time.perf_counter()
        store = table.data
        # On the loop thread: a batch takes milliseconds, and a worker thread would only
        # contend for the GIL with the consumer it is meant to overlap.
        effects = self.runner.run(records, lambda user: store.get(user.encode()))
        offsets: Offsets = {}
        for r in records:
            offsets[(r.topic, r.partition)] = r.offset + 1
        ticket = self.outbox.open(_Shipment(effects.recommendations, offsets))
        self._write_states(table, effects.states, ticket)
        self._dead_letter(effects.refused, ticket)
        self.outbox.seal(ticket)
        self._count(effects.result)
        self.pump()
        self.metrics.batch_size.observe(len(records))
        self.metrics.batch_seconds.observe(time.perf_counter() - t0)

    def _durable(self, ticket: Ticket[_Shipment]) -> Callable[[KafkaError | None, Message], None]:
        """A delivery report that counts one of ``ticket``'s durable writes done."""

        def report(err: KafkaError | None, msg: Message) -> None:
            if err is None:
                ticket.delivered()
            else:
                ticket.failed(f"write to {msg.topic()}[{msg.partition()}] failed: {err.str()}")

        return report

    def _dead_letter(self, rejected: Sequence[Rejection], ticket: Ticket[_Shipment]) -> None:
        report = self._durable(ticket)
        for rej in rejected:
            ticket.expect()
            send_dead_letter(self.producer, rej, on_delivery=report, topic=DLQ_TOPIC)
            self.metrics.invalid.labels(rej.reason).inc()

    def _write_states(
        self, table: TableT, states: dict[str, bytes], ticket: Ticket[_Shipment]
    ) -> None:
        """Update the table and its changelog without Faust's per-key producer path.

        The changelog record is exactly what Faust would write (raw key, raw value, the key's
        murmur2 partition), so Faust's own recovery restores it; the confluent producer batches
        it in C instead of one aiokafka send per user.
        """
        store = table.data
        topic = table.changelog_topic.get_topic_name()
        produce = self.producer.produce
        report = self._durable(ticket)
        ticket.expect(len(states))
        for user, raw in states.items():
            key = user.encode()
            store[key] = raw
            try:
                produce(topic, raw, key, on_delivery=report)
            except BufferError:
                send(self.producer, topic, key, raw, on_delivery=report)

    def pump(self, timeout: float = 0.0) -> None:
        """Serve delivery reports, then send the lists and store the offsets of every batch
        whose durable writes are all delivered. Raises :class:`DeliveryError` after a write
        failed for good: the worker must stop before anything past it is committed."""
        self.producer.poll(timeout)
        with self._release_lock:
            for shipment in self.outbox.release():
                self._emit(shipment.recommendations)
                if self.on_durable is not None:
                    self.on_durable(shipment.offsets)

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until every batch handed over so far is delivered and released."""
        deadline = time.monotonic() + timeout
        while len(self.outbox) and time.monotonic() < deadline:
            self.producer.flush(min(1.0, max(deadline - time.monotonic(), 0.0)))
            self.pump()

    def _emit(self, recommendations: Sequence[Recommendation]) -> None:
        if not recommendations:
            return
        now = self.clock.now_ms()
        latency = self.metrics.latency
        for rec in recommendations:
            rec.emitted_ts = now
            send(self.producer, RECS_TOPIC, rec.user_id.encode(), _encode(rec))
            latency.observe(max(now - rec.event_ts, 0) / 1000.0)
        self.metrics.recommendations.inc(len(recommendations))

    def _count(self, result: BatchResult) -> None:
        m = self.metrics
        for kind, n in result.counts.items():
            if n:
                m.events.labels(kind).inc(n)
        m.duplicates.inc(result.duplicates)
        m.replayed.inc(result.replayed)
        m.rec_clicks.inc(result.rec_clicks)
        m.feedback.inc(result.feedback)
        m.hits.inc(result.hits)
        self.hit_window.add(result.feedback, result.hits)
        m.hit_rate.set(self.hit_window.rate)
        if result.loss is not None:
            m.loss.set(result.loss)
        if result.ranker_loss is not None:
            m.ranker_loss.set(result.ranker_loss)
        for feature, weight in (result.ranker_weights or {}).items():
            m.ranker_weight.labels(feature).set(weight)
        m.model_version.set(result.model_version)
        m.model_events.set(result.model_events)
        m.index_size.set(result.index_size)
        m.index_refresh_seconds.set(result.index_refresh_seconds)
        for stage, seconds in result.timings.items():
            m.stage_seconds.labels(stage).observe(seconds)

    def expire(self, table: TableT) -> int:
        """Forget users idle for longer than the TTL, in the table (and its changelog) and in
        the model, so both stay bounded."""
        now_ms = self.clock.now_ms()
        ttl_ms = int(self.settings.user_ttl_s * 1000)
        stale = [k for k, raw in table.items() if is_expired(load_state(raw), now_ms, ttl_ms)]
        topic = table.changelog_topic.get_topic_name()
        for key in stale:
            del table.data[key]
            send(self.producer, topic, key, None)
        self.pipeline.forget_users([key.decode() for key in stale])
        self.metrics.users.set(len(table))
        return len(stale)


def group_instance_id(settings: Settings) -> str | None:
    """The worker's static group member id (see ``FEEDREC_GROUP_INSTANCE_ID``); None = dynamic."""
    if settings.group_instance_id == "off":
        return None
    if settings.group_instance_id != "auto":
        return settings.group_instance_id
    where = hashlib.sha256(str(settings.data_dir.resolve()).encode()).hexdigest()[:8]
    return f"{settings.app_id}-{socket.gethostname()}-{where}"


def faust_broker_url(bootstrap: str) -> str:
    return ";".join(f"kafka://{server.strip()}" for server in bootstrap.split(","))


def connect(signal: Any, handler: Callable[..., Awaitable[None]]) -> None:
    """Connect ``handler`` to one of the app's signals (mode declares a handler type that no
    function matches, hence ``Any``)."""
    signal.connect(handler)


def create_app(settings: Settings, runtime: Runtime | None = None) -> tuple[faust.App, Runtime]:
    """Wire the Faust app: one events agent, the user table, checkpoint and expiry timers."""
    compat.install()
    rt = runtime or Runtime(settings)
    session = settings.session_timeout_s
    app = faust.App(
        settings.app_id,
        broker=faust_broker_url(settings.bootstrap_servers),
        store="memory://",
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        broker_session_timeout=session,
        broker_heartbeat_interval=max(session / 10, 0.1),
        broker_rebalance_timeout=session * 2,
        web_enabled=False,
        datadir=str(settings.data_dir / "faust"),
        consumer_auto_offset_reset="earliest",
        stream_buffer_maxsize=max(settings.batch_size * 4, 4096),
        broker_max_poll_records=max(settings.batch_size, 500),
        consumer_group_instance_id=group_instance_id(settings),
    )
    users = app.Table(
        "users",
        partitions=settings.partitions,
        use_partitioner=True,
        key_type=bytes,
        value_type=bytes,
    )
    if settings.consumer == "faust":
        events = app.topic(*EVENT_TOPICS, key_serializer="raw", value_serializer="raw")

        @app.agent(events)
        async def process(stream: faust.StreamT) -> None:
            await rt.wait_ready()
            # An agent's stream is a faust.Stream; only that class has take_events.
            batches = cast(faust.Stream, stream).take_events(
                settings.batch_size, within=settings.batch_within_s
            )
            async for batch in batches:
                rt.handle(
                    [
                        Record(m.topic, m.partition, m.offset, m.value, m.key)
                        for m in (ev.message for ev in batch)
                    ],
                    users,
                )
                # Faust acks the batch when this returns: its effects must be durable by then.
                await asyncio.to_thread(rt.settle)
    else:
        drain = PartitionDrain(
            settings,
            resume=rt.pipeline.learn.resume_offsets,
            settle=rt.settle,
            pump=rt.pump,
            begin=rt.begin,
        )
        rt.on_durable = drain.store
        # Faust assigns this empty topic's partitions, and with them the co-partitioned table
        # partitions it recovers; the drain reads the same partitions of the event topics.
        assignment = app.topic(
            f"{settings.app_id}-assignment",
            partitions=settings.partitions,
            internal=True,
            key_serializer="raw",
            value_serializer="raw",
        )

        @app.agent(assignment)
        async def assigned(stream: faust.StreamT) -> None:
            async for _ in stream:
                pass

        async def on_revoked(app: faust.App, *args: Any, **kwargs: Any) -> None:
            await drain.release()

        async def on_complete(app: faust.App, *args: Any, **kwargs: Any) -> None:
            name = assignment.get_topic_name()
            drain.want({tp.partition for tp in app.consumer.assignment() if tp.topic == name})

        connect(app.on_partitions_revoked, on_revoked)
        connect(app.on_rebalance_complete, on_complete)

        @app.task
        async def consume() -> None:
            await rt.wait_ready()
            await drain.run(lambda records: rt.handle(records, users))

        async def stop_drain(app: faust.App, *args: Any, **kwargs: Any) -> None:
            await drain.close()

        connect(app.on_before_shutdown, stop_drain)

    @app.timer(interval=settings.checkpoint_interval_s)
    async def checkpoint() -> None:
        await rt.checkpoint()

    @app.timer(interval=min(60.0, settings.user_ttl_s))
    async def expire() -> None:
        if not rt.ready.is_set():
            return
        rt.expire(users)

    async def on_shutdown(app: faust.App, *args: Any, **kwargs: Any) -> None:
        await rt.shutdown()

    connect(app.on_before_shutdown, on_shutdown)

    return app, rt


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    """Run the worker in the foreground until SIGINT/SIGTERM, or until its app crashes.

    What a first run gets wrong (the data directory, the broker) is checked before anything is
    built, and fails as one :class:`~model.exceptions.FeedrecError`. A crash (an agent, task or
    timer raising) ends the process with status 1 within a few seconds, so that its supervisor
    restarts it (:mod:`streams.supervision`).
    """
    from feedrec.streams.exceptions import WorkerCrashed
    from feedrec.streams.supervision import CrashExitWorker, EscalatingSupervisor, crash_line

    data = settings.data_dir
    try:
        data.mkdir(parents=True, exist_ok=True)
        if not os.access(data, os.W_OK | os.X_OK):
            raise PermissionError(13, "not writable")
    except OSError as exc:
        raise ConfigError(
            f"FEEDREC_DATA_DIR={str(data)!r} cannot be used as the worker's data directory "
            f"({exc.strerror or exc}): point it at a writable directory."
        ) from None
    wait_for_broker(settings.bootstrap_servers, timeout=settings.connect_timeout_s)
    app, rt = create_app(settings)
    # faust declares this setting's type as a typing form, which no class matches.
    app.conf.agent_supervisor = EscalatingSupervisor  # type: ignore[assignment]
    rt.prepare()
    log.info("model on %s, index %s", rt.pipeline.device, rt.pipeline.index_name)
    threading.Thread(target=rt.warm_up, name="feedrec-warm-up", daemon=True).start()
    # mode reads level names through logging, which knows neither "crit" nor "warn" by default.
    level = {"crit": "critical", "warn": "warning"}.get(loglevel.lower(), loglevel)
    worker = CrashExitWorker(app, loglevel=level, quiet=True)
    try:
        worker.execute_from_commandline()
    except SystemExit:
        if worker.crashed:
            raise WorkerCrashed(crash_line(worker.crash_reason)) from None
        raise
