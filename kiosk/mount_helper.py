"""``kiosk-mount-helper``: the only privileged step, run as root through one ``sudo`` rule.

The unprivileged kiosk asks it to mount, unmount, detach or eject a medium. It trusts nothing
from its caller but a device node and a role:

* the device's facts are read again from udev, and it must be a medium
  :func:`kiosk.media_policy.offer` would offer (removable or USB or optical, not holding any
  system or data file system);
* the file system type, the options and the mount point come from :mod:`kiosk.mount_policy`
  only (``/run/medpass-kiosk/media/<kernel name>``), with the calling user (``SUDO_UID`` /
  ``SUDO_GID``, set by sudo) as the owner;
* unmount, detach and clean-up act only below that mount root.

Usage::

    kiosk-mount-helper mount --role source|target /dev/sdb1   -> {"mountpoint": "..."}
    kiosk-mount-helper unmount /dev/sdb1
    kiosk-mount-helper forget /dev/sdb1       (the medium was pulled: lazy unmount)
    kiosk-mount-helper eject /dev/sdb1        (stops /dev/sdb)
    kiosk-mount-helper cleanup                -> {"detached": [...]}

The sudoers rule the appliance image installs (``/etc/sudoers.d/medpass-kiosk``)::

    kiosk ALL=(root) NOPASSWD: /opt/medpass-kiosk/venv/bin/kiosk-mount-helper

Exit status: 0 done, 1 refused or failed (the reason on stderr), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from kiosk.errors import KioskError, MediaError
from kiosk.media import Medium, Role
from kiosk.media_policy import medium_from, offer
from kiosk.mount_policy import MOUNT_ROOT, mountpoint_for
from kiosk.mounter import DirectBackend
from kiosk.system_disks import disks_in_use


def offered_medium(device: str) -> Medium:
    """The medium at ``device`` if policy offers it, judged from udev's facts now.

    Raises
    ------
    MediaError
        Not a block device, or one the kiosk must never touch (the reason says which).
    """
    from kiosk.udev_monitor import describe  # pyudev is only needed for these commands

    facts = describe(device)
    kind, why = offer(facts, disks_in_use(MOUNT_ROOT))
    if kind is None:
        raise MediaError(f"{device} is not a removable medium the kiosk may use ({why}).")
    return medium_from(facts, kind)


def _owner() -> tuple[int, int]:
    """The user who ran sudo (the kiosk user); root when run directly."""
    try:
        return int(os.environ.get("SUDO_UID", "0")), int(os.environ.get("SUDO_GID", "0"))
    except ValueError:
        raise MediaError("SUDO_UID/SUDO_GID are not numbers.") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiosk-mount-helper",
                                     description="Mount removable media for MedPass Kiosk.")
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("mount")
    p.add_argument("--role", required=True, choices=[Role.SOURCE.value, Role.TARGET.value])
    p.add_argument("device")
    for name in ("unmount", "forget", "eject"):
        sub.add_parser(name).add_argument("device")
    sub.add_parser("cleanup")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``kiosk-mount-helper``."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if os.geteuid() != 0:
        print("kiosk-mount-helper: must run as root (through sudo).", file=sys.stderr)
        return 1
    uid, gid = _owner()
    backend = DirectBackend(MOUNT_ROOT, uid=uid, gid=gid)
    try:
        if args.action == "mount":
            mountpoint = backend.mount(offered_medium(args.device), Role(args.role))
            print(json.dumps({"mountpoint": str(mountpoint)}))
        elif args.action == "unmount":
            mountpoint_for(args.device)  # validates the name before anything is touched
            backend.unmount(args.device)
        elif args.action == "forget":
            backend.forget(args.device)
        elif args.action == "eject":
            backend.eject(offered_medium(args.device))
        else:
            print(json.dumps({"detached": backend.cleanup()}))
    except KioskError as exc:
        print(f"kiosk-mount-helper: {exc.text}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
