"""Reading an AES zip back: every entry decrypted, its MAC (and CRC for AE-1) checked, hashed.

:func:`verify_archive` opens the archive the kiosk wrote, or any WinZip AES (AE-1 or AE-2)
archive of stored entries, whole or split into volumes: it finds the end records and parses the
central directory (APPNOTE 4.3.12-4.3.16, ZIP64 included), checks each entry's AES framing and
local header, and returns the SHA-256 of every file's plaintext.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
import zlib
from collections import deque
from collections.abc import Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kiosk.package.aeszip.errors import ArchiveCorruptError, WrongPassphraseError
from kiosk.package.aeszip.format import (
    _CENTRAL,
    _EOCD,
    _LOCAL,
    _ZIP64_EOCD,
    _ZIP64_LOCATOR,
    AES_EXTRA_ID,
    AES_METHOD,
    FLAG_ENCRYPTED,
    FLAG_UTF8,
    MAC_LEN,
    PV_LEN,
    SALT_LEN,
    SIG_CENTRAL,
    SIG_EOCD,
    SIG_LOCAL,
    SIG_ZIP64_EOCD,
    SIG_ZIP64_LOCATOR,
    STORED,
    ZIP64_EXTRA_ID,
    ZIP64_LIMIT,
    _parse_extra,
)
from kiosk.package.aeszip.volumes import DEFAULT_CHUNK, _SplitReader
from kiosk.package.aeszip.winzip_aes import (
    _KEY_THREADS,
    _KEYS_AHEAD,
    _new_mac,
    _WinZipCtr,
    derive_keys,
)

__all__ = ["EntryCheck", "check_archive", "verify_archive"]


@dataclass(frozen=True)
class _CentralEntry:
    """One central directory header (4.3.12), its ZIP64 values resolved."""

    name: str
    flags: int
    method: int
    crc: int
    packed: int
    size: int
    offset: int
    extra: bytes


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


@dataclass(frozen=True)
class EntryCheck:
    """One entry of an archive, read and checked."""

    name: str
    size: int
    #: Hex SHA-256 of the plaintext; None when the entry failed its check.
    sha256: str | None
    #: Why the entry failed (its MAC, CRC, or a duplicate name); None when it passed.
    problem: str | None = None
    #: The plaintext, for the entries named in ``keep`` that passed.
    data: bytes | None = None


def check_archive(
    volumes: Sequence[Path],
    passphrase: str,
    *,
    keep: Collection[str] = (),
    chunk_size: int = DEFAULT_CHUNK,
    drop_cache: bool = False,
) -> Iterator[EntryCheck]:
    """Decrypt every entry in archive order, check its MAC (and CRC for AE-1), hash it.

    A damaged entry is reported (``problem``) and the next one read, so a caller can name every
    file that does not match; the plaintext of the small entries named in ``keep`` (the
    manifest and its signature) comes along.

    Raises
    ------
    WrongPassphraseError
        The passphrase does not match the first entry's password verifier.
    ArchiveCorruptError
        Bad structure: end records, central directory, local headers, AES framing.
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
        seen: set[str] = set()
        for index, plan in enumerate(plans):
            aes_key, mac_key, verifier = futures.popleft().result()
            nxt = next(ahead, None)
            if nxt is not None:
                futures.append(keys_pool.submit(derive_keys, pw, nxt.salt, nxt.strength))
            if not hmac.compare_digest(verifier, plan.verifier):
                if index == 0:
                    raise WrongPassphraseError(
                        f"The passphrase does not open this archive (checked on {plan.name!r}).")
                # Earlier entries opened with this passphrase: this one was altered.
                yield EntryCheck(plan.name, plan.data_len, None,
                                 "its password check does not match the rest of the archive")
                continue
            ctr.reset(aes_key)
            mac = _new_mac(mac_key)
            sha = hashlib.sha256()
            crc = 0
            kept = bytearray() if plan.name in keep else None
            pos, left = plan.data_offset, plan.data_len
            while left:
                n = min(chunk_size, left)
                reader.readinto(pos, mv[:n])
                mac.update(mv[:n])
                ctr.apply(arr[:n], plan.data_len - left)
                sha.update(mv[:n])
                if kept is not None:
                    kept += mv[:n]
                if plan.vendor_version == 1:
                    crc = zlib.crc32(mv[:n], crc)
                pos += n
                left -= n
            tag = reader.read(pos, MAC_LEN)
            problem = None
            if not hmac.compare_digest(mac.finalize()[:MAC_LEN], tag):
                problem = ("it failed its integrity check (HMAC): the archive is damaged or "
                           "was modified")
            elif plan.vendor_version == 1 and crc != plan.crc:
                problem = "it failed its CRC check (AE-1)"
            elif plan.name in seen:
                problem = "it appears twice in the archive"
            seen.add(plan.name)
            if problem is not None:
                yield EntryCheck(plan.name, plan.data_len, None, problem)
            else:
                yield EntryCheck(plan.name, plan.data_len, sha.hexdigest(),
                                 data=bytes(kept) if kept is not None else None)
    finally:
        keys_pool.shutdown(wait=True, cancel_futures=True)
        reader.close()


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
    out: dict[str, str] = {}
    for entry in check_archive(volumes, passphrase, chunk_size=chunk_size,
                               drop_cache=drop_cache):
        if entry.sha256 is None:
            raise ArchiveCorruptError(f"{entry.name!r}: {entry.problem}.")
        out[entry.name] = entry.sha256
    return out


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
