"""Atomic checkpoints: a crash mid-write leaves the previous checkpoint intact.

Each checkpoint is one file, ``ckpt-<version>.pt``, written to a temporary name, fsynced and
renamed into place; the newest readable one wins on load, and only the last few are kept. The
worker writes the pipeline's :class:`~feedrec.model.snapshot.Snapshot` (:func:`save_snapshot`,
:func:`load_snapshot`) in its plain form: nested dicts of tensors, arrays and numbers.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from pathlib import Path

import torch

from feedrec.model.exceptions import CheckpointError
from feedrec.model.snapshot import Snapshot

log = logging.getLogger(__name__)

KEEP = 3
_NAME = re.compile(r"^ckpt-(\d{12})\.pt$")


def _checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """``(version, path)`` of every checkpoint-named file, oldest first."""
    try:
        names = [p for p in directory.iterdir() if _NAME.match(p.name)]
    except OSError as exc:
        raise CheckpointError(f"cannot list checkpoint directory {directory}: {exc}") from exc
    return sorted((int(p.name[5:17]), p) for p in names)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_snapshot(directory: Path, snap: Snapshot, keep: int = KEEP) -> Path:
    """Write the pipeline's snapshot atomically (see :func:`save_checkpoint`)."""
    return save_checkpoint(directory, snap.to_plain(), keep)


def load_snapshot(directory: Path) -> Snapshot | None:
    """The newest snapshot that loads, or ``None``; :class:`CheckpointError` when it is of
    another layout (see :func:`load_latest`)."""
    payload = load_latest(directory)
    return None if payload is None else Snapshot.from_plain(payload)


def save_checkpoint(directory: Path, payload: dict, keep: int = KEEP) -> Path:
    """Write ``payload`` (which must carry an int ``version``) atomically; prune older ones.

    A crash at any point leaves either the previous set of checkpoints or the new one, never a
    torn ``ckpt-*.pt``: the bytes go to a temporary name, are fsynced, then renamed into place.
    """
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}")
    if "version" not in payload:
        raise CheckpointError("checkpoint payload has no 'version'; pass the model version")
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(f"cannot create checkpoint directory {directory}: {exc}") from exc
    version = int(payload["version"])
    if version < 0:
        raise CheckpointError(f"checkpoint version must be >= 0, got {version}")
    final = directory / f"ckpt-{version:012d}.pt"
    # Unique per call: two saves of the same version at once must not share a temporary file.
    tmp = directory / f".{final.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        _fsync_dir(directory)
    except OSError as exc:
        raise CheckpointError(f"cannot write checkpoint {final}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    for _, old in _checkpoints(directory)[:-keep]:
        try:
            old.unlink(missing_ok=True)
        except OSError as exc:  # pruning is housekeeping: never fail a good save over it
            log.warning("cannot remove old checkpoint %s: %s", old, exc)
    return final


def load_latest(directory: Path) -> dict | None:
    """The newest checkpoint that loads, or ``None`` when there is none.

    Unreadable or mislabelled files (a torn copy, a foreign file) are skipped with a warning so a
    single bad file never blocks a restart.
    """
    directory = Path(directory)
    if not directory.exists():
        return None
    if not directory.is_dir():
        raise CheckpointError(f"{directory} is not a directory; point FEEDREC_DATA_DIR elsewhere")
    if not os.access(directory, os.R_OK | os.X_OK):
        raise CheckpointError(f"checkpoint directory {directory} is not readable; fix permissions")
    for version, path in reversed(_checkpoints(directory)):
        try:
            # Our own files only: the payload carries numpy arrays, which weights_only refuses.
            payload = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:  # a torn or foreign file: fall back to the previous one
            log.warning("skipping unreadable checkpoint %s: %s", path, exc)
            continue
        try:
            matches = isinstance(payload, dict) and int(payload["version"]) == version
        except (KeyError, TypeError, ValueError):
            matches = False
        if not matches:
            log.warning(
                "skipping checkpoint %s: not a payload whose version matches its name", path
            )
            continue
        return payload
    return None
