"""Zip archives for the archive tests: real ones (Python's zipfile, 7-Zip) and crafted ones.

Real archives hold pydicom's own test files (files nobody here wrote). Crafted ones are built
byte by byte (:func:`raw_zip`) where a hostile archive needs fields no tool writes: headers that
lie about sizes, members that share data, names that leave the archive.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

#: pydicom test files with distinct SOP Instance UIDs that import verified.
DICOM_FILES = ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "JPEG2000.dcm", "693_J2KI.dcm")


def dicom_bytes(name: str) -> bytes:
    """The bytes of one of pydicom's test files (shipped in its wheel, no download)."""
    path = get_testdata_file(name)
    assert path is not None, f"{name} is not in pydicom's wheel"
    return Path(str(path)).read_bytes()


def seven_zip(archive: Path, tree: Path, *, password: str | None = None,
              encryption: str | None = None, method: str | None = None) -> Path:
    """``7z a -tzip`` of everything in ``tree`` (names relative to it), as hospitals' tools do.

    ``encryption`` is 7-Zip's ``-mem=`` (``ZipCrypto`` or ``AES256``); ``method`` its ``-mm=``
    (``Deflate``, ``BZip2``, ``LZMA``, ``Deflate64``, ``Copy``).
    """
    if shutil.which("7z") is None:
        pytest.skip("7z is not installed (apt-get install p7zip-full)")
    argv = ["7z", "a", "-tzip", "-bd", "-y", str(archive.absolute())]
    if password is not None:
        argv.append(f"-p{password}")
    if encryption is not None:
        argv.append(f"-mem={encryption}")
    if method is not None:
        argv.append(f"-mm={method}")
    made = subprocess.run([*argv, "."], cwd=tree, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stdout + made.stderr
    return archive


def tree_of(root: Path, files: dict[str, bytes]) -> Path:
    """Write ``files`` (relative path -> bytes) under ``root``; return ``root``."""
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


@dataclass
class RawMember:
    """One member of a crafted archive; ``None`` fields take their honest values."""

    name: bytes
    data: bytes  # the bytes stored (already compressed when ``method`` is 8)
    method: int = 0
    size: int | None = None  # uncompressed size claimed in both headers
    crc: int | None = None
    offset: int | None = None  # the central directory's offset of the local header
    flags: int = 0
    external_attr: int = 0
    creator: int = 0  # host system: 3 for Unix (symlinks need it)
    plain: bytes | None = None  # the uncompressed bytes, for the honest CRC and size


def deflated(data: bytes) -> bytes:
    """Raw deflate (zip method 8) of ``data``."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def raw_zip(members: list[RawMember], *, declared_count: int | None = None) -> bytes:
    """A zip archive laid out byte by byte (APPNOTE 4.3.7, 4.3.12, 4.3.16), no ZIP64."""
    out = bytearray()
    central = bytearray()
    for m in members:
        plain = m.plain if m.plain is not None else m.data
        crc = zlib.crc32(plain) if m.crc is None else m.crc
        size = len(plain) if m.size is None else m.size
        at = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, m.flags, m.method, 0, 0x21,
                           crc, len(m.data), size, len(m.name), 0)
        out += m.name + m.data
        offset = at if m.offset is None else m.offset
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, (m.creator << 8) | 20, 20,
                               m.flags, m.method, 0, 0x21, crc, len(m.data), size,
                               len(m.name), 0, 0, 0, 0, m.external_attr, offset)
        central += m.name
    cd_at = len(out)
    out += central
    count = len(members) if declared_count is None else declared_count
    out += struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, min(count, 0xFFFF),
                       min(count, 0xFFFF), len(central), cd_at, 0)
    return bytes(out)


def _crc_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC = _crc_table()


def zipcrypto(data: bytes, password: bytes, check_byte: int) -> bytes:
    """``data`` encrypted with PKWARE's traditional cipher (APPNOTE 6.1), header first.

    For passwords no tool here writes (7-Zip refuses non-ASCII ones for zip): Chinese Windows
    tools encode them in GBK. Slow (pure Python): for small test members only.
    """
    k = [0x12345678, 0x23456789, 0x34567890]

    def update(c: int) -> None:
        k[0] = (k[0] >> 8) ^ _CRC[(k[0] ^ c) & 0xFF]
        k[1] = ((k[1] + (k[0] & 0xFF)) * 134775813 + 1) & 0xFFFFFFFF
        k[2] = (k[2] >> 8) ^ _CRC[(k[2] ^ (k[1] >> 24)) & 0xFF]

    for c in password:
        update(c)
    out = bytearray()
    for p in bytes(range(11)) + bytes([check_byte]) + data:
        t = (k[2] | 2) & 0xFFFF
        out.append(p ^ (((t * (t ^ 1)) >> 8) & 0xFF))
        update(p)
    return bytes(out)
