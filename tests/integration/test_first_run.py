"""A first run, the way a new user or a supervisor meets feedrec.

A worker in a fresh, empty directory (no data directory yet) starts and processes an event; with
no broker a command says so in one line and exits non-zero, without librdkafka's retry spam; a
taken metrics port is one line naming FEEDREC_METRICS_PORT; a worker whose app crashes (an agent,
task or timer raising) exits non-zero instead of hanging in ``Stopping...``; Ctrl-C in the demo
(or a SIGTERM) stops simulator, worker and broker in that order, quietly, and still prints
the summary.

Waits are bounded by generous timeouts (a hang fails the test), never asserted as durations.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from feedrec.streams.kafka import make_producer
from feedrec.streams.metrics import scrape
from feedrec.streams.tools.broker import free_port, port_open
from feedrec.streams.tools.demo import worker_process

from .helpers import event, eventually
from .test_pipeline import FAST

#: Generous bounds: only a hang should ever reach them.
EXIT_TIMEOUT_S = 120


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def cli(
    args: list[str], cwd: Path, env: dict[str, str], timeout: float = EXIT_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "feedrec.streams.cli", *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_a_worker_in_a_fresh_directory_creates_its_data_dir_and_processes_an_event(
    bootstrap: str, tmp_path: Path
) -> None:
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    p = uuid.uuid4().hex[:6]
    user = f"{p}-u"
    # --loglevel crit: a choice the help lists, which once crashed the logging set-up.
    with worker_process(
        bootstrap,
        None,
        f"feedrec-first-{p}",
        env=FAST,
        cwd=fresh,
        loglevel="crit",
        log_path=tmp_path / "worker.log",
    ) as (proc, url):
        assert (fresh / ".feedrec" / "faust").is_dir(), "the default data directory is missing"
        producer = make_producer(bootstrap)
        producer.produce("events.click", key=user.encode(), value=event(f"{p}-e", user, "i1"))
        producer.flush(10)
        eventually(lambda: scrape(url).events >= 1, what="the event to be processed")
    assert proc.returncode == 0, (tmp_path / "worker.log").read_text()[-3000:]


@pytest.mark.parametrize("command", ["worker", "simulate", "replay"])
def test_no_broker_is_one_line_and_a_non_zero_exit(tmp_path: Path, command: str) -> None:
    closed = f"127.0.0.1:{free_port()}"
    data = tmp_path / "events.csv"
    data.write_text("ts,user_id,item_id,event_type\n1700000000000,u1,i1,click\n")
    args = {
        "worker": ["worker"],
        "simulate": ["simulate", "--duration", "1"],
        "replay": ["replay", str(data)],
    }[command]
    run = cli(
        args,
        tmp_path,
        {
            "KAFKA_BOOTSTRAP_SERVERS": closed,
            "FEEDREC_CONNECT_TIMEOUT_S": "2",
            "FEEDREC_METRICS_PORT": "0",
            "FEEDREC_DATA_DIR": str(tmp_path / "data"),
        },
    )
    assert run.returncode == 2, run.stderr[-3000:]
    err = lines(run.stderr)
    assert len(err) == 1, f"{len(err)} stderr lines, expected one:\n" + "\n".join(err[:20])
    assert err[0].startswith(f"feedrec: no Kafka broker answered at {closed} within 2s")
    assert "KAFKA_BOOTSTRAP_SERVERS" in err[0]
    assert "Connection refused" not in run.stdout
    assert len(lines(run.stdout)) == 0, run.stdout[-3000:]


def test_a_taken_metrics_port_is_one_line_naming_the_variable(
    bootstrap: str, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = cli(
            ["worker"],
            tmp_path,
            {
                "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "FEEDREC_METRICS_PORT": str(port),
                "FEEDREC_APP_ID": f"feedrec-port-{uuid.uuid4().hex[:6]}",
                "FEEDREC_DATA_DIR": str(tmp_path / "data"),
            },
        )
    assert run.returncode == 2, run.stderr[-3000:]
    err = lines(run.stderr)
    assert len(err) == 1, "\n".join(err[:20])
    assert err[0].startswith(f"feedrec: FEEDREC_METRICS_PORT={port}: cannot serve /metrics")
    assert "free port" in err[0]


#: A worker whose Runtime method ``argv[1]`` raises: the consume path (``handle``, called for
#: every batch, by the drain task or by the Faust agent) or a timer (``checkpoint``).
CRASHING_WORKER = """
import sys

import feedrec.streams.worker
from feedrec.streams.cli import main


def boom(*args, **kwargs):
    raise RuntimeError("induced crash")


setattr(feedrec.streams.worker.Runtime, sys.argv[1], boom)
sys.exit(main(["worker", "--loglevel", "info"]))
"""


@pytest.mark.parametrize(
    ("consumer", "target"),
    [("batch", "handle"), ("faust", "handle"), ("batch", "checkpoint")],
    ids=["drain-task", "faust-agent", "timer"],
)
def test_a_crashed_worker_exits_non_zero(
    bootstrap: str, tmp_path: Path, consumer: str, target: str
) -> None:
    p = uuid.uuid4().hex[:6]
    env = {
        **os.environ,
        **FAST,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "FEEDREC_APP_ID": f"feedrec-crash-{p}",
        "FEEDREC_CONSUMER": consumer,
        "FEEDREC_DATA_DIR": str(tmp_path / "data"),
        "FEEDREC_METRICS_PORT": "0",
        "FEEDREC_SESSION_TIMEOUT_S": "6",
        "FEEDREC_CHECKPOINT_INTERVAL_S": "1",
    }
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", CRASHING_WORKER, target],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            producer = make_producer(bootstrap)
            user = f"{p}-u"
            producer.produce("events.click", key=user.encode(), value=event(f"{p}-e", user, "i"))
            producer.flush(10)
            proc.wait(timeout=EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"the crashed worker was still running after {EXIT_TIMEOUT_S}s:\n"
                + log_path.read_text()[-3000:]
            )
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    out = log_path.read_text()
    assert proc.returncode == 1, out[-3000:]
    assert "Crashed reason=RuntimeError('induced crash')" in out
    assert "feedrec: worker crashed: RuntimeError('induced crash')" in out


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_an_interrupted_demo_stops_in_order_quietly_and_prints_the_summary(
    tmp_path: Path, how: str
) -> None:
    """Ctrl-C from a terminal (SIGINT to the whole process group), or SIGTERM to the demo."""
    # The demo's own embedded broker: the order of stopping it is what is tested.
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    err_path = tmp_path / "demo.err"
    with open(err_path, "wb") as err:
        # Its own session, so that the SIGINT below reaches the whole group, as a terminal's
        # Ctrl-C does, and nothing else. It starts with SIGINT ignored, as a job started in
        # the background of a script does: the demo must still stop on it.
        demo = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "feedrec.streams.cli",
                "demo",
                "--duration",
                "300",
                "--rate",
                "200",
                "--chart",
                str(tmp_path / "demo.png"),
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )
        out: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(
            target=lambda: [out.put(line) for line in demo.stdout or ()], daemon=True
        )
        reader.start()
        seen: list[str] = []
        try:
            while not any(re.match(r"^\s+\d+s\s", line) for line in seen):  # a progress line
                try:
                    seen.append(out.get(timeout=EXIT_TIMEOUT_S))
                except queue.Empty:
                    pytest.fail("no progress line from the demo:\n" + "".join(seen))
            if how == "ctrl-c":
                os.killpg(demo.pid, signal.SIGINT)
            else:
                os.kill(demo.pid, signal.SIGTERM)
            demo.wait(timeout=EXIT_TIMEOUT_S)
        finally:
            if demo.poll() is None:
                os.killpg(demo.pid, signal.SIGKILL)
                demo.wait()
    reader.join(timeout=30)  # it ends at the end of the demo's output
    while not out.empty():
        seen.append(out.get())
    text = "".join(seen)
    stderr = err_path.read_text()
    assert demo.returncode == 0, text + stderr[-3000:]
    assert "interrupted: stopping the simulator" in text
    assert "\nsummary\n" in text and "events processed" in text, text
    assert len(lines(stderr)) < 5, f"{len(lines(stderr))} stderr lines:\n{stderr[:3000]}"
    assert "Connection refused" not in stderr
    logs = Path(re.search(r"\(logs in (\S+)\)", text).group(1))  # type: ignore[union-attr]
    worker_log = (logs / "worker.log").read_text()
    assert "Connection refused" not in worker_log and "Disconnected" not in worker_log, (
        "the broker went before the worker"
    )
    host, _, port = re.search(r"broker\s+(\S+)", text).group(1).rpartition(":")  # type: ignore[union-attr]
    assert not port_open("127.0.0.1", int(port)), "the demo's broker outlived it"
    url = re.search(r"metrics at (\S+)", text).group(1)  # type: ignore[union-attr]
    with pytest.raises(OSError):
        scrape(url)
