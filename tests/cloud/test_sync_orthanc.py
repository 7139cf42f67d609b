"""Sync stories against a real Orthanc (DICOMweb): upload, pull, and the faults of real life.

Each test uses its own studies (distinct UIDs), so they share one Orthanc for the session.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydicom
import pytest

from kiosk.bootstrap import build_service
from kiosk.cloud.outbox import DONE, FAILED, IN_FLIGHT, PENDING, RETRY
from kiosk.cloud.uploader import SyncProgress
from kiosk.dicom.encapsulated import (
    ENCAPSULATED_PDF,
    build_report_instance,
    extract_pdf,
    read_markers,
)
from kiosk.samples.pdf import minimal_pdf
from kiosk.samples.sample_disc import build_sample_disc
from kiosk.service import KioskService
from kiosk.store.database import Database
from tests.orthanc import PASSWORD, USER, OrthancServer, StallingProxy, free_port, wait_for
from tests.sync_kit import import_study, write_config

ENGLISH = minimal_pdf(["Certified English translation of the radiology report",
                       "Impression: right upper lobe nodule; follow-up CT advised."])


def _env(url: str, password: str = PASSWORD) -> dict[str, str]:
    return {"KIOSK_CLOUD_URL": url, "KIOSK_CLOUD_USER": USER, "KIOSK_CLOUD_PASSWORD": password}


@pytest.fixture
def kiosk(tmp_path: Path, orthanc: OrthancServer) -> Callable[..., KioskService]:
    """Build a kiosk on ``tmp_path`` talking to ``url`` (Orthanc by default)."""
    config = write_config(tmp_path / "kiosk.toml")

    def build(url: str | None = None, password: str = PASSWORD) -> KioskService:
        service = build_service(config, tmp_path / "data", env=_env(url or orthanc.dicomweb,
                                                                      password))
        service.syncer.rng.seed(3)
        service.syncer.inbox.settle_seconds = 0.0
        return service

    return build


def test_after_import_and_sync_every_instance_is_in_orthanc_once_even_run_twice(
        tmp_path: Path, orthanc: OrthancServer, monkeypatch: pytest.MonkeyPatch,
        run_cli: Callable[..., tuple[int, str, str]]) -> None:
    disc = build_sample_disc(tmp_path / "disc", ct_slices=6, size=16, seed=61)
    for name, value in _env(orthanc.dicomweb).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KIOSK_CONFIG", str(write_config(tmp_path / "kiosk.toml")))
    code, out, _err = run_cli("import", str(disc.root), "--json")
    assert code == 0
    imported = json.loads(out)
    before = orthanc.count_instances()

    code, out, err = run_cli("sync", "--once")
    assert code == 0, out + err
    assert "2 done" in out and "online" in out
    expected = 0
    for study in imported["studies"]:
        found = orthanc.qido_instances(study["study_uid"])
        assert len(found) == len(set(found)) == study["instances"]
        expected += study["instances"]
    assert orthanc.count_instances() - before == expected == disc.instances

    code, out, _err = run_cli("sync", "--once")
    assert code == 0 and "Uploaded" not in out
    assert orthanc.count_instances() - before == expected


def test_a_certified_translation_placed_in_orthanc_is_merged_into_the_case(
        kiosk: Callable[..., KioskService], tmp_path: Path, orthanc: OrthancServer) -> None:
    service = kiosk()
    case_id, study_uid, sops = import_study(service, tmp_path, instances=3, seed=62)
    service.sync_once()
    # The office adds its certified translation to the study, with its own tools.
    first = pydicom.dcmread(io.BytesIO(service.store.read_bytes(
        service.catalog.manifest(service.catalog.studies(case_id)[0])[0].sha256)))
    office = build_report_instance(first, patient_name="TEST^BENCH", pdf=ENGLISH,
                                   title="Radiology report, certified English translation",
                                   language="en", role="translation", certified=True,
                                   translator="Mei Chen", series_number=1,
                                   provenance="office workstation", station="OFFICE")
    orthanc.put_instance(office.data)

    [merged] = service.sync_once().merged
    assert (merged["source"], merged["language"], merged["certified"], merged["translator"]) \
        == ("dicomweb", "en", True, "Mei Chen")
    assert service.store.read_bytes(merged["pdf_sha256"]) == ENGLISH
    ours = service.store.read_bytes(merged["dicom_sha256"])
    ds, pdf = extract_pdf(ours)
    assert pdf == ENGLISH and ds.StudyInstanceUID == study_uid
    assert ds.SOPInstanceUID not in {office.sop_instance_uid, *sops}
    assert ds.SeriesInstanceUID != office.series_uid
    assert service.sync_once().merged == []  # merged once
    # Orthanc keeps only the office's instance: a copy of its own report is not sent back.
    pdfs = [u for u in orthanc.qido_instances(study_uid) if u not in sops]
    assert pdfs == [office.sop_instance_uid]


def test_an_inbox_translation_is_merged_and_uploaded_with_the_agreed_markers(
        kiosk: Callable[..., KioskService], tmp_path: Path, orthanc: OrthancServer) -> None:
    service = kiosk()
    case_id, study_uid, sops = import_study(service, tmp_path, instances=2, seed=63)
    (service.locations.inbox_dir / f"{case_id}.en.pdf").write_bytes(ENGLISH)
    report = service.sync_once()
    [merged] = report.merged
    assert merged["source"] == "inbox" and report.status.online
    assert set(orthanc.qido_instances(study_uid)) == {*sops, merged["sop_instance_uid"]}
    series = merged["series_uid"]
    meta = orthanc.request(
        "GET", f"/dicom-web/studies/{study_uid}/series/{series}/instances/"
               f"{merged['sop_instance_uid']}/metadata",
        headers={"Accept": "application/dicom+json"})
    header = pydicom.Dataset.from_json(json.loads(meta)[0],
                                       bulk_data_uri_handler=lambda *_a: b"")
    assert header.SOPClassUID == ENCAPSULATED_PDF
    markers = read_markers(header)
    assert (markers.language, markers.role, markers.certified) == ("en", "translation", True)


def test_orthanc_stopped_mid_upload_and_restarted_nothing_missing_nothing_twice(
        kiosk: Callable[..., KioskService], tmp_path: Path, orthanc: OrthancServer) -> None:
    service = kiosk()
    _case, study_uid, sops = import_study(service, tmp_path, instances=24, seed=64)
    before = orthanc.count_instances()

    def pull_the_plug(p: SyncProgress) -> None:
        if p.done >= 8 and orthanc.proc is not None:
            orthanc.stop(hard=True)  # the server dies between two batches

    try:
        status = service.sync_once(on_progress=pull_the_plug).status
        assert status.state == "offline"
        [job] = service.syncer.outbox.jobs()
        assert job["state"] == RETRY and job["cursor"] == 8
    finally:
        if orthanc.proc is None:
            orthanc.start()
    assert wait_for(lambda: service.sync_once().status.online, timeout=10, step=0.1)
    [job] = service.syncer.outbox.jobs()
    assert job["state"] == DONE and job["requests"] == 6 + 1  # 24 in 4s, plus the failed try
    found = orthanc.qido_instances(study_uid)
    assert sorted(found) == sorted(sops)
    assert orthanc.count_instances() - before == 24


def test_wrong_credentials_are_a_clear_permanent_error(
        tmp_path: Path, orthanc: OrthancServer, monkeypatch: pytest.MonkeyPatch,
        run_cli: Callable[..., tuple[int, str, str]], data_dir: Path) -> None:
    for name, value in _env(orthanc.dicomweb, password="not-the-password").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KIOSK_CONFIG", str(write_config(tmp_path / "kiosk.toml")))
    make = build_service(None, data_dir)
    import_study(make, tmp_path, instances=2, seed=65)
    code, out, _err = run_cli("sync", "--once")
    assert code == 2
    assert "refused the user name/password (HTTP 401)" in out
    [job] = make.syncer.outbox.jobs()
    assert job["state"] == FAILED and job["error_kind"] == "auth"
    code, out, _err = run_cli("sync", "--once")  # not retried with the same settings
    assert code == 2 and make.syncer.outbox.jobs()[0]["state"] == FAILED
    monkeypatch.setenv("KIOSK_CLOUD_PASSWORD", PASSWORD)  # the coordinator fixes it
    code, out, _err = run_cli("sync", "--once")
    assert code == 0 and make.syncer.outbox.jobs()[0]["state"] == DONE


def test_an_unreachable_server_is_retried_with_backoff_and_shown_offline(
        kiosk: Callable[..., KioskService], tmp_path: Path) -> None:
    service = kiosk(f"http://127.0.0.1:{free_port()}/dicom-web")
    import_study(service, tmp_path, instances=2, seed=66)
    status = service.sync_once().status
    assert status.state == "offline" and not status.online and status.retry_at
    assert "cannot be reached" in status.message
    assert status.jobs[PENDING] == 1
    first = service.syncer._state()
    service.sync_once()  # too early: not contacted, nothing counted
    assert service.syncer._state()["failures"] == first["failures"] == 1
    time.sleep(max(0.0, first["retry_at"] - time.time()) + 0.01)
    service.sync_once()
    second = service.syncer._state()
    assert second["failures"] == 2 and second["retry_at"] > first["retry_at"]
    assert service.sync_status().state == "offline"


def _outbox_jobs(db_file: Path) -> list[dict[str, Any]]:
    return Database(db_file).find("outbox")


def test_a_kiosk_killed_with_an_upload_in_flight_resumes_where_it_was(
        kiosk: Callable[..., KioskService], tmp_path: Path, orthanc: OrthancServer) -> None:
    proxy = StallingProxy(orthanc.port, stall_at_post=4)  # batches 1-3 pass, 4 hangs
    url = f"http://127.0.0.1:{proxy.port}/dicom-web"
    service = kiosk(url)
    _case, study_uid, sops = import_study(service, tmp_path, instances=20, seed=67)
    config = write_config(tmp_path / "crash.toml", batch_instances=2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")} | _env(url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiosk.cli.main", "--config", str(config), "--data-dir",
         str(tmp_path / "data"), "sync", "--once"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        db_file = service.locations.db_file
        assert wait_for(lambda: any(j["state"] == IN_FLIGHT and j["cursor"] == 6
                                    for j in _outbox_jobs(db_file)) and proxy.posts >= 4)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        [job] = _outbox_jobs(db_file)
        assert job["state"] == IN_FLIGHT  # as the crash left it
        proxy.release.set()

        resumed = build_service(config, tmp_path / "data", env=_env(url))
        assert resumed.sync_once().status.online
        [job] = resumed.syncer.outbox.jobs()
        assert job["state"] == DONE and job["resumed"] == 1
        assert proxy.posts == 4 + 7  # resumed at instance 7 of 20, not from the start
        assert sorted(orthanc.qido_instances(study_uid)) == sorted(sops)
    finally:
        if proc.poll() is None:
            proc.kill()
        proxy.close()
