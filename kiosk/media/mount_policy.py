"""How a medium is mounted: file system type, options and mount point, decided in one place.

Pure (no I/O), so the whole policy is unit-tested on machines whose kernels cannot mount FAT or
ISO9660. :mod:`kiosk.media.mounter` carries the plans out.

* **Sources** (hospital media): ``ro,nosuid,nodev,noexec,nosymfollow``; the source is never
  written to, so ext2/3/4 also get ``noload`` (a read-only ext4 mount would otherwise still
  replay the journal onto the stick). Nothing on it can run, be a device, gain privileges or
  lead a path off the medium.
* **Targets** (the patient's stick): ``rw,nosuid,nodev,noexec`` owned by the kiosk user with
  ``umask=0077`` (patient data readable by the kiosk user only while mounted); FAT gets
  ``flush`` so data reaches the stick early, and ``utf8`` so Chinese names survive. Only the
  file systems a home doctor's Windows or Mac reads are targets: FAT32, exFAT, NTFS.
* File systems without Unix owners (FAT, exFAT, NTFS, UDF, ISO9660) are mounted with the kiosk
  user's ``uid``/``gid`` so it can read them without root.
* The mount point is ``<mount root>/<kernel name>`` (``/run/medpass-kiosk/media/sdb1``): never a
  label or anything else read from the medium.
* The file system type is always given (``-t``), from blkid via udev: ``mount`` never guesses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from kiosk.errors import MediaError
from kiosk.media.medium import Medium, MediumKind, Role

#: Where the mount helper mounts media on the appliance.
MOUNT_ROOT = Path("/run/medpass-kiosk/media")

SOURCE_OPTIONS = ("ro", "nosuid", "nodev", "noexec", "nosymfollow")
TARGET_OPTIONS = ("rw", "nosuid", "nodev", "noexec")

#: blkid's name -> the kernel driver used to mount it.
KERNEL_FS = {
    "vfat": "vfat", "exfat": "exfat", "ntfs": "ntfs3", "iso9660": "iso9660", "udf": "udf",
    "ext2": "ext2", "ext3": "ext3", "ext4": "ext4",
}
SOURCE_FS = frozenset(KERNEL_FS)
TARGET_FS = frozenset({"vfat", "exfat", "ntfs"})

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_FS_OPTIONS: dict[tuple[str, Role], tuple[str, ...]] = {
    ("vfat", Role.SOURCE): ("utf8", "shortname=mixed"),
    ("vfat", Role.TARGET): ("utf8", "shortname=mixed", "flush"),
    ("exfat", Role.SOURCE): ("iocharset=utf8",),
    ("exfat", Role.TARGET): ("iocharset=utf8",),
    ("ntfs", Role.SOURCE): ("iocharset=utf8",),
    ("ntfs", Role.TARGET): ("iocharset=utf8",),
    ("ext2", Role.SOURCE): ("noload",),
    ("ext3", Role.SOURCE): ("noload",),
    ("ext4", Role.SOURCE): ("noload",),
}
#: File systems without Unix ownership, and whether they take a umask.
_OWNERLESS = {"vfat": True, "exfat": True, "ntfs": True, "udf": True, "iso9660": False}


@dataclass(frozen=True)
class MountPlan:
    """One mount, fully decided."""

    device: str
    mountpoint: Path
    fs_type: str  # the kernel driver (``-t``)
    options: tuple[str, ...]
    role: Role

    def argv(self) -> list[str]:
        """The ``mount`` command line."""
        return ["mount", "-t", self.fs_type, "-o", ",".join(self.options), self.device,
                str(self.mountpoint)]


def mountpoint_for(device: str, root: Path = MOUNT_ROOT) -> Path:
    """``root/<kernel name>`` for a device node.

    Raises
    ------
    MediaError
        ``device`` is not a plain ``/dev/NAME`` node.
    """
    parent, _, name = device.rpartition("/")
    if parent != "/dev" or not _NAME.match(name):
        raise MediaError(f"{device} is not a device node the kiosk mounts.")
    return root / name


def plan_mount(medium: Medium, role: Role, *, uid: int, gid: int,
               root: Path = MOUNT_ROOT) -> MountPlan:
    """Decide how to mount ``medium`` for ``role``.

    Parameters
    ----------
    medium : Medium
        The medium (its ``fs_type`` comes from blkid through udev).
    role : Role
        ``SOURCE`` (read-only) or ``TARGET`` (the patient's copy is written to it).
    uid, gid : int
        The kiosk user, owner of the files on file systems without Unix owners.
    root : Path
        The mount root.

    Raises
    ------
    MediaError
        The file system cannot be used for this role, the medium is write-protected, or it is
        not a device node; the text says what the coordinator can do.
    """
    check_usable(medium, role)
    fs = medium.fs_type
    options = SOURCE_OPTIONS if role is Role.SOURCE else TARGET_OPTIONS
    extra = list(_FS_OPTIONS.get((fs, role), ()))
    if fs in _OWNERLESS:
        extra += [f"uid={uid}", f"gid={gid}"]
        if _OWNERLESS[fs]:
            extra.append("umask=0077")
    return MountPlan(device=medium.device, mountpoint=mountpoint_for(medium.device, root),
                     fs_type=KERNEL_FS[fs], options=(*options, *extra), role=role)


def check_usable(medium: Medium, role: Role) -> None:
    """Refuse a medium that cannot serve ``role``, saying what the coordinator can do instead.

    Raises
    ------
    MediaError
        A source in a file system the kiosk cannot read; a target that is a disc, is
        write-protected, or is formatted in a way the patient's doctor may not open.
    """
    fs = medium.fs_type
    if role is Role.SOURCE:
        if fs not in SOURCE_FS:
            raise MediaError(f"The kiosk cannot read {fs or 'unformatted'} media "
                             f"({medium.device}). Copy the images to a FAT32 or exFAT stick.")
    elif role is Role.TARGET:
        if medium.kind is MediumKind.OPTICAL:
            raise MediaError("A disc cannot take the patient's copy. Insert a USB stick.")
        if fs not in TARGET_FS:
            raise MediaError(f"This stick is formatted as {fs or 'nothing'}, which the "
                             "patient's doctor may not be able to open. Use a stick formatted "
                             "as exFAT or FAT32 (or NTFS).")
        if medium.read_only:
            raise MediaError("This stick is write-protected. Slide its lock switch off, or "
                             "use another stick.")
    else:
        raise MediaError(f"Cannot mount {medium.device} for role {role.value}.")
