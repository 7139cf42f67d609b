"""Streaming writer and verifier of AES-256 encrypted ZIP archives (WinZip AE-2).

This is the only module in the kiosk that knows the ZIP format. It writes the archive the patient
takes home (DESIGN.md §3 "Patient USB"): the format 7-Zip, WinZip, WinRAR, Keka and The
Unarchiver open with a passphrase.

Format, per entry
-----------------
* compression method 99 and the AES extra field 0x9901 (vendor version 2 = AE-2, vendor id "AE",
  strength 3 = AES-256, actual method 0 = stored: DICOM pixel data does not compress well and
  stored is fastest);
* CRC field 0 (AE-2); data = 16-byte salt | 2-byte password verifier | ciphertext | 10-byte MAC;
* keys from PBKDF2-HMAC-SHA1 (1000 iterations, 66 bytes: AES key, HMAC key, verifier);
* AES-256-CTR with WinZip's *little-endian* counter starting at 1, computed as AES-ECB over
  counter blocks built in numpy and XORed in numpy (``cryptography``'s CTR mode counts big-endian);
* HMAC-SHA1 of the ciphertext, truncated to 10 bytes;
* ZIP64 records where sizes, offsets or the entry count need them; the UTF-8 flag (bit 11) on
  non-ASCII names.

Because AE-2 stores no CRC and "stored" makes the packed size ``size + 28``, every local header
is final before the data is read: the archive is written strictly front to back, never seeks,
and needs no data descriptor (except for sources of unknown length, e.g. a pipe). A plain
byte-split into ``name.zip.001``, ``.002``, ... (what 7-Zip opens) therefore costs nothing.

Pipeline (2 cores)
------------------
The caller's thread lays the archive's bytes out directly in page-aligned output blocks of
``chunk_size`` (4 MiB): headers are copied in, file data is read with ``readinto`` straight into
its place in the block and encrypted there. No byte is copied twice. Around it, every heavy call
releases the GIL:

* *keys* (a child process, :mod:`kiosk.package.key_process`; 2 threads as a fallback): PBKDF2 for
the next entries, ahead of time (salts are random, so keys do not depend on the data). ~1 ms per
  entry: the largest cost when files are small, so a :class:`KeySupply` can start it before the
  writer exists. ``cryptography``'s PBKDF2 holds the GIL, hence a process rather than a thread.
* *caller* (``add_file``): read, keystream (AES-ECB over preallocated counter blocks), XOR in
  place.
* *mac*: HMAC-SHA1 of each entry's ciphertext, piece by piece in order, then its 10-byte code
  written into the place the caller left for it; a full block goes on to the *io* thread
  through this one's queue, so only after every code in it is written.
* *io*: writes each block to its volume(s) with ``O_DIRECT`` where offsets and lengths are
  aligned (no page-cache copy: that costs more CPU here than AES; the unaligned tail goes
  through the page cache), fsyncs each volume as it fills and, every ``readback_segment``
  bytes, fdatasyncs the volume and hands the finished segment to the read-back.
* *verify* and *readback*: read each finished segment back from the device (``O_DIRECT``, or
  the page cache dropped for the range) while the next segments are written, and compare it
  byte for byte with the blocks that were written, which are kept until then. ``close`` reads
  back the last segment after the final fsync. A difference raises :class:`ReadBackError`.

Comparing with the written bytes costs a fifth of hashing them (numpy compares at 4-8 GB/s;
SHA-256 runs at ~1 GB/s here, and would be needed on both sides) and is the strongest check
there is. Memory is bounded by the block pools (two read-back segments' worth of output
blocks, at least four, plus 3 read-back blocks of ``chunk_size``) plus the central directory
(about 100 bytes per entry), whatever the size of the files.

References
----------
APPNOTE
    PKWARE ".ZIP File Format Specification" 6.3.x: 4.3.7 local file header, 4.3.9 data
    descriptor, 4.3.12 central directory header, 4.3.14-4.3.16 ZIP64 end records and end of
    central directory, 4.4.x field meanings, 4.5.3 ZIP64 extended information extra field.
AE
    WinZip "AES Encryption Information: Encryption Specification AE-1 and AE-2", version 1.04:
    II.2 method and flag, II.3 CRC, II.4 extra field, III.1-III.5 storage format, V.1 empty
    files, V.3 key generation.
"""

from __future__ import annotations

import bisect
import contextlib
import ctypes
import errno
import fcntl
import hashlib
import hmac
import io
import logging
import mmap
import os
import secrets
import stat
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes
from cryptography.hazmat.primitives.hmac import HMAC
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from kiosk.errors import KioskError, VerificationError
from kiosk.package.key_process import KeyProcess
from kiosk.store.durable import fsync_dir

__all__ = [
    "ZIP64_LIMIT",
    "AesZipWriter",
    "ArchiveCorruptError",
    "ArchiveResult",
    "KeySupply",
    "ReadBackError",
    "SourceChangedError",
    "WrongPassphraseError",
    "default_split_size",
    "read_back_sha256",
    "verify_archive",
]

log = logging.getLogger(__name__)

# --- WinZip AE-1/AE-2 constants (AE II.4, III.1, V.3) -------------------------------------------
AES_METHOD = 99  # compression method signalling AES (AE II.2)
STORED = 0  # actual compression method inside the AES extra field
AES_EXTRA_ID = 0x9901
AE_2 = 2  # vendor version: AE-2 stores CRC 0 (AE II.3)
AES_256 = 3  # encryption strength: 256-bit key
SALT_LEN = {1: 8, 2: 12, 3: 16}  # strength -> salt length (AE III.2)
KEY_LEN = {1: 16, 2: 24, 3: 32}  # strength -> AES and HMAC key length (AE V.3)
PV_LEN = 2  # password verification value (AE III.3)
MAC_LEN = 10  # HMAC-SHA1-80 authentication code (AE III.5)
PBKDF2_ITERATIONS = 1000  # AE V.3
AES_OVERHEAD = SALT_LEN[AES_256] + PV_LEN + MAC_LEN  # packed size = size + 28

# --- ZIP constants (APPNOTE 4.3, 4.4, 4.5) ------------------------------------------------------
SIG_LOCAL = 0x04034B50  # 4.3.7
SIG_DESCRIPTOR = 0x08074B50  # 4.3.9.3
SIG_CENTRAL = 0x02014B50  # 4.3.12
SIG_ZIP64_EOCD = 0x06064B50  # 4.3.14
SIG_ZIP64_LOCATOR = 0x07064B50  # 4.3.15
SIG_EOCD = 0x06054B50  # 4.3.16
ZIP64_EXTRA_ID = 0x0001  # 4.5.3
UT_EXTRA_ID = 0x5455  # Info-ZIP extended timestamp (4.6.1 third-party mappings): UTC mtime
VERSION_MADE_BY = (3 << 8) | 63  # 4.4.2: host 3 = UNIX, specification 6.3
VERSION_NEEDED = 51  # 4.4.3.2: 5.1 = AES encryption (>= 4.5 for ZIP64); what 7-Zip writes
ZIP64_VERSION_NEEDED = 45  # 4.4.3.2: ZIP64 records
FLAG_ENCRYPTED = 0x0001  # 4.4.4 bit 0 (AE II.2)
FLAG_DESCRIPTOR = 0x0008  # 4.4.4 bit 3: sizes follow the data
FLAG_UTF8 = 0x0800  # 4.4.4 bit 11: name is UTF-8
ZIP64_LIMIT = 0xFFFFFFFF  # a 4-byte field holding this value means "see ZIP64" (4.4.8, 4.4.16)
ZIP64_COUNT_LIMIT = 0xFFFF  # same for 2-byte entry counts (4.4.21, 4.4.22)
UNIX_FILE_ATTRS = (stat.S_IFREG | 0o644) << 16  # 4.4.15 external attributes, UNIX host

_LOCAL = struct.Struct("<IHHHHHIIIHH")  # 4.3.7, 30 bytes
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")  # 4.3.12, 46 bytes
_ZIP64_EOCD = struct.Struct("<IQHHIIQQQQ")  # 4.3.14, 56 bytes
_ZIP64_LOCATOR = struct.Struct("<IIQI")  # 4.3.15, 20 bytes
_EOCD = struct.Struct("<IHHHHIIH")  # 4.3.16, 22 bytes
_AES_EXTRA = struct.Struct("<HHH2sBH")  # AE II.4, 11 bytes
_UT_EXTRA = struct.Struct("<HHBI")  # extended timestamp with mtime only, 9 bytes
_DESCRIPTOR64 = struct.Struct("<IIQQ")  # 4.3.9 with ZIP64 sizes, 24 bytes

FAT32_MAX_FILE = (4 << 30) - 1  # largest file FAT32 can hold
DEFAULT_CHUNK = 4 << 20
_ALIGN = 4096  # O_DIRECT alignment of memory, file offsets and lengths (safe for 512e/4Kn)
_BLOCKS = 4  # output blocks shared by the caller and the io thread, at least
_READ_BLOCKS = 3  # read-back blocks: two reads in flight while one is compared
DEFAULT_READBACK_SEGMENT = 16 << 20  # bytes written between two read-backs
_KEYS_AHEAD = 8  # key derivations prepared ahead of the entries that use them
_KEY_THREADS = 2
_CHILD_WAIT = 0.5  # seconds to wait for a key the child owes before deriving one ourselves


def default_split_size() -> int:
    """Largest volume the kiosk writes: 4000 MiB, safely below FAT32's 4 GiB - 1 limit.

    Returns
    -------
    int
        Volume size in bytes (4,194,304,000; ~95 MiB below the FAT32 maximum, and a multiple
        of 4096 so every volume is written with ``O_DIRECT``).
    """
    return 4000 << 20


# --- errors ---------------------------------------------------------------------------------------


class WrongPassphraseError(VerificationError):
    """The passphrase does not open the archive (password verifier mismatch)."""

    default_title = "Wrong passphrase"


class ArchiveCorruptError(VerificationError):
    """The archive is damaged or was tampered with (bad structure, MAC or CRC)."""

    default_title = "Archive damaged"


class ReadBackError(VerificationError):
    """What the device returned differs from what was written to it."""

    default_title = "Read-back failed"


class SourceChangedError(KioskError):
    """A source file changed size while it was being archived; the archive is unusable."""

    default_title = "File changed during export"
    exit_code = 4


# --- results --------------------------------------------------------------------------------------


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


# --- cryptography ---------------------------------------------------------------------------------


def derive_keys(
    passphrase: bytes, salt: bytes, strength: int = AES_256
) -> tuple[bytes, bytes, bytes]:
    """Derive the AES key, HMAC key and password verifier (AE V.3).

    Parameters
    ----------
    passphrase : bytes
        The passphrase as bytes.
    salt : bytes
        The entry's salt (16 bytes for AES-256).
    strength : int
        AE strength code (1, 2 or 3).

    Returns
    -------
    tuple of bytes
        ``(aes_key, hmac_key, verifier)``.
    """
    n = KEY_LEN[strength]
    kdf = PBKDF2HMAC(hashes.SHA1(), 2 * n + PV_LEN, salt, PBKDF2_ITERATIONS)
    dk = kdf.derive(passphrase)
    return dk[:n], dk[n : 2 * n], dk[2 * n :]


@dataclass(frozen=True)
class _KeyMaterial:
    salt: bytes
    aes_key: bytes
    mac_key: bytes
    verifier: bytes


def _new_key_material(passphrase: bytes) -> _KeyMaterial:
    """A fresh random salt (AE III.2: unique per entry) and the keys derived from it."""
    salt = secrets.token_bytes(SALT_LEN[AES_256])
    return _KeyMaterial(salt, *derive_keys(passphrase, salt))


def _check_passphrase(passphrase: str) -> bytes:
    if not passphrase or not all(0x20 <= ord(c) < 0x7F for c in passphrase):
        raise ValueError("the passphrase must be non-empty printable ASCII")
    return passphrase.encode("ascii")


class KeySupply:
    """Key material for one archive's entries, derived before the writer needs it.

    Every entry gets a fresh random salt and the keys PBKDF2 derives from it (AE III.2, V.3):
    about a millisecond of CPU each, for 2,000 CT slices the largest single cost of writing the
    archive. None of it depends on the data, so it can start as soon as the passphrase exists:
    an exporter makes the supply first, and a child process (:class:`KeyProcess`: its own GIL,
    so it never stalls the writer's threads) derives ``prepare`` keys while the program finishes
    starting and plans the package, then those of every entry (:meth:`expect`). If the child
    cannot start, one background thread derives ``prepare`` keys instead.
    :class:`AesZipWriter` takes prepared keys first, then derives its own.

    Parameters
    ----------
    passphrase : str
        Printable ASCII (tools disagree on how to encode anything else).
    prepare : int
        Keys to derive in the background now; :meth:`expect` lowers it once the number of
        entries is known. 0 prepares nothing.
    """

    def __init__(self, passphrase: str, *, prepare: int = 0) -> None:
        self._pw = _check_passphrase(passphrase)
        self.passphrase = passphrase
        self._ready: deque[_KeyMaterial] = deque()
        self._lock = threading.Lock()
        self._target = max(0, prepare)
        self._started = 0
        self._thread: threading.Thread | None = None
        self._child: KeyProcess | None = None
        if self._target:
            try:
                self._child = KeyProcess(self._pw, self._target)
                return
            except OSError as exc:  # no child: derive in a thread of ours instead
                log.warning("key derivation process failed to start: %s", exc)
            self._thread = threading.Thread(target=self._prepare, name="zipcrypt-prepare-keys",
                                            daemon=True)
            self._thread.start()

    def expect(self, entries: int) -> None:
        """The archive has ``entries`` entries: prepare no more keys than that.

        A child process (``prepare`` > 0) is asked for exactly that many: it costs our
        threads nothing, so it derives the keys of every entry.
        """
        with self._lock:
            self._target = min(self._target, entries)
            if self._child is not None:
                self._child.request(entries)

    def take(self) -> _KeyMaterial | None:
        """A prepared key material, or None when none is ready yet.

        Keys owed by the child process are waited for (they come at ~1 per ms, faster than
        entries are written) up to ``_CHILD_WAIT`` seconds; None then, or when the child
        failed, and the writer derives its own.
        """
        with self._lock:
            if self._child is not None:
                record = self._child.take(_CHILD_WAIT)
                if record is None:
                    return None
                salt, dk = record
                n = KEY_LEN[AES_256]
                return _KeyMaterial(salt, dk[:n], dk[n : 2 * n], dk[2 * n :])
            return self._ready.popleft() if self._ready else None

    def close(self) -> None:
        """Stop preparing; wait for the derivation in progress (a millisecond)."""
        self.expect(0)
        if self._thread is not None:
            self._thread.join()
        if self._child is not None:
            self._child.close()
        self._ready.clear()

    def _prepare(self) -> None:
        while True:
            with self._lock:
                if self._started >= self._target:
                    return
                self._started += 1
            material = _new_key_material(self._pw)
            with self._lock:
                self._ready.append(material)


def _new_mac(key: bytes) -> HMAC:
    """HMAC-SHA1 of an entry's ciphertext (AE III.5).

    cryptography's, not hashlib's: its own OpenSSL uses the CPU's SHA instructions where the
    system's did not here (0.82 against 0.98 s of CPU a GB); both release the GIL.
    """
    return HMAC(key, hashes.SHA1())


class _WinZipCtr:
    """AES-CTR with WinZip's counter (AE III.4), on pieces of at most ``max_len`` bytes.

    The counter block is a 64-bit little-endian integer in bytes 0-7 (bytes 8-15 stay zero),
    first used with value 1, as in Dr Gladman's ``fileenc.c`` that WinZip and 7-Zip follow.
    The keystream is AES-ECB over a preallocated table of counter blocks; the XOR is numpy's.
    Pieces may start anywhere: the position in the entry picks the counter and the offset.

    Every entry counts from 1 again, so the table is filled for counters 1, 2, ... once and
    reused: an entry shorter than ``max_len`` (a CT or MR slice) never rewrites it. Only pieces
    beyond the table's window move it (a strided add over the whole table, which cost as much
    as the XOR when it ran for every piece).
    """

    def __init__(self, max_len: int) -> None:
        blocks = max_len // 16 + 2  # a piece not starting on a block border spans one more
        self._base = np.arange(1, blocks + 1, dtype="<u8")
        self._counters = np.zeros((blocks, 2), dtype="<u8")
        self._counters[:, 0] = self._base
        self._window = 0  # the table holds counters for blocks [window, window + blocks)
        self._counter_bytes = self._counters.reshape(-1).view(np.uint8).data
        self._keystream = bytearray(blocks * 16 + 16)  # update_into wants len + 15
        self._keystream_mv = memoryview(self._keystream)
        self._keystream_np = np.frombuffer(self._keystream, dtype=np.uint8)
        self._ecb: CipherContext | None = None

    def reset(self, key: bytes) -> None:
        """Start a new entry encrypted with ``key``."""
        self._ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()

    def apply(self, data: np.ndarray, pos: int) -> None:
        """XOR ``data`` (uint8, writable) in place with the keystream at entry offset ``pos``."""
        n = len(data)
        if n == 0:
            return
        first, skip = divmod(pos, 16)
        blocks = (skip + n + 15) // 16
        at = first - self._window
        if at < 0 or at + blocks > len(self._base):
            np.add(self._base, first, out=self._counters[:, 0])
            self._window, at = first, 0
        assert self._ecb is not None, "reset() first"
        counters = self._counter_bytes[at * 16 : (at + blocks) * 16]
        self._ecb.update_into(counters, self._keystream_mv[: blocks * 16 + 15])
        np.bitwise_xor(data, self._keystream_np[skip : skip + n], out=data)


# --- names and times ------------------------------------------------------------------------------


def _encode_name(arcname: str) -> tuple[bytes, int]:
    """Validate a member name; return its UTF-8 bytes and the flag bits it needs (4.4.17)."""
    if not isinstance(arcname, str) or not arcname:
        raise ValueError("archive name must be a non-empty string")
    if arcname.startswith("/") or "\\" in arcname:
        raise ValueError(f"archive name must be a relative POSIX path: {arcname!r}")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in arcname):
        raise ValueError(f"archive name contains control characters: {arcname!r}")
    if any(p in ("", ".", "..") for p in arcname.split("/")):
        raise ValueError(f"archive name has an empty, '.' or '..' component: {arcname!r}")
    raw = arcname.encode("utf-8")
    if len(raw) > 0xFFFF:
        raise ValueError("archive name is longer than 65535 bytes")
    return raw, (FLAG_UTF8 if not arcname.isascii() else 0)


def _dos_datetime(mtime: float) -> tuple[int, int]:
    """MS-DOS time and date fields (APPNOTE 4.4.6), local time, clamped to 1980-2107."""
    t = time.localtime(mtime)
    if t.tm_year < 1980:
        return 0, (1 << 5) | 1  # 1980-01-01 00:00:00
    if t.tm_year > 2107:
        return (23 << 11) | (59 << 5) | 29, (127 << 9) | (12 << 5) | 31
    return (
        (t.tm_hour << 11) | (t.tm_min << 5) | (min(t.tm_sec, 59) // 2),
        ((t.tm_year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday,
    )


def _ut_extra(mtime: float) -> bytes:
    """Info-ZIP extended timestamp (0x5455) with the UTC mtime, when it fits in 31 bits."""
    seconds = int(mtime)
    if 0 <= seconds <= 0x7FFFFFFF:
        return _UT_EXTRA.pack(UT_EXTRA_ID, 5, 0x01, seconds)
    return b""


_AES_EXTRA_BYTES = _AES_EXTRA.pack(AES_EXTRA_ID, 7, AE_2, b"AE", AES_256, STORED)


# --- output: blocks, read-back, volume files -----------------------------------------------------


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


# --- the writer -----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Entry:
    name: bytes
    flags: int
    dos_time: int
    dos_date: int
    ut: bytes
    size: int
    packed: int
    offset: int


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
        self._files = _VolumeFiles(self._dir, basename, split, direct_io)
        self._segment = segment
        self._readback = _DeviceReadBack(self._files.paths, split, chunk_size) if verify else None
        self._unverified: list[_Written] = []  # written since the last read-back (io thread)
        self._unverified_bytes = 0
        self._entries: list[_Entry] = []
        self._names: set[str] = set()
        self._offset = 0  # archive offset of the next byte laid out
        self._bytes_in = 0
        self._state = "open"  # open | failed | closed | aborted
        self._finals: list[Path] = []
        self._ctr = _WinZipCtr(chunk_size)
        # Written blocks are kept until read back: up to a segment being compared while the
        # next one is written.
        blocks = max(_BLOCKS, 2 * segment // chunk_size + 2) if verify else _BLOCKS
        self._pool = [_Block(chunk_size) for _ in range(blocks)]
        self._free = list(self._pool)
        self._block: _Block | None = None  # the block being filled
        self._pending: deque[_Written] = deque()  # handed to the io thread, oldest first
        self._io = ThreadPoolExecutor(1, thread_name_prefix="zipcrypt-io")
        # HMAC-SHA1 of the ciphertext, a third of the work, off the caller's thread (see the
        # module docstring); its queue also orders the blocks' way to the io thread.
        self._mac = ThreadPoolExecutor(1, thread_name_prefix="zipcrypt-mac")
        self._mac_error: BaseException | None = None
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
            self._flush_block()
            self._shutdown_threads(cancel=False)  # every block is written (or failed)
            if self._mac_error is not None:  # pragma: no cover - hmac does not fail
                raise self._mac_error
            self._files.finish()
            if self._files.total != self._offset:  # pragma: no cover - internal invariant
                raise RuntimeError(f"wrote {self._files.total} bytes, expected {self._offset}")
            if self._readback is not None:
                self._readback.verify(self._unverified)  # the rest, now fsynced
                self._unverified = []
            while self._pending:
                self._retire_oldest()  # raises what a write or the read-back met
            if self._readback is not None:
                self._readback.close()
            self._rename_volumes()
        except BaseException:
            self._state = "failed"
            raise
        self._state = "closed"
        self._release_blocks()
        return ArchiveResult(
            volumes=list(self._finals),
            verified=self._readback is not None,
            entries=len(self._entries),
            bytes_in=self._bytes_in,
            bytes_out=self._offset,
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
        self._shutdown_threads()
        if self._readback is not None:
            self._readback.close()
        self._files.close()
        self._release_blocks()
        left: list[Path] = []
        for path in [*self._files.paths, *self._finals]:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("could not remove %s: %s", path, exc)
                left.append(path)
        return left

    # -- internals: state, keys, blocks ----------------------------------------------------------

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

    def _current_block(self) -> _Block:
        if self._block is None:
            while not self._free:
                self._retire_oldest()
            block = self._free.pop()
            block.start, block.fill = self._offset, 0
            self._block = block
        return self._block

    def _flush_block(self) -> None:
        """Hand the block being filled on to be written (after the MACs it holds)."""
        block, self._block = self._block, None
        if block is None or block.fill == 0:
            if block is not None:
                self._free.append(block)
            return
        self._send(block)

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

    def _emit_mac(self, mac: HMAC) -> None:
        """Leave room for an entry's MAC and have the mac thread fill it in.

        A block the MAC fills up is handed on only after the MAC is queued, so the io thread
        never writes it before the mac thread has.
        """
        places: list[tuple[_Block, int, int]] = []
        full: list[_Block] = []
        left = MAC_LEN
        while left:
            block = self._current_block()
            n = min(left, self._chunk - block.fill)
            places.append((block, block.fill, n))
            block.fill += n
            self._offset += n
            left -= n
            if block.fill == self._chunk:
                full.append(block)
                self._block = None  # a fresh block for the rest; this one waits
        self._mac.submit(self._mac_write, mac, places)
        for block in full:
            self._send(block)

    def _write_block(self, block: _Block, retired: Future[None]) -> None:
        """On the io thread: write ``block``; hand each finished segment to the read-back.

        ``retired`` completes when the block may be reused: once written, or once read back
        and compared when verifying; it carries the error otherwise.
        """
        try:
            self._files.write(block)
            if self._readback is None:
                retired.set_result(None)
                return
            self._unverified.append((block, retired))
            self._unverified_bytes += block.fill
            if self._unverified_bytes >= self._segment:
                self._files.sync_last()  # read back what the device keeps, not what it may drop
                written, self._unverified, self._unverified_bytes = self._unverified, [], 0
                self._readback.verify(written)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            for _, future in [*self._unverified, (block, retired)]:
                if not future.done():
                    future.set_exception(exc)
            self._unverified = []

    def _retire_oldest(self) -> None:
        block, retired = self._pending.popleft()
        retired.result()  # re-raises a worker's error as raised (errno intact)
        self._free.append(block)

    def _emit(self, data: bytes) -> None:
        """Lay out ``data`` (headers, MACs, records) at the current archive offset."""
        view = memoryview(data)
        while len(view):
            block = self._current_block()
            n = min(len(view), self._chunk - block.fill)
            block.mv[block.fill : block.fill + n] = view[:n]
            block.fill += n
            self._offset += n
            view = view[n:]
            if block.fill == self._chunk:
                self._flush_block()

    def _release_blocks(self) -> None:
        for block in self._pool:
            with contextlib.suppress(BufferError):
                block.release()
        self._pool.clear()
        self._free.clear()

    def _shutdown_threads(self, *, cancel: bool = True) -> None:
        self._keys.shutdown(wait=True, cancel_futures=True)
        self._mac.shutdown(wait=True, cancel_futures=cancel)  # it hands blocks to the io thread
        self._io.shutdown(wait=True, cancel_futures=cancel)

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
        offset = self._offset
        dos_time, dos_date = _dos_datetime(mtime)
        ut = _ut_extra(mtime)
        flags = FLAG_ENCRYPTED | name_flags

        # Local file header (APPNOTE 4.3.7). CRC is 0 (AE II.3) and, for a known size, the
        # packed size is size + salt + verifier + MAC (AE III.1), so the header is final now.
        if size is None:
            # Unknown length: sizes go in a data descriptor (4.3.9, bit 3); 4.3.9.2 allows ZIP64
            # whatever the size, and its presence makes the descriptor's sizes 8 bytes.
            flags |= FLAG_DESCRIPTOR
            extra = struct.pack("<HHQQ", ZIP64_EXTRA_ID, 16, 0, 0) + _AES_EXTRA_BYTES + ut
            l_size = l_packed = 0
        elif size + AES_OVERHEAD >= self._zip64_limit:
            # 4.5.3: in a local header the ZIP64 field holds BOTH sizes; the fields read -1.
            extra = struct.pack("<HHQQ", ZIP64_EXTRA_ID, 16, size, size + AES_OVERHEAD)
            extra += _AES_EXTRA_BYTES + ut
            l_size = l_packed = ZIP64_LIMIT
        else:
            extra = _AES_EXTRA_BYTES + ut
            l_size, l_packed = size, size + AES_OVERHEAD
        header = _LOCAL.pack(
            SIG_LOCAL, VERSION_NEEDED, flags, AES_METHOD, dos_time, dos_date, 0,
            l_packed, l_size, len(raw_name), len(extra),
        )  # fmt: skip
        # AE III.1: the salt and the password verifier precede the encrypted data, in clear.
        self._emit(header + raw_name + extra + keys.salt + keys.verifier)

        # Encrypted file data (AE III.4), read straight into the output block and encrypted
        # in place, then HMAC-SHA1 of the ciphertext (AE III.5) on the mac thread.
        self._ctr.reset(keys.aes_key)
        mac = _new_mac(keys.mac_key)
        done = 0
        while size is None or done < size:
            block = self._current_block()
            want = self._chunk - block.fill
            if size is not None:
                want = min(want, size - done)
            start = block.fill
            n = _read_full(source, block.mv[start : start + want])
            self._ctr.apply(block.arr[start : start + n], done)
            if n:
                self._mac.submit(self._mac_update, mac, block.mv[start : start + n])
            block.fill += n
            self._offset += n
            done += n
            if block.fill == self._chunk:
                self._flush_block()
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
        self._emit_mac(mac)
        packed = done + AES_OVERHEAD
        if size is None:
            # Data descriptor with ZIP64 sizes (4.3.9.1-4.3.9.3); CRC 0 (AE II.3).
            self._emit(_DESCRIPTOR64.pack(SIG_DESCRIPTOR, 0, packed, done))
        self._entries.append(_Entry(raw_name, flags, dos_time, dos_date, ut, done, packed, offset))
        self._bytes_in += done

    def _write_central_directory(self) -> None:
        limit = self._zip64_limit
        cd_start = self._offset
        for e in self._entries:
            # Central directory header (4.3.12); the ZIP64 extra (4.5.3) holds, in this order,
            # only the fields whose 4-byte value reads 0xFFFFFFFF.
            z64 = b""
            size, packed, offset = e.size, e.packed, e.offset
            if size >= limit:
                z64 += struct.pack("<Q", size)
                size = ZIP64_LIMIT
            if packed >= limit:
                z64 += struct.pack("<Q", packed)
                packed = ZIP64_LIMIT
            if offset >= limit:
                z64 += struct.pack("<Q", offset)
                offset = ZIP64_LIMIT
            extra = _AES_EXTRA_BYTES + e.ut
            if z64:
                extra = struct.pack("<HH", ZIP64_EXTRA_ID, len(z64)) + z64 + extra
            record = _CENTRAL.pack(
                SIG_CENTRAL, VERSION_MADE_BY, VERSION_NEEDED, e.flags, AES_METHOD,
                e.dos_time, e.dos_date, 0, packed, size, len(e.name), len(extra), 0,
                0, 0, UNIX_FILE_ATTRS, offset,
            )  # fmt: skip
            self._emit(record + e.name + extra)
        cd_size = self._offset - cd_start
        count = len(self._entries)
        many = count >= min(ZIP64_COUNT_LIMIT, limit)
        if many or cd_size >= limit or cd_start >= limit:
            # ZIP64 end of central directory record (4.3.14) and its locator (4.3.15).
            z64_offset = self._offset
            self._emit(
                _ZIP64_EOCD.pack(
                    SIG_ZIP64_EOCD, _ZIP64_EOCD.size - 12, VERSION_MADE_BY, ZIP64_VERSION_NEEDED,
                    0, 0, count, count, cd_size, cd_start,
                )
            )  # fmt: skip
            self._emit(_ZIP64_LOCATOR.pack(SIG_ZIP64_LOCATOR, 0, z64_offset, 1))
        # End of central directory record (4.3.16); fields too small read -1 (4.4.1.4).
        n16 = ZIP64_COUNT_LIMIT if many else count
        self._emit(
            _EOCD.pack(
                SIG_EOCD, 0, 0, n16, n16,
                ZIP64_LIMIT if cd_size >= limit else cd_size,
                ZIP64_LIMIT if cd_start >= limit else cd_start,
                0,
            )
        )  # fmt: skip

    def _rename_volumes(self) -> None:
        partials = self._files.paths
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


# --- reading back ---------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class _CentralEntry:
    name: str
    flags: int
    method: int
    crc: int
    packed: int
    size: int
    offset: int
    extra: bytes


def _parse_extra(extra: bytes) -> dict[int, bytes]:
    """Split an extra field into {header id: data} (APPNOTE 4.5.1)."""
    out: dict[int, bytes] = {}
    pos = 0
    while pos + 4 <= len(extra):
        tag, n = struct.unpack_from("<HH", extra, pos)
        out[tag] = extra[pos + 4 : pos + 4 + n]
        pos += 4 + n
    return out


def _read_central_directory(reader: _SplitReader) -> list[_CentralEntry]:
    """Locate the end records (4.3.16, 4.3.15, 4.3.14) and parse every header (4.3.12)."""
    tail_len = min(reader.size, _EOCD.size + 0xFFFF)
    if tail_len < _EOCD.size:
        raise ArchiveCorruptError("This is not a ZIP archive (too short).")
    tail = reader.read(reader.size - tail_len, tail_len)
    at = tail.rfind(struct.pack("<I", SIG_EOCD))
    if at < 0 or at + _EOCD.size > len(tail):
        raise ArchiveCorruptError("This is not a ZIP archive (no end of central directory).")
    _, disk, _, _, count, cd_size, cd_offset, _ = _EOCD.unpack_from(tail, at)
    eocd_pos = reader.size - tail_len + at
    if eocd_pos >= _ZIP64_LOCATOR.size:
        loc = reader.read(eocd_pos - _ZIP64_LOCATOR.size, _ZIP64_LOCATOR.size)
        sig, _, z64_offset, _ = _ZIP64_LOCATOR.unpack(loc)
        if sig == SIG_ZIP64_LOCATOR:
            rec = _ZIP64_EOCD.unpack(reader.read(z64_offset, _ZIP64_EOCD.size))
            if rec[0] != SIG_ZIP64_EOCD:
                raise ArchiveCorruptError("The ZIP64 end of central directory record is damaged.")
            count, cd_size, cd_offset = rec[7], rec[8], rec[9]
    if disk != 0:
        raise ArchiveCorruptError("Multi-disk (spanned) ZIP archives are not supported.")
    if cd_offset + cd_size > reader.size:
        raise ArchiveCorruptError("The central directory lies beyond the end of the archive.")
    cd = reader.read(cd_offset, cd_size)
    entries: list[_CentralEntry] = []
    pos = 0
    for _ in range(count):
        if pos + _CENTRAL.size > len(cd):
            raise ArchiveCorruptError("The central directory is truncated.")
        f = _CENTRAL.unpack_from(cd, pos)
        if f[0] != SIG_CENTRAL:
            raise ArchiveCorruptError("The central directory is damaged.")
        flags, method, crc, packed, size = f[3], f[4], f[7], f[8], f[9]
        name_len, extra_len, comment_len, offset = f[10], f[11], f[12], f[16]
        pos += _CENTRAL.size
        raw_name = cd[pos : pos + name_len]
        extra = cd[pos + name_len : pos + name_len + extra_len]
        pos += name_len + extra_len + comment_len
        z64 = _parse_extra(extra).get(ZIP64_EXTRA_ID, b"")
        zpos = 0
        vals = [size, packed, offset]
        for k in range(3):  # 4.5.3 order: original size, compressed size, header offset
            if vals[k] == ZIP64_LIMIT:
                if zpos + 8 > len(z64):
                    raise ArchiveCorruptError("A ZIP64 extra field is missing or short.")
                (vals[k],) = struct.unpack_from("<Q", z64, zpos)
                zpos += 8
        name = raw_name.decode("utf-8" if flags & FLAG_UTF8 else "cp437")
        entries.append(_CentralEntry(name, flags, method, crc, vals[1], vals[0], vals[2], extra))
    return entries


def verify_archive(
    volumes: Sequence[Path],
    passphrase: str,
    *,
    chunk_size: int = DEFAULT_CHUNK,
    drop_cache: bool = False,
) -> dict[str, str]:
    """Decrypt every entry, check its MAC (and CRC for AE-1), and hash the plaintext.

    Parameters
    ----------
    volumes : sequence of Path
        ``[name.zip]`` or ``[name.zip.001, name.zip.002, ...]`` in order.
    passphrase : str
        The archive's passphrase.
    chunk_size : int
        Read size.
    drop_cache : bool
        Drop the volumes from the page cache first, so the bytes come from the device
        (fsync first: only clean pages can be dropped).

    Returns
    -------
    dict
        ``{arcname: hex SHA-256 of the plaintext}``.

    Raises
    ------
    WrongPassphraseError
        The passphrase does not match an entry's password verifier.
    ArchiveCorruptError
        Bad structure, an entry that is not WinZip AES stored, or a MAC/CRC mismatch
        (damage, tampering, or the 1-in-65536 wrong passphrase that passes the verifier).
    """
    if chunk_size <= 0:
        raise ValueError("chunk_size must be positive")
    pw = passphrase.encode("utf-8")
    reader = _SplitReader(volumes, drop_cache)
    keys_pool = ThreadPoolExecutor(_KEY_THREADS, thread_name_prefix="zipcrypt-verify-keys")
    try:
        entries = _read_central_directory(reader)
        plans = [_plan_entry(reader, e) for e in entries]
        # PBKDF2 runs ahead on another thread (it is ~1 ms per entry and releases the GIL).
        futures: deque[Future[tuple[bytes, bytes, bytes]]] = deque()
        ahead = iter(plans)
        for plan in ahead:
            futures.append(keys_pool.submit(derive_keys, pw, plan.salt, plan.strength))
            if len(futures) >= _KEYS_AHEAD:
                break
        raw = bytearray(chunk_size)
        mv = memoryview(raw)
        arr = np.frombuffer(raw, dtype=np.uint8)
        ctr = _WinZipCtr(chunk_size)
        out: dict[str, str] = {}
        for plan in plans:
            aes_key, mac_key, verifier = futures.popleft().result()
            nxt = next(ahead, None)
            if nxt is not None:
                futures.append(keys_pool.submit(derive_keys, pw, nxt.salt, nxt.strength))
            if not hmac.compare_digest(verifier, plan.verifier):
                raise WrongPassphraseError(
                    f"The passphrase does not open this archive (checked on {plan.name!r})."
                )
            ctr.reset(aes_key)
            mac = _new_mac(mac_key)
            sha = hashlib.sha256()
            crc = 0
            pos, left = plan.data_offset, plan.data_len
            while left:
                n = min(chunk_size, left)
                reader.readinto(pos, mv[:n])
                mac.update(mv[:n])
                ctr.apply(arr[:n], plan.data_len - left)
                sha.update(mv[:n])
                if plan.vendor_version == 1:
                    crc = zlib.crc32(mv[:n], crc)
                pos += n
                left -= n
            tag = reader.read(pos, MAC_LEN)
            if not hmac.compare_digest(mac.finalize()[:MAC_LEN], tag):
                raise ArchiveCorruptError(
                    f"{plan.name!r} failed its integrity check (HMAC): the archive is damaged or"
                    " was modified."
                )
            if plan.vendor_version == 1 and crc != plan.crc:
                raise ArchiveCorruptError(f"{plan.name!r} failed its CRC check (AE-1).")
            if plan.name in out:
                raise ArchiveCorruptError(f"{plan.name!r} appears twice in the archive.")
            out[plan.name] = sha.hexdigest()
        return out
    finally:
        keys_pool.shutdown(wait=True, cancel_futures=True)
        reader.close()


@dataclass(frozen=True)
class _EntryPlan:
    name: str
    strength: int
    vendor_version: int
    crc: int
    salt: bytes
    verifier: bytes
    data_offset: int
    data_len: int


def _plan_entry(reader: _SplitReader, e: _CentralEntry) -> _EntryPlan:
    """Check one entry's AES framing (AE II.2-II.4) and local header (4.3.7); find its data."""
    aes = _parse_extra(e.extra).get(AES_EXTRA_ID)
    if not e.flags & FLAG_ENCRYPTED or e.method != AES_METHOD or aes is None or len(aes) < 7:
        raise ArchiveCorruptError(f"{e.name!r} is not WinZip AES encrypted.")
    vendor_version, vendor_id, strength, actual = struct.unpack_from("<H2sBH", aes)
    if vendor_id != b"AE" or vendor_version not in (1, 2) or strength not in SALT_LEN:
        raise ArchiveCorruptError(f"{e.name!r} has an unknown AES extra field.")
    if actual != STORED:
        raise ArchiveCorruptError(f"{e.name!r} uses compression method {actual}, not stored.")
    local = _LOCAL.unpack(reader.read(e.offset, _LOCAL.size))
    if local[0] != SIG_LOCAL:
        raise ArchiveCorruptError(f"The local header of {e.name!r} is missing or damaged.")
    name_len, extra_len = local[9], local[10]
    local_name = reader.read(e.offset + _LOCAL.size, name_len)
    if local_name.decode("utf-8" if local[2] & FLAG_UTF8 else "cp437") != e.name:
        raise ArchiveCorruptError(f"The local header of {e.name!r} names another file.")
    salt_len = SALT_LEN[strength]
    if e.packed < salt_len + PV_LEN + MAC_LEN or e.packed - (salt_len + PV_LEN + MAC_LEN) != e.size:
        raise ArchiveCorruptError(f"{e.name!r} has inconsistent sizes.")
    start = e.offset + _LOCAL.size + name_len + extra_len
    head = reader.read(start, salt_len + PV_LEN)
    return _EntryPlan(
        name=e.name,
        strength=strength,
        vendor_version=vendor_version,
        crc=e.crc,
        salt=head[:salt_len],
        verifier=head[salt_len:],
        data_offset=start + salt_len + PV_LEN,
        data_len=e.size,
    )


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
