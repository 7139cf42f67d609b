"""After a purge no byte of the case is left anywhere under the data directory: not in the
store, the database, the office inbox, nor in what a crash left in staging and temp files."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from kiosk.cloud.fake import FakeCloud
from kiosk.errors import UsageError
from kiosk.retention.purge import report_staging_prefix
from kiosk.samples.pdf import minimal_pdf
from kiosk.service import KioskService
from tests.conftest import make_instance
from tests.sync_kit import fake_syncer

NAME = "ZQXUNIQUE^PATIENT"
PASSPORT = "ZQXPASSPORT NAME"
MARKER = "ZQXTRANSLATION MARKER 7741"


def _files_holding(root: Path, pattern: bytes) -> list[str]:
    """Every file under ``root`` whose bytes contain ``pattern``."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and pattern in p.read_bytes())


def _case(service: KioskService, tmp_path: Path, name: str, seed: int) -> tuple[str, dict[
        str, bytes]]:
    """Import one image with unmistakable bytes; return the case and what to search for."""
    ds = make_instance(tmp_path / f"cd-{seed}" / "IM1", patient_name=name, seed=seed,
                       patient_id=f"PID{seed}")
    case = service.import_path(tmp_path / f"cd-{seed}")["case_id"]
    pixels = bytes(ds.PixelData)
    return case, {"sop uid": str(ds.SOPInstanceUID).encode(), "name": name.encode(),
                  "pixels": pixels[100:164]}


def _crash_leftovers(service: KioskService, case: str, instance: bytes, pdf: bytes) -> None:
    """What a power cut in the middle of this case's work leaves behind."""
    loc = service.locations
    [job] = service.catalog.jobs(case_id=case)
    staging = loc.tmp_dir / job["job_id"]  # an import staging folder of a dead process
    staging.mkdir(parents=True, exist_ok=True)
    (staging / "0123abcd.part").write_bytes(instance)
    sha = hashlib.sha256(pdf).hexdigest()  # a write_atomic of the report blob, cut short
    (loc.blobs_dir / sha[:2]).mkdir(exist_ok=True)
    (loc.blobs_dir / sha[:2] / f".{sha}.0a1b2c3d4e5f.tmp").write_bytes(pdf)
    # A database write cut short: an older copy of every record, names included.
    shutil.copy(loc.db_file, loc.data_dir / f".{loc.db_file.name}.0a1b2c3d4e5f.tmp")
    folder = loc.tmp_dir / (report_staging_prefix(case) + "x1y2z3")  # a PDF from a medium
    folder.mkdir()
    (folder / "report.pdf").write_bytes(pdf)


def test_an_uploaded_and_delivered_case_leaves_no_copy_behind(
        service: KioskService, tmp_path: Path) -> None:
    service._syncer = fake_syncer(service, FakeCloud())
    case, patterns = _case(service, tmp_path, NAME, seed=4242)
    other, other_patterns = _case(service, tmp_path, "ZQXOTHER^PERSON", seed=99)
    service.confirm_identity(case, passport_name=PASSPORT, birth_date="1985-03-14")
    pdf = minimal_pdf([MARKER])
    (service.locations.inbox_dir / f"{case}.en.pdf").write_bytes(pdf)  # the office's translation
    service.sync_once()  # the translation merged, everything uploaded
    assert [r["source"] for r in service.reports(case)] == ["inbox"]
    assert service.upload_state(case).uploaded
    stick = tmp_path / "stick"
    stick.mkdir()
    service.export_case(case, stick, encrypt=False)
    instance = (tmp_path / "cd-4242" / "IM1").read_bytes()
    _crash_leftovers(service, case, instance, pdf)
    patterns |= {"passport": PASSPORT.encode(), "translation": MARKER.encode(),
                 "pdf": pdf[40:120]}
    data = service.locations.data_dir
    for what, pattern in patterns.items():
        assert _files_holding(data, pattern), f"the test's {what} pattern finds nothing"

    result = service.purge_case(case)
    assert result.uploaded and result.temps_removed == 4 and result.inbox_removed == 1
    left = {what: _files_holding(data, pattern) for what, pattern in patterns.items()}
    assert left == {what: [] for what in patterns}
    for what, pattern in other_patterns.items():  # the other case is whole
        assert _files_holding(data, pattern), what
    assert service.case_detail(other)["studies"]
    assert _files_holding(stick, MARKER.encode())  # the patient's copy is theirs to keep


def test_a_forced_purge_of_a_case_not_uploaded_leaves_no_copy_either(
        service: KioskService, tmp_path: Path) -> None:
    case, patterns = _case(service, tmp_path, NAME, seed=4242)
    _crash_leftovers(service, case, (tmp_path / "cd-4242" / "IM1").read_bytes(), b"%PDF-")
    with pytest.raises(UsageError, match="not uploaded"):
        service.purge_case(case)
    service.purge_case(case, force=True)
    data = service.locations.data_dir
    for what, pattern in patterns.items():
        assert _files_holding(data, pattern) == [], what


def test_a_case_being_imported_into_is_not_purged(
        service: KioskService, tmp_path: Path) -> None:
    case, _ = _case(service, tmp_path, NAME, seed=7)
    job = service.catalog.start_job("import", case_id=case)  # this very process, alive
    with pytest.raises(UsageError, match="still running"):
        service.purge_case(case, force=True)
    assert service.catalog.case(case) is not None
    service.catalog.finish_job(job, "complete")
    service.purge_case(case, force=True)
    assert service.catalog.case(case) is None


def _two_patient_disc(root: Path) -> None:
    """One hospital disc, a folder per patient; the second patient's folder also holds a
    note, a broken file and a re-issued image (entries the import report names by path)."""
    make_instance(root / "ZQXKEEP_PERSON" / "IM1", patient_name="ZQXKEEP^PERSON",
                  patient_id="PKEEP", seed=1)
    split = root / "ZQXSPLIT_PATIENT"
    sop = "1.2.826.0.1.3680043.8.498.4242"
    make_instance(split / "IM1", patient_name="ZQXSPLIT^PATIENT", patient_id="PSPLIT",
                  seed=2, sop_uid=sop, study_uid="1.2.826.0.1.3680043.8.498.77")
    make_instance(split / "IM2", patient_name="ZQXSPLIT^PATIENT", patient_id="PSPLIT",
                  seed=3, sop_uid=sop, study_uid="1.2.826.0.1.3680043.8.498.77")
    (split / "NOTES.TXT").write_text("not an image")
    (split / "BROKEN").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff")


@pytest.mark.parametrize("purged", ["split-off", "original"])
def test_after_a_split_each_purge_leaves_no_name_of_its_patients_in_the_other_case(
        service: KioskService, tmp_path: Path, purged: str) -> None:
    disc = tmp_path / "cd-two"
    _two_patient_disc(disc)
    report = service.import_path(disc)
    case = report["case_id"]
    assert {p["patient_id"] for p in report["patients"]} == {"PKEEP", "PSPLIT"}
    assert any("ZQXSPLIT_PATIENT" in w for w in report["warnings"])  # the re-issued image
    assert report["ignored"] and report["rejected"]
    new = service.split_patients(case, ["PSPLIT"])
    gone, stays = (b"ZQXSPLIT", b"ZQXKEEP") if purged == "split-off" else (b"ZQXKEEP",
                                                                            b"ZQXSPLIT")
    data = service.locations.data_dir
    assert _files_holding(data, gone) and _files_holding(data, stays)

    service.purge_case(new if purged == "split-off" else case, force=True)
    assert _files_holding(data, gone) == []
    kept_case = case if purged == "split-off" else new
    [job] = service.catalog.jobs(case_id=kept_case)
    kept_report = json.loads(service.store.read_bytes(job["report"]))
    mine = "PKEEP" if purged == "split-off" else "PSPLIT"
    assert [p["patient_id"] for p in kept_report["patients"]] == [mine]
    assert {s["patient_id"] for s in kept_report["studies"]} == {mine}
    assert service.case_detail(kept_case)["patients"][0]["patient_id"] == mine
    assert _files_holding(data, stays)  # the other case's own record is whole
