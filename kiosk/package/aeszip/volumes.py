"""The archive's volumes: ``name.zip`` or a byte-split ``name.zip.001``, ``.002``, ... below 4 GiB.

The archive is written strictly front to back and never seeks, so a plain byte-split into
volumes of :func:`default_split_size` (what 7-Zip opens, and what FAT32 can hold) costs nothing.
Here: the page-aligned output blocks the archive's bytes are laid out in (:class:`_Block`), the
volume files they are written to with ``O_DIRECT`` where offsets and lengths are aligned
(:class:`_VolumeFiles`: no page-cache copy, which costs more CPU here than AES; the unaligned
tail goes through the page cache), and reading the volumes back as one byte range
(:class:`_SplitReader`).
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import fcntl
import mmap
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kiosk.package.aeszip.errors import ArchiveCorruptError

__all__ = ["default_split_size"]

FAT32_MAX_FILE = (4 << 30) - 1  # largest file FAT32 can hold
DEFAULT_CHUNK = 4 << 20
_ALIGN = 4096  # O_DIRECT alignment of memory, file offsets and lengths (safe for 512e/4Kn)


def default_split_size() -> int:
    """Largest volume the kiosk writes: 4000 MiB, safely below FAT32's 4 GiB - 1 limit.

    Returns
    -------
    int
        Volume size in bytes (4,194,304,000; ~95 MiB below the FAT32 maximum, and a multiple
        of 4096 so every volume is written with ``O_DIRECT``).
    """
    return 4000 << 20


# --- output blocks and volume files ---------------------------------------------------------------


class _Block:
    """A page-aligned output block: the archive's bytes ``[start, start + fill)``."""

    def __init__(self, size: int) -> None:
        self.map = mmap.mmap(-1, size)  # anonymous mappings are page-aligned (O_DIRECT)
        self.mv = memoryview(self.map)
        self.arr = np.frombuffer(self.map, dtype=np.uint8)
        self.start = 0
        self.fill = 0

    def release(self) -> None:
        del self.arr
        self.mv.release()
        self.map.close()


def _set_direct(fd: int, on: bool) -> bool:
    """Turn ``O_DIRECT`` on or off for ``fd``; False if the filesystem refuses (tmpfs, FUSE)."""
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, (flags | os.O_DIRECT) if on else flags & ~os.O_DIRECT)
    except OSError:
        return False
    return True


def _split_range(start: int, length: int, split: int) -> list[tuple[int, int, int, int]]:
    """Cut archive bytes ``[start, start + length)`` at volume borders.

    Returns ``(volume index, offset in volume, offset in the range, length)`` pieces.
    """
    pieces = []
    done = 0
    while done < length:
        vol, off = divmod(start + done, split)
        n = min(length - done, split - off)
        pieces.append((vol, off, done, n))
        done += n
    return pieces


class _VolumeFiles:
    """Writes blocks into ``<basename>.zip.NNN.partial`` volumes (runs on the io thread).

    Files are created with ``O_EXCL`` (nothing is ever overwritten) and, when ``direct``, with
    ``O_DIRECT``: the aligned part of each write skips the page cache, the rest (the archive's
    tail, or everything when the filesystem refuses ``O_DIRECT``) goes through it. A volume is
    fsynced as soon as the next one starts, and the others by :meth:`finish`.
    """

    def __init__(self, dest_dir: Path, basename: str, split: int, direct: bool) -> None:
        self._dir = dest_dir
        self._basename = basename
        self._split = split
        # O_DIRECT needs memory and file offsets aligned alike: volume borders must be aligned.
        self._direct = direct and split % _ALIGN == 0
        self.paths: list[Path] = []
        self._fds: list[int] = []
        self._is_direct: list[bool] = []
        self.total = 0
        self._error: BaseException | None = None

    def write(self, block: _Block) -> None:
        """Append ``block`` to the volumes; after a failure, raise that same error again."""
        if self._error is not None:
            raise self._error
        try:
            for vol, off, at, n in _split_range(block.start, block.fill, self._split):
                if vol == len(self._fds):
                    if self._fds:
                        os.fsync(self._fds[-1])  # a full volume: make it durable now
                    self._open_next()
                self._write_at(vol, off, block.mv[at : at + n])
                self.total += n
        except BaseException as exc:
            self._error = exc
            raise

    def _open_next(self) -> None:
        path = self._dir / f"{self._basename}.zip.{len(self._fds) + 1:03d}.partial"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        fd = os.open(path, flags, 0o644)
        self.paths.append(path)
        self._fds.append(fd)
        self._is_direct.append(False)
        if self._direct:
            self._set_direct(len(self._fds) - 1, True)

    def _set_direct(self, vol: int, on: bool) -> None:
        # A filesystem without O_DIRECT (tmpfs, some FUSE) keeps the page cache.
        self._is_direct[vol] = _set_direct(self._fds[vol], on) and on

    def _write_at(self, vol: int, offset: int, data: memoryview) -> None:
        """Write ``data`` at ``offset`` (the file's current end); retry short writes."""
        fd = self._fds[vol]
        while len(data):
            if self._is_direct[vol]:
                aligned = len(data) // _ALIGN * _ALIGN if offset % _ALIGN == 0 else 0
                if aligned == 0:
                    self._set_direct(vol, False)  # unaligned tail: page cache from here on
                    continue
                try:
                    n = os.pwrite(fd, data[:aligned], offset)
                except OSError as exc:
                    if exc.errno != errno.EINVAL:
                        raise
                    self._set_direct(vol, False)  # alignment the device rejects
                    continue
            else:
                n = os.pwrite(fd, data, offset)  # short when the disk fills; retried below
            if n <= 0:
                raise OSError(errno.EIO, "the device accepted no data")
            data = data[n:]
            offset += n

    def sync_last(self) -> None:
        """fdatasync the volume being written (the earlier ones were fsynced when full)."""
        if self._fds:
            os.fdatasync(self._fds[-1])

    def finish(self) -> None:
        """fsync and close every volume."""
        if self._error is not None:
            raise self._error
        for fd in self._fds:
            os.fsync(fd)
        self.close()

    def close(self) -> None:
        """Close the files without syncing (abort)."""
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = [-1] * len(self._fds)


# --- reading --------------------------------------------------------------------------------------


class _SplitReader:
    """Random access to the byte-concatenation of ``volumes`` (pread across volume borders)."""

    def __init__(self, volumes: Sequence[Path], drop_cache: bool) -> None:
        self._fds: list[int] = []
        self._starts: list[int] = []
        self.size = 0
        try:
            for path in volumes:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                self._fds.append(fd)
                if drop_cache:
                    _drop_cache(fd)
                self._starts.append(self.size)
                self.size += os.fstat(fd).st_size
        except BaseException:
            self.close()
            raise

    def readinto(self, offset: int, view: memoryview) -> None:
        """Fill ``view`` from ``offset``; ArchiveCorruptError if the archive ends first."""
        got = 0
        while got < len(view):
            pos = offset + got
            if pos >= self.size:
                raise ArchiveCorruptError(
                    "The archive is truncated (a volume is short or missing)."
                )
            i = bisect.bisect_right(self._starts, pos) - 1
            end = self._starts[i + 1] if i + 1 < len(self._starts) else self.size
            take = min(len(view) - got, end - pos)
            n = os.preadv(self._fds[i], [view[got : got + take]], pos - self._starts[i])
            if n == 0:
                raise ArchiveCorruptError("The archive is truncated (a volume shrank).")
            got += n

    def read(self, offset: int, n: int) -> bytes:
        buf = bytearray(n)
        self.readinto(offset, memoryview(buf))
        return bytes(buf)

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()


def _drop_cache(fd: int) -> None:
    """Ask the kernel to forget cached pages so the next read comes from the device."""
    with contextlib.suppress(OSError):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
