"""A disc of JPEG pages, a Windows viewer and a PDF, but no DICOM: refused with what to ask for.

Exit 3 (nothing importable), and an English and Chinese message that says what was found and
that the hospital must give a DICOM export; read from a folder, an ISO image file and a loop
device under udevd, the same way.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import make_instance
from tests.media_fixtures import Loop, iso_image, root_media_missing

Cli = Callable[..., tuple[int, str, str]]


def _picture_disc(root: Path) -> Path:
    (root / "VIEWER").mkdir(parents=True)
    (root / "IMAGES").mkdir()
    (root / "VIEWER" / "Viewer.exe").write_bytes(b"MZ\x90\x00" + b"\0" * 200)
    (root / "VIEWER" / "dcmlib.dll").write_bytes(b"MZ\x90\x00" + b"\1" * 200)
    (root / "AUTORUN.INF").write_text("[autorun]\r\nopen=VIEWER\\Viewer.exe\r\n")
    for n in range(3):
        (root / "IMAGES" / f"PAGE{n}.JPG").write_bytes(b"\xff\xd8\xff\xe0\0\x10JFIF" + bytes(64))
    (root / "IMAGES" / "SCOUT.BMP").write_bytes(b"BM" + bytes(64))
    (root / "REPORT.PDF").write_bytes(b"%PDF-1.4\n% the hospital's report\n%%EOF\n")
    return root


def _check(report: dict[str, object]) -> None:
    contents = report["contents"]
    assert isinstance(contents, dict)
    assert contents["pictures"] == 4
    assert contents["viewer"] == 2 and contents["autorun"] is True
    assert [p.upper() for p in contents["pdfs"]] == ["REPORT.PDF"]  # type: ignore[union-attr]
    no_dicom = report["no_dicom"]
    assert isinstance(no_dicom, dict)
    assert "no DICOM images" in no_dicom["en"] and "DICOM export" in no_dicom["en"]
    assert "4 picture(s)" in no_dicom["en"] and "viewer program" in no_dicom["en"]
    assert "没有 DICOM 影像" in no_dicom["zh"] and "DICOM 格式导出" in no_dicom["zh"]
    assert "4 张图片" in no_dicom["zh"] and "PDF" in no_dicom["zh"]


def test_a_folder_of_pictures_exits_3_and_says_what_to_ask_the_hospital_for(
        tmp_path: Path, run_cli: Cli) -> None:
    disc = _picture_disc(tmp_path / "disc")
    code, out, err = run_cli("import", str(disc), "--json")
    assert code == 3
    report = json.loads(out)
    _check(report)
    assert report["case_id"] is None
    assert "DICOM export" in err and "DICOM 格式导出" in err  # the operator reads it too
    code, out, _err = run_cli("import", str(disc))
    assert code == 3
    assert "No DICOM:" in out and "无DICOM:" in out and "REPORT.PDF" in out


def test_an_iso_image_of_pictures_is_refused_the_same_way(tmp_path: Path, run_cli: Cli) -> None:
    image = iso_image(_picture_disc(tmp_path / "tree"), tmp_path / "fakecd-pictures.iso",
                      "PICTURES")
    code, out, _err = run_cli("import", str(image), "--json")
    assert code == 3
    _check(json.loads(out))


def test_a_disc_with_only_damaged_dicom_is_not_called_a_disc_without_dicom(
        tmp_path: Path, run_cli: Cli) -> None:
    disc = _picture_disc(tmp_path / "disc")
    make_instance(disc / "IM0001")
    data = (disc / "IM0001").read_bytes()
    (disc / "IM0001").write_bytes(data[:200])  # cut inside the header
    code, out, _err = run_cli("import", str(disc), "--json")
    report = json.loads(out)
    assert code == 3
    assert report["rejected"] and report["no_dicom"] is None


def test_a_picture_disc_in_a_loop_device_under_udevd_is_refused_the_same_way(
        udevd: None, tmp_path: Path, data_dir: Path) -> None:
    if (why := root_media_missing()) is not None:
        pytest.skip(why)
    image = iso_image(_picture_disc(tmp_path / "tree"), tmp_path / "fakecd-pictures.iso",
                      "PICTURES")
    with Loop(image, read_only=True, settle=True) as loop:
        run = subprocess.run([sys.executable, "-m", "kiosk.cli.main", "--data-dir",
                              str(data_dir), "import", loop.device, "--json"],
                             capture_output=True, text=True, timeout=120)
    assert run.returncode == 3, run.stderr
    _check(json.loads(run.stdout))
