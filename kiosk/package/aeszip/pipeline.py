"""The AES zip writer's output pipeline: blocks laid out by the caller, MACs, writes, read-back.

:class:`kiosk.package.aeszip.writer.AesZipWriter` lays the archive's bytes out directly in
page-aligned output blocks of ``chunk_size`` (4 MiB) that :class:`_BlockOutput` hands round:
headers are copied in (:meth:`_BlockOutput.emit`), file data is read with ``readinto`` straight
into its place in :meth:`_BlockOutput.current_block` and encrypted there. No byte is copied
twice.

Pipeline (2 cores)
------------------
Around the caller's thread, every heavy call releases the GIL:

* *keys* (a child process, :mod:`kiosk.package.aeszip.key_process`; 2 threads of the writer as a
  fallback): PBKDF2 for the next entries, ahead of time (salts are random, so keys do not depend
  on the data). ~1 ms per entry: the largest cost when files are small, so a
  :class:`~kiosk.package.aeszip.winzip_aes.KeySupply` can start it before the writer exists.
  ``cryptography``'s PBKDF2 holds the GIL, hence a process rather than a thread.
* *caller* (``add_file``): read, keystream (AES-ECB over preallocated counter blocks), XOR in
  place.
* *mac*: HMAC-SHA1 of each entry's ciphertext, piece by piece in order, then its 10-byte code
  written into the place the caller left for it; a full block goes on to the *io* thread
  through this one's queue, so only after every code in it is written.
* *io*: writes each block to its volume(s) (:class:`~kiosk.package.aeszip.volumes._VolumeFiles`:
  ``O_DIRECT`` where offsets and lengths are aligned), fsyncs each volume as it fills and,
  every ``readback_segment`` bytes, fdatasyncs the volume and hands the finished segment to the
  read-back.
* *verify* and *readback* (:class:`~kiosk.package.aeszip.readback._DeviceReadBack`): read each
  finished segment back from the device while the next segments are written, and compare it
  byte for byte with the blocks that were written, which are kept until then.
  :meth:`_BlockOutput.finish` has the last segment read back after the final fsync. A difference
  raises :class:`~kiosk.package.aeszip.errors.ReadBackError`.

Memory is bounded by the block pools (two read-back segments' worth of output blocks, at least
four, plus 3 read-back blocks of ``chunk_size``) plus the central directory (about 100 bytes per
entry), whatever the size of the files.
"""

from __future__ import annotations

import contextlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from cryptography.hazmat.primitives.hmac import HMAC

from kiosk.package.aeszip.format import MAC_LEN
from kiosk.package.aeszip.readback import _DeviceReadBack, _Written
from kiosk.package.aeszip.volumes import _Block, _VolumeFiles

_BLOCKS = 4  # output blocks shared by the caller and the io thread, at least


class _BlockOutput:
    """The archive's bytes on their way to the volumes, in output blocks of ``chunk`` bytes.

    The caller lays bytes out at :attr:`offset` in :meth:`current_block` (advancing the block's
    ``fill`` and :attr:`offset` itself, then :meth:`flush_block` when the block is full), or has
    :meth:`emit` copy them in. Each block goes through the *mac* thread (:meth:`update_mac`,
    :meth:`emit_mac`) to the *io* thread, which writes it to :attr:`files` and hands finished
    segments to :attr:`readback` (None when not verifying). A block is reused once written, or
    once read back and compared.

    Parameters
    ----------
    dest_dir, basename, split, direct : Path, str, int, bool
        The volume files' folder, archive name, volume size and whether to use ``O_DIRECT``.
    chunk : int
        Size of an output block.
    verify : bool
        Read every segment back from the device and compare it with what was written.
    segment : int
        Bytes written between two read-backs, a multiple of ``chunk``.
    """

    def __init__(
        self,
        dest_dir: Path,
        basename: str,
        split: int,
        direct: bool,
        chunk: int,
        verify: bool,
        segment: int,
    ) -> None:
        self._chunk = chunk
        self.files = _VolumeFiles(dest_dir, basename, split, direct)
        self._segment = segment
        self.readback = _DeviceReadBack(self.files.paths, split, chunk) if verify else None
        self._unverified: list[_Written] = []  # written since the last read-back (io thread)
        self._unverified_bytes = 0
        self.offset = 0  # archive offset of the next byte laid out
        # Written blocks are kept until read back: up to a segment being compared while the
        # next one is written.
        blocks = max(_BLOCKS, 2 * segment // chunk + 2) if verify else _BLOCKS
        self._pool = [_Block(chunk) for _ in range(blocks)]
        self._free = list(self._pool)
        self._block: _Block | None = None  # the block being filled
        self._pending: deque[_Written] = deque()  # handed to the io thread, oldest first
        self._io = ThreadPoolExecutor(1, thread_name_prefix="zipcrypt-io")
        # HMAC-SHA1 of the ciphertext, a third of the work, off the caller's thread (see the
        # module docstring); its queue also orders the blocks' way to the io thread.
        self._mac = ThreadPoolExecutor(1, thread_name_prefix="zipcrypt-mac")
        self._mac_error: BaseException | None = None

    # -- the caller's side -----------------------------------------------------------------------

    def current_block(self) -> _Block:
        """The block being filled; a free one (waiting for one to be retired) if there is none."""
        if self._block is None:
            while not self._free:
                self._retire_oldest()
            block = self._free.pop()
            block.start, block.fill = self.offset, 0
            self._block = block
        return self._block

    def flush_block(self) -> None:
        """Hand the block being filled on to be written (after the MACs it holds)."""
        block, self._block = self._block, None
        if block is None or block.fill == 0:
            if block is not None:
                self._free.append(block)
            return
        self._send(block)

    def emit(self, data: bytes) -> None:
        """Lay out ``data`` (headers, MACs, records) at the current archive offset."""
        view = memoryview(data)
        while len(view):
            block = self.current_block()
            n = min(len(view), self._chunk - block.fill)
            block.mv[block.fill : block.fill + n] = view[:n]
            block.fill += n
            self.offset += n
            view = view[n:]
            if block.fill == self._chunk:
                self.flush_block()

    def update_mac(self, mac: HMAC, data: memoryview) -> None:
        """Have the mac thread add ``data``, the next piece of an entry's ciphertext, to ``mac``."""
        self._mac.submit(self._mac_update, mac, data)

    def emit_mac(self, mac: HMAC) -> None:
        """Leave room for an entry's MAC and have the mac thread fill it in.

        A block the MAC fills up is handed on only after the MAC is queued, so the io thread
        never writes it before the mac thread has.
        """
        places: list[tuple[_Block, int, int]] = []
        full: list[_Block] = []
        left = MAC_LEN
        while left:
            block = self.current_block()
            n = min(left, self._chunk - block.fill)
            places.append((block, block.fill, n))
            block.fill += n
            self.offset += n
            left -= n
            if block.fill == self._chunk:
                full.append(block)
                self._block = None  # a fresh block for the rest; this one waits
        self._mac.submit(self._mac_write, mac, places)
        for block in full:
            self._send(block)

    def finish(self) -> None:
        """Wait for every write, fsync and close the volumes, have the rest read back and compared.

        Called after the last :meth:`flush_block`; raises what a write or the read-back met.
        """
        self._shutdown_threads(cancel=False)  # every block is written (or failed)
        if self._mac_error is not None:  # pragma: no cover - hmac does not fail
            raise self._mac_error
        self.files.finish()
        if self.files.total != self.offset:  # pragma: no cover - internal invariant
            raise RuntimeError(f"wrote {self.files.total} bytes, expected {self.offset}")
        if self.readback is not None:
            self.readback.verify(self._unverified)  # the rest, now fsynced
            self._unverified = []
        while self._pending:
            self._retire_oldest()  # raises what a write or the read-back met
        if self.readback is not None:
            self.readback.close()

    def abort(self) -> None:
        """Stop the threads and the read-back, close the volumes unsynced, free the blocks."""
        self._shutdown_threads()
        if self.readback is not None:
            self.readback.close()
        self.files.close()
        self.release_blocks()

    def release_blocks(self) -> None:
        """Free the output blocks (the pipeline is done with them)."""
        for block in self._pool:
            with contextlib.suppress(BufferError):
                block.release()
        self._pool.clear()
        self._free.clear()

    # -- internals -------------------------------------------------------------------------------

    def _send(self, block: _Block) -> None:
        retired: Future[None] = Future()
        self._mac.submit(self._to_io, block, retired)  # after the MAC work queued before it
        self._pending.append((block, retired))
        while self._pending and self._pending[0][1].done():
            self._retire_oldest()  # surface write and read-back errors early

    def _to_io(self, block: _Block, retired: Future[None]) -> None:
        """On the mac thread: every MAC in ``block`` is written; on to the io thread."""
        if self._mac_error is not None:
            retired.set_exception(self._mac_error)
            return
        try:
            self._io.submit(self._write_block, block, retired)
        except RuntimeError as exc:  # the writer is being aborted
            retired.set_exception(exc)

    def _mac_update(self, mac: HMAC, data: memoryview) -> None:
        """On the mac thread: the next piece of an entry's ciphertext."""
        if self._mac_error is None:
            try:
                mac.update(data)
            except BaseException as exc:  # noqa: BLE001 - fails the blocks that follow
                self._mac_error = exc

    def _mac_write(self, mac: HMAC, places: list[tuple[_Block, int, int]]) -> None:
        """On the mac thread: write the entry's 10-byte code (AE III.5) into its place."""
        if self._mac_error is None:
            try:
                code = memoryview(mac.finalize()[:MAC_LEN])
                for block, at, n in places:
                    block.mv[at : at + n] = code[:n]
                    code = code[n:]
            except BaseException as exc:  # noqa: BLE001 - fails the blocks that follow
                self._mac_error = exc

    def _write_block(self, block: _Block, retired: Future[None]) -> None:
        """On the io thread: write ``block``; hand each finished segment to the read-back.

        ``retired`` completes when the block may be reused: once written, or once read back
        and compared when verifying; it carries the error otherwise.
        """
        try:
            self.files.write(block)
            if self.readback is None:
                retired.set_result(None)
                return
            self._unverified.append((block, retired))
            self._unverified_bytes += block.fill
            if self._unverified_bytes >= self._segment:
                self.files.sync_last()  # read back what the device keeps, not what it may drop
                written, self._unverified, self._unverified_bytes = self._unverified, [], 0
                self.readback.verify(written)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            for _, future in [*self._unverified, (block, retired)]:
                if not future.done():
                    future.set_exception(exc)
            self._unverified = []

    def _retire_oldest(self) -> None:
        block, retired = self._pending.popleft()
        retired.result()  # re-raises a worker's error as raised (errno intact)
        self._free.append(block)

    def _shutdown_threads(self, *, cancel: bool = True) -> None:
        self._mac.shutdown(wait=True, cancel_futures=cancel)  # it hands blocks to the io thread
        self._io.shutdown(wait=True, cancel_futures=cancel)
