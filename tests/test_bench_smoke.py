"""Smoke runs of the benchmark scripts (``--quick``, tiny sizes) so they do not rot."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _run(script: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(BENCH / script), "--quick", *args],
                          capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.skipif(not (BENCH / "ingest.py").exists(), reason="bench/ingest.py not present")
def test_quick_benchmark_prints_table_and_ratio(tmp_path: Path) -> None:
    out = _run("ingest.py", "--big", "20", "--small", "100", "--settle", "0",
               "--workdir", str(tmp_path))
    assert re.search(r"^tree\s+files\s+MB\s+baseline s\s+kiosk s", out, re.M), out
    assert re.search(r"ratio kiosk/baseline \(big-20, .*\): \d+\.\d+x", out), out
    assert re.search(r"(PASS|MISS)\s+peak RSS", out), out
    assert "FAIL" not in out, out


@pytest.mark.skipif(not (BENCH / "export.py").exists(), reason="bench/export.py not present")
@pytest.mark.skipif(shutil.which("7z") is None, reason="7z not installed (p7zip-full)")
def test_quick_export_benchmark_prints_ratio_rss_and_verifies(tmp_path: Path) -> None:
    out = _run("export.py", "--instances", "12", "--settle", "0", "--desk-lead", "0.2",
               "--workdir", str(tmp_path))
    assert re.search(r"^7z a -tzip -mem=AES256 -mx=0\s+\d+\.\d+", out, re.M), out
    assert re.search(r"^kiosk export \(process\)\s+\d+\.\d+", out, re.M), out
    assert re.search(r"(PASS|MISS)\s+ratio kiosk export / 7z \(.*\): \d+\.\d+x", out), out
    assert re.search(r"^kiosk export in the desk\s+\d+\.\d+", out, re.M), out
    assert re.search(r"(PASS|MISS)\s+ratio export in the desk / 7z \(.*\): \d+\.\d+x", out), out
    assert re.search(r"(PASS|MISS)\s+peak RSS of the export: \d+ MB", out), out
    # 12 images, DICOMDIR, MANIFEST.JSON and MANIFEST.JWS
    assert re.search(r"OK\s+7z t of the kiosk archive .*: Everything is Ok, 15 files", out), out
    assert re.search(r"^\s+export:\s+of which DICOMDIR encode\s+\d+\.\d+", out, re.M), out
    assert re.search(r"^\s+export: read-back from the device", out, re.M), out
    assert "FAIL" not in out, out


@pytest.mark.skipif(not (BENCH / "zipcrypt.py").exists(), reason="bench/zipcrypt.py not present")
@pytest.mark.skipif(shutil.which("7z") is None, reason="7z not installed (p7zip-full)")
def test_quick_zipcrypt_benchmark_prints_ratio_and_verifies(tmp_path: Path) -> None:
    out = _run("zipcrypt.py", "--workdir", str(tmp_path))
    assert re.search(r"ratio kiosk write \+ read-back / 7z: \d+\.\d+ .*(PASS|MISS)", out), out
    assert re.search(r"kiosk peak RSS: \d+ MB .*(PASS|MISS)", out), out
    assert "7z t of the kiosk archive: OK" in out, out


@pytest.mark.skipif(not (BENCH / "viewer.py").exists(), reason="bench/viewer.py not present")
@pytest.mark.skipif(shutil.which("7z") is None, reason="7z not installed (p7zip-full)")
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="no Debian chromium")
def test_quick_viewer_benchmark_opens_the_package_in_chromium(tmp_path: Path) -> None:
    pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
    out = _run("viewer.py", "--workdir", str(tmp_path))
    assert re.search(r"^first image after the passphrase: \d+\.\d+ ", out, re.M), out
    assert re.search(r"background check .*: \d+ \(\d+–\d+\) MB/s; 7z t: \d+", out), out
    assert re.search(r"median of per-pair ratios page check / 7z t: \d+\.\d+x", out), out
    assert re.search(r"(PASS|MISS)  first image ≤ 3 s", out), out
    assert "PASS  page ≤ 3,000,000 bytes" in out, out


@pytest.mark.skipif(not (BENCH / "scale.py").exists(), reason="bench/scale.py not present")
def test_quick_scale_benchmark_prints_ratios_to_case_1_rss_and_size(tmp_path: Path) -> None:
    out = _run("scale.py", "--pairs", "1", "--audit", "2000",
               "--workdir", str(tmp_path))
    for op in ("import of a small medium", "kiosk cases --json", "open a case",
               "export a small case", "pick the next outbox job", "append an audit entry",
               "retention sweep", "kiosk start-up", "Home list on screen",
               "find a case by typing"):
        assert re.search(rf"^{re.escape(op)}\s+150\s+\d+\.\d+\s+\d+\.\d+\s+\d+\.\d+x", out,
                         re.M), (op, out)
    assert re.search(r"^data directory at N=150: \d+\.\d+ MB", out, re.M), out
    assert re.search(r"kiosk audit verify over 2000 entries: \d+\.\d+ s", out), out
    assert re.search(r"(PASS|MISS)\s+peak RSS of kiosk cases --json: \d+ MB", out), out
    assert re.search(r"(PASS|MISS)\s+Home list on screen: \d+\.\d+ s after start-up", out), out
    assert "Traceback" not in out, out


@pytest.mark.skipif(not (BENCH / "gateway.py").exists(), reason="bench/gateway.py not present")
def test_quick_gateway_benchmark_prints_first_image_times_and_ratios(tmp_path: Path) -> None:
    from tests.gateway.real_gateway import missing_parts
    if missing_parts():
        pytest.skip(missing_parts())
    out = _run("gateway.py", "--workdir", str(tmp_path))
    for procs in (1, 2):
        for who in ("plain", "gateway"):
            assert re.search(rf"^\s+{procs}\s+4\s+{who}\s+\d+\.\d+\s+\d+\.\d+\s+\d+\s+"
                             rf"\d+\.\d+\s+0$", out, re.M), (procs, who, out)
        assert re.search(rf"(PASS|MISS)  ratio gateway/plain p50 first image \({procs} proc, "
                         r"4 phones, 2 pairs\): \d+\.\d+x", out), out
    assert "Traceback" not in out, out
