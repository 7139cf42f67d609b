"""Smoke run of ``bench/ingest.py --quick`` so the benchmark script does not rot."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "ingest.py"


@pytest.mark.skipif(not SCRIPT.exists(), reason="bench/ingest.py not present")
def test_quick_benchmark_prints_table_and_ratio(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--big", "20", "--small", "100",
         "--settle", "0", "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert re.search(r"^tree\s+files\s+MB\s+baseline s\s+kiosk s", out, re.M), out
    assert re.search(r"ratio kiosk/baseline \(big-20, .*\): \d+\.\d+x", out), out
    assert re.search(r"(PASS|MISS)\s+peak RSS", out), out
    assert "FAIL" not in out, out
