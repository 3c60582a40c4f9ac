"""The processes the tools start: the broker (or the configured cluster) and worker subprocesses.

The demo, the benchmark and the integration tests all run a worker the same way: a
``feedrec worker`` in a session of its own (a terminal's Ctrl-C does not reach it), ready once
its metrics answer, stopped with SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from feedrec.streams.exceptions import WorkerStartError
from feedrec.streams.metrics import scrape
from feedrec.streams.tools.broker import EmbeddedBroker, free_port, port_open


@contextlib.contextmanager
def cluster(log_dir: Path) -> Iterator[str]:
    """The configured cluster, or an embedded broker for the duration of the block."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    port = 9092 if not port_open("127.0.0.1", 9092) else free_port()
    broker = EmbeddedBroker(port=port, log_path=log_dir / "broker.log", own_session=True).start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@contextlib.contextmanager
def worker_process(
    bootstrap: str,
    data_dir: Path | None,
    app_id: str,
    env: dict[str, str] | None = None,
    *,
    cwd: Path | None = None,
    loglevel: str = "info",
    log_path: Path | None = None,
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A ``feedrec worker`` subprocess; yields it and its metrics URL once metrics answer.

    ``data_dir`` None leaves ``FEEDREC_DATA_DIR`` unset (the worker's default, under ``cwd``);
    the log goes to ``log_path``, by default ``worker.log`` in the data directory. The worker
    runs in a session of its own (a terminal's Ctrl-C does not reach it); leaving the block
    stops it with SIGTERM.
    """
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if k != "FEEDREC_DATA_DIR"}
    full_env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "FEEDREC_METRICS_PORT": str(port),
            "FEEDREC_APP_ID": app_id,
            "FEEDREC_SESSION_TIMEOUT_S": "6",
            **({"FEEDREC_DATA_DIR": str(data_dir)} if data_dir is not None else {}),
            **(env or {}),
        }
    )
    if log_path is None:
        log_path = (data_dir or cwd or Path.cwd()) / "worker.log"
    log = open(log_path, "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "feedrec.streams.cli", "worker", "--loglevel", loglevel],
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise WorkerStartError(
                    f"worker exited with {proc.returncode} while starting; see {log.name}"
                )
            try:
                scrape(url)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise WorkerStartError(
                        f"worker metrics did not answer within 120s; see {log.name}"
                    ) from None
                time.sleep(0.2)
        yield proc, url
    finally:
        stop_process(proc)
        log.close()


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
