"""The media desk and the service: import from an inserted medium, overrides, never writing to a
source, cleanup after a pull, and a disc ejected mid-import through the real watcher path."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest

from kiosk.bootstrap import attach_media
from kiosk.cli.main import import_exit_code
from kiosk.errors import MediaError, UsageError
from kiosk.ingest.importer import ImportProgress
from kiosk.media.desk import MediaDesk, RoleClassifier
from kiosk.media.fake_media import FakeMediaWatcher, FakeMounter
from kiosk.media.medium import MediaAction, MediumKind, Role
from kiosk.media.mounter import DirectBackend, SystemMounter
from kiosk.samples.bulk import write_study
from kiosk.service import KioskService
from kiosk.system.disks import disks_in_use
from tests.media_fixtures import Loop, device_size, iso_image


@pytest.fixture
def fake() -> FakeMediaWatcher:
    return FakeMediaWatcher()


@pytest.fixture
def desk(service: KioskService, fake: FakeMediaWatcher) -> MediaDesk:
    return attach_media(service, fake=fake)


def test_a_disc_inserted_at_the_desk_is_imported_by_device(
        service: KioskService, desk: MediaDesk, fake: FakeMediaWatcher, tmp_path: Path) -> None:
    write_study(tmp_path / "CD", instances=5, rows=16, columns=16, layout="nested")
    medium = fake.insert(tmp_path / "CD", kind=MediumKind.OPTICAL, label="HOSPITAL CD",
                         serial="SN-42")
    [event] = desk.poll(0)
    assert (event.action, event.medium.role) == (MediaAction.INSERT, Role.SOURCE)

    report = service.import_medium(medium.device)

    assert report["complete"] is True and report["label"] == "HOSPITAL CD"
    assert report["instances"]["found"] == report["instances"]["verified"] == 5
    assert import_exit_code(report) == 0
    assert isinstance(desk.mounter, FakeMounter) and desk.mounter.released == [medium.device]
    # The audit trail says which physical medium the images came from.
    entries = [json.loads(line) for line in service.locations.audit_file.read_text().splitlines()]
    [entry] = [e for e in entries if e["action"] == "import_medium"]
    assert entry["details"]["job_id"] == report["job_id"]
    # The label is hashed: hospitals sometimes write the patient's name on the disc.
    label = hashlib.sha256(b"HOSPITAL CD").hexdigest()[:16]
    assert entry["details"]["medium"] == medium.to_json() | {"label": label}
    assert entry["details"]["medium"]["serial"] == "SN-42"


def test_importing_without_media_detection_or_from_an_absent_medium_is_explained(
        service: KioskService, desk: MediaDesk) -> None:
    with pytest.raises(MediaError, match="no medium at /dev/sdz1"):
        service.import_medium("/dev/sdz1")
    service.media = None
    with pytest.raises(UsageError, match="not running"):
        service.import_medium("/dev/sdz1")


def test_a_source_is_never_written_to_unless_the_coordinator_says_it_is_a_target(
        desk: MediaDesk, fake: FakeMediaWatcher, tmp_path: Path) -> None:
    write_study(tmp_path / "STICK", instances=1, rows=16, columns=16)
    medium = fake.insert(tmp_path / "STICK", label="DAD'S STICK")
    desk.poll(0)
    with pytest.raises(MediaError, match="never writes to it"):
        desk.open_target(medium.device)

    change = desk.set_role(medium.device, Role.TARGET)

    assert (change.action, change.medium.role, change.medium.role_reason) == (
        MediaAction.CHANGE, Role.TARGET, "set by the coordinator")
    assert desk.get(medium.device).role is Role.TARGET
    assert desk.open_target(medium.device) == tmp_path / "STICK"


def test_an_override_is_forgotten_when_the_medium_is_pulled(
        desk: MediaDesk, fake: FakeMediaWatcher, tmp_path: Path) -> None:
    (tmp_path / "S").mkdir()
    medium = fake.insert(tmp_path / "S")
    desk.poll(0)
    desk.set_role(medium.device, Role.UNKNOWN)
    fake.remove(medium.device)
    [removed] = desk.poll(0)
    assert removed.action is MediaAction.REMOVE
    fake.insert(tmp_path / "S")
    [again] = desk.poll(0)
    assert again.medium.role is Role.TARGET


def test_a_disc_is_never_a_target_even_by_override(
        desk: MediaDesk, fake: FakeMediaWatcher, tmp_path: Path) -> None:
    (tmp_path / "CD").mkdir()
    medium = fake.insert(tmp_path / "CD", kind=MediumKind.OPTICAL)
    desk.poll(0)
    desk.set_role(medium.device, Role.TARGET)
    with pytest.raises(MediaError, match="A disc cannot take the patient's copy"):
        desk.open_target(medium.device)


def test_a_medium_pulled_while_open_is_cleaned_up_when_its_removal_is_seen(
        desk: MediaDesk, fake: FakeMediaWatcher, tmp_path: Path) -> None:
    (tmp_path / "S").mkdir()
    medium = fake.insert(tmp_path / "S")
    desk.poll(0)
    desk.open_target(medium.device)
    fake.remove(medium.device)

    [event] = desk.poll(0)

    assert event.action is MediaAction.REMOVE
    assert isinstance(desk.mounter, FakeMounter)
    assert desk.mounter.forgotten == [medium.device]
    desk.release(medium.device)  # the UI's own clean-up afterwards is harmless
    assert desk.mounter.forgotten == [medium.device]


def test_ejecting_a_simulated_stick_takes_it_out(desk: MediaDesk, fake: FakeMediaWatcher,
                                                 tmp_path: Path) -> None:
    (tmp_path / "S").mkdir()
    medium = fake.insert(tmp_path / "S", role_hint=Role.TARGET, label="PATIENT")
    assert desk.poll(0)[0].medium.role_reason == "set by the simulation"
    desk.eject(medium.device)
    [event] = desk.poll(0)
    assert event.action is MediaAction.REMOVE and desk.present() == []


# ------------------------------------------------------- a real disc, ejected mid-import


@pytest.mark.root
def test_a_disc_ejected_mid_import_through_the_watcher_ends_with_medium_removed_and_nothing_lost(
        udevd: None, service: KioskService, tmp_path: Path) -> None:
    from kiosk.media.udev_monitor import UdevMediaWatcher

    tree = tmp_path / "CD"
    files = write_study(tree, instances=80, rows=128, columns=128, layout="nested")
    image = iso_image(tree, tmp_path / "fakecd-ct.iso", "CT_DISC")
    mount_root = tmp_path / "mnt"
    mounter = SystemMounter(DirectBackend(mount_root))
    watcher = UdevMediaWatcher(RoleClassifier(mounter),
                               lambda: disks_in_use(mount_root, [service.locations.data_dir]))
    service.media = MediaDesk(watcher, mounter)
    desk = service.media
    desk.poll(0)
    with Loop(image, read_only=True) as loop:
        inserted = _wait(desk, loop.device, MediaAction.INSERT)
        assert inserted.role is Role.SOURCE and inserted.label == "CT_DISC"
        pulled: list[int] = []

        def eject(p: ImportProgress) -> None:
            if p.phase == "copying" and not pulled:
                loop.detach()
                pulled.append(p.files_done)
                deadline = time.monotonic() + 10
                while device_size(loop.device) and time.monotonic() < deadline:
                    time.sleep(0.05)  # open readers defer the detach; wait until it is gone

        report = service.import_medium(loop.device, on_progress=eject)
        removed = _wait(desk, loop.device, MediaAction.REMOVE)

    assert pulled, "the import finished before the disc could be ejected"
    assert report["complete"] is False
    assert "removed" in report["error"]
    found = report["instances"]["found"]
    assert 1 <= found < len(files)
    assert report["instances"]["verified"] == found
    rows = [r for s in service.catalog.studies(report["case_id"])
            for r in service.catalog.manifest(s)]
    assert len(rows) == found and all(r.verified for r in rows)
    on_disc = {str(p.relative_to(tree)): p.read_bytes() for p in files}
    for row in rows:
        assert service.store.read_bytes(row.sha256) == on_disc[row.source_path]
    assert import_exit_code(report) == 4
    assert removed.label == "CT_DISC" and desk.present() == []
    desk.close()


def _wait(desk: MediaDesk, device: str, action: MediaAction, within: float = 2.0) -> Any:
    deadline = time.monotonic() + within
    seen = []
    while time.monotonic() < deadline:
        for event in desk.poll(max(deadline - time.monotonic(), 0)):
            seen.append(event)
            if event.medium.device == device and event.action is action:
                return event.medium
    raise AssertionError(f"no {action.value} of {device} within {within} s: {seen}")


def test_workers_opening_and_releasing_while_the_ui_polls_and_closes_never_trip_over_each_other(
        desk: MediaDesk, fake: FakeMediaWatcher, tmp_path: Path) -> None:
    import threading

    media = []
    for i in range(4):
        write_study(tmp_path / f"CD{i}", instances=1, rows=16, columns=16)
        media.append(fake.insert(tmp_path / f"CD{i}", kind=MediumKind.OPTICAL))
    desk.poll(0)
    errors: list[BaseException] = []
    stop = threading.Event()

    def worker(device: str) -> None:
        try:
            while not stop.is_set():
                desk.open_source(device)
                desk.release(device)
        except BaseException as exc:  # noqa: BLE001 - any failure in a worker fails the test
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(m.device,)) for m in media]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        desk.poll(0)
        desk.present()
    stop.set()
    for t in threads:
        t.join(5)
    desk.close()  # releases whatever a worker left open, iterating a stable copy

    assert errors == []
    assert isinstance(desk.mounter, FakeMounter)
    assert set(desk.mounter.released) == {m.device for m in media}
