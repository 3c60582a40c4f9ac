"""The typed snapshot and its plain form: every step's state survives the round trip; a plain form
of another layout, or a damaged one, is refused with what to do."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch

from feedrec.model.clock import ManualClock
from feedrec.model.config import PipelineConfig
from feedrec.model.events import Event
from feedrec.model.exceptions import CheckpointError
from feedrec.model.pipeline import Pipeline
from feedrec.model.snapshot import SNAPSHOT_FORMAT, Snapshot
from feedrec.model.twotower import EmbeddingState, ModelConfig

NOW = 1_700_000_000_000


def trained() -> Pipeline:
    cfg = PipelineConfig(model=ModelConfig(dim=8, user_capacity=8, item_capacity=16), train_batch=4)
    p = Pipeline.build(cfg, device="cpu", index_kind="exact", clock=ManualClock(NOW))
    p.process(
        [
            Event(
                f"e{n}", f"u{n % 3}", f"i{n % 7}", NOW - 100 + n, session_id="s", event_type="click"
            )
            for n in range(12)
        ],
        {},
    )
    return p


def test_the_plain_form_names_no_class_and_comes_back_typed() -> None:
    snap = trained().snapshot()
    plain = snap.to_plain()
    allowed = (
        dict,
        list,
        tuple,
        str,
        int,
        float,
        bool,
        type(None),
        np.ndarray,
        np.generic,
        torch.Tensor,
    )

    def check(value: object) -> None:
        assert isinstance(value, allowed), type(value)
        if isinstance(value, dict):
            for v in value.values():
                check(v)

    check(plain)
    assert plain["format"] == SNAPSHOT_FORMAT
    back = Snapshot.from_plain(pickle.loads(pickle.dumps(plain)))
    assert isinstance(back.learn.model, EmbeddingState)
    assert isinstance(back.learn.model.config, ModelConfig)
    assert back.learn.vocab == snap.learn.vocab and back.learn.learned == snap.learn.learned
    assert back.fold == snap.fold and back.rank.steps == snap.rank.steps
    assert np.array_equal(back.retrieve.stats.popularity, snap.retrieve.stats.popularity)


def test_fields_a_later_version_dropped_are_ignored_and_missing_ones_refused() -> None:
    plain = trained().snapshot().to_plain()
    plain["learn"]["model"]["config"]["a_setting_from_elsewhere"] = 3
    Snapshot.from_plain(copy.deepcopy(plain))
    del plain["rank"]["weights"]
    with pytest.raises(CheckpointError, match="incomplete or damaged.*move the checkpoint"):
        Snapshot.from_plain(plain)


def test_another_layout_is_refused_before_anything_is_read() -> None:
    for plain in ({"format": 2, "version": 12}, {"version": 5}, "not a checkpoint"):
        with pytest.raises(CheckpointError, match="reads layouts 3 and 4"):
            Snapshot.from_plain(plain)
    # Layout 3 (before the steps) is read, and refused when damaged.
    with pytest.raises(CheckpointError, match="layout 3 is incomplete or damaged"):
        Snapshot.from_plain({"format": 3, "version": 12})
