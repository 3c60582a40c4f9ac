"""Every method of the evaluation by its ``--method`` name.

Methods that need the ``eval`` extra (``river-mf``, ``implicit-als``) are imported only when
built; the worker never imports any of this.
"""

from __future__ import annotations

import importlib
from typing import Any, cast

from feedrec.streams.tools.evaluation.base import Method

#: name -> ``module:class`` under :mod:`feedrec.streams.tools.evaluation`.
METHODS: dict[str, str] = {
    "feedrec": "feedrec:Feedrec",
    "popularity": "popularity:Popularity",
    "covisitation": "covisitation:CoVisitation",
    "recent-category": "recent_category:RecentCategory",
    "sequential-rules": "sequential:SequentialRules",
    "item-knn": "itemknn:ItemKNN",
    "sknn": "sknn:SessionKNN",
    "vsknn": "sknn:SessionKNN",
    "stan": "stan:STAN",
    "river-mf": "river_mf:RiverMF",
    "implicit-als": "implicit_als:ImplicitALS",
}
#: Fixed arguments of a name that shares its class with another.
PRESET: dict[str, dict] = {"sknn": {"variant": "sknn"}, "vsknn": {"variant": "vsknn"}}
METHOD_NAMES = tuple(METHODS)
#: Methods that need the ``eval`` extra.
EXTRA = ("river-mf", "implicit-als")


def method_class(name: str) -> type[Method]:
    try:
        module, cls = METHODS[name].split(":")
    except KeyError:
        raise ValueError(
            f"unknown method {name!r}; choose from {', '.join(METHOD_NAMES)}"
        ) from None
    try:
        found = getattr(importlib.import_module(f"feedrec.streams.tools.evaluation.{module}"), cls)
        return cast(type[Method], found)
    except ImportError as exc:
        raise ImportError(
            f"method {name!r} needs the evaluation extra: pip install 'feedrec[eval]' ({exc})"
        ) from exc


def grid(name: str) -> tuple[dict, ...]:
    """The variants ``--tune`` searches for ``name`` (each a dict of constructor arguments)."""
    preset = PRESET.get(name, {})
    variants = [
        v for v in method_class(name).GRID if all(v.get(k, x) == x for k, x in preset.items())
    ]
    return tuple({k: x for k, x in v.items() if k not in preset} for v in variants)


def make_method(name: str, **kw: Any) -> Method:
    """A fresh method by its ``--method`` name, with constructor arguments ``kw``."""
    factory = method_class(name)
    try:
        return factory(**(PRESET.get(name, {}) | kw))
    except ImportError as exc:
        raise ImportError(
            f"method {name!r} needs the evaluation extra: pip install 'feedrec[eval]' ({exc})"
        ) from exc
