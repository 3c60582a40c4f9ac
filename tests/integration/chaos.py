"""Crash testing: a worker SIGKILLed at random moments, and an audit of what its effects add up to.

A run publishes a backlog (``users`` x ``events_per_user`` events, ids unique, timestamps a few
minutes old and increasing per user) and optionally a steady flow from a background thread,
keyed by user id like any shop would. It runs a ``feedrec worker`` subprocess, kills it with
SIGKILL ``kills`` times (the moments drawn from a seeded generator), and starts a replacement
with the same app id and data directory each time, measuring how long from the kill until the
replacement processes events again. Once everything is processed it audits the worker's effects
against what was published:

* each user's final state, the last value per key of the ``<app_id>-users-changelog`` topic, must
  count exactly the events published for that user, per type (more: applied twice; fewer: lost);
* no ``trigger_event_id`` of this run's users appears in two lists of ``recommendations``.

The published side is counted from delivery reports, so an event the broker never acknowledged
is not expected either. Probe events (one a second to a probe user while a replacement starts, so
that "processes again" can be seen when no backlog is left) are published and audited like the
rest.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import msgspec
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition
from faust.types import TP

from feedrec.model.events import EVENT_TYPES
from feedrec.model.state import load_state
from feedrec.streams.compat import true_last_offsets
from feedrec.streams.kafka import make_producer
from feedrec.streams.metrics import Scrape, scrape
from feedrec.streams.tools.broker import free_port
from feedrec.streams.tools.processes import stop_process
from feedrec.streams.topics import RECS_TOPIC

log = logging.getLogger("feedrec.chaos")
log.setLevel(logging.INFO)

#: Worker settings for crash runs: short timeouts, so a run of several kills fits in a test.
CHAOS_ENV: dict[str, str] = {
    "FEEDREC_SESSION_TIMEOUT_S": "6",
    "FEEDREC_CHECKPOINT_INTERVAL_S": "2",
    "FEEDREC_BATCH_WITHIN_S": "0.02",
    "FEEDREC_BROWSE_REC_INTERVAL_S": "0",
}

#: Share of each event type in the generated traffic (browse, click, cart, purchase).
TYPE_WEIGHTS = (0.4, 0.3, 0.2, 0.1)


@dataclass(frozen=True)
class ChaosPlan:
    """What one run publishes and how it kills the worker."""

    #: The backlog, published before the first worker starts.
    users: int = 40
    events_per_user: int = 250
    #: Steady flow in events/s from a background thread over ``flow_users`` users (0 = none).
    flow_rate: float = 0.0
    flow_users: int = 50
    kills: int = 3
    #: The first ``backlog_kills`` kills strike while the backlog is worked through: when the
    #: worker has counted a share of the backlog drawn uniformly from ``backlog_kill_share``
    #: (shares that add up to less than one, so a worker that resumes where it stopped still
    #: has backlog left). A worker catches up faster than any timer would aim.
    backlog_kills: int = 0
    backlog_kill_share: tuple[float, float] = (0.1, 0.3)
    #: The other kills: after the worker has processed for a time drawn uniformly from this
    #: range, in seconds.
    kill_after_s: tuple[float, float] = (0.5, 2.0)
    #: Flow kept up after the last recovery before it stops.
    flow_tail_s: float = 1.0
    seed: int = 0
    items: int = 500
    #: Freeze the broker (SIGSTOP, then SIGCONT) this long once the first worker processes,
    #: while the flow goes on (needs the broker's pid; 0 = no freeze).
    freeze_s: float = 0.0
    #: A replacement that has not processed an event by then counts as not recovered.
    recovery_timeout_s: float = 60.0
    #: Longest wait for the final states once publishing stopped.
    settle_timeout_s: float = 90.0
    #: Everything is processed when every user's state counts at least what was published
    #: for them and nothing changed for this long ...
    quiet_s: float = 2.0
    #: ... or, short of that, when nothing changed for this long (events were lost).
    stall_s: float = 10.0
    env: Mapping[str, str] = field(default_factory=lambda: dict(CHAOS_ENV))


@dataclass
class ChaosReport:
    """What a run published, what the worker's effects added up to, and how restarts went."""

    users: int
    published: int
    #: Sum of every user's final per-type counts.
    applied: int
    #: Users whose count of some type is too high / too low, and by how many events in all.
    over_users: int
    over_events: int
    under_users: int
    under_events: int
    #: Users with no state at all in the changelog (their events are in ``under_events``).
    missing_users: int
    #: Events the final worker's model has learned over its life (``feedrec_model_events``), and
    #: the events applied to every state in the changelog (all users, this run's and any read
    #: from earlier runs' records): each valid event once in both.
    model_events: int
    state_events: int
    #: Records in the event topics whose event id an earlier record already carried (a
    #: producer's repeat, e.g. a test that sends one twice): the one case where the model may
    #: learn an event once more than the state counts it (docs/reliability.md).
    repeated_ids: int
    lists: int
    #: Lists beyond the first for the same trigger event, and how many triggers had more than one.
    duplicate_lists: int
    duplicate_triggers: int
    kills: int
    #: Exits we did not cause: a non-zero status other than our SIGKILL.
    crashes: int
    crash_codes: list[int]
    #: Seconds from each SIGKILL until the replacement processed events again.
    recovery_s: list[float]
    not_recovered: int
    #: Seconds from the broker's SIGCONT until a list reached the recommendations topic.
    freeze_recovery_s: float
    #: Events the killed worker had counted when it was killed (how far into its work it was).
    events_at_kill: list[int]
    #: Seconds from the first start until the first worker processed an event.
    first_start_s: float
    #: Whether the final wait saw every state reach its published count and go quiet, and
    #: how long that wait took from the end of publishing.
    settled: bool
    settle_s: float
    duration_s: float
    #: Where the workers' logs are (worker-1.log, worker-2.log, ...).
    logs: str = ""
    worst_users: list[str] = field(default_factory=list)
    duplicate_examples: list[str] = field(default_factory=list)

    @property
    def recovery_median_s(self) -> float:
        return statistics.median(self.recovery_s) if self.recovery_s else float("nan")

    @property
    def recovery_max_s(self) -> float:
        return max(self.recovery_s, default=float("nan"))

    @property
    def exactly_once(self) -> bool:
        return (
            self.over_events == 0
            and self.under_events == 0
            and self.duplicate_lists == 0
            and self.applied == self.published
            and self.model_learned_each_once
        )

    @property
    def model_learned_each_once(self) -> bool:
        """Every applied event learned, and more only for a producer's repeated ids."""
        return 0 <= self.model_events - self.state_events <= self.repeated_ids

    def summary(self) -> str:
        times = ", ".join(f"{s:.1f}" for s in self.recovery_s)
        recovery = (
            f"recovery {times} s (median {self.recovery_median_s:.1f}, max "
            f"{self.recovery_max_s:.1f})"
            if times
            else "no recovery measured"
        )
        text = (
            f"chaos run: {self.published:,} events published for {self.users} users, "
            f"{self.applied:,} applied (sum of the final per-type counts); "
            f"{self.over_events:,} events applied twice over {self.over_users} users, "
            f"{self.under_events:,} events lost over {self.under_users} users "
            f"({self.missing_users} without any state); "
            f"the model learned {self.model_events:,} events, the states hold "
            f"{self.state_events:,} ({self.repeated_ids} records repeat an event id); "
            f"{self.lists:,} recommendation lists, {self.duplicate_lists:,} duplicates over "
            f"{self.duplicate_triggers:,} trigger events; "
            f"{self.kills} SIGKILLs, {self.crashes} worker crashes"
            f"{' (exit ' + ', '.join(map(str, self.crash_codes)) + ')' if self.crashes else ''}, "
            f"{recovery}, {self.not_recovered} not recovered; "
            f"events counted by each killed worker: {self.events_at_kill}; first start "
            f"{self.first_start_s:.1f} s; "
            f"{'settled' if self.settled else 'did NOT settle'} {self.settle_s:.1f} s after "
            f"publishing stopped; {self.duration_s:.0f} s in all."
        )
        if self.worst_users:
            text += (
                " Worst users (user: published -> applied per type): "
                + "; ".join(self.worst_users)
                + "."
            )
        if self.duplicate_examples:
            text += " Duplicated triggers: " + ", ".join(self.duplicate_examples) + "."
        if self.logs:
            text += f" Worker logs in {self.logs}."
        return text

    def figures(self) -> dict[str, object]:
        """The headline figures (``make chaos`` writes them as JSON)."""
        out = asdict(self)
        out.update(
            events_lost=self.under_events,
            events_applied_twice=self.over_events,
            recovery_median_s=self.recovery_median_s,
            recovery_max_s=self.recovery_max_s,
            exactly_once=self.exactly_once,
        )
        # JSON has no NaN: a figure that was never measured is null.
        return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in out.items()}

    def write_json(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(json.dumps(self.figures(), indent=2, allow_nan=False) + "\n")


# -- publishing ----------------------------------------------------------------------------------


class Ledger:
    """Per-user, per-type counts of the events the broker acknowledged."""

    _TYPE_OF = {f"events.{t}": i for i, t in enumerate(EVENT_TYPES)}

    def __init__(self) -> None:
        self.counts: dict[str, list[int]] = {}
        self.failed = 0
        self._lock = threading.Lock()

    def on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        with self._lock:
            if err is not None:
                self.failed += 1
                return
            key, topic = msg.key(), msg.topic()
            assert key is not None and topic is not None, "every event is keyed, to a topic"
            user = key.decode()
            self.counts.setdefault(user, [0, 0, 0, 0])[self._TYPE_OF[topic]] += 1

    def snapshot(self) -> dict[str, list[int]]:
        with self._lock:
            return {u: list(c) for u, c in self.counts.items()}

    @property
    def total(self) -> int:
        with self._lock:
            return sum(sum(c) for c in self.counts.values())


def _event(event_id: str, user: str, item: str, ts: int) -> bytes:
    return msgspec.json.encode({"event_id": event_id, "user_id": user, "item_id": item, "ts": ts})


class Publisher:
    """Publishes a run's events (backlog, flow, probes) and records their delivery."""

    def __init__(self, bootstrap: str, prefix: str, plan: ChaosPlan) -> None:
        self.prefix = prefix
        self.plan = plan
        self.ledger = Ledger()
        self.producer = make_producer(bootstrap)
        self._lock = threading.Lock()
        self._next: dict[str, int] = {}
        self._last_ts: dict[str, int] = {}
        self._rng = random.Random(plan.seed)
        self.flow_error: BaseException | None = None

    def publish(self, user: str, kind: int, item: int, ts: int | None = None) -> None:
        with self._lock:
            n = self._next.get(user, 0)
            self._next[user] = n + 1
            if ts is None:
                # Live events: now, but never before the user's previous event.
                ts = max(int(time.time() * 1000), self._last_ts.get(user, 0) + 1)
            self._last_ts[user] = ts
        value = _event(f"{user}-e{n}", user, f"{self.prefix}-i{item}", ts)
        topic = f"events.{EVENT_TYPES[kind]}"
        while True:
            try:
                self.producer.produce(
                    topic, key=user.encode(), value=value, on_delivery=self.ledger.on_delivery
                )
                break
            except BufferError:
                self.producer.poll(0.05)
        self.producer.poll(0)

    def _kind(self, rng: random.Random) -> int:
        return rng.choices(range(4), weights=TYPE_WEIGHTS)[0]

    def backlog(self) -> None:
        """``users`` x ``events_per_user`` events, 4 to 1 minutes old, round-robin over users."""
        plan, rng = self.plan, self._rng
        if not plan.users or not plan.events_per_user:
            return
        now = int(time.time() * 1000)
        start = now - 240_000
        step = max(180_000 // plan.events_per_user, 1)
        users = [f"{self.prefix}-u{i}" for i in range(plan.users)]
        for n in range(plan.events_per_user):
            for user in users:
                self.publish(user, self._kind(rng), rng.randrange(plan.items), start + n * step)
        self.flush()

    def probe(self) -> None:
        self.publish(f"{self.prefix}-probe", 1, 0)

    def flow(self, stop: threading.Event) -> None:
        """``flow_rate`` events/s over the flow users until ``stop`` is set (run on a thread)."""
        try:
            self._flow(stop)
        except BaseException as exc:
            self.flow_error = exc
            raise

    def _flow(self, stop: threading.Event) -> None:
        plan = self.plan
        rng = random.Random(plan.seed + 1)
        users = [f"{self.prefix}-f{i}" for i in range(plan.flow_users)]
        t0 = time.monotonic()
        sent = 0
        while not stop.is_set():
            due = int((time.monotonic() - t0) * plan.flow_rate)
            for _ in range(due - sent):
                self.publish(rng.choice(users), self._kind(rng), rng.randrange(plan.items))
            sent = max(sent, due)
            stop.wait(0.01)

    def flush(self) -> None:
        remaining = self.producer.flush(30)
        if remaining:
            raise AssertionError(f"{remaining} events were not delivered within 30 s")


# -- the worker ----------------------------------------------------------------------------------


class WorkerProcess:
    """``feedrec worker`` subprocesses that share one app id and data directory, one at a time.

    Started the way :func:`streams.demo.worker_process` starts one (same command, environment
    and metrics port choice), but each can be SIGKILLed and replaced.
    """

    def __init__(self, bootstrap: str, data_dir: Path, app_id: str, env: Mapping[str, str]) -> None:
        self.bootstrap = bootstrap
        self.data_dir = data_dir
        self.app_id = app_id
        self.env = dict(env)
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.started = 0
        self.crash_codes: list[int] = []

    def start(self) -> None:
        port = free_port()
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "FEEDREC_DATA_DIR": str(self.data_dir),
            "FEEDREC_METRICS_PORT": str(port),
            "FEEDREC_APP_ID": self.app_id,
            **self.env,
        }
        self.started += 1
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "feedrec.streams.cli", "worker", "--loglevel", "info"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.url = f"http://127.0.0.1:{port}/metrics"

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"worker-{self.started}.log"

    def check(self) -> None:
        """Record an exit we did not cause and start a replacement."""
        assert self.proc is not None
        code = self.proc.poll()
        if code is None:
            return
        self.crash_codes.append(code)
        log.warning("worker %d exited with %d by itself; see %s", self.started, code, self.log_path)
        self.start()

    def metrics(self) -> Scrape | None:
        self.check()
        try:
            return scrape(self.url)
        except OSError:
            return None

    def kill(self) -> None:
        assert self.proc is not None
        self.check()
        self.proc.send_signal(signal.SIGKILL)
        code = self.proc.wait()
        if code != -signal.SIGKILL:
            self.crash_codes.append(code)

    def stop(self) -> None:
        """SIGTERM, as a deployment would; a non-zero status counts as a crash."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            stop_process(self.proc)
        if self.proc.returncode not in (0, -signal.SIGTERM):
            self.crash_codes.append(self.proc.returncode)


# -- reading the worker's output -----------------------------------------------------------------


def _kept_key(msg: Message) -> bytes:
    """The key of a message a :class:`TopicTail` kept for :meth:`ChaosRun.ours` (which a
    message without a key never is)."""
    key = msg.key()
    assert key is not None, f"a kept message without a key: {msg!r}"
    return key


class TopicTail:
    """Every partition of a topic from the beginning, read in steps, without a consumer group."""

    def __init__(self, bootstrap: str, topic: str, keep: Callable[[bytes], bool]) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.keep = keep
        # read_committed: should the worker write transactionally, aborted records are no effect.
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"feedrec-chaos-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
            }
        )
        meta = self.consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            self.consumer.close()
            raise AssertionError(f"topic {topic} does not exist: did the worker ever start?")
        self.partitions = sorted(meta.partitions)
        self.consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in self.partitions])

    def poll(self) -> list[Message]:
        """What has arrived since the last call (for the kept keys)."""
        got: list[Message] = []
        while True:
            batch = self.consumer.consume(5000, 0.1)
            got += [m for m in batch if m.error() is None and self.keep(m.key() or b"")]
            if not batch:
                return got

    def to_end(self, timeout: float = 60.0) -> list[Message]:
        """Everything up to the partitions' real ends, as they are now.

        The embedded broker may report a high watermark short of the last record batch, so the
        ends come from :func:`streams.compat.true_last_offsets`, which reads on until idle.
        """
        marks = {}
        for p in self.partitions:
            _, high = self.consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)
            marks[TP(self.topic, p)] = high - 1
        ends = true_last_offsets(self.bootstrap, marks)
        got: list[Message] = []
        deadline = time.monotonic() + timeout
        while True:
            got += self.poll()
            positions = self.consumer.position(
                [TopicPartition(self.topic, p) for p in self.partitions]
            )
            behind = [
                tp.partition
                for tp in positions
                if ends[TP(self.topic, tp.partition)] >= 0
                and tp.offset <= ends[TP(self.topic, tp.partition)]
            ]
            if not behind:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.topic} partitions {behind} not read to their end within {timeout:.0f} s"
                )

    def close(self) -> None:
        self.consumer.close()


# -- the run -------------------------------------------------------------------------------------


class ChaosRun:
    """One crash run against a broker; :meth:`run` returns its :class:`ChaosReport`."""

    def __init__(
        self,
        bootstrap: str,
        data_dir: Path,
        plan: ChaosPlan,
        app_id: str | None = None,
        broker_pid: int | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.broker_pid = broker_pid
        self.freeze_recovery_s = float("nan")
        self.plan = plan
        self.prefix = f"chaos{uuid.uuid4().hex[:6]}"
        self.app_id = app_id or f"feedrec-chaos-{self.prefix}"
        #: Where the worker's user states are audited: Faust's changelog of the "users" table.
        self.changelog_topic = f"{self.app_id}-users-changelog"
        self.data_dir = data_dir
        self.publisher = Publisher(bootstrap, self.prefix, plan)
        self.worker = WorkerProcess(bootstrap, data_dir, self.app_id, plan.env)
        self.recovery_s: list[float] = []
        self.not_recovered = 0
        self.events_at_kill: list[int] = []
        self.first_start_s = float("nan")
        self.settle_s = float("nan")
        self._ours = f"{self.prefix}-".encode()

    def ours(self, key: bytes) -> bool:
        return key.startswith(self._ours)

    def _wait_processing(self, since: float) -> float | None:
        """Seconds from ``since`` until the current worker counts an event (probing each second)."""
        deadline = since + self.plan.recovery_timeout_s
        next_probe = time.monotonic()
        while time.monotonic() < deadline:
            m = self.worker.metrics()
            if m is not None and m.events > 0:
                return time.monotonic() - since
            if time.monotonic() >= next_probe:
                self.publisher.probe()
                next_probe += 1.0
            time.sleep(0.05)
        return None

    def _freeze(self) -> None:
        """Stop the broker for ``freeze_s``, resume it, and time the first list after."""
        if self.broker_pid is None:
            raise ValueError("a freeze needs the broker's pid")
        recs = TopicTail(self.bootstrap, RECS_TOPIC, self.ours)
        try:
            recs.to_end()
            os.kill(self.broker_pid, signal.SIGSTOP)
            try:
                time.sleep(self.plan.freeze_s)
            finally:
                os.kill(self.broker_pid, signal.SIGCONT)
            resumed = time.monotonic()
            deadline = resumed + self.plan.recovery_timeout_s
            while time.monotonic() < deadline:
                if recs.poll():
                    self.freeze_recovery_s = time.monotonic() - resumed
                    log.info(
                        "lists flowing again %.1f s after the broker resumed",
                        self.freeze_recovery_s,
                    )
                    return
            log.warning(
                "no list within %.0f s of the broker resuming", self.plan.recovery_timeout_s
            )
        finally:
            recs.close()

    def _until_kill(self, k: int, rng: random.Random) -> int:
        """Let the worker run until kill ``k`` is due; the events it has counted by then."""
        plan = self.plan
        if k < plan.backlog_kills:
            target = rng.uniform(*plan.backlog_kill_share) * plan.users * plan.events_per_user
            end = time.monotonic() + plan.recovery_timeout_s
        else:
            target = float("inf")
            end = time.monotonic() + rng.uniform(*plan.kill_after_s)
        counted = -1
        while time.monotonic() < end:
            m = self.worker.metrics()
            if m is not None:
                counted = int(m.events)
                if counted >= target:
                    return counted
            time.sleep(min(0.02, max(end - time.monotonic(), 0)))
        if target != float("inf"):
            log.warning(
                "kill %d: the worker counted %d events of the %d aimed at within %.0f s",
                k + 1,
                counted,
                target,
                plan.recovery_timeout_s,
            )
        return counted

    def run(self) -> ChaosReport:
        plan = self.plan
        rng = random.Random(plan.seed)
        t0 = time.monotonic()
        self.publisher.backlog()
        stop_flow = threading.Event()
        flow = threading.Thread(
            target=self.publisher.flow, args=(stop_flow,), name="chaos-flow", daemon=True
        )
        self.worker.start()
        try:
            try:
                if plan.flow_rate > 0:
                    flow.start()
                first = self._wait_processing(time.monotonic())
                if first is None:
                    raise AssertionError(
                        f"the first worker processed nothing within "
                        f"{plan.recovery_timeout_s:.0f} s; see {self.worker.log_path}"
                    )
                self.first_start_s = first
                if plan.freeze_s > 0:
                    self._freeze()
                for k in range(plan.kills):
                    self.events_at_kill.append(self._until_kill(k, rng))
                    self.worker.kill()
                    killed = time.monotonic()
                    self.worker.start()
                    took = self._wait_processing(killed)
                    if took is None:
                        self.not_recovered += 1
                        log.warning(
                            "kill %d: no events processed within %.0f s of the kill",
                            k + 1,
                            plan.recovery_timeout_s,
                        )
                    else:
                        self.recovery_s.append(took)
                        log.info(
                            "kill %d after %d events: processing again %.1f s later",
                            k + 1,
                            self.events_at_kill[-1],
                            took,
                        )
                if plan.flow_rate > 0:
                    time.sleep(plan.flow_tail_s)
            finally:
                stop_flow.set()
                if flow.is_alive():
                    flow.join()
            if self.publisher.flow_error is not None:
                raise AssertionError("the steady flow stopped early") from self.publisher.flow_error
            self.publisher.flush()
            settle_from = time.monotonic()
            states, settled = self._settle()
            self.settle_s = time.monotonic() - settle_from
            recs = self._recommendations()
            model_events, state_events = self._model_and_states()
            repeated = self._repeated_ids()
        finally:
            self.worker.stop()
        report = self._audit(states, recs, settled, time.monotonic() - t0)
        report.model_events, report.state_events = model_events, state_events
        report.repeated_ids = repeated
        print("\n" + report.summary(), flush=True)
        log.info("%s", report.summary())
        return report

    def _settle(self) -> tuple[dict[bytes, bytes | None], bool]:
        """The users' final states, once every count is reached and nothing moves any more."""
        plan = self.plan
        expected = {u.encode(): sum(c) for u, c in self.publisher.ledger.snapshot().items()}
        tail = TopicTail(self.bootstrap, self.changelog_topic, self.ours)
        states: dict[bytes, bytes | None] = {}
        try:
            deadline = time.monotonic() + plan.settle_timeout_s
            changed = time.monotonic()
            last: tuple[float, float] | None = None
            settled = False
            while time.monotonic() < deadline:
                fresh = tail.poll()
                for msg in fresh:
                    states[_kept_key(msg)] = msg.value()
                m = self.worker.metrics()
                seen = (m.events, m.duplicates) if m is not None else last
                if fresh or seen != last:
                    changed = time.monotonic()
                    last = seen
                quiet = time.monotonic() - changed
                reached = all(_applied(states.get(u)) >= n for u, n in expected.items())
                if reached and quiet >= plan.quiet_s:
                    settled = True
                    break
                if quiet >= plan.stall_s:
                    log.warning(
                        "states stopped changing %.0f s ago short of the published counts", quiet
                    )
                    break
                time.sleep(0.25)
            for msg in tail.to_end():
                states[_kept_key(msg)] = msg.value()
            return states, settled
        finally:
            tail.close()

    def _model_and_states(self) -> tuple[int, int]:
        """The final model's learned-event count, and the events in every state of the table."""
        tail = TopicTail(self.bootstrap, self.changelog_topic, lambda key: True)
        try:
            states = {m.key(): m.value() for m in tail.to_end()}
        finally:
            tail.close()
        m = self.worker.metrics()
        model = int(m.model_events) if m is not None else -1
        return model, sum(_applied(raw) for raw in states.values() if raw is not None)

    def _repeated_ids(self) -> int:
        """Records of the event topics whose event id an earlier record carried."""
        seen: Counter[str] = Counter()
        for kind in EVENT_TYPES:
            tail = TopicTail(self.bootstrap, f"events.{kind}", lambda key: True)
            try:
                for m in tail.to_end():
                    try:
                        event_id = msgspec.json.decode(m.value() or b"{}").get("event_id")
                    except (msgspec.DecodeError, AttributeError, RecursionError):
                        continue
                    if isinstance(event_id, str):
                        seen[event_id] += 1
            finally:
                tail.close()
        return sum(n - 1 for n in seen.values())

    def _recommendations(self) -> list[dict]:
        tail = TopicTail(self.bootstrap, RECS_TOPIC, self.ours)
        try:
            return [
                msgspec.json.decode(value)
                for m in tail.to_end()
                if (value := m.value()) is not None
            ]
        finally:
            tail.close()

    def _audit(
        self,
        states: Mapping[bytes, bytes | None],
        recs: list[dict],
        settled: bool,
        duration_s: float,
    ) -> ChaosReport:
        expected = self.publisher.ledger.snapshot()
        over_users = under_users = over = under = missing = applied = 0
        worst: list[tuple[int, str]] = []
        for user in sorted(set(expected) | {k.decode() for k in states}):
            want = expected.get(user, [0, 0, 0, 0])
            raw = states.get(user.encode())
            if raw is None:
                missing += 1
            got = list(load_state(raw).counts)
            applied += sum(got)
            plus = sum(max(g - w, 0) for g, w in zip(got, want, strict=True))
            minus = sum(max(w - g, 0) for g, w in zip(got, want, strict=True))
            over += plus
            under += minus
            over_users += plus > 0
            under_users += minus > 0
            if plus or minus:
                worst.append((plus + minus, f"{user}: {want} -> {got}"))
        worst.sort(reverse=True)
        triggers = Counter(r["trigger_event_id"] for r in recs)
        dupes = {t: n for t, n in triggers.items() if n > 1}
        return ChaosReport(
            users=len(expected),
            published=sum(sum(c) for c in expected.values()),
            applied=applied,
            over_users=over_users,
            over_events=over,
            under_users=under_users,
            under_events=under,
            missing_users=missing,
            model_events=-1,
            state_events=-1,
            repeated_ids=-1,
            lists=len(recs),
            duplicate_lists=sum(n - 1 for n in dupes.values()),
            duplicate_triggers=len(dupes),
            kills=len(self.events_at_kill),
            crashes=len(self.worker.crash_codes),
            crash_codes=list(self.worker.crash_codes),
            recovery_s=[round(s, 2) for s in self.recovery_s],
            not_recovered=self.not_recovered,
            freeze_recovery_s=round(self.freeze_recovery_s, 2),
            events_at_kill=self.events_at_kill,
            first_start_s=round(self.first_start_s, 2),
            settled=settled,
            settle_s=round(self.settle_s, 2),
            duration_s=round(duration_s, 1),
            logs=str(self.data_dir),
            worst_users=[text for _, text in worst[:3]],
            duplicate_examples=[f"{t} x{n}" for t, n in sorted(dupes.items())[:3]],
        )


def _applied(raw: bytes | None) -> int:
    return sum(load_state(raw).counts)


def run_chaos(
    bootstrap: str, data_dir: Path, plan: ChaosPlan, broker_pid: int | None = None
) -> ChaosReport:
    """Run ``plan`` against the broker at ``bootstrap``; the worker's files go to ``data_dir``."""
    return ChaosRun(bootstrap, data_dir, plan, broker_pid=broker_pid).run()
