"""Retention: a case is purged ``retention.days`` after it was both delivered and uploaded —
never before, never when it is only one of the two, and never when part of it is not uploaded."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kiosk.bootstrap import build_service
from kiosk.cloud.fake import FakeCloud
from kiosk.cloud.outbox import OUTBOX
from kiosk.config import load_config
from kiosk.errors import ConfigError
from kiosk.retention.policy import DAY
from kiosk.service import KioskService
from tests.conftest import json_report
from tests.sync_kit import fake_syncer, import_study

Run = Callable[..., tuple[int, str, str]]


class Clock:
    """Wall-clock time plus a shift the test sets (days later)."""

    def __init__(self) -> None:
        self.shift = 0.0

    def __call__(self) -> float:
        return time.time() + self.shift


def _deliver(service: KioskService, case_id: str, tmp_path: Path) -> None:
    stick = tmp_path / f"stick-{case_id}"
    stick.mkdir()
    assert service.export_case(case_id, stick, encrypt=False)["verified"]


def _purges(service: KioskService) -> list[dict[str, object]]:
    return [e["details"] for e in service.audit.entries() if e["action"] == "purge"]


def test_only_cases_delivered_and_uploaded_long_enough_ago_are_purged(
        service: KioskService, tmp_path: Path) -> None:
    cloud = FakeCloud()
    service._syncer = fake_syncer(service, cloud)  # the office's server, in memory
    clock = Clock()
    service.clock = clock
    uploaded_only, _, _ = import_study(service, tmp_path, seed=1)
    both, _, _ = import_study(service, tmp_path, seed=2)
    grown, _, _ = import_study(service, tmp_path, seed=3)
    service.sync_once()  # all three uploaded
    assert all(service.upload_state(c).uploaded for c in (uploaded_only, both, grown))
    delivered_only, _, _ = import_study(service, tmp_path, seed=4)  # after the upload round
    for case in (both, grown, delivered_only):
        _deliver(service, case, tmp_path)
    import_study(service, tmp_path, seed=5, case_id=grown)  # a second disc, not uploaded yet
    assert not service.upload_state(grown).uploaded

    clock.shift = 13 * DAY  # both delivered and uploaded, but only 13 days ago
    assert service.run_retention() == []
    reasons = {v.case_id: v.reason for v in service.retention_review()}
    assert reasons == {uploaded_only: "not delivered", both: "too recent",
                       grown: "not uploaded", delivered_only: "not uploaded"}

    clock.shift = 15 * DAY
    assert [v.case_id for v in service.run_retention(dry_run=True)] == [both]
    assert service.catalog.case(both) is not None  # a dry run changes nothing
    assert [v.case_id for v in service.run_retention()] == [both]
    assert service.catalog.case(both) is None
    assert _purges(service)[0] | {"blobs_deleted": 0} == {
        "case_id": both, "reason": "retention", "forced": False, "uploaded": True,
        "studies": 1, "blobs_deleted": 0, "temps_removed": 0, "inbox_removed": 0}

    clock.shift = 10_000 * DAY  # however old: never without the upload or the delivery
    assert service.run_retention() == []
    assert {c["case_id"] for c in service.case_summaries()} == {
        uploaded_only, grown, delivered_only}

    service.sync_once()  # the second disc goes up too, and the delivered-only case: both qualify
    assert {v.case_id for v in service.run_retention()} == {grown, delivered_only}
    assert [c["case_id"] for c in service.case_summaries()] == [uploaded_only]


def test_the_clock_starts_at_whichever_came_last(service: KioskService, tmp_path: Path) -> None:
    service._syncer = fake_syncer(service, FakeCloud())
    clock = Clock()
    service.clock = clock
    case, _, _ = import_study(service, tmp_path)
    _deliver(service, case, tmp_path)
    db = service.catalog.db
    # Delivered 30 days ago; uploaded only today (the kiosk was offline for a month).
    db.update("cases", {"delivered": _iso(time.time() - 30 * DAY)}, case_id=case)
    service.sync_once()
    [verdict] = service.retention_review()
    assert verdict.reason == "too recent" and verdict.due is not None
    assert verdict.due >= _iso(time.time() + 14 * DAY - 60)
    clock.shift = 14 * DAY + 60
    assert [v.case_id for v in service.run_retention()] == [case]


def test_retention_days_0_turns_automatic_purging_off(tmp_path: Path) -> None:
    config = tmp_path / "kiosk.toml"
    config.write_text("[retention]\ndays = 0\n", "utf-8")
    service = build_service(config, tmp_path / "data", env={})
    service._syncer = fake_syncer(service, FakeCloud())
    case, _, _ = import_study(service, tmp_path)
    _deliver(service, case, tmp_path)
    service.sync_once()
    clock = Clock()
    clock.shift = 10_000 * DAY
    service.clock = clock
    assert service.run_retention() == []
    assert [v.reason for v in service.retention_review()] == ["retention off"]
    assert service.catalog.case(case) is not None


@pytest.mark.parametrize(("toml", "message"), [
    ("days = -1", "retention.days"), ("days = 3651", "retention.days"),
    ('days = "14"', "must be an integer"), ("days = true", "must be an integer"),
    ("weeks = 2", "Unknown setting 'retention.weeks'"),
])
def test_bad_retention_settings_are_refused(tmp_path: Path, toml: str, message: str) -> None:
    config = tmp_path / "kiosk.toml"
    config.write_text(f"[retention]\n{toml}\n", "utf-8")
    with pytest.raises(ConfigError, match=message):
        load_config(config, env={})
    assert load_config(None, env={}).retention.days == 14  # the default


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def test_kiosk_retention_lists_purges_and_reports_json(
        run_cli: Run, data_dir: Path, tmp_path: Path) -> None:
    service = build_service(data_dir=data_dir, env={})
    service._syncer = fake_syncer(service, FakeCloud())
    old, _, _ = import_study(service, tmp_path, seed=1)
    fresh, _, _ = import_study(service, tmp_path, seed=2)
    for case in (old, fresh):
        _deliver(service, case, tmp_path)
    service.sync_once()
    # The old case was delivered and uploaded 20 days ago (its records say so).
    long_ago = _iso(time.time() - 20 * DAY)
    service.catalog.db.update("cases", {"delivered": long_ago}, case_id=old)
    service.catalog.db.update(OUTBOX, {"finished": long_ago}, case_id=old)

    code, out, _ = run_cli("retention", "--dry-run", "--json")
    report = json_report(out)
    assert code == 0 and report["days"] == 14 and report["dry_run"] is True
    assert report["due"] == [old] and report["purged"] == []
    assert {c["case_id"]: c["reason"] for c in report["cases"]} == {
        old: "due", fresh: "too recent"}
    assert service.catalog.case(old) is not None

    code, out, _ = run_cli("retention")
    assert code == 0 and f"{old}  purged" in out and f"{fresh}  kept: too recent" in out
    assert service.catalog.case(old) is None and service.catalog.case(fresh) is not None
    code, out, _ = run_cli("retention", "--json")
    assert code == 0 and json_report(out)["purged"] == []
    assert [d["reason"] for d in _purges(service)] == ["retention"]
