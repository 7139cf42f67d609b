"""Mounting safely: the policy (options, owners, which media, where), the commands it turns
into, cleaning up after a pulled medium, and the real mount path on an ext4 loop device.

The kernels here cannot mount FAT or ISO9660, so the policy for those is checked on the exact
``mount`` command lines; ext4, which the kernel here does mount, goes through the real path
(udev facts -> policy -> ``mount`` -> import -> ``umount``).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from kiosk.errors import MediaError
from kiosk.media import mount_helper
from kiosk.media.medium import Medium, MediumKind, Role
from kiosk.media.mount_policy import mountpoint_for, plan_mount
from kiosk.media.mounter import (
    DirectBackend,
    HelperBackend,
    SystemMounter,
    reads_in_user_space,
)
from kiosk.samples.bulk import write_study
from kiosk.system.disks import mountpoints
from tests.media_fixtures import Loop, device_size, ext4_image

ROOT = Path("/run/medpass-kiosk/media")


def stick(fs: str = "vfat", device: str = "/dev/sdb1", **kw: object) -> Medium:
    return Medium(device=device, kind=MediumKind.USB, fs_type=fs, label="STICK",
                  disk=device.rstrip("0123456789"), **kw)  # type: ignore[arg-type]


def disc(fs: str = "iso9660") -> Medium:
    return Medium(device="/dev/sr0", kind=MediumKind.OPTICAL, fs_type=fs, read_only=True,
                  disk="/dev/sr0")


# ------------------------------------------------------------------------------- policy


@pytest.mark.parametrize(("fs", "kernel", "extra"), [
    ("vfat", "vfat", ("utf8", "shortname=mixed", "uid=1000", "gid=1000", "umask=0077")),
    ("exfat", "exfat", ("iocharset=utf8", "uid=1000", "gid=1000", "umask=0077")),
    ("ntfs", "ntfs3", ("iocharset=utf8", "uid=1000", "gid=1000", "umask=0077")),
    ("ext4", "ext4", ("noload",)),  # no journal replay onto a hospital stick
    ("udf", "udf", ("uid=1000", "gid=1000", "umask=0077")),
    ("iso9660", "iso9660", ("uid=1000", "gid=1000")),
])
def test_sources_are_mounted_read_only_nosuid_nodev_noexec(fs: str, kernel: str,
                                                            extra: tuple[str, ...]) -> None:
    plan = plan_mount(stick(fs), Role.SOURCE, uid=1000, gid=1000)
    assert plan.options == ("ro", "nosuid", "nodev", "noexec", "nosymfollow", *extra)
    assert plan.argv() == ["mount", "-t", kernel, "-o", ",".join(plan.options), "/dev/sdb1",
                           "/run/medpass-kiosk/media/sdb1"]


@pytest.mark.parametrize(("fs", "extra"), [
    ("vfat", ("utf8", "shortname=mixed", "flush", "uid=1000", "gid=1000", "umask=0077")),
    ("exfat", ("iocharset=utf8", "uid=1000", "gid=1000", "umask=0077")),
    ("ntfs", ("iocharset=utf8", "uid=1000", "gid=1000", "umask=0077")),
])
def test_targets_are_owned_by_the_kiosk_user_and_private(fs: str,
                                                         extra: tuple[str, ...]) -> None:
    plan = plan_mount(stick(fs), Role.TARGET, uid=1000, gid=1000)
    assert plan.options == ("rw", "nosuid", "nodev", "noexec", *extra)


@pytest.mark.parametrize(("medium", "role", "message"), [
    (disc(), Role.TARGET, "A disc cannot take the patient's copy"),
    (stick("ext4"), Role.TARGET, "formatted as ext4"),
    (stick("hfsplus"), Role.TARGET, "formatted as hfsplus"),
    (stick(read_only=True), Role.TARGET, "write-protected"),
    (stick("hfsplus"), Role.SOURCE, "cannot read hfsplus media"),
    (stick(""), Role.SOURCE, "cannot read unformatted media"),
    (stick(), Role.UNKNOWN, "for role unknown"),
])
def test_media_that_cannot_serve_a_role_are_refused_with_what_to_do(
        medium: Medium, role: Role, message: str) -> None:
    with pytest.raises(MediaError, match=message):
        plan_mount(medium, role, uid=1000, gid=1000)


@pytest.mark.parametrize("device", ["/dev/../etc", "/dev/disk/by-label/x", "/tmp/sdb1",
                                    "/dev/.hidden", "/dev/sd b", "sdb1"])
def test_the_mount_point_is_never_taken_from_anything_but_a_plain_device_name(
        device: str) -> None:
    with pytest.raises(MediaError):
        mountpoint_for(device)
    assert mountpoint_for("/dev/sdb1") == ROOT / "sdb1"


# ------------------------------------------------------------------ commands it runs


class Machine:
    """Records commands and keeps a mount table, like the kernel would."""

    def __init__(self, fail: dict[str, int] | None = None) -> None:
        self.commands: list[list[str]] = []
        self.mounted: set[str] = set()
        self.fail = fail or {}  # command name -> how many times it fails first
        self.sleeps: list[float] = []

    def run(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        argv = list(argv)
        self.commands.append(argv)
        if self.fail.get(argv[0], 0) > 0:
            self.fail[argv[0]] -= 1
            return subprocess.CompletedProcess(argv, 32, "", f"{argv[0]}: target is busy.")
        if argv[0] == "mount":
            self.mounted.add(argv[-1])
        elif argv[0] == "umount":
            self.mounted.discard(argv[-1])
        return subprocess.CompletedProcess(argv, 0, "", "")

    def is_mounted(self, path: Path) -> bool:
        return str(path) in self.mounted


@pytest.fixture
def machine() -> Machine:
    return Machine()


def backend(machine: Machine, root: Path) -> DirectBackend:
    return DirectBackend(root, uid=1000, gid=1000, run=machine.run,
                         is_mounted=machine.is_mounted, sleep=machine.sleeps.append)


def test_a_stick_is_mounted_then_unmounted_and_its_mount_point_removed(
        machine: Machine, tmp_path: Path) -> None:
    mounter = SystemMounter(backend(machine, tmp_path))
    medium = stick("exfat")

    source = mounter.open_source(medium)
    mountpoint = tmp_path / "sdb1"
    assert machine.commands == [["mount", "-t", "exfat", "-o",
                                 "ro,nosuid,nodev,noexec,nosymfollow,iocharset=utf8,uid=1000,"
                                 "gid=1000,umask=0077", "/dev/sdb1", str(mountpoint)]]
    assert source.description == str(mountpoint) and mountpoint.is_dir()
    assert oct(mountpoint.stat().st_mode & 0o777) == "0o700"

    mounter.release(medium)
    assert machine.commands[-1] == ["umount", str(mountpoint)]
    assert not mountpoint.exists()


def test_the_patient_stick_is_remounted_writable_only_for_the_export(
        machine: Machine, tmp_path: Path) -> None:
    mounter = SystemMounter(backend(machine, tmp_path))
    medium = stick("vfat")
    mounter.open_source(medium)
    target = mounter.mount_target(medium)
    assert [c[0] for c in machine.commands] == ["mount", "umount", "mount"]
    assert machine.commands[-1][4].startswith("rw,nosuid,nodev,noexec,utf8,shortname=mixed,"
                                              "flush,uid=1000")
    assert mounter.mount_target(medium) == target  # already writable: no second mount
    assert len(machine.commands) == 3


def test_a_busy_mount_is_retried_then_reported(machine: Machine, tmp_path: Path) -> None:
    mounter = SystemMounter(backend(machine, tmp_path))
    medium = stick()
    mounter.mount_target(medium)
    machine.fail["umount"] = 2
    mounter.release(medium)  # two "busy" answers, then it goes
    assert [c[0] for c in machine.commands] == ["mount", "umount", "umount", "umount"]
    assert machine.sleeps == pytest.approx([0.2, 0.4])

    mounter.mount_target(medium)
    machine.fail["umount"] = 99
    with pytest.raises(MediaError, match="still in use"):
        mounter.release(medium)


def test_a_stick_pulled_without_warning_is_detached_lazily_and_cleaned_up(
        machine: Machine, tmp_path: Path) -> None:
    mounter = SystemMounter(backend(machine, tmp_path))
    medium = stick()
    mounter.mount_target(medium)

    mounter.forget(medium)

    assert machine.commands[-1] == ["umount", "-l", str(tmp_path / "sdb1")]
    assert not (tmp_path / "sdb1").exists()
    assert machine.mounted == set()
    mounter.forget(medium)  # a second report of the same removal does nothing
    assert len(machine.commands) == 2


def test_a_stale_mount_in_the_same_slot_is_detached_before_mounting_again(
        machine: Machine, tmp_path: Path) -> None:
    machine.mounted.add(str(tmp_path / "sdb1"))  # a stick pulled while the kiosk was down
    backend(machine, tmp_path).mount(stick(), Role.SOURCE)
    assert [c[:2] for c in machine.commands] == [["umount", "-l"], ["mount", "-t"]]


def test_a_failed_mount_leaves_no_mount_point(tmp_path: Path) -> None:
    machine = Machine(fail={"mount": 1})
    with pytest.raises(MediaError, match="cannot be mounted"):
        backend(machine, tmp_path).mount(stick(), Role.SOURCE)
    assert list(tmp_path.iterdir()) == []


def test_discs_and_sticks_are_ejected_loop_devices_are_not(machine: Machine,
                                                           tmp_path: Path) -> None:
    b = backend(machine, tmp_path)
    b.eject(disc())
    b.eject(stick(device="/dev/sdc1"))
    b.eject(stick(device="/dev/loop3"))
    assert machine.commands == [["eject", "/dev/sr0"], ["eject", "/dev/sdc"]]


def test_discs_are_read_without_mounting(machine: Machine, tmp_path: Path) -> None:
    assert reads_in_user_space(disc("iso9660"))
    assert not reads_in_user_space(stick("vfat"))
    assert not reads_in_user_space(disc("udf"))  # /dev/sr0 cannot be read here: neither kind


def test_an_unprivileged_kiosk_only_passes_device_and_role_to_the_helper(
        machine: Machine) -> None:
    def helper_run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        machine.commands.append(list(argv))
        out = json.dumps({"mountpoint": "/run/medpass-kiosk/media/sdb1"}) \
            if argv[3] == "mount" else ""
        return subprocess.CompletedProcess(argv, 0, out, "")

    helper = HelperBackend("/opt/kiosk/bin/kiosk-mount-helper", run=helper_run)
    assert helper.mount(stick(), Role.TARGET) == ROOT / "sdb1"
    helper.unmount("/dev/sdb1")
    helper.forget("/dev/sdb1")
    helper.eject(stick())
    prefix = ["sudo", "-n", "/opt/kiosk/bin/kiosk-mount-helper"]
    assert machine.commands == [[*prefix, "mount", "--role", "target", "/dev/sdb1"],
                                [*prefix, "unmount", "/dev/sdb1"],
                                [*prefix, "forget", "/dev/sdb1"],
                                [*prefix, "eject", "/dev/sdb1"]]


def test_a_helper_refusal_is_reported_with_a_hint() -> None:
    def refuse(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 1, "", "sudo: a password is required")

    with pytest.raises(MediaError, match=r"a password is required.*kiosk doctor"):
        HelperBackend("/x/kiosk-mount-helper", run=refuse).mount(stick(), Role.SOURCE)


# ----------------------------------------------------------------------- real mounts

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount, loop devices)")


@pytest.mark.root
@root_only
def test_the_helper_refuses_the_machines_own_disk(capsys: pytest.CaptureFixture[str],
                                                  udevd: None) -> None:
    root_dev = os.stat("/").st_dev
    node = Path(f"/sys/dev/block/{os.major(root_dev)}:{os.minor(root_dev)}")
    if os.major(root_dev) == 0 or not node.exists():
        pytest.skip("the root file system here has no block device")
    device = "/dev/" + node.resolve().name
    assert mount_helper.main(["mount", "--role", "target", device]) == 1
    assert "is not a removable medium the kiosk may use" in capsys.readouterr().err
    assert mount_helper.main(["unmount", "/dev/../etc"]) == 1


@pytest.mark.root
@root_only
def test_an_ext4_stick_is_really_mounted_read_only_imported_and_unmounted(
        udevd: None, tmp_path: Path) -> None:
    """The real path: udev facts -> policy -> mount -> DirectorySource -> umount."""
    tree = tmp_path / "tree"
    files = write_study(tree, instances=3, rows=16, columns=16)
    image = ext4_image(tree, tmp_path / "fakeusb-ext4.img", "EXT_STICK")
    root = tmp_path / "mnt"
    with Loop(image, settle=True) as loop:
        medium = helper_view(loop.device)
        assert (medium.kind, medium.fs_type, medium.label) == (MediumKind.USB, "ext4",
                                                               "EXT_STICK")
        mounter = SystemMounter(DirectBackend(root))
        source = mounter.open_source(medium)
        try:
            mountpoint = root / Path(loop.device).name
            options = _mount_options(mountpoint)
            assert {"ro", "nosuid", "nodev", "noexec", "nosymfollow"} <= options
            names = sorted(e.path for e in source.entries())
            assert names[:3] == sorted(p.name for p in files)
            with pytest.raises(OSError):
                (mountpoint / "written-by-kiosk").write_bytes(b"x")  # read-only for real
        finally:
            mounter.release(medium)
        assert str(mountpoint) not in mountpoints() and not mountpoint.exists()
        assert device_size(loop.device) > 0


@pytest.mark.root
@root_only
def test_a_mounted_stick_pulled_without_warning_is_lazily_detached_and_freed(
        udevd: None, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    write_study(tree, instances=2, rows=16, columns=16)
    image = ext4_image(tree, tmp_path / "fakeusb-pulled.img", "PULLED")
    root = tmp_path / "mnt"
    with Loop(image, settle=True) as loop:
        medium = helper_view(loop.device)
        mounter = SystemMounter(DirectBackend(root))
        mounter.open_source(medium)
        mountpoint = root / Path(loop.device).name
        assert str(mountpoint) in mountpoints()
        # Pulled: the kernel keeps a mounted loop device until the last user lets go...
        subprocess.run(["losetup", "-d", loop.device], check=True, timeout=30)
        loop.attached = False
        assert device_size(loop.device) > 0

        mounter.forget(medium)

        # ...which the lazy unmount is: the mount is gone, so is the device.
        assert str(mountpoint) not in mountpoints() and not mountpoint.exists()
        assert device_size(loop.device) == 0
        assert SystemMounter(DirectBackend(root)).cleanup() == []


def helper_view(device: str) -> Medium:
    """The medium as the helper would judge it (policy on fresh udev facts)."""
    from kiosk.media.policy import medium_from, offer
    from kiosk.media.udev_monitor import describe

    facts = describe(device)
    kind, why = offer(facts, frozenset())
    assert kind is not None, why
    return medium_from(facts, kind)


def _mount_options(mountpoint: Path) -> set[str]:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == str(mountpoint):
            return set(fields[5].split(","))
    raise AssertionError(f"{mountpoint} is not mounted")
