"""Purging a case: its data goes, a shared disc's blobs stay for the other case, audited."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.cloud.outbox import Outbox
from kiosk.errors import UsageError
from kiosk.service import KioskService
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
