"""``kiosk-mount-helper``: the only privileged step, run as root through one ``sudo`` rule.

The unprivileged kiosk asks it to mount, unmount, detach or eject a medium. It trusts nothing
from its caller but a device node and a role:

* the device's facts are read again from udev, and it must be a medium
  :func:`kiosk.media.policy.offer` would offer (removable or USB or optical, not holding any
  system or data file system);
* the file system type, the options and the mount point come from :mod:`kiosk.media.mount_policy`
  only (``/run/medpass-kiosk/media/<kernel name>``), with the calling user (``SUDO_UID`` /
  ``SUDO_GID``, set by sudo) as the owner;
* unmount, detach and clean-up act only below that mount root.

Usage::

    kiosk-mount-helper mount --role source|target /dev/sdb1   -> {"mountpoint": "..."}
    kiosk-mount-helper unmount /dev/sdb1
    kiosk-mount-helper forget /dev/sdb1       (the medium was pulled: lazy unmount)
    kiosk-mount-helper eject /dev/sdb1        (stops /dev/sdb)
    kiosk-mount-helper cleanup                -> {"detached": [...]}

The sudoers rule for a kiosk installed by hand (``/etc/sudoers.d/medpass-kiosk``)::

    kiosk ALL=(root) NOPASSWD: /opt/medpass-kiosk/venv/bin/kiosk-mount-helper

The appliance image uses no sudo: ``kiosk-mount-helper.socket`` listens on
:data:`kiosk.media.mounter.HELPER_SOCKET` (group ``kiosk``) and starts ``kiosk-mount-helper serve``
as root for each connection. A request is one line of JSON, ``{"argv": ["mount", "--role",
"source", "/dev/sdb1"]}``; the answer is one line, ``{"status": 0, "stdout": "...", "stderr":
"..."}`` with what the command line would have printed. The caller's uid and gid come from the
kernel (``SO_PEERCRED``), not from the request. This way the desk's own unit can forbid new
privileges outright (sudo is setuid), which every seccomp-based sandbox setting requires.

Exit status: 0 done, 1 refused or failed (the reason on stderr), 2 usage.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import socket
import struct
import sys
from collections.abc import Sequence

from kiosk.errors import KioskError, MediaError
from kiosk.media.medium import Medium, Role
from kiosk.media.mount_policy import MOUNT_ROOT, mountpoint_for
from kiosk.media.mounter import DirectBackend
from kiosk.media.policy import medium_from, offer
from kiosk.system.disks import disks_in_use


def offered_medium(device: str) -> Medium:
    """The medium at ``device`` if policy offers it, judged from udev's facts now.

    Raises
    ------
    MediaError
        Not a block device, or one the kiosk must never touch (the reason says which).
    """
    from kiosk.media.udev_monitor import describe  # pyudev is only needed for these commands

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


#: The longest request ``serve`` reads (a device path and a role need far less).
MAX_REQUEST_BYTES = 4096


def peer_credentials(conn: socket.socket) -> tuple[int, int]:
    """The uid and gid of the process at the other end of a Unix socket, from the kernel."""
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, gid = struct.unpack("3i", raw)
    return uid, gid


def _request_argv(conn: socket.socket) -> list[str]:
    """The argv of the one request on ``conn``.

    Raises
    ------
    ValueError
        Too long, not JSON, not ``{"argv": [str, ...]}``, or asking to serve again.
    """
    data = b""
    while b"\n" not in data and len(data) <= MAX_REQUEST_BYTES:
        chunk = conn.recv(MAX_REQUEST_BYTES)
        if not chunk:
            break
        data += chunk
    if len(data) > MAX_REQUEST_BYTES:
        raise ValueError(f"the request is longer than {MAX_REQUEST_BYTES} bytes")
    request = json.loads(data.split(b"\n", 1)[0] or b"null")
    argv = request.get("argv") if isinstance(request, dict) else None
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise ValueError('a request is {"argv": ["ACTION", ...]}')
    if argv[0] == "serve":
        raise ValueError("serve is not a request")
    return argv


def serve(conn: socket.socket) -> int:
    """Answer the one request on an accepted connection (``kiosk-mount-helper serve``).

    The action runs as from the command line, owned by the connecting user; what it would
    print comes back in the answer. Returns the action's exit status (2 for a bad request).
    """
    uid, gid = peer_credentials(conn)
    out, err = io.StringIO(), io.StringIO()
    try:
        argv = _request_argv(conn)
    except (ValueError, OSError) as exc:  # json.JSONDecodeError is a ValueError
        status = 2
        err.write(f"kiosk-mount-helper: bad request: {exc}\n")
    else:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(argv, owner=(uid, gid))
    answer = {"status": status, "stdout": out.getvalue(), "stderr": err.getvalue()}
    with contextlib.suppress(OSError):  # the kiosk gave up waiting: nothing more to do
        conn.sendall(json.dumps(answer).encode() + b"\n")
    return status


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
    sub.add_parser("serve", help="answer one request on the socket passed as standard input")
    return parser


def main(argv: Sequence[str] | None = None, owner: tuple[int, int] | None = None) -> int:
    """Entry point of ``kiosk-mount-helper``; ``owner`` (uid, gid) overrides sudo's."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if os.geteuid() != 0:
        print("kiosk-mount-helper: must run as root (through sudo).", file=sys.stderr)
        return 1
    if args.action == "serve":
        try:
            conn = socket.socket(fileno=os.dup(sys.stdin.fileno()))
        except OSError:
            print("kiosk-mount-helper: serve expects a socket connection as standard input "
                  "(kiosk-mount-helper.socket).", file=sys.stderr)
            return 2
        with conn:
            return serve(conn)
    uid, gid = owner if owner is not None else _owner()
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
