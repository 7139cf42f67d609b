"""Reading what was written back from the device, and comparing it with what was written.

:class:`_DeviceReadBack` checks the archive while it is being written: each finished segment,
once synced, is read back (``O_DIRECT``, or the page cache dropped for the range) while the next
segments are written, and compared byte for byte with the output blocks that were written,
which are kept until then. A difference raises :class:`ReadBackError`.
:func:`read_back_sha256` hashes files read back from the device instead (``README.TXT``, a
plain package).

Comparing with the written bytes costs a fifth of hashing them (numpy compares at 4-8 GB/s;
SHA-256 runs at ~1 GB/s here, and would be needed on both sides) and is the strongest check
there is.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from kiosk.package.aeszip.errors import ReadBackError
from kiosk.package.aeszip.volumes import (
    _ALIGN,
    DEFAULT_CHUNK,
    _Block,
    _drop_cache,
    _set_direct,
    _split_range,
)

__all__ = ["read_back_sha256"]

_READ_BLOCKS = 3  # read-back blocks: two reads in flight while one is compared


def _round_up(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


def _pread_device(fd: int, view: memoryview, offset: int, want: int, direct: list[bool]) -> int:
    """Read ``view`` at ``offset`` from the device; at least ``want`` bytes unless at EOF.

    ``direct[0]`` says whether ``fd`` is ``O_DIRECT``. Where the device or filesystem refuses
    it (EINVAL), it is turned off and the range's cached pages are dropped first, so the bytes
    still come from the device (the range is synced: clean pages can be dropped).
    """
    if direct[0]:
        try:
            return os.preadv(fd, [view[: _round_up(want)]], offset)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            _set_direct(fd, False)
            direct[0] = False
    with contextlib.suppress(OSError):
        os.posix_fadvise(fd, offset, want, os.POSIX_FADV_DONTNEED)
    return os.preadv(fd, [view[:want]], offset)


def _same(a: memoryview, b: memoryview) -> bool:
    """``a == b`` at memory speed, without holding the GIL (libc ``memcmp`` through ctypes).

    memoryview's own comparison goes element by element, and numpy's ``array_equal`` makes
    two passes and a temporary; both cost more CPU than the read-back itself on a 2-core Pi.
    numpy gives the addresses (ctypes' own ``from_buffer`` refuses read-only buffers).
    """
    n = len(a)
    if n != len(b):
        return False
    if n == 0:
        return True
    aa, bb = np.frombuffer(a, np.uint8), np.frombuffer(b, np.uint8)
    try:
        return _memcmp(aa.ctypes.data, bb.ctypes.data, n) == 0
    finally:
        del aa, bb  # release the buffer exports: the blocks' mappings may be closed next


_memcmp = ctypes.CDLL(None).memcmp  # CDLL calls release the GIL
_memcmp.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
_memcmp.restype = ctypes.c_int


#: An output block written to the device, and the future that says it may be reused.
_Written = tuple[_Block, "Future[None]"]


class _DeviceReadBack:
    """Reads finished segments back from the device while later ones are written.

    :meth:`verify` is called on the io thread once a segment is written and synced; the
    *verify* thread reads it, with two reads in flight on the *readback* thread, compares it
    with the blocks that were written and then releases each block (its future), or fails it
    with :class:`ReadBackError` or the read's ``OSError``.
    """

    def __init__(self, paths: list[Path], split: int, chunk: int) -> None:
        self._paths = paths  # the volume files' list; it grows as volumes are opened
        self._split = split
        self._verify = ThreadPoolExecutor(1, thread_name_prefix="zipcrypt-verify")
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="zipcrypt-readback")
        self._pool = [_Block(chunk) for _ in range(_READ_BLOCKS)]
        self._fds: dict[int, tuple[int, list[bool]]] = {}
        self.compared = 0  # bytes read back and found equal so far

    def verify(self, written: list[_Written]) -> None:
        """Read back and compare ``written`` (consecutive blocks, written and synced)."""
        if written:
            self._verify.submit(self._compare, written)

    def close(self) -> None:
        """Stop the threads, close the files, free the blocks."""
        for pool in (self._verify, self._reader):
            pool.shutdown(wait=True, cancel_futures=True)
        for fd, _ in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()
        for block in self._pool:
            with contextlib.suppress(BufferError):
                block.release()
        self._pool.clear()

    def _fd(self, vol: int) -> tuple[int, list[bool]]:
        if vol not in self._fds:
            fd = os.open(self._paths[vol], os.O_RDONLY | os.O_CLOEXEC)
            self._fds[vol] = (fd, [_set_direct(fd, True)])
        return self._fds[vol]

    def _compare(self, written: list[_Written]) -> None:
        try:
            self._compare_blocks(written)
        except BaseException as exc:  # noqa: BLE001 - e.g. the stick is gone: the caller sees it
            for _, retired in written:
                if not retired.done():
                    retired.set_exception(exc)

    def _compare_blocks(self, written: list[_Written]) -> None:
        # The blocks' pieces, cut at volume borders: (block index, volume, offset in volume,
        # offset in block, length).
        pieces = iter([(k, *piece) for k, (block, _) in enumerate(written)
                       for piece in _split_range(block.start, block.fill, self._split)])
        free = list(self._pool)
        inflight: deque[tuple[Future[int], _Block, tuple[int, int, int, int, int]]] = deque()
        failed: dict[int, BaseException] = {}

        def refill() -> None:
            while free:
                piece = next(pieces, None)
                if piece is None:
                    return
                _, vol, offset, _, n = piece
                fd, direct = self._fd(vol)
                buf = free.pop()
                inflight.append((self._reader.submit(_pread_device, fd, buf.mv, offset, n,
                                                     direct), buf, piece))

        refill()
        done = 0  # blocks released so far
        while inflight:
            future, buf, (k, _, _, at, n) = inflight.popleft()
            block = written[k][0]
            try:
                if future.result() < n or not _same(buf.mv[:n], block.mv[at : at + n]):
                    failed.setdefault(k, ReadBackError(
                        "The archive read back from the stick is not what was written (at "
                        f"byte {block.start + at:,}): the stick may be faulty or fake."))
                else:
                    self.compared += n
            except OSError as exc:
                failed.setdefault(k, exc)
            free.append(buf)
            refill()
            if not inflight or inflight[0][2][0] != k:  # the last piece of block k
                for j in range(done, k + 1):
                    retired = written[j][1]
                    if j in failed:
                        retired.set_exception(failed[j])
                    else:
                        retired.set_result(None)
                done = k + 1


def read_back_sha256(
    volumes: Sequence[Path], *, drop_cache: bool = True, chunk_size: int = DEFAULT_CHUNK
) -> list[str]:
    """SHA-256 of each file as read back from the device (``README.TXT``, a plain package).

    A reader thread keeps two reads in flight while the caller hashes, so the device and
    SHA-256 (about 1.1 GB/s per core here) overlap.

    Parameters
    ----------
    volumes : sequence of Path
        The files, fsynced (only clean pages can be dropped from the cache).
    drop_cache : bool
        Read from the device, not the page cache: ``O_DIRECT`` where the filesystem allows it,
        after dropping cached pages otherwise.
    chunk_size : int
        Read size, a multiple of 4096.

    Returns
    -------
    list of str
        Hex digests in the order of ``volumes``.
    """
    if chunk_size <= 0 or chunk_size % _ALIGN:
        raise ValueError("chunk_size must be a positive multiple of 4096")
    pool = [_Block(chunk_size) for _ in range(3)]
    digests = []
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="zipcrypt-readback") as reader:
            for path in volumes:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    if drop_cache:
                        _set_direct(fd, True)
                        _drop_cache(fd)
                    else:
                        with contextlib.suppress(OSError):
                            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
                    digests.append(_hash_fd(fd, pool, reader))
                finally:
                    os.close(fd)
    finally:
        for block in pool:
            block.release()
    return digests


def _hash_fd(fd: int, pool: list[_Block], reader: ThreadPoolExecutor) -> str:
    """SHA-256 of a whole file, reading ahead on ``reader`` into the ``pool`` blocks."""
    size = os.fstat(fd).st_size
    chunk = len(pool[0].mv)
    offsets = iter(range(0, size, chunk))
    free = list(pool)
    inflight: deque[tuple[Future[int], _Block, int]] = deque()
    sha = hashlib.sha256()

    def refill() -> None:
        while free:
            offset = next(offsets, None)
            if offset is None:
                return
            block = free.pop()
            inflight.append((reader.submit(_pread_direct, fd, block.mv, offset), block, offset))

    refill()
    while inflight:
        future, block, offset = inflight.popleft()
        n = future.result()
        if n != min(chunk, size - offset):
            raise OSError(errno.EIO, f"short read at offset {offset} (the file changed?)")
        sha.update(block.mv[:n])
        free.append(block)
        refill()
    return sha.hexdigest()


def _pread_direct(fd: int, view: memoryview, offset: int) -> int:
    """``pread`` that falls back to the page cache when ``O_DIRECT`` is refused (EINVAL)."""
    try:
        return os.preadv(fd, [view], offset)
    except OSError as exc:
        if exc.errno != errno.EINVAL or not _set_direct(fd, False):
            raise
        return os.preadv(fd, [view], offset)
