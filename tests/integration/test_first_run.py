"""A first run, the way a new user or a supervisor meets feedrec.

A worker in a fresh, empty directory (no data directory yet) starts and processes an event; with
no broker a command says so in one line and exits non-zero, without librdkafka's retry spam; a
taken metrics port is one line naming FEEDREC_METRICS_PORT. (A crashed worker's exit and an
interrupted demo are pinned in tests/regression/.)

Waits are bounded by generous timeouts (a hang fails the test), never asserted as durations.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from feedrec.streams.kafka import make_producer
from feedrec.streams.metrics import scrape
from feedrec.streams.tools.broker import free_port
from feedrec.streams.tools.processes import worker_process

from .helpers import EXIT_TIMEOUT_S, FAST, event, eventually, lines


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
