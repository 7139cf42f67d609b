"""Durable file writes: temp name, flush, fsync, rename, fsync the directory.

Everything the kiosk must not lose in a power cut goes through here, so the rule lives in one
place. A reader never sees a half-written file under its final name.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import secrets
import time
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Make a rename or creation inside ``directory`` durable.

    EINVAL means the filesystem cannot sync a directory (some FAT and FUSE drivers); there is
    nothing more to do there.
    """
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
    finally:
        os.close(fd)


def temp_name(target: Path) -> Path:
    """A unique hidden temp name beside ``target`` (same filesystem, so rename is atomic)."""
    return target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")


def remove_stale_temps(directory: Path, older_than: float = 600.0) -> int:
    """Delete temp files left in ``directory`` by a write that a power cut interrupted.

    Only temps older than ``older_than`` seconds go, so a write in progress in another process
    (they last milliseconds) is never disturbed. Returns how many were removed.
    """
    removed = 0
    cutoff = time.time() - older_than
    for tmp in directory.glob(".*.tmp"):
        try:
            if tmp.stat().st_mtime < cutoff:
                tmp.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    return removed


def write_atomic(target: Path, data: bytes, *, mode: int = 0o666,
                 staging: Path | None = None) -> None:
    """Replace ``target`` with ``data`` atomically and durably.

    ``mode`` (before the umask) is set when the temp file is created, so a private file
    (``0o600``) is never readable by others, not even for a moment. ``staging``: a folder on
    the same filesystem for the temp file instead of ``target``'s own, so a power cut's
    leftovers are found there, not among many files.
    """
    tmp = temp_name(target if staging is None else staging / target.name)
    try:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def syncfs(path: Path) -> None:
    """Flush every dirty page of the filesystem holding ``path``.

    One ``syncfs`` after writing a batch of blobs costs about what one ``fsync`` does and far less
    than one ``fsync`` per file, which is what makes a 2,000-file import near ``cp && sync``
    speed. Falls back to ``os.sync`` where ``syncfs`` is unavailable.
    """
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _libc.syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    except AttributeError:
        os.sync()
    finally:
        os.close(fd)
