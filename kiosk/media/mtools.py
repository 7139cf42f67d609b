"""Look inside a FAT stick without mounting it, with GNU mtools (the only module that runs them).

Deciding a stick's role (:mod:`kiosk.media.roles`) needs a file listing and the first bytes of a
few files. Reading those in user space means an inserted stick is not mounted just to be looked
at: no kernel FAT parsing of an untrusted stick before the coordinator acts, no root needed
(read access to the device node comes from the kiosk's udev rules), and the same code path runs
on CI machines whose kernels have no vfat. Every call runs under a timeout and is killed when
the caller has read enough, so a hostile or huge stick cannot stall the watcher.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator

from kiosk.errors import MediaError

#: Environment for mtools: no user or system drive configuration, no host-name checks of
#: the boot sector (sticks formatted elsewhere fail those), UTF-8 names.
_ENV = {
    "MTOOLS_SKIP_CHECK": "1",
    "MTOOLSRC": os.devnull,
    "LC_ALL": "C.UTF-8",
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
}


def available() -> bool:
    """Whether ``mdir`` and ``mtype`` are installed."""
    return shutil.which("mdir") is not None and shutil.which("mtype") is not None


#: What mdir says about a root directory with nothing in it.
_EMPTY = 'File "::" not found'


class MtoolsView:
    """A :class:`~kiosk.media.medium.MediumView` over a FAT file system on a device or image.

    Parameters
    ----------
    device : str
        ``/dev/sdb1`` or an image file.
    timeout : float
        Seconds any one mtools run may take before it is killed.
    """

    def __init__(self, device: str, timeout: float = 5.0) -> None:
        if not available():
            raise MediaError("mtools is not installed, so FAT sticks cannot be inspected. "
                             "Install the 'mtools' package.")
        self.device = device
        self.timeout = timeout

    def files(self) -> Iterator[str]:
        """Relative paths of every regular file, streamed from ``mdir -/ -b`` (recursive, bare).

        Raises
        ------
        MediaError
            mdir failed before listing anything (not FAT, unreadable device).
        """
        proc = self._start(["mdir", "-/", "-b", "-i", self.device, "::"])
        listed = 0
        deadline = time.monotonic() + self.timeout
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                if time.monotonic() > deadline:
                    break
                line = raw.decode("utf-8", "surrogateescape").rstrip("\r\n")
                if not line.startswith("::/") or line.endswith("/"):
                    continue  # directories end in "/"; anything else is not a path
                listed += 1
                yield line[3:]
        finally:
            err = _finish(proc)
        # An empty stick makes mdir fail with 'File "::" not found': nothing to list, not an
        # error. Anything else without a single line listed is (e.g. "non DOS media").
        if listed == 0 and proc.returncode not in (0, None, -9) and _EMPTY not in err:
            raise MediaError(f"{self.device}: not a readable FAT file system "
                             f"({_last_line(err)}).")

    def head(self, path: str, size: int) -> bytes:
        """The first ``size`` bytes of ``path``, via ``mtype`` (raw, no text conversion).

        Raises
        ------
        MediaError
            The file cannot be read.
        """
        proc = self._start(["mtype", "-i", self.device, "::/" + path])
        try:
            assert proc.stdout is not None
            data = b""
            deadline = time.monotonic() + self.timeout
            while len(data) < size and time.monotonic() < deadline:
                chunk = proc.stdout.read(size - len(data))
                if not chunk:
                    break
                data += chunk
        finally:
            err = _finish(proc)
        if not data and proc.returncode not in (0, -9):
            raise MediaError(f"{path}: cannot be read from {self.device} ({_last_line(err)}).")
        return data

    def _start(self, argv: list[str]) -> subprocess.Popen[bytes]:
        try:
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=_ENV, close_fds=True)
        except OSError as exc:
            raise MediaError(f"cannot run {argv[0]}: {exc.strerror}.") from exc


def _finish(proc: subprocess.Popen[bytes]) -> str:
    """Stop ``proc`` if it still runs (the caller has read enough); return its stderr."""
    if proc.poll() is None:
        proc.kill()
    try:
        _out, err = proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        return "timed out"
    return err.decode("utf-8", "replace")


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no message"
