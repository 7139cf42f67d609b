"""A stick or disc holding a zip of DICOM (a cloud-film download, an e-mailed study) is a source.

The role check reads a zip's central directory only (no member is inflated): DICOM-like or
encrypted names make the medium a source, a zip of holiday photos leaves a stick a target.
"""

from __future__ import annotations

import io
import subprocess
import zipfile
from pathlib import Path

import pytest

from kiosk.media.medium import MediumKind, Role
from kiosk.media.roles import SourceView, decide_role
from kiosk.sources.directory import DirectorySource
from kiosk.sources.iso import IsoSource
from tests.media_fixtures import need_tools
from tests.sources.zip_kit import dicom_bytes, seven_zip, tree_of

CT = dicom_bytes("CT_small.dcm")


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


def _role(root: Path, kind: MediumKind = MediumKind.USB) -> tuple[Role, str]:
    return decide_role(SourceView(DirectorySource(root)), kind)


@pytest.mark.parametrize("name", ["study.zip", "DOWNLOAD.BIN"])  # by content, not by name
def test_a_stick_with_a_zip_of_dicom_is_a_source(tmp_path: Path, name: str) -> None:
    root = tree_of(tmp_path / "stick", {name: _zip({"DICOM/IM0001": CT, "DICOMDIR": CT}),
                                        "viewer.exe": b"MZ" + bytes(200)})
    role, reason = _role(root)
    assert role is Role.SOURCE
    assert "zip archive" in reason


def test_a_stick_with_a_zip_of_photos_stays_a_target(tmp_path: Path) -> None:
    root = tree_of(tmp_path / "stick", {"holiday.zip": _zip({"beach.jpg": b"\xff\xd8" + bytes(99),
                                                             "notes.txt": b"hi"})})
    assert _role(root)[0] is Role.TARGET


def test_an_encrypted_zip_is_a_source(tmp_path: Path) -> None:
    tree = tree_of(tmp_path / "tree", {"scan.jpg": CT})  # names say nothing; encryption does
    root = tmp_path / "stick"
    root.mkdir()
    seven_zip(root / "from_hospital.zip", tree, password="19800131", encryption="AES256")
    assert _role(root)[0] is Role.SOURCE


def test_a_damaged_zip_alone_says_nothing(tmp_path: Path) -> None:
    archive = _zip({"IM0001": CT})
    root = tree_of(tmp_path / "stick", {"cut.zip": archive[:200]})
    assert _role(root)[0] is Role.TARGET


def test_a_disc_with_a_zip_of_dicom_is_a_source(tmp_path: Path) -> None:
    need_tools("xorriso")
    tree = tree_of(tmp_path / "tree", {"CLOUD/FILM.ZIP": _zip({"IMG/CT": CT})})
    iso = tmp_path / "disc.iso"
    made = subprocess.run(["xorriso", "-as", "mkisofs", "-R", "-V", "FILM", "-o", str(iso),
                           str(tree)], capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    with IsoSource(iso) as disc:
        role, reason = decide_role(SourceView(disc), MediumKind.OPTICAL)
    assert role is Role.SOURCE and "zip archive" in reason
