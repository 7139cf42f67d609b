"""Removable media as the kiosk sees them: what a medium is, what it is for, what happened to it.

A :class:`Medium` is one readable file system on a disc or stick (a stick's partition, a CD in a
drive, or a folder standing in for one in the demo and in tests). Watchers report
:class:`MediaEvent` values; the :class:`MediaWatcher` protocol is what the desk, ``kiosk
watch`` and the UI rely on. Two implementations pass the same contract tests
(``tests/media/test_media_watcher_contract.py``):
:class:`kiosk.media.udev_monitor.UdevMediaWatcher` on real
devices and :class:`kiosk.media.fake_media.FakeMediaWatcher` over a pipe.

Nothing here touches hardware, so every other media module can share these types.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from kiosk.sources.source import Source


class MediumKind(StrEnum):
    """What sort of thing the coordinator inserted."""

    OPTICAL = "optical"  # a CD/DVD/BD in a drive (internal SATA or USB)
    USB = "usb"  # a USB stick, disk or card reader
    REMOVABLE = "removable"  # another removable block device (an SD card reader slot)


class Role(StrEnum):
    """What the kiosk will use a medium for."""

    SOURCE = "source"  # it holds DICOM: import from it, never write to it
    TARGET = "target"  # an empty or non-DICOM stick: a candidate for the patient's copy
    UNKNOWN = "unknown"  # unreadable, or a disc without DICOM (a disc is never a target)


class MediaAction(StrEnum):
    """What happened."""

    INSERT = "insert"
    REMOVE = "remove"
    CHANGE = "change"  # same medium, new role (a coordinator's override)


class MediumView(Protocol):
    """The two things a role decision needs from a medium, however it is read."""

    def files(self) -> Iterator[str]:
        """Relative paths of regular files (any order; the caller stops early)."""
        ...

    def head(self, path: str, size: int) -> bytes:
        """The first ``size`` bytes of ``path`` (fewer if the file is shorter).

        Raises
        ------
        KioskError or OSError
            The file cannot be read.
        """
        ...


@dataclass(frozen=True, slots=True)
class Medium:
    """One file system on a removable medium, with the identity the audit trail records.

    Attributes
    ----------
    device : str
        The device node (``/dev/sdb1``, ``/dev/sr0``), or the folder of a simulated medium.
    kind : MediumKind
        Disc, USB, or another removable device.
    fs_type : str
        ``iso9660``, ``udf``, ``vfat``, ``exfat``, ``ntfs``, ... as blkid names it.
    label, uuid : str or None
        Volume label and file system UUID/serial.
    vendor, model, serial : str or None
        The device's identity (USB descriptor strings, drive model).
    size : int
        Bytes on the device (partition).
    read_only : bool
        The device is write-protected (a disc, a stick with its lock switch on).
    disk : str
        The whole-disk device node, what is ejected (``/dev/sdb`` for ``/dev/sdb1``).
    role, role_reason : Role, str
        What the kiosk will use it for, and why in a few words (shown to the coordinator).
    """

    device: str
    kind: MediumKind
    fs_type: str = ""
    label: str | None = None
    uuid: str | None = None
    vendor: str | None = None
    model: str | None = None
    serial: str | None = None
    size: int = 0
    read_only: bool = False
    disk: str = ""
    role: Role = Role.UNKNOWN
    role_reason: str = ""

    def same_medium(self, other: Medium) -> bool:
        """Whether ``other`` is this medium, seen again (a disc swapped in the drive is not)."""
        return self.identity() == other.identity()

    def identity(self) -> tuple[object, ...]:
        """What tells one medium from another in the same slot (role excluded)."""
        return (self.device, self.kind, self.fs_type, self.label, self.uuid, self.serial,
                self.size)

    def with_role(self, role: Role, reason: str) -> Medium:
        """A copy with another role."""
        return replace(self, role=role, role_reason=reason)

    def to_json(self) -> dict[str, Any]:
        """The medium as a JSON-ready dict (``kiosk watch --json``, the audit trail)."""
        data = asdict(self)
        data["kind"] = self.kind.value
        data["role"] = self.role.value
        return data


@dataclass(frozen=True, slots=True)
class MediaEvent:
    """A medium was inserted, removed, or changed role."""

    action: MediaAction
    medium: Medium

    def to_json(self) -> dict[str, Any]:
        """``{"action": ..., "device": ..., "role": ..., ...}``: one line of ``kiosk watch``."""
        return {"action": self.action.value, **self.medium.to_json()}


class MediaWatcher(Protocol):
    """Reports media as they come and go.

    The contract (``tests/media/test_media_watcher_contract.py``), for every implementation:

    * Media already present when the watcher starts are reported as ``insert`` events by the
      first :meth:`poll`, so a kiosk started with a disc in the drive sees it.
    * Each insert carries the medium's role, already decided (bounded in time).
    * A removed medium is reported once as ``remove`` with the same ``device``; a medium
      swapped in the same slot is a ``remove`` then an ``insert``.
    * :meth:`fileno` becomes readable when something may have happened, so a caller can wait
      on several watchers and pipes with ``select``; :meth:`poll` may then still return ``[]``.
    """

    def fileno(self) -> int:
        """A descriptor that becomes readable when :meth:`poll` may have events."""
        ...

    def poll(self, timeout: float | None = None) -> list[MediaEvent]:
        """Wait up to ``timeout`` seconds (None: forever) for events; return them, or ``[]``.

        Raises
        ------
        MediaError
            The watcher is closed or its event source failed.
        """
        ...

    def present(self) -> list[Medium]:
        """The media present as of the last :meth:`poll`, in device order."""
        ...

    def close(self) -> None:
        """Stop watching; safe to call twice."""
        ...


class Mounter(Protocol):
    """Gives access to the files of a medium the watcher reported.

    Implementations: :class:`kiosk.media.mounter.SystemMounter` (real devices: ISO9660 read in user
    space, everything else mounted by policy) and :class:`kiosk.media.fake_media.FakeMounter`
    (folders standing in for media).
    """

    def look(self, medium: Medium) -> AbstractContextManager[MediumView]:
        """A short, read-only look for the role decision; nothing stays mounted afterwards.

        Raises
        ------
        KioskError
            The medium cannot be read.
        """
        ...

    def open_source(self, medium: Medium) -> Source:
        """Open the medium read-only for an import; :meth:`release` it afterwards.

        Raises
        ------
        MediaError, SourceError
            It cannot be mounted or read.
        """
        ...

    def mount_target(self, medium: Medium) -> Path:
        """Make the medium writable for the patient's copy; return the folder to write into.

        Raises
        ------
        MediaError
            A disc, a write-protected stick, or a file system the doctor may not open.
        """
        ...

    def release(self, medium: Medium) -> None:
        """Unmount what :meth:`open_source`/:meth:`mount_target` mounted (no-op otherwise).

        Raises
        ------
        MediaError
            It is still in use.
        """
        ...

    def eject(self, medium: Medium) -> None:
        """Release the medium, then eject the disc or stop the stick so it can be pulled."""
        ...

    def forget(self, medium: Medium) -> None:
        """The medium was pulled without warning: detach its mount and clean up. Never raises."""
        ...

    def cleanup(self) -> list[str]:
        """Detach mounts a crashed kiosk left behind; call once when the appliance starts.

        Returns
        -------
        list of str
            The mount points detached.
        """
        ...
