"""Limits bend, never drop: more distinct items or users in a batch than the id maps hold.

Found by review: with ``FEEDREC_ITEM_CAPACITY=300`` a backlog batch of 600 distinct items went
whole to the dead-letter topic as ``internal_error``. Now such a batch is learned in steps
(the least recently seen rows evicted) and every event is applied.
"""

from __future__ import annotations

from pathlib import Path

from .chaos import CHAOS_ENV, ChaosPlan, run_chaos
from .test_crash import check


def test_a_backlog_wider_than_the_capacities_is_applied_whole(
    bootstrap: str, tmp_path: Path
) -> None:
    env = {**CHAOS_ENV, "FEEDREC_ITEM_CAPACITY": "300", "FEEDREC_USER_CAPACITY": "20"}
    plan = ChaosPlan(users=60, events_per_user=40, items=900, kills=0, seed=9, env=env)
    report = run_chaos(bootstrap, tmp_path, plan)
    check(report, kills=0)
    assert report.published >= 2400, report.summary()
