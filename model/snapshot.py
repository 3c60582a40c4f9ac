"""What a checkpoint holds: every step's state as one typed structure, and its plain form.

:class:`Snapshot` is built from each step's ``state()`` (:meth:`feedrec.model.pipeline.Pipeline.snapshot`)
and given back to each step's ``load()``. On disk (:mod:`feedrec.streams.checkpoint`) it is
:meth:`Snapshot.to_plain`: nested dicts of arrays, tensors and numbers, so a checkpoint does not
name this code's classes and survives their moving. :meth:`Snapshot.from_plain` refuses a
checkpoint of another layout with a message that says what to do.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any

from feedrec.model.exceptions import CheckpointError
from feedrec.model.ranker import RankerState
from feedrec.model.steps.fold import FoldState
from feedrec.model.steps.learn import LearnState
from feedrec.model.steps.retrieve import RetrieveState
from feedrec.model.twotower import EmbeddingState

#: Layout of :class:`Snapshot`; a checkpoint of another layout is refused on restore, but for
#: layout 3 (the same states before they were grouped by step), which is read as this one.
SNAPSHOT_FORMAT = 4


@dataclass(frozen=True, slots=True)
class Snapshot:
    format: int
    #: The model's version when taken (a checkpoint file is named after it).
    version: int
    fold: FoldState
    learn: LearnState
    retrieve: RetrieveState
    rank: RankerState

    def to_plain(self) -> dict[str, Any]:
        return typing.cast(dict[str, Any], _to_plain(self))

    @classmethod
    def from_plain(cls, data: Any) -> Snapshot:
        layout = data.get("format", 1) if isinstance(data, dict) else None
        if layout not in (3, SNAPSHOT_FORMAT):
            raise CheckpointError(
                f"checkpoint of model version {data.get('version') if layout else '?'} has "
                f"layout {layout}, this feedrec reads layouts 3 and {SNAPSHOT_FORMAT}; move the "
                "checkpoint directory aside to start with a fresh model"
            )
        try:
            plain = _from_layout_3(data) if layout == 3 else data
            return typing.cast(Snapshot, _from_plain(cls, plain, _HINTS))
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(
                f"checkpoint of layout {layout} is incomplete or damaged ({exc!r}); move the "
                "checkpoint directory aside to start with a fresh model"
            ) from exc


#: The concrete types behind fields typed ``Any`` (the model's own state).
_HINTS: dict[tuple[type, str], type] = {(LearnState, "model"): EmbeddingState}


def _from_layout_3(data: dict[str, Any]) -> dict[str, Any]:
    """A layout-3 checkpoint (written before the steps) in this layout's plain form: the same
    states, grouped by the step that owns them."""

    def id_map(state: dict[str, Any]) -> dict[str, Any]:
        return {
            "capacity": state["capacity"],
            "ids": state["ids"],
            "rows": state["rows"],
            "free": [],
            "next": state["next"],
        }

    sources = data["sources"]
    return {
        "format": SNAPSHOT_FORMAT,
        "version": data["version"],
        "fold": {"repeats": data["repeats"], "session_gaps": data["session_gaps"]},
        "learn": {
            "model": data["model"],
            "vocab": {"users": id_map(data["users"]), "items": id_map(data["items"])},
            "learned": data.get("learned", {}),
            "learned_events": data.get("learned_events", 0),
        },
        "retrieve": {
            "stats": data["stats"],
            "sources": {"covisit": sources["covisit"], "covisit_long": sources["covisit_long"]},
        },
        "rank": data["ranker"],
    }


def _to_plain(value: Any) -> Any:
    """Dataclasses as dicts, all the way down; everything else as it is (no copies)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    return value


def _from_plain(cls: Any, data: dict[str, Any], hints: dict[tuple[type, str], type]) -> Any:
    """``cls`` (a dataclass) from its plain form; fields it does not know are left out, so a
    setting that a later version dropped does not make its checkpoints unreadable."""
    types_of = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        hint = hints.get((cls, f.name), types_of[f.name])
        values[f.name] = _convert(hint, data[f.name], hints)
    return cls(**values)


def _convert(hint: Any, value: Any, hints: dict[tuple[type, str], type]) -> Any:
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        known = {f.name for f in dataclasses.fields(hint)}
        return _from_plain(hint, {k: v for k, v in value.items() if k in known}, hints)
    origin = typing.get_origin(hint)
    if origin is dict:
        _, inner = typing.get_args(hint)
        return {k: _convert(inner, v, hints) for k, v in value.items()}
    if origin in (typing.Union, types.UnionType) and value is not None:
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(inner[0], value, hints) if len(inner) == 1 else value
    return value
