"""The streaming AES-256 zip writer (WinZip AE-2): entries in, volumes out, every byte read back.

:class:`AesZipWriter` turns files into entries: it checks their names, takes their keys
(:mod:`kiosk.package.aeszip.winzip_aes`), lays out their local headers and the central directory
(:mod:`kiosk.package.aeszip.format`), and encrypts their data in place in the output blocks of
its pipeline (:mod:`kiosk.package.aeszip.pipeline`), which computes the MACs, writes the volumes
(:mod:`kiosk.package.aeszip.volumes`) and reads them back from the device while it writes
(:mod:`kiosk.package.aeszip.readback`). The archive is written strictly front to back and never
seeks.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import stat
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from kiosk.package.aeszip.errors import SourceChangedError
from kiosk.package.aeszip.format import (
    _DESCRIPTOR64,
    AES_OVERHEAD,
    SIG_DESCRIPTOR,
    ZIP64_LIMIT,
    _central_directory,
    _dos_datetime,
    _encode_name,
    _Entry,
    _local_header,
    _ut_extra,
)
from kiosk.package.aeszip.pipeline import _BlockOutput
from kiosk.package.aeszip.volumes import _ALIGN, DEFAULT_CHUNK, default_split_size
from kiosk.package.aeszip.winzip_aes import (
    _KEY_THREADS,
    _KEYS_AHEAD,
    KeySupply,
    _check_passphrase,
    _KeyMaterial,
    _new_key_material,
    _new_mac,
    _WinZipCtr,
)
from kiosk.store.durable import fsync_dir

__all__ = ["AesZipWriter", "ArchiveResult"]

log = logging.getLogger(__name__)

DEFAULT_READBACK_SEGMENT = 16 << 20  # bytes written between two read-backs


@dataclass(frozen=True)
class ArchiveResult:
    """What :meth:`AesZipWriter.close` wrote.

    Attributes
    ----------
    volumes : list of Path
        The archive's files in order: one ``<basename>.zip``, or ``<basename>.zip.001``, ...
    verified : bool
        Every byte was read back from the device after it was synced and matched what was
        written (False only when the writer was made with ``verify=False``).
    entries : int
        Number of files in the archive.
    bytes_in : int
        Plaintext bytes archived.
    bytes_out : int
        Total size of all volumes.
    """

    volumes: list[Path]
    verified: bool
    entries: int
    bytes_in: int
    bytes_out: int


def _size_of(source: BinaryIO) -> int | None:
    """Bytes left in ``source``, or None when that cannot be known (a pipe, a socket)."""
    try:
        st = os.fstat(source.fileno())
        if stat.S_ISREG(st.st_mode):
            return max(0, st.st_size - source.tell())
    except (AttributeError, OSError, io.UnsupportedOperation):
        pass
    try:
        if source.seekable():
            here = source.tell()
            end = source.seek(0, os.SEEK_END)
            source.seek(here)
            return max(0, end - here)
    except (AttributeError, OSError, io.UnsupportedOperation):
        pass
    return None


def _read_full(source: BinaryIO, view: memoryview) -> int:
    """Fill ``view`` from ``source`` (short reads retried); return the bytes read (< len at EOF)."""
    got = 0
    readinto = getattr(source, "readinto", None)
    while got < len(view):
        if readinto is not None:
            n = readinto(view[got:])
        else:
            data = source.read(len(view) - got)
            n = len(data)
            view[got : got + n] = data
        if n is None:
            raise BlockingIOError(errno.EAGAIN, "non-blocking source returned no data")
        if n == 0:
            break
        got += n
    return got


class AesZipWriter:
    """Stream files into an AES-256 encrypted ZIP (WinZip AE-2), split into volumes if needed.

    Parameters
    ----------
    dest_dir : Path
        Existing directory to write into (e.g. the case folder on the patient's stick).
    basename : str
        Archive name without extension: the result is ``<basename>.zip`` or, when it does not
        fit one volume, ``<basename>.zip.001``, ``.002``, ... (a byte-split 7-Zip opens).
    passphrase : str
        Printable ASCII (tools disagree on how to encode anything else).
    keys : KeySupply, optional
        Key material prepared for this archive (its passphrase must be ``passphrase``); the
        writer derives the rest itself. The caller closes it.
    split_size : int, optional
        Largest volume in bytes; None means :func:`default_split_size` (FAT32-safe).
    chunk_size : int
        Size of the output blocks read, encrypted, hashed and written at a time; a multiple of
        4096, at least 64 KiB. Four are allocated.
    zip64_limit : int
        Sizes, offsets and counts at or above this use ZIP64 records. Only tests change it.
    direct_io : bool
        Write aligned data with ``O_DIRECT`` (falls back to the page cache where refused).
    verify : bool
        Read every volume back from the device while writing (every ``readback_segment``
        bytes, after an fdatasync) and in :meth:`close` (after the final fsync), and compare it
        with what was written; :class:`ReadBackError` if it differs.
    readback_segment : int, optional
        Bytes written between two read-backs, a multiple of ``chunk_size``; by default
        16 MiB (or ``chunk_size`` if larger). Twice that is kept in memory.

    Notes
    -----
    Volumes are written as ``<final name>.partial`` (created exclusively: nothing existing is
    ever overwritten) and renamed after every volume is fsynced, so a crash leaves only files
    that say they are incomplete. Used as a context manager, an exception inside the block
    calls :meth:`abort`, which deletes the files this writer created (even after ``close``).
    Write errors (ENOSPC, EIO, EROFS, ...) surface as the original ``OSError``, errno intact.
    After any error other than a rejected name the writer is unusable: call :meth:`abort`.
    """

    def __init__(
        self,
        dest_dir: Path,
        basename: str,
        passphrase: str,
        *,
        keys: KeySupply | None = None,
        split_size: int | None = None,
        chunk_size: int = DEFAULT_CHUNK,
        zip64_limit: int = ZIP64_LIMIT,
        direct_io: bool = True,
        verify: bool = True,
        readback_segment: int | None = None,
    ) -> None:
        pw = _check_passphrase(passphrase)
        if keys is not None and keys.passphrase != passphrase:
            raise ValueError("the key supply was made for another passphrase")
        if not basename or "/" in basename or basename in (".", ".."):
            raise ValueError(f"bad archive basename: {basename!r}")
        if chunk_size < (64 << 10) or chunk_size % _ALIGN:
            raise ValueError("chunk_size must be a multiple of 4096 and at least 64 KiB")
        split = default_split_size() if split_size is None else split_size
        if split < 1:
            raise ValueError("split_size must be positive")
        if not 1 <= zip64_limit <= ZIP64_LIMIT:
            raise ValueError("zip64_limit must be in 1..0xFFFFFFFF")
        segment = readback_segment or max(DEFAULT_READBACK_SEGMENT, chunk_size)
        if segment < chunk_size or segment % chunk_size:
            raise ValueError("readback_segment must be a positive multiple of chunk_size")
        self._dir = Path(dest_dir)
        self._basename = basename
        for name in (f"{basename}.zip", f"{basename}.zip.001"):
            if os.path.lexists(self._dir / name):
                raise FileExistsError(errno.EEXIST, "refusing to overwrite", str(self._dir / name))
        if not self._dir.is_dir():
            raise FileNotFoundError(errno.ENOENT, "no such directory", str(self._dir))
        self._passphrase = pw
        self._supply = keys
        self._chunk = chunk_size
        self._zip64_limit = zip64_limit
        self._output = _BlockOutput(self._dir, basename, split, direct_io, chunk_size, verify,
                                    segment)
        self._entries: list[_Entry] = []
        self._names: set[str] = set()
        self._bytes_in = 0
        self._state = "open"  # open | failed | closed | aborted
        self._finals: list[Path] = []
        self._ctr = _WinZipCtr(chunk_size)
        self._keys = ThreadPoolExecutor(_KEY_THREADS, thread_name_prefix="zipcrypt-keys")
        self._key_futures: deque[Future[_KeyMaterial]] = deque()

    # -- context manager -------------------------------------------------------------------------

    def __enter__(self) -> AesZipWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None or self._state == "failed":
            self.abort()
        elif self._state == "open":
            self.close()

    # -- public API ------------------------------------------------------------------------------

    def add_file(
        self, arcname: str, source: Path | BinaryIO, *, mtime: float | None = None
    ) -> None:
        """Encrypt one file into the archive, streaming it.

        Parameters
        ----------
        arcname : str
            Name inside the archive: a relative POSIX path such as ``REPORTS/报告.pdf``.
            Names must be unique, ignoring case (they are extracted to FAT and NTFS).
        source : Path or binary file object
            A path, or an open binary file read from its current position to EOF. Sources of
            unknown length (pipes) are accepted and get a ZIP64 data descriptor.
        mtime : float, optional
            Modification time (epoch seconds); defaults to the file's, or now.

        Raises
        ------
        ValueError
            Bad or duplicate name (the writer stays usable).
        SourceChangedError
            The source's length changed while it was read.
        OSError
            Opening the source failed (the writer stays usable), or reading it or writing the
            archive failed (the writer is then unusable: abort); errno preserved.
        """
        raw_name, name_flags = self._check_name(arcname)
        if isinstance(source, (str, os.PathLike)):
            with open(source, "rb", buffering=0) as fh:
                st = os.fstat(fh.fileno())
                if st.st_size > self._chunk:
                    with contextlib.suppress(OSError):
                        os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
                size = st.st_size if stat.S_ISREG(st.st_mode) else None
                mtime = st.st_mtime if mtime is None else mtime
                self._add(arcname, raw_name, name_flags, fh, mtime, size)
        else:
            if mtime is None:
                try:
                    mtime = os.fstat(source.fileno()).st_mtime
                except (AttributeError, OSError, io.UnsupportedOperation):
                    mtime = time.time()
            self._add(arcname, raw_name, name_flags, source, mtime, _size_of(source))

    def add_bytes(self, arcname: str, data: bytes, *, mtime: float | None = None) -> None:
        """Encrypt ``data`` into the archive as ``arcname`` (see :meth:`add_file`)."""
        self.add_file(arcname, io.BytesIO(data), mtime=time.time() if mtime is None else mtime)

    def close(self) -> ArchiveResult:
        """Write the central directory, fsync every volume and give them their final names.

        Returns
        -------
        ArchiveResult
            Volumes in order with their SHA-256, entry and byte counts.
        """
        self._require_open()
        try:
            self._write_central_directory()
            self._output.flush_block()
            self._keys.shutdown(wait=True, cancel_futures=True)
            self._output.finish()  # every block written, fsynced, read back (or it raises)
            self._rename_volumes()
        except BaseException:
            self._state = "failed"
            raise
        self._state = "closed"
        self._output.release_blocks()
        return ArchiveResult(
            volumes=list(self._finals),
            verified=self._output.readback is not None,
            entries=len(self._entries),
            bytes_in=self._bytes_in,
            bytes_out=self._output.offset,
        )

    def abort(self) -> list[Path]:
        """Stop, and delete every volume this writer created (partial or final). Idempotent.

        Returns
        -------
        list of Path
            Files that could not be deleted (e.g. the stick was removed); normally empty.
        """
        if self._state == "aborted":
            return []
        self._state = "aborted"
        self._keys.shutdown(wait=True, cancel_futures=True)
        self._output.abort()
        left: list[Path] = []
        for path in [*self._output.files.paths, *self._finals]:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("could not remove %s: %s", path, exc)
                left.append(path)
        return left

    # -- internals: state, keys ------------------------------------------------------------------

    def _require_open(self) -> None:
        if self._state != "open":
            raise RuntimeError(f"the archive writer is {self._state}")

    def _check_name(self, arcname: str) -> tuple[bytes, int]:
        self._require_open()
        raw, flags = _encode_name(arcname)
        if arcname.casefold() in self._names:
            raise ValueError(f"duplicate archive name (names are case-insensitive): {arcname!r}")
        return raw, flags

    def _next_keys(self) -> _KeyMaterial:
        if self._supply is not None and (prepared := self._supply.take()) is not None:
            return prepared
        while len(self._key_futures) < _KEYS_AHEAD:
            self._key_futures.append(self._keys.submit(_new_key_material, self._passphrase))
        return self._key_futures.popleft().result()

    # -- internals: entries ----------------------------------------------------------------------

    def _add(
        self,
        arcname: str,
        raw_name: bytes,
        name_flags: int,
        source: BinaryIO,
        mtime: float,
        size: int | None,
    ) -> None:
        try:
            keys = self._next_keys()
            self._write_entry(raw_name, name_flags, source, mtime, size, keys)
        except BaseException:
            self._state = "failed"
            raise
        self._names.add(arcname.casefold())

    def _write_entry(
        self,
        raw_name: bytes,
        name_flags: int,
        source: BinaryIO,
        mtime: float,
        size: int | None,
        keys: _KeyMaterial,
    ) -> None:
        output = self._output
        offset = output.offset
        dos_time, dos_date = _dos_datetime(mtime)
        ut = _ut_extra(mtime)

        # Local file header (APPNOTE 4.3.7), final now: AE-2 stores no CRC (AE II.3).
        local, flags = _local_header(raw_name, name_flags, dos_time, dos_date, ut, size,
                                     self._zip64_limit)
        # AE III.1: the salt and the password verifier precede the encrypted data, in clear.
        output.emit(local + keys.salt + keys.verifier)

        # Encrypted file data (AE III.4), read straight into the output block and encrypted
        # in place, then HMAC-SHA1 of the ciphertext (AE III.5) on the mac thread.
        self._ctr.reset(keys.aes_key)
        mac = _new_mac(keys.mac_key)
        done = 0
        while size is None or done < size:
            block = output.current_block()
            want = self._chunk - block.fill
            if size is not None:
                want = min(want, size - done)
            start = block.fill
            n = _read_full(source, block.mv[start : start + want])
            self._ctr.apply(block.arr[start : start + n], done)
            if n:
                output.update_mac(mac, block.mv[start : start + n])
            block.fill += n
            output.offset += n
            done += n
            if block.fill == self._chunk:
                output.flush_block()
            if n < want:  # end of file
                if size is not None:
                    raise SourceChangedError(
                        f"{raw_name.decode()} shrank from {size} to {done} bytes while it was"
                        " being archived; the export must be restarted."
                    )
                break
        if size is not None and source.read(1):
            raise SourceChangedError(
                f"{raw_name.decode()} grew beyond {size} bytes while it was being archived; the"
                " export must be restarted."
            )
        output.emit_mac(mac)
        packed = done + AES_OVERHEAD
        if size is None:
            # Data descriptor with ZIP64 sizes (4.3.9.1-4.3.9.3); CRC 0 (AE II.3).
            output.emit(_DESCRIPTOR64.pack(SIG_DESCRIPTOR, 0, packed, done))
        self._entries.append(_Entry(raw_name, flags, dos_time, dos_date, ut, done, packed, offset))
        self._bytes_in += done

    def _write_central_directory(self) -> None:
        for record in _central_directory(self._entries, self._output.offset, self._zip64_limit):
            self._output.emit(record)

    def _rename_volumes(self) -> None:
        partials = self._output.files.paths
        if len(partials) == 1:
            finals = [self._dir / f"{self._basename}.zip"]
        else:
            finals = [
                self._dir / f"{self._basename}.zip.{i:03d}" for i in range(1, len(partials) + 1)
            ]
        for final in finals:
            if os.path.lexists(final):
                raise FileExistsError(errno.EEXIST, "refusing to overwrite", str(final))
        for partial, final in zip(partials, finals, strict=True):
            os.rename(partial, final)
            self._finals.append(final)
        fsync_dir(self._dir)
