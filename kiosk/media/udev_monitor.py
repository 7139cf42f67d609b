"""Media from udev: the real :class:`~kiosk.media.medium.MediaWatcher` (the only module importing
pyudev).

A udev event only triggers a re-enumeration; the enumeration is the truth. Events get lost
(netlink buffers overflow, the kiosk starts with a disc already in the drive, a loop device's
detach is a ``change`` that says nothing about what changed), so on every event - and every few
seconds anyway - every block device is listed again, filtered by :mod:`kiosk.media.policy`,
and compared with what was offered before: new media are inserts, missing ones removes, a
different disc in the same drive a remove and an insert. Roles are decided once per medium by
the ``classify`` callable the composition root passes in.

Events covered: ``change`` on ``sr*`` when a disc is inserted or ejected (``ID_CDROM_MEDIA``),
``add``/``remove`` of USB disks and partitions, ``change`` on whole disks (card readers, loop
devices). Vendor, model and serial come from udev's ``ID_*`` properties, else from the USB
device's sysfs descriptor strings (the same strings pyusb would read, without needing raw USB
access), so pyusb is not needed here.
"""

from __future__ import annotations

import errno
import logging
import select
import time
from collections.abc import Callable
from pathlib import Path

import pyudev  # type: ignore[import-untyped]

from kiosk.errors import MediaError
from kiosk.media.medium import MediaAction, MediaEvent, Medium
from kiosk.media.policy import BlockFacts, medium_from, offer

log = logging.getLogger(__name__)

#: udevd's control socket: present while udevd runs.
UDEV_CONTROL = Path("/run/udev/control")

Classifier = Callable[[Medium], Medium]
SystemDisks = Callable[[], frozenset[str]]


def udevd_status() -> tuple[bool, str]:
    """Whether udevd is running and has processed block devices (for ``kiosk doctor``)."""
    if not UDEV_CONTROL.exists():
        return False, "udevd is not running (no /run/udev/control)"
    try:
        context = pyudev.Context()
        devices = list(context.list_devices(subsystem="block"))
    except (OSError, pyudev.DeviceNotFoundError) as exc:
        return False, f"the udev database cannot be read: {exc}"
    known = sum(1 for d in devices if d.is_initialized)
    return True, f"udevd is running ({known} of {len(devices)} block devices in its database)"


def optical_drives() -> list[tuple[str, str]]:
    """``(device node, model)`` of every optical drive udev knows (disc or not)."""
    context = pyudev.Context()
    out = []
    for device in context.list_devices(subsystem="block", DEVTYPE="disk"):
        if device.properties.get("ID_CDROM") == "1" and device.device_node:
            model = device.properties.get("ID_MODEL", "").replace("_", " ") or "unknown model"
            out.append((device.device_node, model))
    return sorted(out)


def describe(devnode: str) -> BlockFacts:
    """What udev and sysfs say about the block device ``devnode`` now.

    Raises
    ------
    MediaError
        ``devnode`` is not a block device udev knows.
    """
    try:
        context = pyudev.Context()
        device = pyudev.Devices.from_device_file(context, devnode)
    except (OSError, ValueError, pyudev.DeviceNotFoundError) as exc:
        raise MediaError(f"{devnode} is not a block device the system knows ({exc}).") from exc
    facts = _facts(device)
    if facts is None:
        raise MediaError(f"{devnode} is not a disk or a partition.")
    return facts


def enumerate_block() -> list[BlockFacts]:
    """Facts of every disk and partition, in device-node order."""
    context = pyudev.Context()
    facts = [_facts(d) for d in context.list_devices(subsystem="block")]
    return sorted((f for f in facts if f is not None), key=lambda f: f.devnode)


def _facts(device: pyudev.Device) -> BlockFacts | None:
    if device.subsystem != "block" or device.device_type not in ("disk", "partition"):
        return None
    if not device.device_node:
        return None
    disk = device
    if device.device_type == "partition":
        parent = device.find_parent("block", "disk")
        if parent is None:
            return None
        disk = parent
    try:
        size = (device.attributes.asint("size") or 0) * 512  # always 512-byte sectors in sysfs
    except (KeyError, ValueError):
        size = 0
    return BlockFacts(
        name=device.sys_name,
        devnode=device.device_node,
        devtype=device.device_type,
        disk=disk.sys_name,
        disk_devnode=disk.device_node or device.device_node,
        properties=dict(device.properties),
        removable=_attr(disk, "removable") == "1",
        size=size,
        read_only=_attr(device, "ro") == "1",
        usb_strings=_usb_strings(disk),
    )


def _attr(device: pyudev.Device, name: str) -> str | None:
    value = device.attributes.get(name)
    return value.decode("utf-8", "replace").strip() if value is not None else None


def _usb_strings(disk: pyudev.Device) -> tuple[str | None, str | None, str | None]:
    usb = disk.find_parent("usb", "usb_device")
    if usb is None:
        return None, None, None
    return _attr(usb, "manufacturer"), _attr(usb, "product"), _attr(usb, "serial")


class UdevMediaWatcher:
    """Watch block devices through udev; see the module docstring and :class:`MediaWatcher`.

    Parameters
    ----------
    classify : callable
        ``Medium -> Medium`` with its role decided (:class:`kiosk.media.desk.RoleClassifier`).
        Called once per new medium, in :meth:`poll`'s thread.
    system_disks : callable
        Returns the kernel names of disks never to offer (:mod:`kiosk.system.disks`); called
        on every enumeration, since mounts change.
    rescan_interval : float
        Seconds between enumerations when no event comes (lost events are found this way).

    Raises
    ------
    MediaError
        The udev monitor cannot be opened.
    """

    def __init__(self, classify: Classifier, system_disks: SystemDisks, *,
                 rescan_interval: float = 5.0) -> None:
        self._classify = classify
        self._system_disks = system_disks
        self._rescan_interval = rescan_interval
        self._present: dict[str, Medium] = {}
        self._started = False
        self._closed = False
        try:
            self._context = pyudev.Context()
            self._monitor = pyudev.Monitor.from_netlink(self._context)
            self._monitor.filter_by("block")
            # Start listening before the first enumeration, so nothing falls between the two.
            self._monitor.start()
        except (OSError, pyudev.DeviceNotFoundError) as exc:
            raise MediaError(f"Cannot listen to udev: {exc}. Is udevd running? Try "
                             "`kiosk doctor`.") from exc
        self._last_scan = 0.0

    def fileno(self) -> int:
        """The netlink socket: readable when udev has announced a block device event."""
        return int(self._monitor.fileno())

    def poll(self, timeout: float | None = None) -> list[MediaEvent]:
        """Wait up to ``timeout`` s for a change in the media present; return the events.

        The first call reports media already present as inserts.

        Raises
        ------
        MediaError
            The watcher is closed.
        """
        if self._closed:
            raise MediaError("The media watcher is closed.")
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._started:
            self._started = True
            self._drain()
            events = self._rescan()
            if events:
                return events
        while True:
            now = time.monotonic()
            wait = self._rescan_interval - (now - self._last_scan)
            if deadline is not None:
                wait = min(wait, deadline - now)
            ready, _, _ = select.select([self], [], [], max(wait, 0.0))
            if ready:
                self._drain()
            if ready or time.monotonic() - self._last_scan >= self._rescan_interval:
                events = self._rescan()
                if events:
                    return events
            if deadline is not None and time.monotonic() >= deadline:
                return []

    def present(self) -> list[Medium]:
        """Media offered as of the last enumeration; safe to call from another thread."""
        snapshot = self._present.copy()  # one C-level copy: atomic under the GIL
        return [snapshot[k] for k in sorted(snapshot)]

    def close(self) -> None:
        """Stop listening to udev."""
        if not self._closed:
            self._closed = True
            # pyudev has no stop(): the netlink socket closes when libudev's monitor is
            # unreferenced, which dropping our (only) reference does.
            del self._monitor

    def __enter__(self) -> UdevMediaWatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------------------- internals

    def _drain(self) -> None:
        """Swallow queued events: they only say "look again", which the caller then does.

        An overflowing netlink buffer (ENOBUFS: events were lost) is fine for the same reason.
        """
        for _ in range(100_000):  # bounded: an event storm must not pin the watcher here
            try:
                if self._monitor.poll(timeout=0) is None:
                    return
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise MediaError(f"Lost the connection to udev: {exc}.") from exc

    def _rescan(self) -> list[MediaEvent]:
        self._last_scan = time.monotonic()
        system = self._system_disks()
        found: dict[str, Medium] = {}
        for facts in enumerate_block():
            kind, _why = offer(facts, system)
            if kind is None:
                continue
            found[facts.devnode] = medium_from(facts, kind)
        events: list[MediaEvent] = []
        for device in sorted(set(self._present) - set(found)):
            events.append(MediaEvent(MediaAction.REMOVE, self._present.pop(device)))
        for device in sorted(found):
            seen = found[device]
            old = self._present.get(device)
            if old is not None and old.same_medium(seen):
                continue
            if old is not None:  # another disc in the same drive: the old one went first
                events.append(MediaEvent(MediaAction.REMOVE, self._present.pop(device)))
            medium = self._classify(seen)
            self._present[device] = medium
            log.info("medium %s %s: %s (%s)", device, medium.fs_type, medium.role.value,
                     medium.role_reason)
            events.append(MediaEvent(MediaAction.INSERT, medium))
        return events

