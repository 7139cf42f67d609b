"""Access to real media: read discs in user space, mount the rest by policy, eject, clean up.

**Why a narrowly-scoped helper and not udisks2.** The appliance UI runs as an unprivileged
``kiosk`` user, so something privileged must mount. udisks2 would do it over D-Bus with polkit,
but it brings a system bus, polkit rules and a daemon to the image, decides the mount point
(``/media/<user>/<label>``: a name read from the medium) and part of the options itself, and it
cannot be exercised on the CI machines (no system bus). Instead:

* **Discs need no mount at all.** ISO9660 (and UDF bridge discs, which carry ISO9660 too) are
  read by :class:`kiosk.sources.iso.IsoSource`, UDF-only discs by
  :class:`kiosk.sources.udf.UdfSource`, straight from ``/dev/srN`` in user space; the kiosk
  user reads the device through its group (``udev/`` rules). Only a UDF disc using a feature
  UdfSource lacks (a CD-R never finalised) is mounted like a stick.
* **Everything else is mounted by** ``kiosk-mount-helper`` (:mod:`kiosk.media.mount_helper`), run as
  root: on the appliance as a socket-activated service (:class:`SocketHelperBackend`), else
  through one ``sudo`` rule (:class:`HelperBackend`). It takes a device and a role, nothing
  else: it re-reads the device's facts from udev, refuses anything :mod:`kiosk.media.policy`
  would not offer (internal and system disks), takes options and mount point from
  :mod:`kiosk.media.mount_policy` only, and unmounts or cleans up only below its own mount root.
  When the kiosk already runs as root (tests, CI), :class:`DirectBackend` does the same
  in-process.

A pulled medium is cleaned up with a lazy unmount (``umount -l``) and the mount point removed;
mounts left by a crash are cleaned the same way at start-up (:meth:`SystemMounter.cleanup`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from kiosk.errors import MediaError
from kiosk.media.medium import Medium, MediumView, Role
from kiosk.media.mount_policy import MOUNT_ROOT, mountpoint_for, plan_mount
from kiosk.media.roles import SourceView
from kiosk.sources.directory import DirectorySource
from kiosk.sources.opener import open_disc
from kiosk.sources.scan_limits import ScanLimits
from kiosk.sources.source import Source
from kiosk.sources.udf import UdfUnsupportedError, is_udf
from kiosk.system.disks import mountpoints

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]

#: Where the appliance's mount helper service listens (``kiosk-mount-helper.socket``).
HELPER_SOCKET = MOUNT_ROOT.parent / "mount-helper.sock"
#: The longest answer read from the helper service (its messages are a few lines).
_MAX_ANSWER_BYTES = 1 << 20

#: Whole disks that ``eject`` can stop: SCSI disks (USB sticks) and optical drives. Loop and
#: MMC devices have nothing to eject.
_EJECTABLE = re.compile(r"^/dev/(sd[a-z]+|sr[0-9]+)$")


def run_command(argv: Sequence[str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with the C locale (stable messages), capturing its output.

    Raises
    ------
    MediaError
        The program is missing or timed out.
    """
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "LC_ALL": "C"}, stdin=subprocess.DEVNULL,
                              check=False)
    except FileNotFoundError:
        raise MediaError(f"{argv[0]} is not installed.") from None
    except subprocess.TimeoutExpired:
        raise MediaError(f"{argv[0]} did not finish within {timeout:.0f} s.") from None


def _error(result: subprocess.CompletedProcess[str]) -> str:
    text = (result.stderr or result.stdout or "").strip()
    return text.splitlines()[-1] if text else f"exit status {result.returncode}"


class MountBackend(Protocol):
    """Does the privileged part: mount, unmount, eject, clean up."""

    def mount(self, medium: Medium, role: Role) -> Path:
        """Mount ``medium`` for ``role``; return the mount point."""
        ...

    def unmount(self, device: str) -> None:
        """Unmount the kiosk's mount of ``device``, if any, and remove its mount point."""
        ...

    def forget(self, device: str) -> None:
        """Lazily detach the kiosk's mount of a pulled ``device``; never raises."""
        ...

    def eject(self, medium: Medium) -> None:
        """Eject the disc, or stop the stick, holding ``medium``."""
        ...

    def cleanup(self) -> list[str]:
        """Detach every mount below the mount root (left by a crash); return them."""
        ...


class DirectBackend:
    """Mounts in-process; needs root (the helper, tests and CI use it).

    Parameters
    ----------
    root : Path
        Mount root; mount points are ``root/<kernel name>``.
    uid, gid : int, optional
        Owner of files on FAT/exFAT/NTFS/UDF mounts; default: this process's.
    run : callable
        Command runner (tests record the commands instead of running them).
    is_mounted : callable, optional
        Whether a path is a mount point now (default: this process's mount table).
    sleep : callable
        Waits between retries of a busy unmount.
    """

    def __init__(self, root: Path = MOUNT_ROOT, *, uid: int | None = None,
                 gid: int | None = None, run: Runner = run_command,
                 is_mounted: Callable[[Path], bool] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.root = root
        self.uid = os.getuid() if uid is None else uid
        self.gid = os.getgid() if gid is None else gid
        self._run = run
        self._sleep = sleep
        self._is_mounted = is_mounted or (lambda p: str(p) in mountpoints())

    def mount(self, medium: Medium, role: Role) -> Path:
        """Mount by :func:`kiosk.media.mount_policy.plan_mount`.

        Raises
        ------
        MediaError
            The policy refuses it, or ``mount`` fails (its message is passed on).
        """
        plan = plan_mount(medium, role, uid=self.uid, gid=self.gid, root=self.root)
        self.root.mkdir(mode=0o755, parents=True, exist_ok=True)
        if self._is_mounted(plan.mountpoint):
            # Left over from a medium pulled earlier in this slot: never stack mounts.
            self.forget(medium.device)
        plan.mountpoint.mkdir(mode=0o700, exist_ok=True)
        result = self._run(plan.argv())
        if result.returncode != 0:
            with contextlib.suppress(OSError):
                plan.mountpoint.rmdir()
            raise MediaError(f"{medium.device} cannot be mounted ({plan.fs_type}): "
                             f"{_error(result)}.")
        return plan.mountpoint

    def unmount(self, device: str) -> None:
        """``umount``, retried briefly while the mount is busy (a reader just closing).

        Raises
        ------
        MediaError
            Still busy after the retries.
        """
        mountpoint = mountpoint_for(device, self.root)
        for attempt in range(5):
            if not self._is_mounted(mountpoint):
                break
            result = self._run(["umount", str(mountpoint)])
            if result.returncode == 0:
                break
            if attempt == 4:
                raise MediaError(f"{device} is still in use and cannot be unmounted: "
                                 f"{_error(result)}. Close what uses it and try again.")
            self._sleep(0.2 * (attempt + 1))
        with contextlib.suppress(OSError):
            mountpoint.rmdir()

    def forget(self, device: str) -> None:
        """``umount -l`` (the device is gone: nothing to flush) and remove the mount point."""
        try:
            mountpoint = mountpoint_for(device, self.root)
        except MediaError:
            return
        self._detach(mountpoint)

    def _detach(self, mountpoint: Path) -> None:
        with contextlib.suppress(MediaError):
            if self._is_mounted(mountpoint):
                self._run(["umount", "-l", str(mountpoint)])
        with contextlib.suppress(OSError):
            mountpoint.rmdir()

    def eject(self, medium: Medium) -> None:
        """``eject`` the whole disk (tray out, or SCSI stop for a stick); loop/MMC: nothing.

        Raises
        ------
        MediaError
            ``eject`` failed.
        """
        disk = medium.disk or medium.device
        if not _EJECTABLE.match(disk):
            return
        result = self._run(["eject", disk])
        if result.returncode != 0:
            raise MediaError(f"{disk} cannot be ejected: {_error(result)}.")

    def cleanup(self) -> list[str]:
        """Detach mounts below the root and remove empty mount points (after a crash)."""
        prefix = str(self.root).rstrip("/") + "/"
        stale = sorted(m for m in mountpoints() if m.startswith(prefix))
        for mountpoint in reversed(stale):
            self._detach(Path(mountpoint))
        if self.root.is_dir():
            for leftover in self.root.iterdir():
                with contextlib.suppress(OSError):
                    leftover.rmdir()
        return stale


def helper_path() -> str:
    """``kiosk-mount-helper`` beside this Python (the venv's ``bin``), else on ``PATH``."""
    beside = Path(sys.executable).parent / "kiosk-mount-helper"
    if beside.exists():
        return str(beside)
    return shutil.which("kiosk-mount-helper") or str(beside)


class HelperBackend:
    """Mounts through ``sudo -n kiosk-mount-helper`` for an unprivileged kiosk.

    The helper re-checks everything itself; this class only passes the device and the role.
    """

    def __init__(self, helper: str | None = None, run: Runner = run_command) -> None:
        self.argv = ["sudo", "-n", helper or helper_path()]
        self._run = run

    def _call(self, *args: str) -> str:
        result = self._run([*self.argv, *args])
        if result.returncode != 0:
            raise MediaError(f"{_error(result)} (mount helper). Run `kiosk doctor` to check "
                             "that the kiosk may mount media.")
        return result.stdout

    def mount(self, medium: Medium, role: Role) -> Path:
        """Ask the helper to mount; it prints ``{"mountpoint": ...}``."""
        out = self._call("mount", "--role", role.value, medium.device)
        try:
            return Path(json.loads(out)["mountpoint"])
        except (ValueError, KeyError, TypeError):
            raise MediaError(f"The mount helper answered something unexpected: {out!r}.") from None

    def unmount(self, device: str) -> None:
        """Ask the helper to unmount."""
        self._call("unmount", device)

    def forget(self, device: str) -> None:
        """Ask the helper to detach a pulled medium; errors are ignored (it is gone anyway)."""
        with contextlib.suppress(MediaError):
            self._call("forget", device)

    def eject(self, medium: Medium) -> None:
        """Ask the helper to eject."""
        self._call("eject", medium.device)

    def cleanup(self) -> list[str]:
        """Ask the helper to clean up stale mounts."""
        out = self._call("cleanup")
        try:
            return list(json.loads(out)["detached"])
        except (ValueError, KeyError, TypeError):
            return []


class SocketHelperBackend(HelperBackend):
    """Mounts through the mount helper service's socket: the appliance's way, with no sudo.

    The same requests as :class:`HelperBackend`, sent as one line of JSON to
    :data:`HELPER_SOCKET`, where systemd starts ``kiosk-mount-helper serve`` as root for each
    connection; it takes the caller's uid from the kernel. The desk's unit can then forbid new
    privileges (sudo is setuid-root), which its seccomp-based sandbox settings require.
    """

    def __init__(self, path: Path = HELPER_SOCKET, timeout: float = 60.0) -> None:
        super().__init__(helper="", run=self._ask)
        self.argv = []
        self.path = path
        self.timeout = timeout

    def _ask(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        """One request over the socket, answered like the command line would have been."""
        request = json.dumps({"argv": list(argv)}).encode() + b"\n"
        answer = b""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as sock:
                sock.settimeout(self.timeout)
                sock.connect(str(self.path))
                sock.sendall(request)
                sock.shutdown(socket.SHUT_WR)
                while len(answer) <= _MAX_ANSWER_BYTES:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    answer += chunk
        except OSError as exc:
            raise MediaError(f"The mount helper service at {self.path} did not answer "
                             f"({exc.strerror or exc}). Run `kiosk doctor`.") from None
        try:
            reply = json.loads(answer)
            status, out, err = int(reply["status"]), str(reply["stdout"]), str(reply["stderr"])
        except (ValueError, KeyError, TypeError):
            raise MediaError("The mount helper service answered something unexpected: "
                             f"{answer[:200]!r}.") from None
        return subprocess.CompletedProcess(list(argv), status, out, err)


def reads_in_user_space(medium: Medium) -> bool:
    """Whether the medium is read from its device without mounting it.

    ISO9660, and UDF with either an ISO9660 volume descriptor (UDF bridge: most DVDs, read
    by :class:`~kiosk.sources.iso.IsoSource`) or a UDF volume recognition sequence alone
    (UDF-only: what Windows and many PACS burn, read by :class:`~kiosk.sources.udf.UdfSource`).
    A stick holding such an image written with ``dd`` reads the same way.
    """
    if medium.fs_type == "iso9660":
        return True
    if medium.fs_type != "udf":
        return False
    try:
        fd = os.open(medium.device, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        return os.pread(fd, 5, 16 * 2048 + 1) == b"CD001" or is_udf(fd)
    except OSError:
        return False
    finally:
        os.close(fd)


class SystemMounter:
    """The :class:`~kiosk.media.medium.Mounter` for real devices.

    Parameters
    ----------
    backend : MountBackend
        :class:`DirectBackend` when running as root, else :class:`HelperBackend`.
    mtools_timeout : float
        Seconds one mtools run may take when looking at a FAT stick.
    limits : ScanLimits, optional
        The ``[import]`` limits a disc's directory tree is counted against before it is
        indexed (:class:`~kiosk.sources.iso.IsoSource`); default: the default limits.
    """

    def __init__(self, backend: MountBackend, *, mtools_timeout: float = 5.0,
                 limits: ScanLimits | None = None) -> None:
        self.backend = backend
        self.mtools_timeout = mtools_timeout
        self.limits = limits or ScanLimits()
        #: device -> (role it is mounted for, mount point): only mounts this mounter made.
        self._mounts: dict[str, tuple[Role, Path]] = {}
        self._sources: dict[str, Source] = {}

    def _read_disc(self, medium: Medium) -> Source | None:
        """The disc read in user space, or None when it must be mounted instead.

        Raises
        ------
        SourceError
            The disc cannot be read (damaged, past the limits); a UDF feature the reader
            lacks is not an error here (None: the kernel's driver may read it).
        """
        if not reads_in_user_space(medium):
            return None
        try:
            return open_disc(medium.device, self.limits)
        except UdfUnsupportedError:
            return None

    @contextlib.contextmanager
    def look(self, medium: Medium) -> Iterator[MediumView]:
        """Discs: read in user space; FAT: mtools, no mount; others: a short read-only mount."""
        source = self._read_disc(medium)
        if source is not None:
            try:
                yield SourceView(source)
            finally:
                source.close()
            return
        if medium.fs_type == "vfat":
            from kiosk.media import mtools

            if mtools.available():
                yield mtools.MtoolsView(medium.device, timeout=self.mtools_timeout)
                return
        if medium.device in self._mounts:
            # Already mounted for an import or an export: look through that mount.
            yield SourceView(DirectorySource(self._mounts[medium.device][1]))
            return
        mountpoint = self.backend.mount(medium, Role.SOURCE)
        try:
            yield SourceView(DirectorySource(mountpoint, label=medium.label))
        finally:
            self.backend.unmount(medium.device)

    def open_source(self, medium: Medium) -> Source:
        """A disc read from the device (ISO9660 or UDF), or a read-only mount as a
        DirectorySource."""
        source = self._read_disc(medium)
        if source is not None:
            source.label = medium.label or source.label
        else:
            mounted = self._mounts.get(medium.device)
            if mounted is not None and mounted[0] is Role.TARGET:
                self.release(medium)  # never read a hospital medium through a writable mount
            if medium.device not in self._mounts:
                self._mount(medium, Role.SOURCE)
            source = DirectorySource(self._mounts[medium.device][1], label=medium.label)
        self._sources[medium.device] = source
        return source

    def mount_target(self, medium: Medium) -> Path:
        """Mount read-write with the target options (unmounting a read-only mount first)."""
        mounted = self._mounts.get(medium.device)
        if mounted is not None and mounted[0] is Role.TARGET:
            return mounted[1]
        if mounted is not None:
            self.release(medium)
        return self._mount(medium, Role.TARGET)

    def release(self, medium: Medium) -> None:
        """Close the source and unmount, if this mounter mounted it."""
        source = self._sources.pop(medium.device, None)
        if source is not None:
            source.close()
        if self._mounts.pop(medium.device, None) is not None:
            self.backend.unmount(medium.device)

    def eject(self, medium: Medium) -> None:
        """Release, then eject the disc or stop the stick."""
        self.release(medium)
        self.backend.eject(medium)

    def forget(self, medium: Medium) -> None:
        """The medium is gone: drop its source and lazily detach its mount."""
        source = self._sources.pop(medium.device, None)
        if source is not None:
            with contextlib.suppress(Exception):
                source.close()
        if self._mounts.pop(medium.device, None) is not None:
            self.backend.forget(medium.device)

    def cleanup(self) -> list[str]:
        """Detach mounts left below the mount root by a crash (call once at start-up)."""
        return self.backend.cleanup()

    def _mount(self, medium: Medium, role: Role) -> Path:
        mountpoint = self.backend.mount(medium, role)
        self._mounts[medium.device] = (role, mountpoint)
        return mountpoint


def default_backend(root: Path = MOUNT_ROOT) -> MountBackend:
    """:class:`DirectBackend` as root; else the helper service when its socket is there (the
    appliance), else the helper through sudo."""
    if os.geteuid() == 0:
        return DirectBackend(root)
    if HELPER_SOCKET.exists():
        return SocketHelperBackend()
    return HelperBackend()
