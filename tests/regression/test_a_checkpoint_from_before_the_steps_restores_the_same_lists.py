"""A worker upgraded across the redesign into steps must not lose its model: a checkpoint of
layout 3, written by the code before it (``data/layout3.pt``: a small pipeline after 3,000
simulated events, the states of 60 of its users, and the lists the old code gave them from a
pipeline restored from that checkpoint), restores to the same lists."""

from __future__ import annotations

from pathlib import Path

import torch

from feedrec.model.clock import ManualClock
from feedrec.model.config import PipelineConfig
from feedrec.model.pipeline import Pipeline
from feedrec.model.ranking import RankConfig
from feedrec.model.snapshot import SNAPSHOT_FORMAT, Snapshot
from feedrec.model.twotower import ModelConfig
from feedrec.streams.checkpoint import load_snapshot, save_checkpoint

DATA = Path(__file__).parent / "data" / "layout3.pt"


def test_a_layout_3_checkpoint_restores_to_the_lists_the_old_code_restored_to(
    tmp_path: Path,
) -> None:
    torch.set_num_threads(1)
    old = torch.load(DATA, weights_only=False)
    assert old["checkpoint"]["format"] == 3 != SNAPSHOT_FORMAT
    save_checkpoint(tmp_path, old["checkpoint"])  # as the old worker left it on disk
    snap = load_snapshot(tmp_path)
    assert isinstance(snap, Snapshot) and snap.version == old["checkpoint"]["version"]
    c = old["config"]
    cfg = PipelineConfig(
        model=ModelConfig(
            dim=c["dim"], user_capacity=c["user_capacity"], item_capacity=c["item_capacity"]
        ),
        ranking=RankConfig(top_n=c["top_n"], candidates=c["candidates"]),
        train_batch=c["train_batch"],
        index_refresh_interval_s=0.0,
    )
    pipeline = Pipeline.build(
        cfg, device="cpu", index_kind="exact", clock=ManualClock(old["now_ms"])
    )
    pipeline.restore(snap)
    assert pipeline.recommend(old["users"], old["states"], 10) == old["lists"]
    assert sum(map(len, old["lists"])) > 500  # the lists are full: the check means something
