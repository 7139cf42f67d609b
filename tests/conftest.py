"""Shared fixtures: a fresh kiosk per test, small hand-made DICOM files, the CLI in-process."""

from __future__ import annotations

import io
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np
import pydicom.data
import pytest
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from kiosk.bootstrap import build_service
from kiosk.cli.main import main
from kiosk.service import KioskService
from tests.media_fixtures import udevd  # noqa: F401 - session fixture: real udevd
from tests.orthanc import orthanc  # noqa: F401 - session fixture: a real DICOMweb server
from tests.ui_kit import big_disc, desk, sample_disc  # noqa: F401 - desk UI fixtures

PYDICOM_FILES = Path(pydicom.data.__file__).parent / "test_files"


def is_root() -> bool:
    """Whether the tests run as root (loop devices, udevd)."""
    return os.geteuid() == 0


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """An empty kiosk data directory."""
    return tmp_path / "kiosk-data"


@pytest.fixture
def service(data_dir: Path) -> KioskService:
    """A kiosk with an empty store."""
    return build_service(data_dir=data_dir, env={})


def make_instance(
    path: Path,
    *,
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    patient_id: str = "P001",
    patient_name: bytes | str = "TEST^ONE",
    charset: str | list[str] | None = None,
    rows: int = 16,
    columns: int = 16,
    seed: int = 0,
    preamble: bool = True,
    modality: str = "CT",
) -> FileDataset:
    """Write a small, valid CT instance and return its dataset."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid or generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    if charset is not None:
        ds.SpecificCharacterSet = charset
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.PatientID = patient_id
    ds.PatientName = patient_name if isinstance(patient_name, str) else "X"
    ds.Modality = modality
    ds.StudyDate = "20261127"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    pixels = np.random.default_rng(seed).integers(0, 4096, (rows, columns), dtype=np.uint16)
    ds.PixelData = pixels.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    if isinstance(patient_name, bytes):
        _replace_name_bytes(path, patient_name)
    if not preamble:
        data = path.read_bytes()
        # Drop preamble and file meta: an old "raw" dataset starting at group 0008.
        body_start = data.index(b"\x08\x00", 132 + 12)
        path.write_bytes(data[body_start:])
    return ds


def _replace_name_bytes(path: Path, raw: bytes) -> None:
    """Swap the PatientName value for raw bytes (as a mislabelled Chinese CD would have)."""
    data = path.read_bytes()
    tag = b"\x10\x00\x10\x00PN"
    i = data.index(tag)
    old_len = int.from_bytes(data[i + 6:i + 8], "little")
    value = raw + (b" " if len(raw) % 2 else b"")
    path.write_bytes(data[:i + 6] + len(value).to_bytes(2, "little") + value
                     + data[i + 8 + old_len:])


@pytest.fixture
def run_cli(data_dir: Path) -> Callable[..., tuple[int, str, str]]:
    """Run ``kiosk ARGS`` in-process with the test's data dir; return (code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main(["--data-dir", str(data_dir), *args])
        return code, out.getvalue(), err.getvalue()

    return run


def json_report(stdout: str) -> dict[str, Any]:
    """Parse ``--json`` output, insisting it is exactly one JSON object."""
    obj = json.loads(stdout)
    assert isinstance(obj, dict)
    return obj


@pytest.fixture
def small_stick(tmp_path: Path) -> Iterator[Path]:
    """A real 3 MiB filesystem (tmpfs, needs root) standing in for a nearly full stick."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
