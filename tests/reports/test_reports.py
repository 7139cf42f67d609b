"""Reports merged into a case: as a PDF and as a new Encapsulated PDF instance in the study."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest

from kiosk.cloud.fake import FakeCloud
from kiosk.cloud.translations import CaseScope, DicomWebSource, InboxSource, TranslationSource
from kiosk.dicom.encapsulated import build_report_instance, extract_pdf, read_markers
from kiosk.errors import UsageError
from kiosk.samples.pdf import minimal_pdf
from kiosk.samples.sample_disc import build_sample_disc
from kiosk.service import KioskService
from tests.sync_kit import fake_syncer, import_study

CONTRACT_KEYS = {"report_id", "case_id", "study_uid", "language", "role", "pdf_sha256",
                 "dicom_sha256", "sop_instance_uid", "series_uid", "source", "received",
                 "certified", "translator", "title", "pdf_name"}
ENGLISH = minimal_pdf(["Radiology report - certified English translation",
                       "Findings: right upper lobe nodule, 2.5 cm."])


def dciodvfy_errors(data: bytes, tmp_path: Path) -> list[str]:
    """``Error`` lines dciodvfy prints for ``data`` (skips the test without dicom3tools)."""
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (dicom3tools) is not installed")
    path = tmp_path / "check.dcm"
    path.write_bytes(data)
    out = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]


def test_an_inbox_translation_is_merged_as_pdf_and_new_dicom_instance(
        service: KioskService, tmp_path: Path) -> None:
    disc = build_sample_disc(tmp_path / "disc", ct_slices=3, size=16)
    case_id = service.import_path(disc.root)["case_id"]
    (service.locations.inbox_dir / f"{case_id}.en.pdf").write_bytes(ENGLISH)
    old = time.time() - 60
    os.utime(service.locations.inbox_dir / f"{case_id}.en.pdf", (old, old))
    report = service.sync_once()
    [merged] = report.merged
    assert set(merged) >= CONTRACT_KEYS
    assert (merged["language"], merged["role"], merged["certified"], merged["source"]) == (
        "en", "translation", True, "inbox")
    assert service.store.read_bytes(merged["pdf_sha256"]) == ENGLISH
    # The CT study is the most recent of the sample disc's two studies.
    assert merged["study_uid"] == disc.study_uids[0]
    assert merged["pdf_name"].endswith(".pdf") and merged["pdf_name"].isascii()

    data = service.store.read_bytes(merged["dicom_sha256"])
    ds, pdf = extract_pdf(data)
    assert pdf == ENGLISH
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.104.1"
    assert ds.SOPInstanceUID == merged["sop_instance_uid"]
    assert ds.StudyInstanceUID == disc.study_uids[0]
    study = service.catalog.studies(case_id)[0]
    assert ds.SeriesInstanceUID not in {s["series_uid"] for s in study["series"]}
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    # The GB18030 original name, re-encoded as UTF-8.
    assert (ds.PatientName.alphabetic, ds.PatientName.ideographic) == ("Li^Hua", "李^华")
    assert ds.PatientID == disc.patient_id
    markers = read_markers(ds)
    assert (markers.language, markers.role, markers.certified) == ("en", "translation", True)
    assert "inbox" in ds.ContributingEquipmentSequence[0].ContributionDescription
    assert dciodvfy_errors(data, tmp_path) == []

    assert service.sync_once().merged == []  # the same file is merged once
    assert len(service.reports(case_id)) == 1
    # The imported originals are untouched: same manifest, same blobs.
    assert service.catalog.studies(case_id)[0]["manifest"] == study["manifest"]


def test_the_coordinator_attaches_the_chinese_original(service: KioskService,
                                                       tmp_path: Path) -> None:
    case_id, study_uid, _ = import_study(service, tmp_path, instances=2)
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(minimal_pdf(["原始报告"]))
    report = service.attach_report(case_id, pdf, "zh", "original")
    assert (report["source"], report["role"], report["certified"]) == (
        "coordinator", "original", False)
    assert report["study_uid"] == study_uid
    assert service.attach_report(case_id, pdf, "zh", "original")["report_id"] == \
        report["report_id"]
    with pytest.raises(UsageError, match="not a PDF"):
        (tmp_path / "x.pdf").write_bytes(b"hello")
        service.attach_report(case_id, tmp_path / "x.pdf", "en", "translation")
    with pytest.raises(UsageError, match="no case"):
        service.attach_report("C-NOPE", pdf, "zh", "original")
    with pytest.raises(UsageError, match="language"):
        service.attach_report(case_id, pdf, "fr", "translation")


def test_inbox_files_still_arriving_or_broken_or_misnamed_are_not_merged(
        service: KioskService, tmp_path: Path) -> None:
    case_id, _study, _ = import_study(service, tmp_path, instances=1)
    syncer = fake_syncer(service, None)
    syncer.inbox.settle_seconds = 30.0
    inbox = service.locations.inbox_dir
    (inbox / f"{case_id}.en.pdf").write_bytes(ENGLISH)  # just written: may still be copying
    (inbox / f"{case_id}.zh.pdf").write_bytes(ENGLISH[:200])  # truncated copy
    (inbox / "C19990101-XXXX.en.pdf").write_bytes(ENGLISH)  # no such case here
    old = time.time() - 60
    os.utime(inbox / f"{case_id}.zh.pdf", (old, old))
    report = syncer.run_once()
    assert report.merged == []
    assert any("incomplete PDF" in reason for reason in report.skipped.values())
    assert report.status.unmatched_inbox == ("C19990101-XXXX.en.pdf",)
    os.utime(inbox / f"{case_id}.en.pdf", (old, old))
    assert [r["language"] for r in syncer.run_once().merged] == ["en"]


def _office_translation(service: KioskService, case_id: str, *, marked: bool = True) -> bytes:
    """An Encapsulated PDF the office made in the case's study (not by the kiosk)."""
    study = service.catalog.studies(case_id)[0]
    row = service.catalog.manifest(study)[0]
    header = pydicom.dcmread(io.BytesIO(service.store.read_bytes(row.sha256)),
                             stop_before_pixels=True)
    inst = build_report_instance(header, patient_name="TEST^BENCH", pdf=ENGLISH,
                                 title="Certified translation", language="en",
                                 role="translation", certified=True, translator="A. Translator",
                                 series_number=1, provenance="office", station="office-pc")
    if marked:
        return inst.data
    ds = pydicom.dcmread(io.BytesIO(inst.data))
    del ds.DocumentClassCodeSequence
    out = io.BytesIO()
    ds.save_as(out)
    return out.getvalue()


@pytest.fixture(params=["inbox", "dicomweb"])
def source_rig(request: pytest.FixtureRequest, service: KioskService, tmp_path: Path
               ) -> tuple[TranslationSource, Callable[[str], None], FakeCloud]:
    """A translation source and a way to place a certified English translation in it."""
    cloud = FakeCloud()
    if request.param == "inbox":
        def place(case_id: str) -> None:
            path = service.locations.inbox_dir / f"{case_id}.en.pdf"
            path.write_bytes(ENGLISH)
        return InboxSource(service.locations.inbox_dir, settle_seconds=0.0), place, cloud

    def place_remote(case_id: str) -> None:
        cloud.put(_office_translation(service, case_id))
    return DicomWebSource(cloud), place_remote, cloud


def test_each_source_offers_a_placed_translation_once(
        service: KioskService, tmp_path: Path,
        source_rig: tuple[TranslationSource, Callable[[str], None], FakeCloud]) -> None:
    source, place, _cloud = source_rig
    case_id, study_uid, sops = import_study(service, tmp_path, instances=2)
    scope = CaseScope(case_id, (study_uid,), set(sops).__contains__, time.time())
    assert source.poll([scope], set()).offers == []
    place(case_id)
    [offer] = source.poll([scope], set()).offers
    assert (offer.case_id, offer.language, offer.role, offer.certified, offer.pdf) == (
        case_id, "en", "translation", True, ENGLISH)
    assert offer.source == source.name
    assert source.poll([scope], {offer.origin}).offers == []


def test_a_remote_pdf_without_the_markers_is_skipped_and_not_fetched_again(
        service: KioskService, tmp_path: Path) -> None:
    cloud = FakeCloud()
    syncer = fake_syncer(service, cloud)
    case_id, _study, _ = import_study(service, tmp_path, instances=1)
    cloud.put(_office_translation(service, case_id, marked=False))
    report = syncer.run_once()
    assert report.merged == [] and any("Document Class" in r for r in report.skipped.values())
    before = cloud.requests
    syncer.run_once()
    # ping + one QIDO; the skipped instance's header is not fetched again.
    assert cloud.requests - before == 2


def test_a_remote_translation_is_merged_and_our_own_reports_are_not_pulled_back(
        service: KioskService, tmp_path: Path) -> None:
    cloud = FakeCloud()
    syncer = fake_syncer(service, cloud)
    case_id, _study, sops = import_study(service, tmp_path, instances=2)
    pdf = tmp_path / "zh.pdf"
    pdf.write_bytes(minimal_pdf(["original"]))
    original = service.attach_report(case_id, pdf, "zh", "original")
    syncer.run_once()  # uploads images and our Chinese original instance
    assert original["sop_instance_uid"] in cloud.sop_uids()
    cloud.put(_office_translation(service, case_id))
    [merged] = syncer.run_once().merged
    assert (merged["source"], merged["translator"], merged["upload"]) == (
        "dicomweb", "A. Translator", False)
    assert merged["sop_instance_uid"] not in cloud.sop_uids()  # the office already has it
    assert [r["role"] for r in service.reports(case_id)] == ["original", "translation"]
    assert syncer.run_once().merged == []
    assert set(sops) <= cloud.sop_uids()
