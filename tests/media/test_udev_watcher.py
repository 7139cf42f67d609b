"""What only the real udev watcher has to get right: partitions, internal disks, lost events,
discs swapped in the same drive. The enumeration is the truth; events only say "look again"."""

from __future__ import annotations

import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.errors import MediaError
from kiosk.media.desk import RoleClassifier
from kiosk.media.medium import MediaAction, Medium, MediumKind, Role
from kiosk.media.mounter import DirectBackend, SystemMounter
from kiosk.media.policy import BlockFacts
from kiosk.media.udev_monitor import UdevMediaWatcher
from kiosk.system.disks import disks_in_use
from tests.media.test_media_watcher_contract import _on, wait_for
from tests.media_fixtures import Loop, ext4_image, need_tools

MIB = 1024 * 1024


@pytest.fixture
def watcher(udevd: None, tmp_path: Path) -> Iterator[UdevMediaWatcher]:
    root = tmp_path / "mnt"
    made = UdevMediaWatcher(RoleClassifier(SystemMounter(DirectBackend(root))),
                            lambda: disks_in_use(root, [tmp_path]))
    made.poll(0)
    try:
        yield made
    finally:
        made.close()


def partitioned_stick(path: Path, label: str) -> Path:
    """An MBR-partitioned stick image: one FAT32 partition from sector 2048 (as sold)."""
    need_tools("mkfs.vfat", "partx")
    size = 80 * MIB
    start, count = 2048, size // 512 - 2048
    mbr = bytearray(512)
    mbr[446:462] = struct.pack("<B3sB3sII", 0, b"\0\x02\0", 0x0C, b"\xff\xff\xff", start, count)
    mbr[510:512] = b"\x55\xaa"
    with open(path, "wb") as fh:
        fh.truncate(size)
        fh.write(mbr)
    subprocess.run(["mkfs.vfat", "-F", "32", "--offset", str(start), "-n", label, str(path),
                    str(count // 2)], check=True, capture_output=True, timeout=60)
    return path


@pytest.mark.root
def test_a_partitioned_stick_is_offered_as_its_partition_not_its_disk(
        watcher: UdevMediaWatcher, tmp_path: Path) -> None:
    image = partitioned_stick(tmp_path / "fakeusb-parted.img", "PARTED")
    with Loop(image) as loop:
        subprocess.run(["partx", "-a", loop.device], check=True, capture_output=True,
                       timeout=30)
        partition = f"{loop.device}p1"
        event, _delay, seen = wait_for(watcher, _on(partition, MediaAction.INSERT))
        m = event.medium
        assert (m.kind, m.fs_type, m.label, m.role, m.disk) == (
            MediumKind.USB, "vfat", "PARTED", Role.TARGET, loop.device)
        assert loop.device not in {e.medium.device for e in seen}

        subprocess.run(["partx", "-d", loop.device], check=True, capture_output=True,
                       timeout=30)
        wait_for(watcher, _on(partition, MediaAction.REMOVE))


@pytest.mark.root
def test_a_loop_device_that_is_not_a_stick_is_never_offered(
        watcher: UdevMediaWatcher, tmp_path: Path) -> None:
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "IM1").write_bytes(b"\0" * 128 + b"DICM")
    image = ext4_image(tree, tmp_path / "build-cache.img", "INTERNAL")
    with Loop(image, settle=True) as loop:
        events = watcher.poll(1.0)
        assert loop.device not in {e.medium.device for e in events}
        assert loop.device not in {m.device for m in watcher.present()}


# ------------------------------------------------------ the diff, with enumeration faked


def _disc(uuid: str, label: str) -> BlockFacts:
    return BlockFacts(name="sr0", devnode="/dev/sr0", devtype="disk", disk="sr0",
                      disk_devnode="/dev/sr0", size=650 * MIB,
                      properties={"ID_CDROM": "1", "ID_CDROM_MEDIA": "1", "ID_FS_TYPE": "iso9660",
                                  "ID_FS_USAGE": "filesystem", "ID_FS_UUID": uuid,
                                  "ID_FS_LABEL": label})


class Drive:
    """A fake ``enumerate_block`` whose drive holds whatever disc the test puts in."""

    def __init__(self) -> None:
        self.disc: BlockFacts | None = None
        self.classified: list[str | None] = []

    def enumerate(self) -> list[BlockFacts]:
        return [self.disc] if self.disc else []

    def classify(self, medium: Medium) -> Medium:
        self.classified.append(medium.label)
        return medium.with_role(Role.SOURCE, "DICOM images found")


@pytest.fixture
def drive(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Drive, UdevMediaWatcher]]:
    d = Drive()
    monkeypatch.setattr("kiosk.media.udev_monitor.enumerate_block", d.enumerate)
    try:
        w = UdevMediaWatcher(d.classify, lambda: frozenset(), rescan_interval=0.2)
    except MediaError as exc:  # a sandbox without netlink sockets
        pytest.skip(f"cannot open a udev monitor here: {exc}")
    yield d, w
    w.close()


def test_a_disc_swapped_in_the_same_drive_is_a_remove_then_an_insert(
        drive: tuple[Drive, UdevMediaWatcher]) -> None:
    d, watcher = drive
    d.disc = _disc("2026-01-01-00", "CT_DISC")
    assert [(e.action, e.medium.label) for e in watcher.poll(0)] == [
        (MediaAction.INSERT, "CT_DISC")]
    d.disc = _disc("2026-02-02-00", "MR_DISC")  # the udev event for it was lost

    events = watcher.poll(2.0)  # found by the periodic re-enumeration

    assert [(e.action, e.medium.label) for e in events] == [
        (MediaAction.REMOVE, "CT_DISC"), (MediaAction.INSERT, "MR_DISC")]


def test_a_medium_is_classified_once_however_often_it_is_enumerated(
        drive: tuple[Drive, UdevMediaWatcher]) -> None:
    d, watcher = drive
    d.disc = _disc("2026-01-01-00", "CT_DISC")
    watcher.poll(0)
    start = time.monotonic()
    assert watcher.poll(0.7) == []  # several re-enumerations, nothing new
    assert time.monotonic() - start >= 0.6
    assert d.classified == ["CT_DISC"]
    d.disc = None
    assert [e.action for e in watcher.poll(2.0)] == [MediaAction.REMOVE]
    assert watcher.present() == []
