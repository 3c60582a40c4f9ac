import torch

from model.checkpoint import load_latest, save_checkpoint


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
