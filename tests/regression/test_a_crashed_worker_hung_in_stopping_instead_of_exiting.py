"""A worker whose app crashed (an agent, a task or a timer raising) stayed in Faust's
``Stopping...`` and never exited, so no supervisor restarted it; once that was mended, a worker
whose drain task died still hung in its stop, waiting for the drain. A crash must end the
process with status 1 within seconds."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from feedrec.streams.kafka import make_producer
from tests.integration.helpers import EXIT_TIMEOUT_S, FAST, event

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
