"""One contract, every media watcher: the real udev one (loop devices under a real udevd) and
the pipe-based fake behave the same (huey-style: one test class run against each).

The real lab builds an ISO9660 "hospital CD" with xorriso and a FAT32 "patient stick" with
mkfs.vfat + mtools, attaches them with losetup (a test-only udev rule marks them as a disc in a
drive and a USB stick) and detaches them; the fake lab inserts folders. Both see the same
inserts, removes, roles and identities, within 2 s.
"""

from __future__ import annotations

import select
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import pytest

from kiosk.errors import MediaError
from kiosk.media.desk import RoleClassifier
from kiosk.media.fake_media import FakeMediaWatcher
from kiosk.media.medium import MediaAction, MediaEvent, MediaWatcher, MediumKind, Role
from kiosk.media.mounter import DirectBackend, SystemMounter
from kiosk.samples.bulk import write_study
from kiosk.system.disks import disks_in_use
from tests.media_fixtures import Loop, fat_image, iso_image

#: The issue's promise: an insert or a remove is seen within this many seconds.
SEEN_WITHIN = 2.0

DICM = b"\0" * 128 + b"DICM" + b"\x02\x00\x00\x00UL\x04\x00\x00\x00\x00\x00"


class Lab(Protocol):
    """Makes media appear and disappear for one watcher implementation."""

    def start(self) -> MediaWatcher:
        """Create the watcher (media inserted before this are "already present")."""
        ...

    def disc(self, files: dict[str, bytes], label: str) -> str:
        """Insert a disc holding ``files``; return its device."""
        ...

    def stick(self, files: dict[str, bytes], label: str) -> str:
        """Insert a stick holding ``files``; return its device."""
        ...

    def pull(self, device: str) -> None:
        """Remove the medium without warning."""
        ...


def _write_tree(root: Path, files: dict[str, bytes]) -> Path:
    root.mkdir(parents=True)
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


class FakeLab:
    """Folders inserted into a :class:`FakeMediaWatcher`."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.watcher = FakeMediaWatcher()
        self._n = 0

    def start(self) -> MediaWatcher:
        return self.watcher

    def _folder(self, files: dict[str, bytes]) -> Path:
        self._n += 1
        return _write_tree(self.tmp / f"medium{self._n}", files)

    def disc(self, files: dict[str, bytes], label: str) -> str:
        return self.watcher.insert(self._folder(files), kind=MediumKind.OPTICAL,
                                   label=label).device

    def stick(self, files: dict[str, bytes], label: str) -> str:
        return self.watcher.insert(self._folder(files), kind=MediumKind.USB,
                                   label=label).device

    def pull(self, device: str) -> None:
        self.watcher.remove(device)

    def close(self) -> None:
        self.watcher.close()


class UdevLab:
    """Images on loop devices under the real udevd."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.loops: dict[str, Loop] = {}
        self.watcher: MediaWatcher | None = None
        self._n = 0

    def start(self) -> MediaWatcher:
        mount_root = self.tmp / "mnt"
        mounter = SystemMounter(DirectBackend(mount_root))
        from kiosk.media.udev_monitor import UdevMediaWatcher

        self.watcher = UdevMediaWatcher(RoleClassifier(mounter),
                                        lambda: disks_in_use(mount_root, [self.tmp]))
        return self.watcher

    def _attach(self, image: Path, read_only: bool) -> str:
        loop = Loop(image, read_only=read_only)
        self.loops[loop.device] = loop
        return loop.device

    def disc(self, files: dict[str, bytes], label: str) -> str:
        self._n += 1
        tree = _write_tree(self.tmp / f"tree{self._n}", files)
        image = iso_image(tree, self.tmp / f"fakecd{self._n}.iso", label)
        return self._attach(image, read_only=True)

    def stick(self, files: dict[str, bytes], label: str) -> str:
        self._n += 1
        image = fat_image(self.tmp / f"fakeusb{self._n}.img", files, label)
        return self._attach(image, read_only=False)

    def pull(self, device: str) -> None:
        self.loops.pop(device).detach()

    def close(self) -> None:
        try:
            if self.watcher is not None:
                self.watcher.close()
        finally:
            for loop in self.loops.values():
                loop.detach()


@pytest.fixture(params=["fake", pytest.param("udev", marks=pytest.mark.root)])
def lab(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lab]:
    """Each contract test runs against the fake and against udev + loop devices."""
    made: FakeLab | UdevLab
    if request.param == "udev":
        request.getfixturevalue("udevd")
        made = UdevLab(tmp_path)
    else:
        made = FakeLab(tmp_path)
    try:
        yield made
    finally:
        made.close()


def wait_for(watcher: MediaWatcher, want: Callable[[MediaEvent], bool],
             within: float = SEEN_WITHIN) -> tuple[MediaEvent, float, list[MediaEvent]]:
    """Poll until an event matching ``want`` arrives; return it, the delay and all events."""
    start = time.monotonic()
    seen: list[MediaEvent] = []
    while True:
        left = start + within - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no matching event within {within} s; saw {seen}")
        for event in watcher.poll(left):
            seen.append(event)
            if want(event):
                return event, time.monotonic() - start, seen


def _on(device: str, action: MediaAction) -> Callable[[MediaEvent], bool]:
    return lambda e: e.medium.device == device and e.action is action


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Four small CT images as they sit on a hospital disc (no DICOMDIR)."""
    root = tmp_path_factory.mktemp("study")
    paths = write_study(root, instances=4, rows=16, columns=16, layout="nested")
    return {str(p.relative_to(root)): p.read_bytes() for p in paths}


class TestMediaWatcherContract:
    """What the desk, ``kiosk watch`` and the UI rely on, for every watcher."""

    def test_a_hospital_disc_is_seen_within_2_s_as_a_source(
            self, lab: Lab, study: dict[str, bytes]) -> None:
        watcher = lab.start()
        watcher.poll(0)
        device = lab.disc({**study, "README.TXT": b"viewer inside\r\n"}, "HOSPITAL_CD")

        event, delay, _ = wait_for(watcher, _on(device, MediaAction.INSERT))

        assert delay < SEEN_WITHIN
        m = event.medium
        assert (m.kind, m.role, m.fs_type, m.label) == (MediumKind.OPTICAL, Role.SOURCE,
                                                        "iso9660", "HOSPITAL_CD")
        assert m.role_reason == "DICOM images found"
        assert m.read_only is True
        assert m.size > 0 and m.vendor == "MedPass" and m.model
        assert m in watcher.present()

    def test_an_empty_stick_is_a_target(self, lab: Lab) -> None:
        watcher = lab.start()
        watcher.poll(0)
        device = lab.stick({}, "PATIENT")

        event, _, _ = wait_for(watcher, _on(device, MediaAction.INSERT))

        m = event.medium
        assert (m.kind, m.role, m.fs_type, m.label) == (MediumKind.USB, Role.TARGET, "vfat",
                                                        "PATIENT")
        assert m.role_reason == "empty"
        assert m.read_only is False

    def test_a_stick_with_photos_and_documents_is_still_a_target(self, lab: Lab) -> None:
        watcher = lab.start()
        watcher.poll(0)
        device = lab.stick({"DCIM/IMG_0001.JPG": b"\xff\xd8\xff\xe0" + b"\0" * 300,
                            "Tax return.pdf": b"%PDF-1.4\n" + b"\0" * 300,
                            "notes": b"x" * 200}, "HOLIDAY")

        event, _, _ = wait_for(watcher, _on(device, MediaAction.INSERT))

        assert event.medium.role is Role.TARGET
        assert event.medium.role_reason.startswith("no DICOM images found (3 of 3 files")

    def test_a_stick_with_a_dicomdir_is_a_source(self, lab: Lab,
                                                 study: dict[str, bytes]) -> None:
        watcher = lab.start()
        watcher.poll(0)
        device = lab.stick({"DICOMDIR": DICM, **study}, "CT_STICK")

        event, _, _ = wait_for(watcher, _on(device, MediaAction.INSERT))

        assert (event.medium.role, event.medium.role_reason) == (Role.SOURCE,
                                                                 "DICOMDIR at the root")

    def test_a_pulled_medium_is_reported_once_as_removed_within_2_s(
            self, lab: Lab, study: dict[str, bytes]) -> None:
        watcher = lab.start()
        watcher.poll(0)
        disc = lab.disc(study, "HOSPITAL_CD")
        stick = lab.stick({}, "PATIENT")
        wait_for(watcher, _on(disc, MediaAction.INSERT))
        if stick not in {m.device for m in watcher.present()}:
            wait_for(watcher, _on(stick, MediaAction.INSERT))

        lab.pull(disc)
        event, delay, _ = wait_for(watcher, _on(disc, MediaAction.REMOVE))

        assert delay < SEEN_WITHIN
        assert event.medium.label == "HOSPITAL_CD" and event.medium.role is Role.SOURCE
        present = {m.device for m in watcher.present()}
        assert disc not in present and stick in present
        later = watcher.poll(0.3)
        assert not [e for e in later if e.medium.device == disc], "reported twice"

    def test_media_inserted_before_the_kiosk_started_are_reported_by_the_first_poll(
            self, lab: Lab, study: dict[str, bytes]) -> None:
        disc = lab.disc(study, "EARLY_CD")
        time.sleep(0.3)  # udev has processed it before the watcher exists
        watcher = lab.start()

        events = watcher.poll(SEEN_WITHIN)

        inserted = {e.medium.device: e.medium for e in events
                    if e.action is MediaAction.INSERT}
        assert disc in inserted
        assert inserted[disc].role is Role.SOURCE and inserted[disc].label == "EARLY_CD"

    def test_fileno_wakes_up_select_when_a_medium_comes(self, lab: Lab) -> None:
        watcher = lab.start()
        watcher.poll(0)
        device = lab.stick({}, "PATIENT")

        readable, _, _ = select.select([watcher.fileno()], [], [], SEEN_WITHIN)

        assert readable == [watcher.fileno()]
        wait_for(watcher, _on(device, MediaAction.INSERT))

    def test_a_closed_watcher_refuses_to_poll_and_closes_twice(self, lab: Lab) -> None:
        watcher = lab.start()
        watcher.close()
        watcher.close()
        with pytest.raises(MediaError):
            watcher.poll(0)
