"""User errors on the command line: one line naming what to fix, a non-zero status, no traceback.

None of these reach a broker: each fails on its input before the first connection, and
``KAFKA_BOOTSTRAP_SERVERS`` points at a closed port so that a regression shows up as a failure
(not a wait on a real broker).
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from feedrec.model.exceptions import ConfigError, FeedrecError
from feedrec.streams.cli import main
from feedrec.streams.exceptions import DatasetError, WorkerCrashed
from feedrec.streams.tools.evaluation.datasets import load_dataset, sim_size
from feedrec.streams.tools.replay import check_dataset


@pytest.fixture(autouse=True)
def no_broker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{port}")
    monkeypatch.setenv("FEEDREC_CONNECT_TIMEOUT_S", "0.5")
    monkeypatch.setenv("FEEDREC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{text}"
    assert "Traceback" not in text
    return lines[0]


def fails(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run ``feedrec argv`` in-process; return its one stderr line, after checking the status."""
    status = main(list(argv))
    err = capsys.readouterr().err
    assert status == 2, f"status {status}, stderr:\n{err}"
    line = one_line(err)
    assert line.startswith("feedrec: ")
    return line


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    assert exit_info.value.code == 2
    return one_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    "command", [["replay"], ["evaluate", "--method", "popularity", "--dataset"]]
)
def test_a_missing_dataset_is_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: list[str]
) -> None:
    missing = tmp_path / "nope.csv"
    line = fails(capsys, *command, str(missing))
    assert f"{missing}: no such file" in line
    assert "Taobao UserBehavior or generic CSV" in line


@pytest.mark.parametrize(
    "command", [["replay"], ["evaluate", "--method", "popularity", "--dataset"]]
)
def test_a_directory_as_dataset_is_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: list[str]
) -> None:
    line = fails(capsys, *command, str(tmp_path))
    assert f"{tmp_path}: a directory, not a file" in line


@pytest.mark.parametrize("spec", ["sim:abc", "sim:0", "sim:-5", "sim:1.5", "sim-catalog:x"])
def test_a_bad_sim_size_says_what_it_needs(capsys: pytest.CaptureFixture[str], spec: str) -> None:
    line = fails(capsys, "evaluate", "--method", "popularity", "--dataset", spec)
    kind = spec.partition(":")[0]
    assert f"dataset {spec!r}: expected {kind} or {kind}:N" in line


def test_sim_sizes() -> None:
    assert sim_size("sim") == sim_size("sim-catalog") == 100_000
    assert sim_size("sim:250") == sim_size("sim-catalog:250") == 250
    assert sim_size("simulated.csv") is None and sim_size("sim-other:5") is None
    with pytest.raises(DatasetError, match="sim:N"):
        load_dataset("sim:x")


def test_an_empty_dataset_is_refused_before_evaluating(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    line = fails(capsys, "evaluate", "--method", "popularity", "--dataset", str(empty))
    assert "no events to evaluate on" in line


def test_an_output_in_a_missing_directory_fails_before_evaluating(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "no-such-dir" / "out.json"
    line = fails(
        capsys, "evaluate", "--method", "popularity", "--dataset", "sim:100", "--json", str(target)
    )
    assert f"--json {target}: directory {target.parent} does not exist" in line


def test_check_dataset_accepts_a_file(tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_text("ts,user_id,item_id,event_type\n")
    assert check_dataset(str(f)) == f


@pytest.mark.parametrize(
    ("value", "needle"),
    [("70000", "must be a TCP port"), ("-1", "must be a TCP port"), ("abc", "must be a TCP")],
)
def test_a_bad_metrics_port_names_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, value: str, needle: str
) -> None:
    monkeypatch.setenv("FEEDREC_METRICS_PORT", value)
    line = fails(capsys, "worker")
    assert f"FEEDREC_METRICS_PORT={value!r} is invalid" in line
    assert needle in line


def test_an_unusable_data_dir_names_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("FEEDREC_DATA_DIR", str(blocker / "data"))
    line = fails(capsys, "worker")
    assert f"FEEDREC_DATA_DIR={str(blocker / 'data')!r} cannot be used" in line
    assert "writable directory" in line


def test_a_bad_connect_timeout_names_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEEDREC_CONNECT_TIMEOUT_S", "0")
    line = fails(capsys, "simulate", "--duration", "1")
    assert "FEEDREC_CONNECT_TIMEOUT_S='0' is invalid: must be a positive number" in line


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["replay", "--speedup", "-1", "x.csv"], "argument --speedup: expected a number >= 0"),
        (["replay", "--limit", "-3", "x.csv"], "argument --limit: expected a whole number >= 0"),
        (["simulate", "--rate", "0"], "argument --rate: expected a positive number"),
        (["simulate", "--rate", "inf"], "argument --rate: expected a positive number"),
        (["simulate", "--users", "0"], "argument --users: expected a whole number >= 1"),
        (["demo", "--duration", "nan"], "argument --duration: expected a positive number"),
        (["broker", "--port", "70000"], "argument --port: expected a TCP port"),
        (["evaluate", "--dataset", "sim", "--limit", "0"], "argument --limit"),
        (["worker", "--loglevel", "loud"], "argument --loglevel: invalid choice"),
        (["nonsense"], "invalid choice"),
        ([], "required: command"),
    ],
)
def test_usage_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    line = usage_error(capsys, *argv)
    assert needle in line
    assert "-h`" in line


def test_verbose_adds_the_traceback(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status = main(["-v", "replay", str(tmp_path / "nope.csv")])
    err = capsys.readouterr().err
    assert status == 2
    assert "Traceback" in err
    assert err.strip().splitlines()[-1].startswith("feedrec: ")


def test_exit_statuses() -> None:
    assert FeedrecError.exit_code == ConfigError.exit_code == DatasetError.exit_code == 2
    assert WorkerCrashed("x").exit_code == 1


def test_a_truncated_gzip_dataset_is_a_format_error(tmp_path: Path) -> None:
    import gzip

    from feedrec.streams.exceptions import ReplayFormatError
    from feedrec.streams.tools.replay import read_events

    rows = "".join(f"u{i},i{i},c1,pv,{1700000000 + i}\n" for i in range(20000))
    packed = gzip.compress(rows.encode())
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(ReplayFormatError, match=r"cut\.csv\.gz:\d+: the file is cut short"):
        list(read_events(cut))
