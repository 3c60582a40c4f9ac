"""The code installed top-level packages called ``model``, ``index`` and ``streams``: a
``model.py`` in the directory a command ran in shadowed them (``No module named
'model.exceptions'; 'model' is not a package``), and ``feedrec demo`` failed there. Everything
now imports as ``feedrec.*``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_files_named_like_the_folders_do_not_shadow_feedrec(tmp_path: Path) -> None:
    for name in ("model", "index", "streams"):
        (tmp_path / f"{name}.py").write_text("raise ImportError('the user's own module')\n")
    script = Path(sys.executable).parent / "feedrec"
    for command in (
        [str(script), "settings"],
        [sys.executable, "-m", "feedrec.streams.cli", "settings"],
    ):
        run = subprocess.run(
            command, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
        )
        assert run.returncode == 0, run.stderr[-2000:]
        assert "FEEDREC_BATCH_SIZE" in run.stdout
