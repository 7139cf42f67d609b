"""The structure of a zip archive found on a medium: end records, central directory, local headers.

Written for archives nobody here made (hospital media are untrusted, DESIGN.md §5): every count,
size and offset is checked against the archive's real size and the limits before anything is
allocated, and the central directory is parsed record by record, so a directory claiming
millions of members costs nothing before it is refused. Member names are checked by
:func:`member_path` before they become paths.

The zip the kiosk itself writes for the patient is :mod:`kiosk.package.aeszip`'s (a room this
one may not import); this module only reads.

References
----------
APPNOTE
    PKWARE ".ZIP File Format Specification" 6.3.x: 4.3.7 local file header, 4.3.12 central
    directory header, 4.3.14-4.3.16 ZIP64 end records and end of central directory, 4.4.4
    general purpose flags, 4.4.5 compression methods, 4.5.3 ZIP64 extended information.
AE
    WinZip "AES Encryption Information" 1.04, II.4: the AES extra field (0x9901).
"""

from __future__ import annotations

import re
import stat
import struct
from dataclasses import dataclass
from typing import Protocol

from kiosk.errors import ArchiveReadError

#: The first bytes of a zip: a local header, an empty archive's end record, or the spanning
#: marker some tools write before the first local header (APPNOTE 8.5.3-8.5.4).
_HEADS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08PK\x03\x04", b"PK00PK\x03\x04")

FLAG_ENCRYPTED = 0x0001  # 4.4.4 bit 0
FLAG_DESCRIPTOR = 0x0008  # bit 3: CRC and sizes follow the data (and in the central directory)
FLAG_STRONG = 0x0040  # bit 6: PKWARE strong encryption
FLAG_UTF8 = 0x0800  # bit 11: the name is UTF-8
FLAG_MASKED = 0x2000  # bit 13: central directory encryption (local headers masked)

STORED, DEFLATED, BZIP2, AES = 0, 8, 12, 99  # 4.4.5 (99: AE II.2)
METHOD_NAMES = {1: "Shrink", 6: "Implode", 9: "Deflate64", 14: "LZMA", 93: "Zstandard",
                95: "XZ", 98: "PPMd"}

_SIG_LOCAL = 0x04034B50
_SIG_CENTRAL = 0x02014B50
_SIG_EOCD = b"PK\x05\x06"
_SIG_ZIP64_LOCATOR = 0x07064B50
_SIG_ZIP64_EOCD = 0x06064B50
_LOCAL = struct.Struct("<IHHHHHIIIHH")  # 4.3.7, 30 bytes
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")  # 4.3.12, 46 bytes
_EOCD = struct.Struct("<4sHHHHIIH")  # 4.3.16, 22 bytes
_ZIP64_LOCATOR = struct.Struct("<IIQI")  # 4.3.15, 20 bytes
_ZIP64_EOCD = struct.Struct("<IQHHIIQQQQ")  # 4.3.14, 56 bytes
_ZIP64_EXTRA, _AES_EXTRA = 0x0001, 0x9901
_UNIX_HOST = 3  # 4.4.2.2: "version made by" high byte
LOCAL_HEADER_SIZE = _LOCAL.size

#: The central directory is read in pieces of this size: a record is at most 46 + 3 x 65535.
_CD_PIECE = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")


class RandomAccess(Protocol):
    """What the archive is read through: its size and reads at an offset (thread-safe)."""

    size: int

    def read_at(self, offset: int, n: int) -> bytes:
        """Up to ``n`` bytes at ``offset``; fewer only at the end."""
        ...


def looks_like_zip(head: bytes) -> bool:
    """Whether the first bytes of a file are those of a zip archive (its content, not its name)."""
    return head.startswith(_HEADS)


@dataclass(frozen=True, slots=True)
class AesInfo:
    """The WinZip AES extra field (AE II.4)."""

    vendor_version: int  # 1 = AE-1 (CRC kept), 2 = AE-2 (CRC 0; the HMAC alone checks)
    strength: int  # 1, 2, 3: AES-128, -192, -256
    method: int  # the compression method under the encryption


@dataclass(frozen=True, slots=True)
class ZipMember:
    """One central directory record (4.3.12), its ZIP64 values resolved."""

    name: str  # decoded as the archive names it (for messages and paths)
    raw_name: bytes
    flags: int
    method: int
    dos_time: int
    crc: int
    packed: int  # compressed size, encryption header and MAC included
    size: int  # uncompressed size, as the header claims
    offset: int  # of the local header
    external_attr: int
    creator: int  # host system (4.4.2.2)
    aes: AesInfo | None

    @property
    def encrypted(self) -> bool:
        """Whether the member is encrypted (ZipCrypto, WinZip AES or PKWARE strong)."""
        return bool(self.flags & FLAG_ENCRYPTED)

    @property
    def is_dir(self) -> bool:
        """A folder record (its name ends with a slash, or its Unix mode says so)."""
        if self.name.endswith(("/", "\\")):
            return True
        return self.creator == _UNIX_HOST and stat.S_ISDIR(self.external_attr >> 16)

    @property
    def is_symlink(self) -> bool:
        """A symbolic link stored by a Unix zip tool (never followed)."""
        return self.creator == _UNIX_HOST and stat.S_ISLNK(self.external_attr >> 16)

    @property
    def data_method(self) -> int:
        """The compression method of the data once decrypted."""
        return self.aes.method if self.aes is not None else self.method


def _damaged(what: str) -> ArchiveReadError:
    return ArchiveReadError(f"The archive is damaged or incomplete ({what}); a download that "
                            "was cut off looks like this. Ask for the archive again.",
                            code="damaged")


def _read_exact(archive: RandomAccess, offset: int, n: int, what: str) -> bytes:
    data = archive.read_at(offset, n)
    if len(data) != n:
        raise _damaged(f"{what} is cut off")
    return data


def read_central_directory(archive: RandomAccess, max_members: int) -> list[ZipMember]:
    """Every record of the central directory, in its order.

    Parameters
    ----------
    archive : RandomAccess
        The archive's bytes.
    max_members : int
        More records than this (declared or found) refuse the archive before more are parsed.

    Raises
    ------
    ArchiveReadError
        ``damaged`` (no end record, offsets past the end, bad signatures), ``unsupported``
        (split across several files, central directory encryption) or ``limit`` (too many
        members).
    """
    count, cd_offset, cd_size, disk = _end_record(archive)
    if disk != 0:
        raise ArchiveReadError(
            "The archive is one part of an archive split into several files (.z01, .z02, …), "
            "which the kiosk does not join. Join the parts with 7-Zip and import the result.",
            code="unsupported")
    if count > max_members:
        raise _too_many(max_members)
    members: list[ZipMember] = []
    pos, end = cd_offset, cd_offset + cd_size
    buf, buf_at = b"", cd_offset  # the piece of the directory in memory and where it starts
    while pos < end:
        if len(members) >= max_members:
            raise _too_many(max_members)
        need = _CENTRAL.size
        for _ in range(2):  # the fixed part, then the whole record with its variable fields
            if pos + need > end:
                raise _damaged("the central directory ends inside a record")
            if pos + need > buf_at + len(buf):
                buf = archive.read_at(pos, max(_CD_PIECE, need))
                buf_at = pos
                if len(buf) < need:
                    raise _damaged("the central directory is cut off")
            f = _CENTRAL.unpack_from(buf, pos - buf_at)
            if f[0] != _SIG_CENTRAL:
                raise _damaged("a central directory record is not where it should be")
            need = _CENTRAL.size + f[10] + f[11] + f[12]
        members.append(_member(f, buf, pos - buf_at + _CENTRAL.size))
        pos += need
    return members


def _too_many(max_members: int) -> ArchiveReadError:
    return ArchiveReadError(
        f"The archive holds more than {max_members:,} files, the limit for one archive "
        "(import.archive_max_members): it was not opened.", code="limit")


def _end_record(archive: RandomAccess) -> tuple[int, int, int, int]:
    """(member count, central directory offset and size, disk number) from the end records."""
    tail_len = min(archive.size, _EOCD.size + 0xFFFF)
    tail_at = archive.size - tail_len
    tail = _read_exact(archive, tail_at, tail_len, "its end")
    at = tail.rfind(_SIG_EOCD)
    while at >= 0 and at + _EOCD.size > len(tail):
        at = tail.rfind(_SIG_EOCD, 0, at)
    if at < 0:
        raise _damaged("no end of central directory")
    _, disk, _, _, count, cd_size, cd_offset, _ = _EOCD.unpack_from(tail, at)
    eocd_at = tail_at + at
    if eocd_at >= _ZIP64_LOCATOR.size:
        sig, _, z64_at, _ = _ZIP64_LOCATOR.unpack(
            _read_exact(archive, eocd_at - _ZIP64_LOCATOR.size, _ZIP64_LOCATOR.size, "ZIP64"))
        if sig == _SIG_ZIP64_LOCATOR:
            if z64_at + _ZIP64_EOCD.size > eocd_at:
                raise _damaged("the ZIP64 end record lies past the end")
            rec = _ZIP64_EOCD.unpack(_read_exact(archive, z64_at, _ZIP64_EOCD.size, "ZIP64"))
            if rec[0] != _SIG_ZIP64_EOCD:
                raise _damaged("the ZIP64 end record is missing")
            disk, count, cd_size, cd_offset = rec[4], rec[7], rec[8], rec[9]
            eocd_at = z64_at
    if cd_offset + cd_size > eocd_at:
        raise _damaged("the central directory lies past the end")
    return count, cd_offset, cd_size, disk


def _member(f: tuple[int, ...], buf: bytes, at: int) -> ZipMember:
    made_by, flags, method, time_, date = f[1], f[3], f[4], f[5], f[6]
    crc, packed, size = f[7], f[8], f[9]
    name_len, extra_len, offset = f[10], f[11], f[16]
    raw_name = bytes(buf[at : at + name_len])
    extras = _extras(buf[at + name_len : at + name_len + extra_len])
    z64 = extras.get(_ZIP64_EXTRA, b"")
    values, zpos = [size, packed, offset], 0
    for k in range(3):  # 4.5.3 order: original size, compressed size, header offset
        if values[k] == 0xFFFFFFFF:
            if zpos + 8 > len(z64):
                raise _damaged(f"the ZIP64 sizes of {raw_name!r} are missing")
            (values[k],) = struct.unpack_from("<Q", z64, zpos)
            zpos += 8
    aes = None
    if method == AES:
        field = extras.get(_AES_EXTRA, b"")
        if len(field) >= 7:
            version, vendor, strength, under = struct.unpack_from("<H2sBH", field)
            if vendor == b"AE" and version in (1, 2) and strength in (1, 2, 3):
                aes = AesInfo(version, strength, under)
    return ZipMember(name=decode_name(raw_name, flags), raw_name=raw_name, flags=flags,
                     method=method, dos_time=time_ | (date << 16), crc=crc, packed=values[1],
                     size=values[0], offset=values[2], external_attr=f[15],
                     creator=made_by >> 8, aes=aes)


def _extras(data: bytes) -> dict[int, bytes]:
    """Extra fields by header id (4.5.1); a malformed tail is ignored, as zip tools do."""
    out: dict[int, bytes] = {}
    pos = 0
    while pos + 4 <= len(data):
        hid, n = struct.unpack_from("<HH", data, pos)
        out.setdefault(hid, bytes(data[pos + 4 : pos + 4 + n]))
        pos += 4 + n
    return out


def decode_name(raw: bytes, flags: int) -> str:
    """A member name as text.

    With the UTF-8 flag, UTF-8. Without it the standard says CP437, but tools on macOS and
    Linux write UTF-8 without the flag, and Chinese Windows writes GBK: those are tried first
    (a name in CP437 proper, with box-drawing characters, is rare on a hospital's medium).
    """
    if flags & FLAG_UTF8:
        return raw.decode("utf-8", "replace")
    if raw.isascii():
        return raw.decode("ascii")
    for codec in ("utf-8", "gb18030"):
        try:
            return raw.decode(codec)
        except UnicodeDecodeError:
            continue
    return raw.decode("cp437")


def member_path(name: str) -> tuple[str | None, str]:
    """The relative POSIX path a member name gives, or None and why it is refused.

    Backslashes are separators (Windows tools write them); ``.`` and empty components are
    dropped. Refused: absolute names, Windows drives, ``..`` components, control characters,
    and ``!/`` (the kiosk's own separator between an archive and its members).
    """
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        return None, "its name contains control characters: not read"
    posix = name.replace("\\", "/")
    if posix.startswith("/"):
        return None, "its name is an absolute path (it would leave the archive): not read"
    if _DRIVE.match(posix):
        return None, "its name starts with a Windows drive (it would leave the archive): not read"
    parts = [p for p in posix.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None, "its name contains '..' (it would leave the archive): not read"
    if not parts:
        return None, "it has no name: not read"
    path = "/".join(parts)
    if "!/" in path:
        return None, "its name contains '!/', which names files inside archives here: not read"
    return path, ""


def data_offset(archive: RandomAccess, member: ZipMember) -> int:
    """Where the member's data (encryption header included) starts, from its local header.

    Raises
    ------
    ArchiveReadError
        ``damaged``: no local header there, it names another file, or the data runs past the
        end of the archive.
    """
    head = _read_exact(archive, member.offset, _LOCAL.size, "a local header")
    f = _LOCAL.unpack(head)
    if f[0] != _SIG_LOCAL:
        raise _damaged(f"no local header for {member.name!r}")
    name_len, extra_len = f[9], f[10]
    if not member.flags & FLAG_MASKED:
        local_name = _read_exact(archive, member.offset + _LOCAL.size, name_len, "a name")
        if local_name != member.raw_name:
            raise _damaged(f"the local header of {member.name!r} names another file")
    start = member.offset + _LOCAL.size + name_len + extra_len
    if start + member.packed > archive.size:
        raise _damaged(f"{member.name!r} runs past the end of the archive")
    return start
