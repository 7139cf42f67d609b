"""The core never imports Textual: every kiosk module is imported alone in a fresh process."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import kiosk

MODULES = sorted(m.name for m in pkgutil.walk_packages(kiosk.__path__, "kiosk."))


def test_every_core_module_is_checked() -> None:
    assert {"kiosk.ingest.importer", "kiosk.cli.main", "kiosk.service"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_core_module_does_not_load_textual(module: str) -> None:
    # Orthanc's embedded Python provides `orthanc` to the gateway's plugin; an empty stand-in
    # lets the plugin be imported here (it calls nothing of it at import time).
    stub = ("import types; sys.modules['orthanc'] = types.ModuleType('orthanc'); "
            if module == "kiosk.gateway.plugin" else "")
    code = (f"import sys; {stub}import {module}; "
            "bad = [m for m in sys.modules if m == 'textual' or m.startswith('textual.')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, f"{module} loads Textual: {proc.stdout} {proc.stderr}"
