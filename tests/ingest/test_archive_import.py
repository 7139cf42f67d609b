"""Import stories for zip archives on media: cloud-film downloads and e-mailed studies on a stick.

Each archive is made here (zipfile, 7-Zip) around pydicom's own test files and imported through
the facade or the ``kiosk`` command, from a folder and from an ISO image; what the case holds is
checked against the original files' hashes.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from kiosk.bootstrap import build_service
from kiosk.cli.main import import_exit_code
from kiosk.service import KioskService
from tests.conftest import PYDICOM_FILES, json_report
from tests.media_fixtures import Loop, need_tools
from tests.sources.zip_kit import (
    DICOM_FILES,
    RawMember,
    deflated,
    dicom_bytes,
    raw_zip,
    seven_zip,
    tree_of,
)

CT, MR, PLAN, J2K, J2KI = (dicom_bytes(n) for n in DICOM_FILES)
RunCli = Callable[..., tuple[int, str, str]]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


def _stored(service: KioskService, case_id: str) -> set[str]:
    """SHA-256 of every instance the case holds."""
    return {row.sha256 for study in service.catalog.studies(case_id)
            for row in service.catalog.manifest(study)}


def _encrypted(tmp_path: Path, name: str, files: dict[str, bytes], password: str,
               encryption: str) -> Path:
    tree = tree_of(tmp_path / f"tree-{name}", files)
    medium = tmp_path / "medium"
    medium.mkdir(exist_ok=True)
    return seven_zip(medium / name, tree, password=password, encryption=encryption)


def test_a_stick_of_archives_imports_like_its_files(service: KioskService,
                                                    tmp_path: Path) -> None:
    medium = tree_of(tmp_path / "stick", {
        "Downloads/cloud_film.zip": _zip({"DICOM/CT1": CT, "DICOM/MR1": MR,
                                          "viewer/readme.txt": b"open index.html"}),
        "mail/plan.zip": _zip({"PLAN": PLAN}, zipfile.ZIP_STORED),
        # An archive in the archive (a study forwarded twice), and one named like anything else.
        "mail/forwarded.zip": _zip({"inner.zip": _zip({"J2K": J2K})}),
        "STUDY.DAT": _zip({"J2KI": J2KI}),
        "notes.txt": b"not an archive",
    })
    report = service.import_path(medium)
    assert report["instances"] == {"found": 5, "imported": 5, "duplicates": 0, "verified": 5}
    assert report["complete"] and report["verification"]["problems"] == []
    assert _stored(service, report["case_id"]) == {_sha(d) for d in (CT, MR, PLAN, J2K, J2KI)}
    archives = {a["path"]: a for a in report["archives"]}
    assert {p: (a["members"], a["imported"]) for p, a in archives.items()} == {
        "Downloads/cloud_film.zip": (3, 2), "mail/plan.zip": (1, 1),
        "mail/forwarded.zip": (1, 0), "mail/forwarded.zip!/inner.zip": (1, 1),
        "STUDY.DAT": (1, 1)}
    assert all(a["problem"] is None for a in archives.values())
    # The archives themselves are not "not DICOM"; what is in them that is not, is.
    assert {i["path"] for i in report["ignored"]} == {"Downloads/cloud_film.zip!/viewer/readme.txt",
                                                      "notes.txt"}
    assert report["rejected"] == []
    assert {q["code"]: q["count"] for q in report["quirks"]}.get("archive_on_medium") == 5
    assert import_exit_code(report) == 0


def test_a_cloud_film_zip_with_its_dicomdir_reconciles(service: KioskService,
                                                      tmp_path: Path) -> None:
    fileset = PYDICOM_FILES / "dicomdirtests"
    members = {"DICOMDIR": (fileset / "DICOMDIR").read_bytes()}
    for path in fileset.rglob("*"):
        if path.is_file() and path.parts[-1] != "DICOMDIR" and path.relative_to(
                fileset).parts[0] in ("77654033", "98892001", "98892003"):
            members[path.relative_to(fileset).as_posix()] = path.read_bytes()
    medium = tree_of(tmp_path / "stick", {"film.zip": _zip(members)})
    report = service.import_path(medium)
    assert report["instances"]["found"] == report["instances"]["verified"] == 31
    assert report["dicomdir"]["present"] and report["dicomdir"]["records"] == 31
    assert report["dicomdir"]["missing"] == [] and report["dicomdir"]["unlisted"] == []


@pytest.mark.parametrize("encryption", ["ZipCrypto", "AES256"])
def test_encrypted_archive_password_missing_wrong_then_right(run_cli: RunCli, tmp_path: Path,
                                                             encryption: str) -> None:
    _encrypted(tmp_path, "study.zip", {"CT": CT, "MR": MR}, "19800131", encryption)
    medium = tmp_path / "medium"

    code, out, err = run_cli("import", str(medium), "--json")
    report = json_report(out)
    assert code == 3  # nothing importable without the password
    [archive] = report["archives"]
    assert (archive["encrypted"], archive["locked"], archive["code"]) == (2, 2, "password_needed")
    assert {r["path"] for r in report["rejected"]} == {"study.zip!/CT", "study.zip!/MR"}
    assert "--archive-password" in err

    code, out, err = run_cli("import", str(medium), "--json", "--archive-password", "19800113")
    report = json_report(out)
    assert code == 3
    assert report["archives"][0]["code"] == "password_wrong"
    assert "does not open" in err and "Traceback" not in err

    code, out, _err = run_cli("import", str(medium), "--archive-password", "19800131")
    assert code == 0, out
    assert "Images:    2 found, 2 new" in out
    assert "Archive:   study.zip: 2 file(s), 2 image(s) imported, 2 encrypted" in out


def test_a_wrong_password_loses_nothing_and_the_right_one_adds_the_rest(
        service: KioskService, tmp_path: Path) -> None:
    _encrypted(tmp_path, "locked.zip", {"MR": MR, "PLAN": PLAN}, "pw", "AES256")
    medium = tmp_path / "medium"
    (medium / "CT.dcm").write_bytes(CT)
    (medium / "open.zip").write_bytes(_zip({"J2K": J2K}))
    first = service.import_path(medium, archive_password="not it")
    assert first["instances"]["found"] == 2  # the loose file and the open archive
    case_id = first["case_id"]
    locked = next(a for a in first["archives"] if a["path"] == "locked.zip")
    assert locked["locked"] == 2 and locked["code"] == "password_wrong"
    assert any("locked.zip" in w and "does not open" in w for w in first["warnings"])

    again = service.import_path(medium, case_id=case_id, archive_password="pw")
    assert again["instances"] == {"found": 4, "imported": 2, "duplicates": 2, "verified": 4}
    assert _stored(service, case_id) == {_sha(d) for d in (CT, MR, PLAN, J2K)}
    assert all(a["locked"] == 0 for a in again["archives"])


def test_what_a_limit_refuses_is_rejected_with_the_reason_the_rest_imports(
        tmp_path: Path) -> None:
    config = tmp_path / "kiosk.toml"
    config.write_text("[import]\narchive_max_members = 3\narchive_max_ratio = 50\n")
    service = build_service(config, data_dir=tmp_path / "data", env={})
    zeros = bytes(8 << 20)
    medium = tree_of(tmp_path / "stick", {
        "many.zip": _zip({f"f{i}": MR for i in range(4)}),
        "bomb.zip": _zip({"zeros": zeros, "CT": CT}),
        "names.zip": raw_zip([RawMember(b"../../escape.dcm", PLAN), RawMember(b"J2K", J2K),
                              RawMember(b"J2K", J2KI)]),
    })
    report = service.import_path(medium)
    assert _stored(service, report["case_id"]) == {_sha(CT), _sha(J2K)}
    rejected = {r["path"]: r["reason"] for r in report["rejected"]}
    assert "import.archive_max_members" in rejected["many.zip"]
    assert "zip bomb" in rejected["bomb.zip!/zeros"]
    assert "'..'" in rejected["names.zip!/../../escape.dcm"]
    assert "same name" in rejected["names.zip!/J2K"]
    assert not (tmp_path / "escape.dcm").exists()
    codes = {a["path"]: a["code"] for a in report["archives"]}
    assert codes == {"many.zip": "limit", "bomb.zip": None, "names.zip": None}


def test_a_member_that_inflates_past_its_header_is_rejected_and_nothing_of_it_stored(
        service: KioskService, tmp_path: Path) -> None:
    # Looks like DICOM, claims 200 kB, inflates to 64 MiB: copying stops at the claim.
    plain = bytes(128) + b"DICM" + bytes(64 << 20)
    bomb = raw_zip([RawMember(b"IM0001", deflated(plain), method=8, size=200_000,
                              plain=plain)])
    medium = tree_of(tmp_path / "stick", {"film.zip": bomb, "CT.dcm": CT})
    report = service.import_path(medium)
    assert report["instances"]["found"] == 1
    [rejected] = report["rejected"]
    assert rejected["path"] == "film.zip!/IM0001"
    assert "more data than its header says" in rejected["reason"]
    stored = [p for p in service.store.blobs_dir.rglob("*") if p.is_file()]
    assert all(p.stat().st_size < 1 << 20 for p in stored)  # no 64 MiB, nor 200 kB, blob
    assert service.store.leftovers() == []  # staging cleaned


def test_archives_on_an_iso_image_and_its_loop_device_import_with_the_password(
        run_cli: RunCli, tmp_path: Path) -> None:
    need_tools("xorriso")
    _encrypted(tmp_path, "CLOUD.ZIP", {"IMG/CT": CT, "IMG/MR": MR}, "19800131", "ZipCrypto")
    medium = tmp_path / "medium"
    (medium / "OPEN.ZIP").write_bytes(_zip({"PLAN": PLAN}))
    iso = tmp_path / "disc.iso"
    made = subprocess.run(["xorriso", "-as", "mkisofs", "-R", "-V", "HOSPITAL", "-o", str(iso),
                           str(medium)], capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    shutil.rmtree(medium)  # the image is all there is
    code, out, _err = run_cli("import", str(iso), "--archive-password", "19800131", "--json")
    report = json_report(out)
    assert code == 0
    assert report["instances"] == {"found": 3, "imported": 3, "duplicates": 0, "verified": 3}
    assert {a["path"]: a["imported"] for a in report["archives"]} == {"CLOUD.ZIP": 2,
                                                                       "OPEN.ZIP": 1}
    if os.geteuid() != 0:
        pytest.skip("the same disc as a block device needs root (losetup)")
    with Loop(iso, read_only=True) as loop:  # the disc in a drive: /dev/sr0 is read the same way
        code, out, _err = run_cli("import", loop.device, "--archive-password", "19800131",
                                  "--json")
    again = json_report(out)
    assert code == 0
    assert again["instances"]["found"] == again["instances"]["verified"] == 3
    assert {a["path"]: a["imported"] for a in again["archives"]} == {"CLOUD.ZIP": 2,
                                                                      "OPEN.ZIP": 1}


@pytest.mark.parametrize("pull_at_open", [1, 2, 3, 4])  # before, while and after the archive
def test_a_medium_pulled_around_an_archive_never_calls_it_not_dicom(
        service: KioskService, tmp_path: Path, pull_at_open: int) -> None:
    from kiosk.sources.directory import DirectorySource
    from tests.ingest.test_faults import PulledMidImport

    root = tree_of(tmp_path / "stick", {"A.dcm": CT, "B.zip": _zip({"MR": MR}), "C.dcm": PLAN})
    source = PulledMidImport(DirectorySource(root), pull_at_open=pull_at_open,
                             away=tmp_path / "away")
    report = service.import_source(source)
    assert report["complete"] is False and "removed" in report["error"]
    assert "B.zip" not in {i["path"] for i in report["ignored"]}
    for r in report["rejected"]:
        if r["path"] == "B.zip":
            assert "not opened, the import stopped first" in r["reason"]


@pytest.mark.parametrize(("key", "value"), [("archive_max_members", 0),
                                            ("archive_max_bytes", 1000),
                                            ("archive_max_ratio", 5)])
def test_archive_limits_out_of_range_are_refused_by_name(tmp_path: Path, key: str,
                                                         value: int) -> None:
    from kiosk.config import load_config
    from kiosk.errors import ConfigError

    config = tmp_path / "kiosk.toml"
    config.write_text(f"[import]\n{key} = {value}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(config, env={})
    assert f"import.{key}" in caught.value.text
