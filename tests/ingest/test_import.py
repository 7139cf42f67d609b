"""Import stories: what a coordinator sees when a hospital disc goes in."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pycdlib
import pytest
from pydicom import dcmread

from kiosk.cli.main import import_exit_code
from kiosk.service import KioskService
from tests.conftest import PYDICOM_FILES, make_instance

DICOMDIR_SET = PYDICOM_FILES / "dicomdirtests"


def _copy_set(dest: Path, lowercase: bool = False) -> Path:
    """Copy pydicom's real DICOMDIR file-set (only the DICOMDIR and what it references)."""
    dest.mkdir(parents=True)
    shutil.copy(DICOMDIR_SET / "DICOMDIR", dest / ("dicomdir" if lowercase else "DICOMDIR"))
    for sub in ("77654033", "98892001", "98892003"):
        shutil.copytree(DICOMDIR_SET / sub, dest / sub)
    if lowercase:  # what a disc mounted without Rock Ridge looks like
        for path in sorted(dest.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            path.rename(path.with_name(path.name.lower()))
    return dest


def test_a_real_dicomdir_set_imports_every_instance_and_reconciles(
        service: KioskService, tmp_path: Path) -> None:
    medium = _copy_set(tmp_path / "cd")
    report = service.import_path(medium)
    files = [p for p in medium.rglob("*") if p.is_file() and p.name != "DICOMDIR"]
    assert report["instances"]["found"] == len(files) == 31
    assert report["instances"]["verified"] == 31
    assert report["dicomdir"] | {"problems": []} == {
        "present": True, "readable": True, "records": 31, "missing": [], "unlisted": [],
        "problems": []}
    assert report["complete"] and import_exit_code(report) == 0
    assert {p["patient_id"] for p in report["patients"]} == {"77654033", "98890234"}
    # Every stored blob is bit-exact with the file on the medium.
    for study in service.catalog.studies(report["case_id"]):
        for row in service.catalog.manifest(study):
            original = (medium / row.source_path).read_bytes()
            assert service.store.read_bytes(row.sha256) == original
            assert hashlib.sha256(original).hexdigest() == row.sha256


def test_a_disc_mounted_without_rock_ridge_still_matches_its_uppercase_dicomdir(
        service: KioskService, tmp_path: Path) -> None:
    medium = _copy_set(tmp_path / "cd", lowercase=True)
    report = service.import_path(medium)
    assert report["dicomdir"]["present"] and report["dicomdir"]["records"] == 31
    assert report["dicomdir"]["missing"] == [] and report["dicomdir"]["unlisted"] == []
    assert report["instances"]["verified"] == 31


def test_dicomdir_records_missing_from_the_disc_and_unlisted_files_are_reported(
        service: KioskService, tmp_path: Path) -> None:
    medium = _copy_set(tmp_path / "cd")
    (medium / "98892001" / "CT2N" / "6293").unlink()
    make_instance(medium / "EXTRA" / "IM0001")
    report = service.import_path(medium)
    assert report["dicomdir"]["missing"] == ["98892001/CT2N/6293"]
    assert report["dicomdir"]["unlisted"] == ["EXTRA/IM0001"]
    assert report["instances"]["found"] == 31  # 30 listed + 1 unlisted
    assert any("not in its DICOMDIR" in w for w in report["warnings"])
    assert any("not on the medium" in w for w in report["warnings"])


def test_dicomdir_paths_leaving_the_medium_are_refused_and_reported(
        service: KioskService, tmp_path: Path) -> None:
    medium = _copy_set(tmp_path / "cd")
    secret = tmp_path / "SECRET"
    make_instance(secret, patient_id="NOT_ON_THE_DISC")
    ds = dcmread(medium / "DICOMDIR")
    images = [r for r in ds.DirectoryRecordSequence if "ReferencedFileID" in r]
    images[0].ReferencedFileID = ["..", "SECRET"]
    images[1].ReferencedFileID = "/etc/passwd"
    images[2].ReferencedFileID = ["C:", "WINDOWS"]
    ds.save_as(medium / "DICOMDIR")
    report = service.import_path(medium)
    problems = report["dicomdir"]["problems"]
    assert len([p for p in problems if "outside the medium" in p]) == 3
    assert "NOT_ON_THE_DISC" not in {p["patient_id"] for p in report["patients"]}
    assert report["dicomdir"]["records"] == 28
    # The three files whose records were refused are still found by the full walk.
    assert report["instances"]["found"] == 31
    assert len(report["dicomdir"]["unlisted"]) == 3


@pytest.mark.parametrize("content,expect", [
    (None, "absent"),
    (b"", "is empty"),
    (b"\0" * 128 + b"DICM" + b"\xff" * 300, "damaged"),
    (b"this is not a dicomdir at all", "damaged"),
], ids=["absent", "empty", "garbage-after-DICM", "text"])
def test_absent_empty_or_broken_dicomdir_falls_back_to_the_full_walk(
        service: KioskService, tmp_path: Path, content: bytes | None, expect: str) -> None:
    medium = _copy_set(tmp_path / "cd")
    if content is None:
        (medium / "DICOMDIR").unlink()
    else:
        (medium / "DICOMDIR").write_bytes(content)
    report = service.import_path(medium)
    assert report["instances"]["found"] == 31 and report["instances"]["verified"] == 31
    if content is None:
        assert report["dicomdir"]["present"] is False
    else:
        assert report["dicomdir"]["readable"] is False
        assert any(expect in p for p in report["dicomdir"]["problems"])
        assert report["dicomdir"]["unlisted"] == []  # no claims from a DICOMDIR we cannot read
    assert import_exit_code(report) == 0


def test_files_are_recognised_by_content_never_by_extension(
        service: KioskService, tmp_path: Path) -> None:
    medium = tmp_path / "stick"
    make_instance(medium / "holiday.jpg")  # DICOM despite its name
    make_instance(medium / "RAW" / "NOPREAMBLE", preamble=False)  # old raw dataset
    (medium / "fake.dcm").write_text("not an image, whatever the extension says")
    (medium / "VIEWER").mkdir()
    (medium / "VIEWER" / "VIEWER.EXE").write_bytes(b"MZ" + b"\0" * 200)
    (medium / "AUTORUN.INF").write_text("[autorun]\nopen=VIEWER\\VIEWER.EXE\n")
    (medium / "empty").write_bytes(b"")
    report = service.import_path(medium)
    stored = {r.source_path for s in service.catalog.studies(report["case_id"])
              for r in service.catalog.manifest(s)}
    assert stored == {"holiday.jpg", "RAW/NOPREAMBLE"}
    ignored = {i["path"]: i["reason"] for i in report["ignored"]}
    assert set(ignored) == {"fake.dcm", "VIEWER/VIEWER.EXE", "AUTORUN.INF", "empty"}
    assert ignored["empty"] == "empty file"
    assert report["rejected"] == []


def _truncated_header(path: Path) -> None:
    make_instance(path)
    path.write_bytes(path.read_bytes()[:300])


def _garbage_after_dicm(path: Path) -> None:
    path.write_bytes(b"\0" * 128 + b"DICM" + bytes(range(256)) * 8)


def _huge_length(path: Path) -> None:
    # A valid meta group then an element claiming 4 GB: pydicom would try to read past EOF.
    make_instance(path)
    data = bytearray(path.read_bytes())
    i = data.index(b"\x08\x00\x16\x00UI")  # SOP Class UID, explicit VR
    data[i + 4:i + 8] = b"UT\0\0"
    data[i + 8:i + 12] = b"\xf0\xff\xff\xff"
    path.write_bytes(bytes(data[:i + 40]))


def _no_uids(path: Path) -> None:
    ds = make_instance(path)
    del ds.SOPInstanceUID, ds.StudyInstanceUID
    ds.file_meta.MediaStorageSOPInstanceUID = ""
    ds.save_as(path)


@pytest.mark.parametrize("damage,reason", [
    (_truncated_header, "truncated"),
    (_garbage_after_dicm, "header"),
    (_huge_length, ""),
    (_no_uids, "no SOP Instance UID"),
])
def test_truncated_and_garbage_dicom_is_rejected_with_a_reason_and_the_rest_imports(
        service: KioskService, tmp_path: Path, damage, reason: str) -> None:
    medium = tmp_path / "cd"
    make_instance(medium / "GOOD1")
    make_instance(medium / "GOOD2")
    damage(medium / "BAD")
    report = service.import_path(medium)
    assert report["instances"]["found"] == 2 and report["instances"]["verified"] == 2
    assert [r["path"] for r in report["rejected"]] == ["BAD"]
    assert reason in report["rejected"][0]["reason"]
    # Nothing half-staged from the bad file is left behind.
    assert service.store.leftovers() == []


def test_a_truncated_image_is_stored_bit_exact_but_flagged_and_not_passed_as_clean(
        service: KioskService, tmp_path: Path) -> None:
    medium = tmp_path / "cd"
    make_instance(medium / "GOOD")
    make_instance(medium / "CUT", rows=64, columns=64)
    (medium / "CUT").write_bytes((medium / "CUT").read_bytes()[:-1000])
    report = service.import_path(medium)
    assert report["instances"]["found"] == 2
    assert report["instances"]["verified"] == 1
    [problem] = report["verification"]["problems"]
    assert problem["path"] == "CUT" and "truncated pixel data" in problem["problem"]
    assert import_exit_code(report) == 4
    case = service.catalog.case(report["case_id"])
    assert case is not None and case["status"] == "incomplete"


def test_an_image_whose_pixel_data_is_too_short_for_its_dimensions_is_flagged(
        service: KioskService, tmp_path: Path) -> None:
    medium = tmp_path / "cd"
    ds = make_instance(medium / "SHORT", rows=32, columns=32)
    ds.Rows = 40  # header now promises more pixels than the element holds
    ds.save_as(medium / "SHORT")
    report = service.import_path(medium)
    [problem] = report["verification"]["problems"]
    assert "Rows × Columns" in problem["problem"]
    assert import_exit_code(report) == 4


def test_encapsulated_pixel_data_with_a_cut_fragment_is_flagged(
        service: KioskService, tmp_path: Path) -> None:
    medium = tmp_path / "cd"
    medium.mkdir()
    whole = (PYDICOM_FILES / "JPEG2000.dcm").read_bytes()
    (medium / "J2K_OK").write_bytes(whole)
    (medium / "J2K_CUT").write_bytes(whole[:-150])
    report = service.import_path(medium)
    problems = {p["path"]: p["problem"] for p in report["verification"]["problems"]}
    assert set(problems) == {"J2K_CUT"}
    assert "truncated encapsulated" in problems["J2K_CUT"]


def test_a_second_disc_of_the_same_study_merges_and_counts_duplicates(
        service: KioskService, tmp_path: Path) -> None:
    study = "1.2.826.0.1.3680043.8.498.1"
    disc1, disc2 = tmp_path / "disc1", tmp_path / "disc2"
    shared = make_instance(disc1 / "A", study_uid=study, seed=1)
    make_instance(disc1 / "B", study_uid=study, seed=2)
    disc2.mkdir()
    shutil.copy(disc1 / "A", disc2 / "A")
    make_instance(disc2 / "C", study_uid=study, seed=3)
    first = service.import_path(disc1)
    second = service.import_path(disc2, case_id=first["case_id"])
    assert second["instances"] == {"found": 2, "imported": 1, "duplicates": 1, "verified": 2}
    [doc] = service.catalog.studies(first["case_id"])
    assert doc["instances"] == 3
    uids = [r.sop_instance_uid for r in service.catalog.manifest(doc)]
    assert sorted(uids) == sorted(set(uids)) and shared.SOPInstanceUID in uids


def test_same_uid_with_different_bytes_keeps_both_and_warns(
        service: KioskService, tmp_path: Path) -> None:
    medium = tmp_path / "cd"
    make_instance(medium / "V1", sop_uid="1.2.3.4.5", study_uid="1.2.3.9", seed=1)
    make_instance(medium / "V2", sop_uid="1.2.3.4.5", study_uid="1.2.3.9", seed=2)
    report = service.import_path(medium)
    assert report["instances"]["imported"] == 2 and report["instances"]["duplicates"] == 0
    assert any("same SOP Instance UID" in w for w in report["warnings"])


def test_a_file_larger_than_the_in_memory_head_is_parsed_from_the_staged_copy(
        service: KioskService, tmp_path: Path) -> None:
    medium = tmp_path / "cd"
    make_instance(medium / "BIG", rows=1600, columns=1600)  # ~5 MB, above HEAD_BYTES
    report = service.import_path(medium)
    assert report["instances"]["verified"] == 1 and report["verification"]["problems"] == []
    assert report["bytes"] > 4 * 1024 * 1024


def test_nothing_importable_reports_every_file_and_exits_3(
        service: KioskService, tmp_path: Path) -> None:
    medium = tmp_path / "stick"
    medium.mkdir()
    (medium / "notes.txt").write_text("hello")
    report = service.import_path(medium)
    assert report["case_id"] is None and report["instances"]["found"] == 0
    assert report["ignored"] == [{"path": "notes.txt",
                                  "reason": "not DICOM (no DICM marker or DICOM header)"}]
    assert import_exit_code(report) == 3
    assert service.catalog.cases() == []


def test_gbk_bytes_labelled_latin1_are_shown_as_chinese_with_a_warning(
        service: KioskService, tmp_path: Path) -> None:
    medium = tmp_path / "cd"
    make_instance(medium / "IM1", patient_name="WANG^XiaoDong=王^小东=".encode("gbk"),
                  charset="ISO_IR 100")
    report = service.import_path(medium)
    [patient] = report["patients"]
    assert "王小东" in patient["name_display"] and "WANG" in patient["name_display"]
    assert any("GB" in w for w in report["warnings"])
    # The original bytes are untouched in the store.
    [doc] = service.catalog.studies(report["case_id"])
    [row] = service.catalog.manifest(doc)
    assert service.store.read_bytes(row.sha256) == (medium / "IM1").read_bytes()


def test_real_gb18030_file_from_pydicom_shows_both_name_forms(
        service: KioskService, tmp_path: Path) -> None:
    medium = tmp_path / "cd"
    medium.mkdir()
    shutil.copy(Path(PYDICOM_FILES).parent / "charset_files" / "chrX2.dcm", medium / "IM1")
    report = service.import_path(medium)
    [patient] = report["patients"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in patient["name_display"])
    assert report["warnings"] == []


def _iso_of(tree: Path, iso: Path) -> None:
    image = pycdlib.PyCdlib()
    image.new(interchange_level=3, rock_ridge="1.09", vol_ident="HOSPITAL_CD")
    for path in sorted(tree.rglob("*")):
        rel = path.relative_to(tree).as_posix()
        iso_path = "/" + "/".join(p.upper()[:8] for p in rel.split("/"))
        if path.is_dir():
            image.add_directory(iso_path, rr_name=path.name)
        else:
            image.add_file(str(path), iso_path + ";1", rr_name=path.name)
    image.write(str(iso))
    image.close()


def test_an_iso_image_imports_exactly_like_the_same_tree_as_a_directory(
        service: KioskService, tmp_path: Path) -> None:
    medium = _copy_set(tmp_path / "cd")
    iso = tmp_path / "disc.iso"
    _iso_of(medium, iso)
    from_iso = service.import_path(iso)
    from_dir = service.import_path(medium, case_id=from_iso["case_id"])
    assert from_iso["label"] == "HOSPITAL_CD"
    assert from_iso["instances"]["verified"] == from_dir["instances"]["found"] == 31
    assert from_dir["instances"]["duplicates"] == 31  # same bytes, nothing stored twice
    assert from_iso["dicomdir"]["missing"] == [] and from_iso["dicomdir"]["unlisted"] == []


def test_two_names_that_are_neither_utf8_nor_gbk_are_reported_apart(
        service: KioskService, tmp_path: Path) -> None:
    # Found by tests/test_fuzz.py: both showed as "�", one report line for two files.
    medium = tmp_path / "odd-names"
    medium.mkdir()
    for raw in (b"\x80", b"\x81", b"\xd6\xd0.txt"):  # the last one is GBK for 中
        with open(os.path.join(os.fsencode(medium), raw), "wb") as fh:
            fh.write(b"not an image")
    report = service.import_path(medium)
    assert sorted(i["path"] for i in report["ignored"]) == ["\\x80", "\\x81", "中.txt"]
    json.dumps(report, ensure_ascii=False).encode("utf-8")  # what --json prints
