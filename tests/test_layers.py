"""The rooms' import contract (pyproject.toml, docs/architecture.md) holds, and it bites.

``lint-imports`` runs on the real tree; then on a copy of it where three imports break the
contract on purpose — a low room importing the facade, the core importing Textual, and a cycle
inside a room — and each of those contracts must be reported broken.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT.exists(), reason="import-linter is not installed")


def _lint(cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT), "--no-cache", "--config", str(cwd / "pyproject.toml")],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_tree_keeps_every_contract() -> None:
    run = _lint(REPO)
    assert run.returncode == 0, run.stdout + run.stderr
    assert " 0 broken" in run.stdout
    assert "Layers:" in run.stdout and "No import cycles" in run.stdout


def test_breaking_a_layer_a_cycle_or_the_ui_rule_fails_the_lint(tmp_path: Path) -> None:
    shutil.copytree(REPO / "kiosk", tmp_path / "kiosk",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "screens", tmp_path / "kiosk_tui",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    breaks = {
        "kiosk/store/durable.py": "import kiosk.service",  # the store reaching up to the facade
        "kiosk/dicom/names.py": "import textual",  # the core importing the UI toolkit
        "kiosk/media/medium.py": "import kiosk.media.desk",  # a cycle inside the media room
    }
    for path, line in breaks.items():
        with open(tmp_path / path, "a", encoding="utf-8") as fh:
            fh.write(f"\n{line}  # noqa: E402, F401\n")
    # The copy comes first on the path, ahead of the editable install of the real tree.
    env = os.environ | {"PYTHONPATH": str(tmp_path)}
    run = _lint(tmp_path, env)
    assert run.returncode != 0, run.stdout
    out = " ".join(run.stdout.split())
    assert ("the rooms above store, system, config and errors BROKEN" in out
            and "kiosk.store.durable -> kiosk.service" in out)
    assert "The core never imports Textual or the desk UI BROKEN" in out
    assert "kiosk.dicom.names -> textual" in out
    assert "No import cycles: between rooms, nor between the modules of a room BROKEN" in out
