from pathlib import Path
from typing import NoReturn

import pytest
import torch

from feedrec.streams.checkpoint import load_latest, load_snapshot, save_checkpoint, save_snapshot


def test_latest_wins_and_only_three_are_kept(tmp_path: Path) -> None:
    for v in (1, 5, 3, 7):
        save_checkpoint(tmp_path, {"version": v, "w": torch.ones(2) * v})
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["ckpt-000000000003.pt", "ckpt-000000000005.pt", "ckpt-000000000007.pt"]
    snap = load_latest(tmp_path)
    assert snap is not None and snap["version"] == 7 and snap["w"].tolist() == [7.0, 7.0]


def test_a_torn_newest_file_falls_back_to_the_previous(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, {"version": 2})
    (tmp_path / "ckpt-000000000009.pt").write_bytes(b"half a checkpoint")
    snap = load_latest(tmp_path)
    assert snap is not None and snap["version"] == 2


def test_no_checkpoint_is_none_and_no_temp_files_remain(tmp_path: Path) -> None:
    assert load_latest(tmp_path / "missing") is None
    save_checkpoint(tmp_path, {"version": 1})
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt-000000000001.pt"]


def test_a_file_whose_name_lies_about_its_version_is_skipped(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, {"version": 4})
    (tmp_path / "ckpt-000000000004.pt").rename(tmp_path / "ckpt-000000000008.pt")
    save_checkpoint(tmp_path, {"version": 2})
    snap = load_latest(tmp_path)
    assert snap is not None and snap["version"] == 2


def test_unusable_directories_raise_checkpoint_error(tmp_path: Path) -> None:
    import pytest

    from feedrec.model.exceptions import CheckpointError, FeedrecError

    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(CheckpointError, match="not a directory"):
        load_latest(afile)
    with pytest.raises(CheckpointError, match="cannot create"):
        save_checkpoint(afile / "sub", {"version": 1})
    with pytest.raises(CheckpointError, match="version"):
        save_checkpoint(tmp_path, {"model": 1})
    assert issubclass(CheckpointError, FeedrecError)


def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    import pytest

    save_checkpoint(tmp_path, {"version": 1})

    class Unpicklable:
        def __reduce__(self) -> NoReturn:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        save_checkpoint(tmp_path, {"version": 2, "bad": Unpicklable()})
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt-000000000001.pt"]
    snap = load_latest(tmp_path)
    assert snap is not None and snap["version"] == 1


def test_a_pipeline_snapshot_round_trips_through_a_checkpoint_file(tmp_path: Path) -> None:
    """The typed snapshot goes to disk in its plain form and comes back as the same lists."""
    from feedrec.model.clock import ManualClock
    from feedrec.model.config import PipelineConfig
    from feedrec.model.events import Event
    from feedrec.model.pipeline import Pipeline
    from feedrec.model.snapshot import Snapshot
    from feedrec.model.twotower import ModelConfig

    now = 1_700_000_000_000
    cfg = PipelineConfig(
        model=ModelConfig(dim=8, user_capacity=16, item_capacity=32),
        train_batch=4,
        index_refresh_interval_s=0.0,
    )

    def pipeline() -> Pipeline:
        return Pipeline.build(cfg, device="cpu", index_kind="exact", clock=ManualClock(now))

    original = pipeline()
    states: dict[str, bytes] = {}
    for n in range(40):
        ev = Event(f"e{n}", f"u{n % 5}", f"i{n * 7 % 13}", now - 1000 + n, event_type="click")
        states.update(original.process([ev], {ev.user_id: states.get(ev.user_id)}).states)
    saved = original.snapshot()
    save_snapshot(tmp_path, saved)
    loaded = load_snapshot(tmp_path)
    assert isinstance(loaded, Snapshot) and loaded.version == saved.version > 0
    twin = pipeline()
    twin.restore(loaded)
    users = [f"u{u}" for u in range(5)] + ["newcomer"]
    assert twin.recommend(users, states, 10) == original.recommend(users, states, 10)
    # The file names no class of this code: plain dicts, tensors, arrays and numbers.
    plain = load_latest(tmp_path)
    assert isinstance(plain, dict) and isinstance(plain["learn"]["vocab"]["items"], dict)


def test_a_snapshot_of_another_layout_is_refused_with_what_to_do(tmp_path: Path) -> None:
    from feedrec.model.exceptions import CheckpointError

    save_checkpoint(tmp_path, {"version": 3, "format": 2, "model": {}})
    with pytest.raises(CheckpointError, match="layout 2.*move the checkpoint directory aside"):
        load_snapshot(tmp_path)
