"""Which disks the system itself is using, so they are never offered as media.

Read from the kernel, not guessed from names: every file system mounted outside the kiosk's own
media mount root (``/``, ``/boot/firmware``, the data partition, an overlay's lower layer), every
active swap area, and the disk under the data directory. Each is followed down through
device-mapper and RAID (``/sys/class/block/X/slaves``) to the whole disks underneath, so a
LUKS-encrypted data partition on the boot SSD still marks that SSD.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def disks_in_use(own_mount_root: Path, extra_paths: Iterable[Path] = (), *,
                 proc: Path = Path("/proc"), sys: Path = Path("/sys")) -> frozenset[str]:
    """Kernel names of the whole disks (and partitions) the system uses.

    Parameters
    ----------
    own_mount_root : Path
        Where the kiosk mounts media; mounts below it are the kiosk's own, not the system's.
    extra_paths : iterable of Path
        Paths whose disk must never be offered (the data directory).
    proc, sys : Path
        Where procfs and sysfs are (tests point them at fixtures).

    Returns
    -------
    frozenset of str
        Names such as ``{"mmcblk0", "mmcblk0p2", "sda", "dm-0"}``.
    """
    devices: set[tuple[int, int]] = set()
    root = str(own_mount_root).rstrip("/") + "/"
    for major, minor, mountpoint, source in _mounts(proc):
        if (mountpoint + "/").startswith(root):
            continue
        if major != 0:
            devices.add((major, minor))
        elif source.startswith("/dev/"):
            # btrfs and some others report an anonymous device number; the source names the disk.
            devices.update(_rdev(Path(source)))
    for source in _swaps(proc):
        devices.update(_rdev(Path(source)))
    for path in extra_paths:
        try:
            st_dev = os.stat(path).st_dev
        except OSError:
            continue
        if os.major(st_dev) != 0:
            devices.add((os.major(st_dev), os.minor(st_dev)))
    names: set[str] = set()
    for major, minor in devices:
        link = sys / "dev" / "block" / f"{major}:{minor}"
        try:
            node = link.resolve(strict=True)
        except OSError:
            continue  # not a block device (NFS, a FUSE mount)
        _collect(node, names, sys, depth=0)
    return frozenset(names)


def _collect(node: Path, names: set[str], sys: Path, depth: int) -> None:
    """Add ``node``'s name, its whole disk's, and those under it (dm/md slaves), recursively."""
    if depth > 16:  # a cycle in sysfs would be a kernel bug; do not loop forever on it
        return
    names.add(node.name)
    if (node / "partition").exists():
        names.add(node.parent.name)
    slaves = node / "slaves"
    if slaves.is_dir():
        for slave in slaves.iterdir():
            target = sys / "class" / "block" / slave.name
            try:
                _collect(target.resolve(strict=True), names, sys, depth + 1)
            except OSError:
                continue


def _mounts(proc: Path) -> list[tuple[int, int, str, str]]:
    """``(major, minor, mount point, source)`` for every mount of this process's namespace."""
    out: list[tuple[int, int, str, str]] = []
    try:
        text = (proc / "self" / "mountinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        fields = line.split()
        try:
            major_s, minor_s = fields[2].split(":")
            sep = fields.index("-")
            source = fields[sep + 2]
        except (IndexError, ValueError):
            continue
        out.append((int(major_s), int(minor_s), _unescape(fields[4]), _unescape(source)))
    return out


def _swaps(proc: Path) -> list[str]:
    try:
        lines = (proc / "swaps").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    return [_unescape(line.split()[0]) for line in lines[1:] if line.split()]


def _rdev(path: Path) -> set[tuple[int, int]]:
    try:
        rdev = os.stat(path).st_rdev
    except OSError:
        return set()
    return {(os.major(rdev), os.minor(rdev))} if rdev else set()


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as ``\\040`` etc."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 3 < len(field) and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mountpoints(proc: Path = Path("/proc")) -> dict[str, str]:
    """Mount point -> source for every mount of this process's namespace (last one wins)."""
    return {mountpoint: source for _maj, _min, mountpoint, source in _mounts(proc)}
