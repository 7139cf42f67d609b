"""One image, several encodings: every one is exported, listed and verifiable.

Hospitals re-export the same image (one SOP Instance UID) uncompressed, RLE, JPEG-LS... and a
disc may hold several of them. The import keeps each (different bytes) with a warning; the
package must carry each under its own File ID, in the DICOMDIR and in MANIFEST.JSON, and the
export must succeed, encrypted or not. Before, the second extra copy got the first one's name:
a traceback from the zip writer, "File exists" on a plain stick.

The encodings are made from pydicom's MR_small.dcm by pydicom itself (uncompressed, its RLE
encoder, its deflate writer), plus pydicom's own JPEG-LS copy of the same image.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pydicom.data
import pytest
from pydicom import dcmread
from pydicom.pixels.encoders import JPEGLSLosslessEncoder
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    JPEGLSLossless,
    RLELossless,
)

from tests.conftest import json_report
from tests.package.test_export import HAVE_7Z, _check_pdi, _extract

SOURCE = "MR_small.dcm"
UID = "1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5457"


@pytest.fixture
def disc(tmp_path: Path) -> dict[str, Path]:
    """A disc with MR_small.dcm in four encodings: name -> file."""
    source = Path(str(pydicom.data.get_testdata_file(SOURCE)))
    root = tmp_path / "disc"
    root.mkdir()
    files = {}
    ds = dcmread(source)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(root / "UNCOMP", enforce_file_format=True)
    files["UNCOMP"] = root / "UNCOMP"
    ds = dcmread(source)
    ds.compress(RLELossless, generate_instance_uid=False)  # pydicom's own RLE encoder
    ds.save_as(root / "RLE", enforce_file_format=True)
    files["RLE"] = root / "RLE"
    ds = dcmread(source)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian  # pydicom deflates on write
    ds.save_as(root / "DEFLATED", enforce_file_format=True)
    files["DEFLATED"] = root / "DEFLATED"
    if JPEGLSLosslessEncoder.is_available:  # pyjpegls installed: pydicom encodes JPEG-LS too
        ds = dcmread(source)
        ds.compress(JPEGLSLossless, generate_instance_uid=False)
        ds.save_as(root / "JPEGLS", enforce_file_format=True)
    else:  # pydicom ships the same image in JPEG-LS (made by another encoder)
        shutil.copy(str(pydicom.data.get_testdata_file("MR_small_jpeg_ls_lossless.dcm")),
                    root / "JPEGLS")
    files["JPEGLS"] = root / "JPEGLS"
    return files


def _syntax(path: Path) -> str:
    return str(dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)


def test_the_disc_holds_one_uid_in_four_encodings(disc: dict[str, Path]) -> None:
    uids = {dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in disc.values()}
    assert uids == {UID}
    assert len({_syntax(p) for p in disc.values()}) == 4
    assert len({p.read_bytes() for p in disc.values()}) == 4


def _check_package(root: Path, disc: dict[str, Path]) -> None:
    manifest = json.loads((root / "MANIFEST.JSON").read_text("utf-8"))
    _check_pdi(root, manifest)  # hashes, names, dciodvfy DICOMDIR, dcmftest
    images = [e for e in manifest["files"] if e["kind"] == "dicom"]
    assert {e["sop_instance_uid"] for e in images} == {UID}
    # Each encoding under its own File ID, with its own hash: the source file's.
    by_source = {e["source_path"]: e for e in images}
    assert set(by_source) == set(disc)
    for name, path in disc.items():
        entry = by_source[name]
        assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert (root / entry["path"]).read_bytes() == path.read_bytes()
        assert entry["transfer_syntax"] == _syntax(path)
        others = sorted(e["path"] for e in images if e is not entry)
        assert entry["same_sop_instance_uid"] == others
    assert len({e["path"] for e in images}) == 4
    # The DICOMDIR lists four IMAGE records, one per file, each with that file's syntax.
    records = [r for r in dcmread(root / "DICOMDIR").DirectoryRecordSequence
               if r.DirectoryRecordType == "IMAGE"]
    file_ids = ["/".join(r.ReferencedFileID) for r in records]
    assert sorted(file_ids) == sorted(e["path"] for e in images)
    for record in records:
        entry = next(e for e in images if e["path"] == "/".join(record.ReferencedFileID))
        assert record.ReferencedSOPInstanceUIDInFile == UID
        assert record.ReferencedTransferSyntaxUIDInFile == entry["transfer_syntax"]


def _import(run_cli, disc: dict[str, Path]) -> str:
    code, out, _err = run_cli("import", str(next(iter(disc.values())).parent), "--json")
    report = json_report(out)
    assert code == 0, report
    assert report["instances"]["imported"] == report["instances"]["verified"] == 4
    assert sum("same SOP Instance UID" in w for w in report["warnings"]) == 3
    return str(report["case_id"])


def test_a_plain_export_carries_every_encoding_under_its_own_file_id(
        run_cli, disc: dict[str, Path], tmp_path: Path) -> None:
    case = _import(run_cli, disc)
    stick = tmp_path / "stick"
    stick.mkdir()
    code, out, err = run_cli("export", case, "--to", str(stick), "--json", "--no-encryption")
    assert code == 0, err
    report = json_report(out)
    assert report["verified"] is True and report["encrypted"] is False
    _check_package(Path(report["folder"]), disc)


@pytest.mark.skipif(not HAVE_7Z, reason="7z (p7zip-full) is not installed")
def test_an_encrypted_export_carries_every_encoding_and_opens_with_7z(
        run_cli, disc: dict[str, Path], tmp_path: Path) -> None:
    case = _import(run_cli, disc)
    stick = tmp_path / "stick"
    stick.mkdir()
    code, out, err = run_cli("export", case, "--to", str(stick), "--json")
    assert code == 0, err
    report = json_report(out)
    assert report["verified"] is True and report["encrypted"] is True
    opened = tmp_path / "opened"
    assert _extract(Path(report["folder"]), report["passphrase"], opened).returncode == 0
    _check_package(opened, disc)
