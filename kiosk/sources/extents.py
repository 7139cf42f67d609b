"""Files laid out as byte extents of a disc image, read without mounting it.

:class:`ExtentReader` reads one file's extents with ``pread`` (any image format that maps files
to extents: ISO9660 and UDF); :class:`DeadlineFile` is the descriptor a directory parser reads
from, refusing reads once the scan's time limit is past.
"""

from __future__ import annotations

import io
import os
from typing import Any, Protocol

from kiosk.sources.iso_census import CHECK_EVERY, time_limit_error
from kiosk.sources.scan_limits import ScanLimits

#: An extent start meaning "nothing recorded on the medium: reads as zeros" (UDF's unrecorded
#: and unallocated extents).
HOLE = -1


class ReadErrors(Protocol):
    """How the source that owns an :class:`ExtentReader` words its read errors."""

    def read_error(self, path: str, exc: OSError) -> Exception:
        """The error to raise for a failed read of ``path``."""
        ...

    def short_read(self, path: str) -> Exception:
        """The error to raise when the image ends before ``path`` does."""
        ...


class DeadlineFile(io.FileIO):
    """The descriptor pycdlib parses from, refusing reads once the open's deadline is past.

    pycdlib has no way to stop its directory walk, so the time limit is applied where it
    reads: the census bounded how much there is to read, this bounds how long it may take
    (a disc that reads slowly at every sector).
    """

    def __init__(self, fd: int, limits: ScanLimits, deadline: float) -> None:
        super().__init__(fd, "rb", closefd=True)
        self._limits = limits
        self._deadline = deadline
        self._reads = 0

    def _check(self) -> None:
        self._reads += 1
        if self._reads % CHECK_EVERY == 0 and self._limits.clock() > self._deadline:
            raise time_limit_error(self._limits)

    def read(self, size: int | None = -1) -> bytes:
        """Read as :meth:`io.FileIO.read`, unless the deadline is past."""
        self._check()
        return super().read(size)

    def readinto(self, buffer: Any) -> int:
        """Read as :meth:`io.FileIO.readinto`, unless the deadline is past."""
        self._check()
        return super().readinto(buffer)


class ExtentReader(io.RawIOBase):
    """Read one file's extents from the image with ``pread`` on a private descriptor.

    The descriptor is the reader's own (closed with it); errors are worded by ``source``.
    ``extents`` are ``(offset, length)`` runs in file order; an offset of :data:`HOLE` reads
    as ``length`` zero bytes.
    """

    def __init__(
        self,
        source: ReadErrors,
        path: str,
        fd: int,
        extents: tuple[tuple[int, int], ...],
        size: int,
    ) -> None:
        super().__init__()
        self._source = source
        self._path = path
        self._fd = fd
        self._extents = extents
        self._size = size
        self._pos = 0
        self.name = path

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` from the current position; short only at the end of the file."""
        if self.closed:
            raise ValueError("I/O operation on closed file.")
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), self._size - self._pos)
        done = 0
        while done < wanted:
            offset, run_left = self._locate(self._pos)
            chunk = view[done : done + min(wanted - done, run_left)]
            if offset == HOLE:
                chunk[:] = bytes(len(chunk))
                done += len(chunk)
                self._pos += len(chunk)
                continue
            try:
                got = os.preadv(self._fd, [chunk], offset)
            except OSError as exc:
                raise self._source.read_error(self._path, exc) from exc
            if got == 0:
                # The directory promised more bytes than the image or device has.
                raise self._source.short_read(self._path)
            done += got
            self._pos += got
        return done

    def _locate(self, pos: int) -> tuple[int, int]:
        """Return the image offset of file position ``pos`` and the bytes left in its run."""
        for start, length in self._extents:
            if pos < length:
                return (HOLE if start == HOLE else start + pos), length - pos
            pos -= length
        raise AssertionError("position beyond the last extent")  # guarded by readinto

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed file.")
        if whence == os.SEEK_SET:
            new = offset
        elif whence == os.SEEK_CUR:
            new = self._pos + offset
        elif whence == os.SEEK_END:
            new = self._size + offset
        else:
            raise ValueError(f"invalid whence ({whence})")
        if new < 0:
            raise ValueError("negative seek position")
        self._pos = new
        return new

    def tell(self) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed file.")
        return self._pos

    def close(self) -> None:
        if not self.closed:
            try:
                os.close(self._fd)
            finally:
                super().close()
