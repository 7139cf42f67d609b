"""Purging a case: its data goes, a shared disc's blobs stay for the other case, audited."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from kiosk.cloud.outbox import Outbox
from kiosk.errors import UsageError
from kiosk.service import KioskService
from kiosk.store import migration
from tests.conftest import make_instance


def _blobs(service: KioskService) -> set[str]:
    return {p.name for p in service.locations.blobs_dir.rglob("*") if p.is_file()}


def _case_blobs(service: KioskService, case_id: str) -> set[str]:
    shas: set[str] = set()
    for study in service.catalog.studies(case_id):
        shas |= {study["manifest"]} | {r.sha256 for r in service.catalog.manifest(study)}
    return shas


def test_a_case_not_yet_uploaded_is_only_purged_after_explicit_confirmation(
        service: KioskService, tmp_path: Path) -> None:
    make_instance(tmp_path / "cd" / "IM1")
    case = service.import_path(tmp_path / "cd")["case_id"]
    before = _blobs(service)
    with pytest.raises(UsageError, match="not uploaded"):
        service.purge_case(case)
    assert service.catalog.case(case) is not None and _blobs(service) == before
    result = service.purge_case(case, force=True)
    assert result.uploaded is False and result.blobs_deleted > 0
    assert service.catalog.case(case) is None and service.catalog.studies(case) == []
    assert service.catalog.jobs(case_id=case) == []
    [entry] = [e for e in service.audit.entries() if e["action"] == "purge"]
    assert entry["details"]["case_id"] == case and entry["details"]["forced"] is True


def test_purging_one_case_keeps_the_blobs_another_case_shares(
        service: KioskService, tmp_path: Path) -> None:
    make_instance(tmp_path / "cd" / "IM1", seed=1)
    make_instance(tmp_path / "cd" / "IM2", seed=2)
    first = service.import_path(tmp_path / "cd")["case_id"]
    second = service.import_path(tmp_path / "cd", case_id="OTHER-CASE")["case_id"]
    assert first != second
    service.purge_case(first, force=True)
    for sha in _case_blobs(service, second):
        assert service.store.has(sha)  # the other case still opens
    assert service.catalog.case(second) is not None


def test_an_uploaded_case_purges_without_confirmation(
        service: KioskService, tmp_path: Path) -> None:
    make_instance(tmp_path / "cd" / "IM1")
    case = service.import_path(tmp_path / "cd")["case_id"]
    [study] = service.catalog.studies(case)
    rows = service.catalog.manifest(study)
    outbox = Outbox(service.catalog.db, service.store)
    job = outbox.enqueue_upload(destination="http://pacs.test/dicom-web", case_id=case,
                                study_uid=study["study_uid"],
                                items=[(r.sop_instance_uid, r.sha256) for r in rows],
                                fingerprint="f")
    outbox.finish(job, "done")
    shas = _case_blobs(service, case)
    result = service.purge_case(case)
    assert result.uploaded is True
    assert not any(service.store.has(sha) for sha in shas)
    assert outbox.jobs(case_id=case) == []


def test_purging_an_unknown_case_is_a_clear_error(service: KioskService) -> None:
    with pytest.raises(UsageError, match="no case"):
        service.purge_case("NOPE", force=True)


def test_after_its_cases_are_purged_the_same_drive_imports_without_reading_every_case(
        service: KioskService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every disc in one drive is read from the same mount point: the drive's recent import
    # jobs are listed under that path, and retention purges their cases in time.
    drive = tmp_path / "sr0"
    others = []
    for seed in range(3):
        make_instance(tmp_path / f"other-{seed}" / "IM1", seed=100 + seed,
                      patient_id=f"OTHER{seed}")
        others.append(service.import_path(tmp_path / f"other-{seed}")["case_id"])
    for seed in range(3):
        shutil.rmtree(drive, ignore_errors=True)
        make_instance(drive / "IM1", seed=seed, patient_id=f"P{seed}")
        case = service.import_path(drive)["case_id"]
        service.purge_case(case, force=True)
    opened: list[Path] = []
    real = migration.load

    def counting(path: Path) -> Any:
        if path.parent.name == "cases":
            opened.append(path)
        return real(path)

    monkeypatch.setattr(migration, "load", counting)
    shutil.rmtree(drive)
    make_instance(drive / "IM1", seed=9, patient_id="P9")
    case = service.import_path(drive)["case_id"]
    assert not {p.name for p in opened} & {service.catalog.db.paths.case_file(c).name
                                           for c in others}
    assert service.catalog.case(case) is not None
