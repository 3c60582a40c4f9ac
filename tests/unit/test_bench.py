"""The bench's process accounting (the runs themselves need a broker and take minutes)."""

from __future__ import annotations

import os
import time

from streams.bench import _broker_pids, _cpu_seconds


def test_cpu_seconds_counts_this_process_and_ignores_missing_ones() -> None:
    before = _cpu_seconds([os.getpid()])
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:
        pass
    assert _cpu_seconds([os.getpid()]) - before >= 0.1
    assert _cpu_seconds([2**22 + 1]) == 0.0  # above pid_max: never a live process


def test_broker_pids_are_live_tansu_processes() -> None:
    for pid in _broker_pids():
        with open(f"/proc/{pid}/comm") as f:
            assert f.read().startswith("tansu")
