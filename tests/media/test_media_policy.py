"""Which block devices are offered as media, and which never are (internal and system disks).

Pure policy over udev facts, so every rule is tested here without hardware; the real watcher
tests show the same rules on loop devices under udevd.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kiosk.media.medium import MediumKind
from kiosk.media.policy import BlockFacts, medium_from, offer, unescape_udev
from kiosk.system.disks import disks_in_use, mountpoints

GIB = 1 << 30


def facts(name: str = "sdb1", *, disk: str = "sdb", removable: bool = False,
          size: int = 16 * GIB, read_only: bool = False, **props: str) -> BlockFacts:
    base = {"ID_FS_USAGE": "filesystem", "ID_FS_TYPE": "vfat"}
    return BlockFacts(name=name, devnode=f"/dev/{name}",
                      devtype="partition" if name != disk else "disk", disk=disk,
                      disk_devnode=f"/dev/{disk}", properties=base | props,
                      removable=removable, size=size, read_only=read_only)


NONE: frozenset[str] = frozenset()


def test_a_usb_stick_partition_is_offered_as_usb() -> None:
    assert offer(facts(ID_BUS="usb"), NONE) == (MediumKind.USB, "removable medium")


def test_a_disc_in_a_drive_is_offered_as_optical_whatever_the_bus() -> None:
    sata_dvd = facts("sr0", disk="sr0", ID_CDROM="1", ID_CDROM_MEDIA="1", ID_FS_TYPE="iso9660",
                     ID_BUS="ata")
    usb_dvd = facts("sr1", disk="sr1", ID_CDROM="1", ID_CDROM_MEDIA="1", ID_FS_TYPE="udf",
                    ID_BUS="usb")
    assert offer(sata_dvd, NONE)[0] is MediumKind.OPTICAL
    assert offer(usb_dvd, NONE)[0] is MediumKind.OPTICAL


def test_an_sd_card_in_a_built_in_reader_is_offered_as_removable() -> None:
    assert offer(facts("mmcblk1p1", disk="mmcblk1", removable=True), NONE)[0] is \
        MediumKind.REMOVABLE


@pytest.mark.parametrize(("device", "why"), [
    (facts("nvme0n1p2", disk="nvme0n1", ID_BUS="nvme"), "internal disk"),
    (facts("sda1", disk="sda", ID_BUS="ata"), "internal disk"),
    (facts("vda", disk="vda"), "internal disk"),
    (facts("loop3", disk="loop3"), "internal disk"),  # an engineer's image, a snap
    (facts("sr0", disk="sr0", ID_CDROM="1", size=0), "no medium"),
    (facts("sr0", disk="sr0", ID_CDROM="1", ID_CDROM_MEDIA="0", size=2048), "no disc in the drive"),
    # An audio CD and a blank DVD: no file system.
    (facts("sr0", disk="sr0", ID_CDROM="1", ID_CDROM_MEDIA="1", ID_FS_USAGE="", ID_FS_TYPE=""),
     "no file system"),
    # A partitioned stick's whole-disk node is not a medium; its partitions are.
    (facts("sdb", disk="sdb", ID_BUS="usb", ID_FS_USAGE="", ID_FS_TYPE="",
           ID_PART_TABLE_TYPE="dos"), "no file system"),
    (facts("sdb1", ID_BUS="usb", ID_FS_USAGE="crypto", ID_FS_TYPE="crypto_LUKS"),
     "no file system"),
])
def test_internal_disks_and_empty_drives_are_never_offered(device: BlockFacts, why: str) -> None:
    assert offer(device, NONE) == (None, why)


def test_a_usb_disk_the_system_boots_from_is_never_offered() -> None:
    """A Pi booting from a USB SSD: the bus says USB, the mounts say system."""
    root_partition = facts("sda2", disk="sda", ID_BUS="usb", ID_FS_TYPE="ext4")
    spare_partition = facts("sda3", disk="sda", ID_BUS="usb")
    system = frozenset({"sda", "sda2"})
    assert offer(root_partition, system) == (None, "holds the system or the kiosk's data")
    assert offer(spare_partition, system) == (None, "holds the system or the kiosk's data")
    assert offer(facts("sdb1", disk="sdb", ID_BUS="usb"), system)[0] is MediumKind.USB


def test_identity_comes_from_udev_with_usb_descriptor_strings_as_fallback() -> None:
    f = facts(ID_BUS="usb", ID_FS_LABEL="PATIENT", ID_FS_LABEL_ENC="\\xe7\\x97\\x85\\xe4\\xba"
              "\\xba USB", ID_FS_UUID="1234-ABCD", ID_VENDOR="SanDisk",
              ID_VENDOR_ENC="SanDisk\\x20", ID_MODEL="Cruzer_Blade",
              ID_MODEL_ENC="Cruzer\\x20Blade\\x20\\x20\\x20", ID_SERIAL_SHORT="4C530001")
    m = medium_from(f, MediumKind.USB)
    assert (m.device, m.disk, m.fs_type, m.uuid) == ("/dev/sdb1", "/dev/sdb", "vfat",
                                                     "1234-ABCD")
    assert (m.label, m.vendor, m.model, m.serial) == ("病人 USB", "SanDisk", "Cruzer Blade",
                                                      "4C530001")
    bare = BlockFacts(name="sdc1", devnode="/dev/sdc1", devtype="partition", disk="sdc",
                      disk_devnode="/dev/sdc", properties={"ID_FS_TYPE": "exfat"},
                      size=GIB, usb_strings=("Generic", "Flash Disk", "0123456789"))
    m = medium_from(bare, MediumKind.USB)
    assert (m.vendor, m.model, m.serial, m.label) == ("Generic", "Flash Disk", "0123456789",
                                                      None)


def test_a_disc_is_read_only_and_so_is_a_locked_sd_card() -> None:
    disc = facts("sr0", disk="sr0", ID_CDROM="1", ID_CDROM_MEDIA="1", ID_FS_TYPE="iso9660")
    assert medium_from(disc, MediumKind.OPTICAL).read_only is True
    assert medium_from(facts(read_only=True), MediumKind.REMOVABLE).read_only is True
    assert medium_from(facts(), MediumKind.USB).read_only is False


def test_gbk_labels_from_chinese_windows_are_decoded() -> None:
    assert unescape_udev("\\xb2\\xa1\\xc0\\xfa") == "病历"  # GBK bytes, not UTF-8
    assert unescape_udev("CT\\x20DISC") == "CT DISC"
    assert unescape_udev("odd\\xZZ") == "odd\\xZZ"


# ------------------------------------------------------------------------ system disks


def _sysfs(tmp: Path) -> Path:
    """A miniature /sys: sda (sda1, sda2), dm-0 on sda2, sdb (sdb1), mmcblk0 (mmcblk0p1)."""
    sys = tmp / "sys"
    devices = sys / "devices"
    layout = {"8:0": "sda", "8:1": "sda/sda1", "8:2": "sda/sda2", "8:16": "sdb",
              "8:17": "sdb/sdb1", "179:0": "mmcblk0", "179:1": "mmcblk0/mmcblk0p1",
              "254:0": "dm-0"}
    for number, rel in layout.items():
        node = devices / rel
        node.mkdir(parents=True)
        if "/" in rel:
            (node / "partition").write_text("1\n")
        (sys / "dev" / "block").mkdir(parents=True, exist_ok=True)
        (sys / "dev" / "block" / number).symlink_to(node)
        (sys / "class" / "block").mkdir(parents=True, exist_ok=True)
        (sys / "class" / "block" / node.name).symlink_to(node)
    (devices / "dm-0" / "slaves").mkdir()
    (devices / "dm-0" / "slaves" / "sda2").symlink_to(devices / "sda" / "sda2")
    return sys


def _proc(tmp: Path, mountinfo: str, swaps: str = "") -> Path:
    proc = tmp / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "mountinfo").write_text(mountinfo)
    (proc / "swaps").write_text("Filename Type Size Used Priority\n" + swaps)
    return proc


def test_disks_holding_mounted_file_systems_are_system_disks_through_dm(tmp_path: Path) -> None:
    sys = _sysfs(tmp_path)
    proc = _proc(tmp_path, (
        "22 1 254:0 / / rw,relatime - ext4 /dev/mapper/root rw\n"
        "23 22 179:1 / /boot/firmware rw - vfat /dev/mmcblk0p1 rw\n"
        "24 22 0:5 / /dev rw - devtmpfs udev rw\n"
        "30 22 8:17 / /run/medpass-kiosk/media/sdb1 ro,nosuid - vfat /dev/sdb1 ro\n"))

    used = disks_in_use(Path("/run/medpass-kiosk/media"), proc=proc, sys=sys)

    # The encrypted root on sda2 marks sda; the boot partition marks the SD card; the stick
    # the kiosk itself mounted is not a system disk.
    assert used == {"dm-0", "sda", "sda2", "mmcblk0", "mmcblk0p1"}


def test_mount_points_with_spaces_are_understood(tmp_path: Path) -> None:
    sys = _sysfs(tmp_path)
    proc = _proc(tmp_path, "40 1 8:17 / /srv/my\\040disk rw - ext4 /dev/sdb1 rw\n")
    assert disks_in_use(Path("/run/x"), proc=proc, sys=sys) == {"sdb", "sdb1"}
    assert mountpoints(proc) == {"/srv/my disk": "/dev/sdb1"}


def test_this_machine_root_disk_is_a_system_disk() -> None:
    root_dev = os.stat("/").st_dev
    if os.major(root_dev) == 0:
        pytest.skip("the root file system here has no block device (overlay, tmpfs)")
    node = Path(f"/sys/dev/block/{os.major(root_dev)}:{os.minor(root_dev)}").resolve()
    assert node.name in disks_in_use(Path("/run/medpass-kiosk/media"), [Path.cwd()])
