"""Which block devices the kiosk may offer to the coordinator, and as what.

Pure policy over :class:`BlockFacts` (what udev and sysfs say about one block device), so every
rule is unit-tested without hardware. :mod:`kiosk.media.udev_monitor` gathers the facts;
:mod:`kiosk.system.disks` says which disks the system itself uses.

A device is offered only when all of these hold:

* its disk holds nothing the system uses: no mounted file system outside the kiosk's own
  media mounts (the root file system, ``/boot``, the data directory), no active swap, no
  device-mapper or RAID member of those. A Pi booting from a USB SSD is a USB disk too: this
  rule, not the bus, keeps it out;
* it is a disc in an optical drive, or on the USB bus, or marked removable by the kernel;
  internal SATA/NVMe/virtio disks never are;
* it carries a file system (a stick's partitions are offered, not its partition table; an
  audio CD or a blank disc is not offered).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from kiosk.media.medium import Medium, MediumKind


@dataclass(frozen=True)
class BlockFacts:
    """What is known about one block device (a whole disk or a partition).

    Attributes
    ----------
    name : str
        Kernel name (``sdb1``).
    devnode : str
        Device node (``/dev/sdb1``).
    devtype : str
        ``disk`` or ``partition``.
    disk : str
        Kernel name of the whole disk (``sdb``); ``name`` itself for a disk.
    disk_devnode : str
        Device node of the whole disk.
    properties : Mapping[str, str]
        The udev properties (``ID_BUS``, ``ID_FS_TYPE``, ``ID_CDROM_MEDIA``, ...).
    removable : bool
        The disk's sysfs ``removable`` flag.
    size : int
        Size in bytes (0 for an empty drive or a detached loop device).
    read_only : bool
        The sysfs ``ro`` flag.
    usb_strings : tuple of (str or None)
        ``(manufacturer, product, serial)`` of the USB device the disk hangs off, read from
        sysfs: the same descriptor strings pyusb would read, for when udev lacks them.
    """

    name: str
    devnode: str
    devtype: str
    disk: str
    disk_devnode: str
    properties: Mapping[str, str] = field(default_factory=dict)
    removable: bool = False
    size: int = 0
    read_only: bool = False
    usb_strings: tuple[str | None, str | None, str | None] = (None, None, None)


def offer(facts: BlockFacts, system_disks: frozenset[str]) -> tuple[MediumKind | None, str]:
    """Decide whether ``facts`` is a medium the coordinator may use.

    Parameters
    ----------
    facts : BlockFacts
        The device.
    system_disks : frozenset of str
        Kernel names of disks the system uses (:func:`kiosk.system.disks.disks_in_use`).

    Returns
    -------
    (MediumKind or None, str)
        The kind when offered, else None; and the reason, in words (for logs and doctor).
    """
    props = facts.properties
    if facts.disk in system_disks or facts.name in system_disks:
        return None, "holds the system or the kiosk's data"
    if props.get("ID_CDROM") == "1":
        kind = MediumKind.OPTICAL
    elif props.get("ID_BUS") == "usb":
        kind = MediumKind.USB
    elif facts.removable:
        kind = MediumKind.REMOVABLE
    else:
        return None, "internal disk"
    if facts.size <= 0:
        return None, "no medium"
    if kind is MediumKind.OPTICAL and props.get("ID_CDROM_MEDIA") != "1":
        return None, "no disc in the drive"
    if props.get("ID_FS_USAGE") != "filesystem" or not props.get("ID_FS_TYPE"):
        # A partitioned stick's disk node, an audio CD, a blank or unformatted medium.
        return None, "no file system"
    return kind, "removable medium"


def medium_from(facts: BlockFacts, kind: MediumKind) -> Medium:
    """The :class:`Medium` (role not yet decided) for an offered device."""
    props = facts.properties
    manufacturer, product, usb_serial = facts.usb_strings
    return Medium(
        device=facts.devnode,
        kind=kind,
        fs_type=props.get("ID_FS_TYPE", ""),
        label=_decoded(props, "ID_FS_LABEL"),
        uuid=props.get("ID_FS_UUID") or None,
        vendor=_decoded(props, "ID_VENDOR") or manufacturer,
        model=_decoded(props, "ID_MODEL") or product,
        serial=props.get("ID_SERIAL_SHORT") or usb_serial,
        size=facts.size,
        # Discs are read-only whatever the drive says; a locked SD card says ro=1.
        read_only=facts.read_only or kind is MediumKind.OPTICAL,
        disk=facts.disk_devnode,
    )


def _decoded(props: Mapping[str, str], key: str) -> str | None:
    """``KEY_ENC`` (udev's ``\\xNN``-escaped raw bytes) decoded, else ``KEY``.

    The plain ``ID_VENDOR``/``ID_MODEL`` have spaces replaced by ``_`` and non-ASCII bytes
    dropped; the ``_ENC`` forms keep the real text (a Chinese volume label, say).
    """
    enc = props.get(f"{key}_ENC")
    if enc:
        text = unescape_udev(enc).strip()
        if text:
            return text
    value = props.get(key, "").strip()
    return value or None


def unescape_udev(value: str) -> str:
    """Decode udev's ``\\xNN`` escapes; the bytes are UTF-8 when valid, else GB18030 or Latin-1.

    Chinese sticks labelled on Windows often carry GBK bytes in their label.
    """
    raw = bytearray()
    i = 0
    while i < len(value):
        if value.startswith("\\x", i) and i + 4 <= len(value):
            try:
                raw.append(int(value[i + 2:i + 4], 16))
                i += 4
                continue
            except ValueError:
                pass
        raw.extend(value[i].encode("utf-8"))
        i += 1
    for encoding in ("utf-8", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")
