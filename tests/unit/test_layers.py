"""The layers point one way (docs/architecture.md): each package imports only what its layer may.

- ``feedrec.index`` is a leaf: vectors by integer id, nothing else of feedrec.
- ``feedrec.model`` is the pure core: no Kafka, no files, no processes or threads, no metrics
  server; of feedrec it imports only itself and the index.
- ``feedrec.streams`` (the worker's adapters) imports the core, the index and itself, never the
  tools.
- ``feedrec.streams.tools`` (simulators, replay, demo, bench, the broker launcher, the
  evaluation) may use everything but the command line, which sits on top of all.

Imports are read from the source (inside functions too), so a lazy import counts.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "feedrec.model": ROOT / "model",
    "feedrec.index": ROOT / "index",
    "feedrec.streams": ROOT / "streams",
}

#: Top-level modules the pure core must not use: Kafka and Faust, files and the file system,
#: processes, threads and event loops, sockets, the metrics server.
NOT_IN_THE_CORE = {
    "confluent_kafka",
    "faust",
    "mode",
    "aiokafka",
    "kafka",
    "prometheus_client",
    "os",
    "pathlib",
    "io",
    "shutil",
    "tempfile",
    "gzip",
    "csv",
    "subprocess",
    "multiprocessing",
    "concurrent",
    "threading",
    "asyncio",
    "socket",
    "signal",
}


def modules() -> dict[str, Path]:
    """Every module of the distribution by its dotted name."""
    out = {}
    for name, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join((name, *parts))] = path
    return out


def imports(name: str, path: Path) -> set[str]:
    """The modules ``name`` imports, relative imports resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found |= {f"{module}.{a.name}" for a in node.names}  # ``from pkg import module``
    return found


def layer(module: str) -> str | None:
    for prefix, name in (
        ("feedrec.streams.cli", "cli"),
        ("feedrec.streams.tools", "tools"),
        ("feedrec.streams", "streams"),
        ("feedrec.model", "model"),
        ("feedrec.index", "index"),
    ):
        if module == prefix or module.startswith(prefix + "."):
            return name
    return None


#: Layer -> the layers of feedrec it may import.
ALLOWED = {
    "index": {"index"},
    "model": {"model", "index"},
    "streams": {"streams", "model", "index"},
    "tools": {"tools", "streams", "model", "index"},
    "cli": {"cli", "tools", "streams", "model", "index"},
}


def violations() -> list[str]:
    out = []
    all_modules = modules()
    for name, path in sorted(all_modules.items()):
        mine = layer(name)
        assert mine is not None, name
        for target in sorted(imports(name, path)):
            top = target.split(".")[0]
            if top in {"model", "index", "streams"}:
                out.append(f"{name} imports {target}: the code imports as feedrec.*")
            theirs = layer(target)
            if theirs is not None and theirs not in ALLOWED[mine]:
                out.append(f"{name} ({mine}) imports {target} ({theirs})")
            if mine == "model" and top in NOT_IN_THE_CORE:
                out.append(f"{name} (the pure core) imports {target}")
    return out


def test_every_import_points_down_the_layers() -> None:
    assert violations() == []


def test_the_core_opens_no_files() -> None:
    for name, path in modules().items():
        if layer(name) != "model":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id != "open", f"{name} calls open()"


@pytest.mark.parametrize(
    ("module", "line"),
    [
        ("feedrec.model.pipeline", "import faust"),
        ("feedrec.index.base", "from feedrec.model import state"),
        ("feedrec.streams.worker", "from feedrec.streams.tools import demo"),
        ("feedrec.model.items", "from pathlib import Path"),
        ("feedrec.streams.tools.bench", "from feedrec.streams.cli import main"),
    ],
)
def test_the_rules_catch_a_wrong_import(
    module: str, line: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = modules()[module]
    original = Path.read_text

    def with_line(self: Path, *args: object, **kwargs: object) -> str:
        text = original(self)
        return text + f"\n{line}\n" if self == path else text

    monkeypatch.setattr(Path, "read_text", with_line)
    assert any(v.startswith(module) for v in violations())


def test_the_worker_loads_neither_the_tools_nor_the_evaluation_extras() -> None:
    code = (
        "import sys, feedrec.streams.worker; "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith("
        "('feedrec.streams.tools', 'feedrec.streams.cli', 'river', 'implicit')))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == []
