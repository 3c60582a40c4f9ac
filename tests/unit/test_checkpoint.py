import torch

from feedrec.streams.checkpoint import load_latest, save_checkpoint


def test_latest_wins_and_only_three_are_kept(tmp_path) -> None:
    for v in (1, 5, 3, 7):
        save_checkpoint(tmp_path, {"version": v, "w": torch.ones(2) * v})
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["ckpt-000000000003.pt", "ckpt-000000000005.pt", "ckpt-000000000007.pt"]
    snap = load_latest(tmp_path)
    assert snap is not None and snap["version"] == 7 and snap["w"].tolist() == [7.0, 7.0]


def test_a_torn_newest_file_falls_back_to_the_previous(tmp_path) -> None:
    save_checkpoint(tmp_path, {"version": 2})
    (tmp_path / "ckpt-000000000009.pt").write_bytes(b"half a checkpoint")
    snap = load_latest(tmp_path)
    assert snap is not None and snap["version"] == 2


def test_no_checkpoint_is_none_and_no_temp_files_remain(tmp_path) -> None:
    assert load_latest(tmp_path / "missing") is None
    save_checkpoint(tmp_path, {"version": 1})
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt-000000000001.pt"]


def test_a_file_whose_name_lies_about_its_version_is_skipped(tmp_path) -> None:
    save_checkpoint(tmp_path, {"version": 4})
    (tmp_path / "ckpt-000000000004.pt").rename(tmp_path / "ckpt-000000000008.pt")
    save_checkpoint(tmp_path, {"version": 2})
    snap = load_latest(tmp_path)
    assert snap is not None and snap["version"] == 2


def test_unusable_directories_raise_checkpoint_error(tmp_path) -> None:
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


def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path) -> None:
    import pytest

    save_checkpoint(tmp_path, {"version": 1})

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        save_checkpoint(tmp_path, {"version": 2, "bad": Unpicklable()})
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt-000000000001.pt"]
    snap = load_latest(tmp_path)
    assert snap is not None and snap["version"] == 1


def test_model_and_id_maps_round_trip_through_a_checkpoint(tmp_path) -> None:
    import numpy as np

    from feedrec.model.twotower import EmbeddingModel, ModelConfig
    from feedrec.model.vocab import IdMap

    cfg = ModelConfig(dim=8, user_capacity=16, item_capacity=32, history_len=3, negatives=4)
    m = EmbeddingModel(cfg, device="cpu")
    items = IdMap(32)
    rows, _ = items.rows_for(["p", "q"], now=1.0)
    m.learn_many(np.array([0, 1]), rows, np.ones(2, np.float32), np.full((2, 3), -1))
    save_checkpoint(tmp_path, {"version": m.version, "model": m.state_dict(),
                               "items": items.state()})
    snap = load_latest(tmp_path)
    assert snap is not None
    clone = EmbeddingModel(cfg, device="cpu")
    clone.load_state_dict(snap["model"])
    assert np.array_equal(clone.item_vectors(), m.item_vectors())
    assert IdMap.from_state(snap["items"]).get_rows(["q", "p"]).tolist() == [1, 0]
