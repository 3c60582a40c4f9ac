"""A frozen broker: the worker waits it out, loses nothing, applies nothing twice.

The broker process is stopped (SIGSTOP) for longer than the consumer group's session while
events keep being published, then resumed. The broker is this test's own, so the freeze
touches no other test.
"""

from __future__ import annotations

import math
from pathlib import Path

from feedrec.streams.kafka import ensure_topics, wait_for_broker
from feedrec.streams.tools.broker import EmbeddedBroker, free_port

from .chaos import ChaosPlan, run_chaos
from .test_crash import check

FREEZE_S = 10.0


def test_a_frozen_broker_costs_nothing(tmp_path: Path) -> None:
    with EmbeddedBroker(port=free_port(), log_path=tmp_path / "broker.log") as broker:
        wait_for_broker(broker.bootstrap)
        ensure_topics(broker.bootstrap, 4)
        assert broker.proc is not None
        plan = ChaosPlan(
            users=20,
            events_per_user=50,
            flow_rate=200,
            flow_users=30,
            kills=0,
            freeze_s=FREEZE_S,
            flow_tail_s=3.0,
            seed=5,
        )
        report = run_chaos(broker.bootstrap, tmp_path, plan, broker_pid=broker.proc.pid)
    check(report, kills=0)
    assert not math.isnan(report.freeze_recovery_s), (
        f"no list after the broker resumed: {report.summary()}"
    )
    print(f"lists again {report.freeze_recovery_s:.1f} s after a {FREEZE_S:.0f} s freeze")
