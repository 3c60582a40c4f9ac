"""Atomic checkpoints: a crash mid-write leaves the previous checkpoint intact.

Each checkpoint is one file, ``ckpt-<version>.pt``, written to a temporary name, fsynced and
renamed into place; the newest readable one wins on load, and only the last few are kept.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import torch

from model.exceptions import CheckpointError

log = logging.getLogger(__name__)

KEEP = 3
_NAME = re.compile(r"^ckpt-(\d{12})\.pt$")


def _checkpoints(directory: Path) -> list[tuple[int, Path]]:
    found = []
    for p in directory.iterdir():
        m = _NAME.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def save_checkpoint(directory: Path, payload: dict, keep: int = KEEP) -> Path:
    """Write ``payload`` (which must carry an int ``version``) and prune older checkpoints."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(f"cannot create checkpoint directory {directory}: {exc}") from exc
    version = int(payload["version"])
    final = directory / f"ckpt-{version:012d}.pt"
    tmp = directory / f".{final.name}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        if tmp.exists():
            tmp.unlink()
    for _, old in _checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    return final


def load_latest(directory: Path) -> dict | None:
    """The newest checkpoint that loads, or ``None`` when there is none."""
    directory = Path(directory)
    if not directory.exists():
        return None
    if not directory.is_dir():
        raise CheckpointError(f"{directory} is not a directory; point FEEDREC_DATA_DIR elsewhere")
    for version, path in reversed(_checkpoints(directory)):
        try:
            payload = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:  # a torn or foreign file: fall back to the previous one
            log.warning("skipping unreadable checkpoint %s: %s", path, exc)
            continue
        if int(payload.get("version", -1)) != version:
            log.warning("skipping checkpoint %s: its version does not match its name", path)
            continue
        return payload
    return None
