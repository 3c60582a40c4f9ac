"""What the documents point at exists: the analysis scripts' imports, and the file:function
references of docs/architecture.md."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((ROOT / "docs" / "analysis").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_analysis_scripts_import_what_exists(script: Path) -> None:
    for node in ast.walk(ast.parse(script.read_text())):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.split(".")[0] in ("feedrec", "model", "index", "streams")
        ):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{script.name}: {node.module}.{alias.name}"


def test_the_architecture_names_real_files_and_functions() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    refs = re.findall(r"`((?:model|index|streams)/[\w/]+\.py): ([\w.]+)`", text)
    assert len(refs) > 20
    for path, name in refs:
        source = (ROOT / path).read_text()
        defined = {
            n.name
            for n in ast.walk(ast.parse(source))
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        }
        defined |= {
            t.id
            for n in ast.walk(ast.parse(source))
            if isinstance(n, ast.Assign | ast.AnnAssign)
            for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
            if isinstance(t, ast.Name)
        }
        for part in name.split("."):
            assert part in defined, f"docs/architecture.md: {path}: {name}"


def test_docstrings_name_modules_and_objects_that_exist() -> None:
    """Every absolute ``:mod:``/``:class:``/``:func:``... reference in the code resolves."""
    pattern = re.compile(
        r":(?:mod|class|func|meth|data|attr):`~?((?:feedrec|model|index|streams)\.[\w.]+)`"
    )
    missing = []
    for folder in ("model", "index", "streams"):
        for path in (ROOT / folder).rglob("*.py"):
            for ref in pattern.findall(path.read_text()):
                if not _resolves(ref):
                    missing.append(f"{path.relative_to(ROOT)}: {ref}")
    assert missing == []


def _resolves(ref: str) -> bool:
    """Whether the dotted ``ref`` names a module, or something defined in one (an attribute a
    class sets on its instances counts: it is read from the class's source)."""
    parts = ref.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for n, name in enumerate(parts[split:]):
            if hasattr(obj, name):
                obj = getattr(obj, name)
            elif n == len(parts) - split - 1 and isinstance(obj, type):
                return f"self.{name}" in inspect.getsource(obj)
            else:
                return False
        return True
    return False
