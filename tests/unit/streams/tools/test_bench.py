"""The bench's process accounting (the runs themselves need a broker and take minutes)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from feedrec.streams.tools.bench import _broker_pids, _cpu_seconds


def test_cpu_seconds_counts_this_process_and_ignores_missing_ones() -> None:
    before = _cpu_seconds([os.getpid()])
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:
        pass
    assert _cpu_seconds([os.getpid()]) - before >= 0.1
    assert _cpu_seconds([2**22 + 1]) == 0.0  # above pid_max: never a live process


def test_broker_pids_finds_a_process_named_like_the_broker(tmp_path: Path) -> None:
    fake = tmp_path / "tansu-fake"
    sleep = shutil.which("sleep")
    assert sleep is not None, "no sleep on the PATH"
    shutil.copy(sleep, fake)
    proc = subprocess.Popen([str(fake), "30"])
    try:
        deadline = time.monotonic() + 5
        while proc.pid not in _broker_pids():
            assert time.monotonic() < deadline, "a running tansu process was not found"
            time.sleep(0.01)
        assert os.getpid() not in _broker_pids()
    finally:
        proc.kill()
        proc.wait()
