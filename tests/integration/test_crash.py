"""Exactly-once under SIGKILL: a worker killed at random moments, audited against what was sent.

Each test publishes events, kills the worker three times and checks, through the harness in
``chaos.py``, that every user's final state counts each published event once (none applied
twice, none lost) and that no trigger event got two recommendation lists. ``make chaos`` runs
the long version (20 kills over a large backlog and a steady flow) and prints its figures.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .chaos import ChaosPlan, ChaosReport, run_chaos

#: A replacement must be processing again within this long of a kill: a bound on "it came
#: back", not a speed target (the figures are printed).
RECOVERY_BOUND_S = 60.0


def check(report: ChaosReport, kills: int) -> None:
    summary = report.summary()
    assert report.kills == kills, summary
    assert report.not_recovered == 0, f"a replacement never processed again: {summary}"
    assert all(s <= RECOVERY_BOUND_S for s in report.recovery_s), summary
    assert report.crashes == 0, f"the worker crashed by itself: {summary}"
    assert report.over_events == 0, f"events applied twice: {summary}"
    assert report.under_events == 0, f"events lost: {summary}"
    assert report.applied == report.published, summary
    assert report.duplicate_lists == 0, f"trigger events with two lists: {summary}"
    assert report.model_learned_each_once, (
        f"the model did not learn each applied event exactly once: {summary}"
    )
    assert report.lists > 0, f"no recommendation lists at all: {summary}"


def test_backlog_catch_up_survives_three_kills(bootstrap: str, tmp_path: Path) -> None:
    plan = ChaosPlan(users=40, events_per_user=250, kills=3, backlog_kills=3, seed=1)
    check(run_chaos(bootstrap, tmp_path, plan), kills=3)


def test_steady_flow_survives_three_kills(bootstrap: str, tmp_path: Path) -> None:
    plan = ChaosPlan(
        users=0,
        events_per_user=0,
        flow_rate=300,
        flow_users=50,
        kills=3,
        kill_after_s=(0.5, 2.0),
        seed=2,
    )
    check(run_chaos(bootstrap, tmp_path, plan), kills=3)


@pytest.mark.chaos
def test_long_run_of_twenty_kills(bootstrap: str, tmp_path: Path) -> None:
    """``make chaos``: 50 users x 2,000 events of backlog and 300 events/s of flow, 20 kills."""
    plan = ChaosPlan(
        users=50,
        events_per_user=2000,
        flow_rate=300,
        flow_users=100,
        kills=20,
        backlog_kills=6,
        backlog_kill_share=(0.05, 0.15),
        kill_after_s=(1.0, 6.0),
        seed=3,
        settle_timeout_s=300.0,
    )
    report = run_chaos(bootstrap, tmp_path, plan)
    print(
        "\nchaos figures:"
        f"\n  events published       {report.published:,}"
        f"\n  events lost            {report.under_events:,} ({report.under_users} users)"
        f"\n  events applied twice   {report.over_events:,} ({report.over_users} users)"
        f"\n  duplicate lists        {report.duplicate_lists:,} of {report.lists:,}"
        f"\n  model / state events   {report.model_events:,} / {report.state_events:,}"
        f"\n  worker crashes         {report.crashes}"
        f"\n  recovery median / max  {report.recovery_median_s:.1f} / "
        f"{report.recovery_max_s:.1f} s over {len(report.recovery_s)} kills",
        flush=True,
    )
    out = os.environ.get("FEEDREC_CHAOS_JSON")
    if out:
        report.write_json(out)
        print(f"  figures written to     {out}", flush=True)
    check(report, kills=20)
