"""The ZIP structures of the AES zip: constants, header and end records, extra fields, ZIP64.

What the bytes of the archive look like, and nothing about how they are encrypted
(:mod:`kiosk.package.aeszip.winzip_aes`), written (:mod:`kiosk.package.aeszip.writer`) or read
(:mod:`kiosk.package.aeszip.reader`). Per entry (see :mod:`kiosk.package.aeszip` for the whole
format):

* compression method 99 and the AES extra field 0x9901 (vendor version 2 = AE-2, vendor id "AE",
  strength 3 = AES-256, actual method 0 = stored);
* CRC field 0 (AE-2); data = 16-byte salt | 2-byte password verifier | ciphertext | 10-byte MAC;
* ZIP64 records where sizes, offsets or the entry count need them; the UTF-8 flag (bit 11) on
  non-ASCII names; the Info-ZIP extended timestamp (0x5455) with the UTC mtime.

Because AE-2 stores no CRC and "stored" makes the packed size ``size + 28``, every local header
(:func:`_local_header`) is final before the data is read; only a source of unknown length gets
a data descriptor.

References
----------
APPNOTE
    PKWARE ".ZIP File Format Specification" 6.3.x: 4.3.7 local file header, 4.3.9 data
    descriptor, 4.3.12 central directory header, 4.3.14-4.3.16 ZIP64 end records and end of
    central directory, 4.4.x field meanings, 4.5.3 ZIP64 extended information extra field.
AE
    WinZip "AES Encryption Information: Encryption Specification AE-1 and AE-2", version 1.04:
    II.2 method and flag, II.3 CRC, II.4 extra field, III.1-III.5 storage format.
"""

from __future__ import annotations

import stat
import struct
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

# Salt, verifier and MAC lengths (AE III.2, III.3, III.5): shared with the sources room, which
# reads encrypted zips from hospital media.
from kiosk.security.winzip_aes import MAC_LEN, PV_LEN, SALT_LEN

# --- WinZip AE-1/AE-2 constants (AE II.2-II.4, III.1-III.5) ---------------------------------------
AES_METHOD = 99  # compression method signalling AES (AE II.2)
STORED = 0  # actual compression method inside the AES extra field
AES_EXTRA_ID = 0x9901
AE_2 = 2  # vendor version: AE-2 stores CRC 0 (AE II.3)
AES_256 = 3  # encryption strength: 256-bit key
AES_OVERHEAD = SALT_LEN[AES_256] + PV_LEN + MAC_LEN  # packed size = size + 28

# --- ZIP constants (APPNOTE 4.3, 4.4, 4.5) --------------------------------------------------------
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


# --- writing --------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Entry:
    """One entry as its central directory header (4.3.12) will describe it."""

    name: bytes
    flags: int
    dos_time: int
    dos_date: int
    ut: bytes
    size: int
    packed: int
    offset: int


def _local_header(
    raw_name: bytes,
    name_flags: int,
    dos_time: int,
    dos_date: int,
    ut: bytes,
    size: int | None,
    zip64_limit: int,
) -> tuple[bytes, int]:
    """An entry's local file header (APPNOTE 4.3.7) followed by its name and extra fields.

    CRC is 0 (AE II.3) and, for a known size, the packed size is size + salt + verifier + MAC
    (AE III.1), so the header is final before the data is read. ``size`` None (a source of
    unknown length) sets bit 3: the sizes follow the data in a ZIP64 data descriptor.

    Returns
    -------
    tuple
        ``(header, flags)``: the bytes up to the salt, and the entry's general purpose flags.
    """
    flags = FLAG_ENCRYPTED | name_flags
    if size is None:
        # Unknown length: sizes go in a data descriptor (4.3.9, bit 3); 4.3.9.2 allows ZIP64
        # whatever the size, and its presence makes the descriptor's sizes 8 bytes.
        flags |= FLAG_DESCRIPTOR
        extra = struct.pack("<HHQQ", ZIP64_EXTRA_ID, 16, 0, 0) + _AES_EXTRA_BYTES + ut
        l_size = l_packed = 0
    elif size + AES_OVERHEAD >= zip64_limit:
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
    return header + raw_name + extra, flags


def _central_directory(entries: Sequence[_Entry], cd_start: int, limit: int) -> Iterator[bytes]:
    """The central directory of ``entries`` and the end records after it, record by record.

    ``cd_start`` is the archive offset of the directory's first byte; sizes, offsets and counts
    at or above ``limit`` use ZIP64 records (APPNOTE 4.3.12, 4.3.14-4.3.16, 4.5.3).
    """
    cd_size = 0
    for e in entries:
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
        header = record + e.name + extra
        cd_size += len(header)
        yield header
    count = len(entries)
    many = count >= min(ZIP64_COUNT_LIMIT, limit)
    if many or cd_size >= limit or cd_start >= limit:
        # ZIP64 end of central directory record (4.3.14) and its locator (4.3.15).
        z64_offset = cd_start + cd_size
        yield _ZIP64_EOCD.pack(
            SIG_ZIP64_EOCD, _ZIP64_EOCD.size - 12, VERSION_MADE_BY, ZIP64_VERSION_NEEDED,
            0, 0, count, count, cd_size, cd_start,
        )  # fmt: skip
        yield _ZIP64_LOCATOR.pack(SIG_ZIP64_LOCATOR, 0, z64_offset, 1)
    # End of central directory record (4.3.16); fields too small read -1 (4.4.1.4).
    n16 = ZIP64_COUNT_LIMIT if many else count
    yield _EOCD.pack(
        SIG_EOCD, 0, 0, n16, n16,
        ZIP64_LIMIT if cd_size >= limit else cd_size,
        ZIP64_LIMIT if cd_start >= limit else cd_start,
        0,
    )  # fmt: skip


# --- reading --------------------------------------------------------------------------------------


def _parse_extra(extra: bytes) -> dict[int, bytes]:
    """Split an extra field into {header id: data} (APPNOTE 4.5.1)."""
    out: dict[int, bytes] = {}
    pos = 0
    while pos + 4 <= len(extra):
        tag, n = struct.unpack_from("<HH", extra, pos)
        out[tag] = extra[pos + 4 : pos + 4 + n]
        pos += 4 + n
    return out
