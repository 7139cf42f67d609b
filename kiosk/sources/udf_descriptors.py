"""UDF descriptors in bytes: tags, the recognition sequence, names, folder listings, partitions.

The pieces of ECMA-167 3rd edition (as profiled by OSTA UDF 1.02-2.60) that
:class:`kiosk.sources.udf_volume.Volume` builds a logical volume from (the volume recognition
sequence ``BEA01``, ``NSR02``/``NSR03``, ``TEA01`` from byte 32768; descriptor tags with their
checksum and CRC; OSTA CS0 names; File Identifier Descriptors; the block mapping of physical,
sparable and metadata partitions), parsed with :mod:`struct`
so that every length a crafted disc claims is checked before it is used. Errors are raised as
:class:`UdfDamaged` or :class:`UdfUnsupported`; the source words them for the coordinator.
"""

from __future__ import annotations

import binascii
import bisect
import struct
from collections.abc import Callable
from dataclasses import dataclass

from kiosk.sources.extents import HOLE

__all__ = ["AD_EMBEDDED", "AD_EXTENDED", "AD_LONG", "AD_SHORT", "FID_DIRECTORY", "FID_HIDDEN",
           "FT_DIRECTORY", "FT_FILE", "FT_METADATA", "FT_METADATA_MIRROR", "FT_REALTIME",
           "FT_SYMLINK", "HOLE", "Extent", "Fid", "FileEntry", "Partition", "Pread",
           "UdfDamaged", "UdfUnsupported", "decode_dstring", "decode_name", "has_udf_vrs",
           "parse_fids", "tag_ok"]

#: Reads ``(length, offset)`` from the image or device (``os.pread`` with the deadline checked).
Pread = Callable[[int, int], bytes]

#: The volume recognition sequence starts at byte 32768 (sector 16 of 2048 bytes).
_VRS_START = 32768
#: The File Identifier Descriptor's tag identifier (ECMA-167 4/7.2.1).
TAG_FID = 257

#: Allocation descriptor forms (ICB tag flags & 7).
AD_SHORT, AD_LONG, AD_EXTENDED, AD_EMBEDDED = 0, 1, 2, 3

#: File types (ICB tag, ECMA-167 4/14.6.6; UDF 2.60 3.3.2.1.1).
FT_DIRECTORY, FT_FILE, FT_SYMLINK, FT_REALTIME = 4, 5, 12, 249
FT_METADATA, FT_METADATA_MIRROR = 250, 251

#: File characteristics (ECMA-167 4/14.4.3).
FID_HIDDEN, FID_DIRECTORY, FID_DELETED, FID_PARENT = 0x01, 0x02, 0x04, 0x08


class UdfDamaged(Exception):
    """The disc's UDF structures are missing, inconsistent or garbage (``str`` says where)."""


class UdfUnsupported(Exception):
    """A valid UDF disc that uses a feature this reader does not implement."""


@dataclass(frozen=True, slots=True)
class Extent:
    """One allocation descriptor: ``length`` bytes at ``block`` of partition ``partition``."""

    kind: int
    length: int
    block: int
    partition: int


@dataclass(frozen=True, slots=True)
class FileEntry:
    """What one File Entry or Extended File Entry says about a file."""

    file_type: int
    size: int
    ad_form: int
    #: Allocation descriptors (continuations already followed), or () for embedded data.
    extents: tuple[Extent, ...]
    #: For embedded data: where the bytes are on the medium (absolute byte offset).
    embedded_at: int


@dataclass(frozen=True, slots=True)
class Fid:
    """One File Identifier Descriptor of a folder listing (parents and deleted ones dropped)."""

    name: str
    characteristics: int
    #: The file's ICB: logical block and partition reference number.
    block: int
    partition: int


def tag_ok(data: bytes, tag_id: int, location: int | None) -> bool:
    """Whether ``data`` starts with a valid descriptor tag of kind ``tag_id``."""
    if len(data) < 16:
        return False
    ident, _version, checksum, _r, _serial, crc, crc_len, where = struct.unpack_from(
        "<HHBBHHHI", data)
    if ident != tag_id or (sum(data[0:4]) + sum(data[5:16])) & 0xFF != checksum:
        return False
    if location is not None and where != location:
        return False
    # The CRC covers crc_len bytes after the tag; a length past the buffer is itself damage.
    if 16 + crc_len > len(data):
        return False
    return binascii.crc_hqx(data[16 : 16 + crc_len], 0) == crc


def has_udf_vrs(pread: Pread) -> bool:
    """Whether the medium carries a UDF volume recognition sequence (ECMA-167 2/8.3, 3/9.1).

    A Beginning Extended Area descriptor (``BEA01``), then ``NSR02`` or ``NSR03``, before the
    Terminating Extended Area descriptor (``TEA01``); ISO9660 descriptors (``CD001``) may come
    first (a UDF bridge disc). Descriptors are 2048 bytes apart, or a sector apart on media
    with larger sectors.
    """
    for step in (2048, 4096):
        in_extended_area = False
        for n in range(64):
            data = pread(7, _VRS_START + n * step)
            if len(data) < 7 or data[6] != 1:
                break
            ident = data[1:6]
            if ident == b"BEA01":
                in_extended_area = True
            elif ident in (b"NSR02", b"NSR03") and in_extended_area:
                return True
            elif ident == b"TEA01":
                in_extended_area = False
            elif ident not in (b"CD001", b"BOOT2", b"CDW02"):
                break
    return False


def decode_dstring(field: bytes) -> str:
    """A d-string (ECMA-167 1/7.2.12): CS0 text whose used length is in its last byte."""
    used = field[-1] if field else 0
    if used < 1 or used > len(field) - 1:
        return ""
    return decode_name(field[:used])


def decode_name(raw: bytes) -> str:
    """OSTA CS0 compressed Unicode (UDF 2.1.1): a compression byte, then 8- or 16-bit units.

    8-bit units are Unicode code points U+0000-U+00FF, as the Linux driver and 7-Zip read
    them; 16-bit units are UCS-2 big endian, and a lone surrogate (never valid) becomes
    U+FFFD so every name can be stored as UTF-8. An unknown compression byte gives "".
    """
    if not raw:
        return ""
    comp, body = raw[0], raw[1:]
    if comp in (8, 254):
        return body.decode("latin-1")
    if comp in (16, 255):
        return body[: len(body) & ~1].decode("utf-16-be", "replace")
    return ""


@dataclass(slots=True)
class Partition:
    """One entry of the logical volume's partition map, mapping its blocks to byte offsets."""

    kind: str  # "physical", "sparable" or "metadata"
    number: int
    start: int  # first sector of the physical partition
    length: int  # sectors
    block_size: int
    #: Sparable: packet length and sorted (original, mapped) packet starts.
    packet: int = 0
    spared: tuple[tuple[int, int], ...] = ()
    #: Metadata: the metadata file's runs as (first metadata block, sector, blocks), sorted.
    runs: tuple[tuple[int, int, int], ...] = ()

    def runs_of(self, block: int, blocks: int) -> list[tuple[int, int]]:
        """Byte runs ``(offset, length)`` on the medium of ``blocks`` blocks from ``block``.

        Raises
        ------
        UdfDamaged
            The blocks lie outside the partition (or the metadata file).
        """
        bs = self.block_size
        if self.kind == "metadata":
            return self._metadata_runs(block, blocks)
        if block < 0 or block + blocks > self.length:
            raise UdfDamaged(f"blocks {block}+{blocks} lie outside partition {self.number}")
        if self.kind == "sparable" and self.spared:
            return self._spared_runs(block, blocks)
        return [((self.start + block) * bs, blocks * bs)]

    def _spared_runs(self, block: int, blocks: int) -> list[tuple[int, int]]:
        # Only packets the sparing table relocated are split off; the rest stays one run.
        bs, out = self.block_size, []
        first_packet = block - block % self.packet
        i = bisect.bisect_left(self.spared, (first_packet, -1))
        pos, end = block, block + blocks
        while pos < end:
            if i < len(self.spared) and self.spared[i][0] <= pos:
                original, mapped = self.spared[i]
                stop = min(end, original + self.packet)
                if pos < stop:
                    out.append(((mapped + pos - original) * bs, (stop - pos) * bs))
                    pos = stop
                i += 1
                continue
            stop = min(end, self.spared[i][0]) if i < len(self.spared) else end
            out.append(((self.start + pos) * bs, (stop - pos) * bs))
            pos = stop
        return out

    def _metadata_runs(self, block: int, blocks: int) -> list[tuple[int, int]]:
        bs, out = self.block_size, []
        i = bisect.bisect_right(self.runs, (block, 1 << 62, 0)) - 1
        pos, end = block, block + blocks
        while pos < end:
            if i < 0 or i >= len(self.runs):
                raise UdfDamaged(f"metadata block {pos} lies outside the metadata file")
            first, sector, count = self.runs[i]
            if not first <= pos < first + count:
                raise UdfDamaged(f"metadata block {pos} lies outside the metadata file")
            take = min(end, first + count) - pos
            out.append(((sector + pos - first) * bs, take * bs))
            pos += take
            i += 1
        return out


def parse_fids(data: bytes) -> tuple[list[Fid], int, int]:
    """The complete File Identifier Descriptors at the start of a piece of a folder listing.

    A listing is read in chunks, so the last descriptor of ``data`` may be cut off: parsing
    stops before it, and the caller passes the rest again with the next chunk. Parent and
    deleted entries are parsed and dropped, as a mount does.

    Returns
    -------
    tuple
        ``(fids, used, parsed)``: the live FIDs, the bytes of ``data`` they and the dropped
        ones took, and how many descriptors that was in all.

    Raises
    ------
    UdfDamaged
        A complete descriptor in the listing is not a valid FID.
    """
    fids: list[Fid] = []
    pos = parsed = 0
    while pos + 38 <= len(data):
        name_length = data[pos + 19]
        iu_length, = struct.unpack_from("<H", data, pos + 36)
        end = pos + 38 + iu_length + name_length
        padded = end + (-(end - pos) % 4)  # the tag's CRC covers the padding too
        if padded > len(data):
            break  # the rest comes with the next chunk
        if not tag_ok(data[pos:padded], TAG_FID, None):
            raise UdfDamaged("a folder listing holds something that is not a file identifier")
        characteristics = data[pos + 18]
        block, partition = struct.unpack_from("<IH", data, pos + 24)
        raw = data[pos + 38 + iu_length : end]
        pos = padded
        parsed += 1
        if characteristics & (FID_PARENT | FID_DELETED) or not raw:
            continue
        fids.append(Fid(decode_name(raw), characteristics, block, partition))
    return fids, min(pos, len(data)), parsed
