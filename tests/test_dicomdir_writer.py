"""Our one-pass DICOMDIR: the same records and File IDs pydicom's FileSet writes, loadable."""

from __future__ import annotations

import shutil
from pathlib import Path

from pydicom import dcmread
from pydicom.fileset import FileSet

from kiosk.dicomdir_writer import layout, write_dicomdir
from kiosk.sample_disc import build_sample_disc
from tests.conftest import PYDICOM_FILES, make_instance

KEYS = ("DirectoryRecordType", "PatientID", "StudyInstanceUID", "SeriesInstanceUID",
        "ReferencedFileID", "ReferencedSOPInstanceUIDInFile", "InstanceNumber", "Modality")


def _dicom_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != "DICOMDIR"
                  and p.read_bytes()[128:132] == b"DICM")


def _headers(paths: list[Path]) -> list:
    return [dcmread(p, stop_before_pixels=True) for p in paths]


def _records(dicomdir: Path) -> list[tuple]:
    ds = dcmread(dicomdir)
    return [tuple(str(r.get(k, "")) for k in KEYS) for r in ds.DirectoryRecordSequence]


def test_records_and_file_ids_match_pydicom_filesets(tmp_path: Path) -> None:
    disc = build_sample_disc(tmp_path / "disc", ct_slices=5, size=32)
    make_instance(tmp_path / "x" / "OTHER", patient_id="P2")  # a second patient
    paths = [*_dicom_files(disc.root), tmp_path / "x" / "OTHER"]
    ours = tmp_path / "ours"
    ours.mkdir()
    headers = _headers(paths)
    ids, tree = layout(headers)  # fills missing Type 1 record values in these header copies
    (ours / "DICOMDIR").write_bytes(write_dicomdir(tree))

    fs = FileSet()
    for ds in headers:
        fs.add(ds)
    fs.write(tmp_path / "theirs")
    assert _records(ours / "DICOMDIR") == _records(tmp_path / "theirs" / "DICOMDIR")
    expected = {i.SOPInstanceUID: Path(i.path).relative_to(tmp_path / "theirs").as_posix()
                for i in fs}
    assert dict(zip([d.SOPInstanceUID for d in headers], ids, strict=True)) == expected


def test_pydicom_loads_our_dicomdir_following_every_offset(tmp_path: Path) -> None:
    src = PYDICOM_FILES / "dicomdirtests"
    paths = [p for p in _dicom_files(src) if p.parent != src]
    headers = _headers(paths)
    ids, tree = layout(headers)
    root = tmp_path / "set"
    for path, file_id in zip(paths, ids, strict=True):
        (root / file_id).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, root / file_id)
    (root / "DICOMDIR").write_bytes(write_dicomdir(tree))
    fs = FileSet()
    fs.load(root / "DICOMDIR", raise_orphans=True)  # offsets wrong -> orphans -> raises
    assert sorted(i.SOPInstanceUID for i in fs) == sorted(h.SOPInstanceUID for h in headers)
    assert {Path(i.path).relative_to(root).as_posix() for i in fs} == set(ids)
    assert len({h.PatientID for h in headers}) == len(fs.find_values("PatientID"))


def test_an_empty_package_gives_an_empty_but_valid_dicomdir() -> None:
    _ids, tree = layout([])
    ds = dcmread(__import__("io").BytesIO(write_dicomdir(tree)))
    assert list(ds.DirectoryRecordSequence) == []
    assert ds.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity == 0
