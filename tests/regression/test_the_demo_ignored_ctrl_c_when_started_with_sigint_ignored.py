"""A demo started with SIGINT ignored (as a job started in the background of a script is) did
not stop on Ctrl-C: Python raises no KeyboardInterrupt then. Ctrl-C (SIGINT to the whole process
group, as a terminal sends it) or a SIGTERM must stop simulator, worker and broker in that
order, quietly, and still print the summary."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from feedrec.streams.metrics import scrape
from feedrec.streams.tools.broker import port_open
from tests.integration.helpers import EXIT_TIMEOUT_S, first_match, lines


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

        def pump() -> None:
            for line in demo.stdout or ():
                out.put(line)

        reader = threading.Thread(target=pump, daemon=True)
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
    logs = Path(first_match(r"\(logs in (\S+)\)", text))
    worker_log = (logs / "worker.log").read_text()
    assert "Connection refused" not in worker_log and "Disconnected" not in worker_log, (
        "the broker went before the worker"
    )
    host, _, port = first_match(r"broker\s+(\S+)", text).rpartition(":")
    assert not port_open("127.0.0.1", int(port)), "the demo's broker outlived it"
    url = first_match(r"metrics at (\S+)", text)
    with pytest.raises(OSError):
        scrape(url)
