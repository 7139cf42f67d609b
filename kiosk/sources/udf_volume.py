"""A UDF logical volume on a disc: its anchor, volume descriptors, partitions and file entries.

What :class:`kiosk.sources.udf.UdfSource` needs to read a UDF-only disc (ECMA-167 3rd edition
as profiled by OSTA UDF 1.02-2.60: what Windows, Nero and PACS burners write), parsed with
:mod:`struct` straight from ``pread`` so that every length a crafted disc claims is checked
before it is used (the descriptors themselves: :mod:`kiosk.sources.udf_descriptors`):

* the Anchor Volume Descriptor Pointer at sector 256 (else N-256, else N-1), the main volume
  descriptor sequence (else the reserve one): Primary, Partition and Logical Volume
  descriptors, through Volume Descriptor Pointers;
* partition maps: physical (type 1), sparable (CD-RW/DVD-RW, with their sparing table) and
  metadata (UDF 2.50+, through the metadata file, else its mirror). Virtual partitions (VAT,
  incrementally written CD-R) are refused with :class:`UdfUnsupported`;
* File Entries and Extended File Entries with short, long or embedded allocation
  descriptors, continued through Allocation Extent Descriptors.

Every descriptor's tag checksum, CRC and location are checked. Errors are raised as
:class:`UdfDamaged` or :class:`UdfUnsupported` (the source words them for the coordinator);
:class:`OSError` from reading passes through.
"""

from __future__ import annotations

import struct

from kiosk.sources.udf_descriptors import (
    AD_EMBEDDED,
    AD_EXTENDED,
    AD_LONG,
    AD_SHORT,
    FT_METADATA,
    FT_METADATA_MIRROR,
    HOLE,
    Extent,
    FileEntry,
    Partition,
    Pread,
    UdfDamaged,
    UdfUnsupported,
    decode_dstring,
    tag_ok,
)

__all__ = ["Volume"]

#: Sector sizes a UDF medium may have: DVDs and CDs 2048, hard disks and sticks 512 or 4096.
_SECTOR_SIZES = (2048, 512, 4096, 1024)
#: Descriptors of a volume descriptor sequence read at most (the spec asks for 16 sectors).
_MAX_VDS_DESCRIPTORS = 256
#: Volume Descriptor Pointers followed at most (a loop of them in a crafted image).
_MAX_VDS_HOPS = 8
#: Allocation Extent Descriptors one file may chain through.
_MAX_AED_HOPS = 4096
# Tag identifiers (ECMA-167 3/7.2.1, 4/7.2.1).
TAG_PVD, TAG_AVDP, TAG_VDP, TAG_PD, TAG_LVD, TAG_TD = 1, 2, 3, 5, 6, 8
TAG_FSD, TAG_AED, TAG_FE, TAG_EFE = 256, 258, 261, 266
#: Extent types (the top two bits of an extent length).
_RECORDED, _CONTINUATION = 0, 3


class Volume:
    """A UDF logical volume on a medium: its partitions, label and root folder.

    Parameters
    ----------
    pread : callable
        ``pread(length, offset)`` on the image or device.
    size : int
        Bytes on the medium (to find the backup anchors and refuse extents past the end).
    max_extents : int
        Allocation descriptors the partition structures may use (the metadata file's).

    Raises
    ------
    UdfDamaged
        No valid anchor, volume descriptors, partitions or file set descriptor.
    UdfUnsupported
        A virtual (VAT) partition, or a block size that is not the sector size.
    OSError
        Reading the medium failed.
    """

    def __init__(self, pread: Pread, size: int, max_extents: int) -> None:
        self._pread = pread
        self.size = size
        self.block_size, anchor = self._find_anchor()
        self.primary = b""  # the Primary Volume Descriptor, to tell this disc from another
        self.primary_at = self._lvd_at = 0
        descriptors = self._sequence(anchor)
        self.label: str | None = None
        self.partitions: list[Partition] = []
        self.root: tuple[int, int] = (0, 0)
        self._setup(descriptors, max_extents)

    # ---------------------------------------------------------------------------- reading

    def read(self, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset``; a short read means the image is cut off here."""
        data = self._pread(length, offset)
        if len(data) < length:
            raise UdfDamaged(f"the medium ends at byte {offset + len(data):,}, inside a UDF "
                             "structure (truncated image)")
        return data

    def block(self, partition: int, block: int) -> tuple[int, bytes]:
        """The offset and bytes of logical block ``block`` of partition reference ``partition``."""
        offset = self.offset_of(partition, block)
        return offset, self.read(offset, self.block_size)

    def offset_of(self, partition: int, block: int) -> int:
        """The byte offset on the medium of one logical block."""
        if not 0 <= partition < len(self.partitions):
            raise UdfDamaged(f"partition reference {partition} is not in the partition map")
        return self.partitions[partition].runs_of(block, 1)[0][0]

    # ---------------------------------------------------------------------------- anchor

    def _find_anchor(self) -> tuple[int, bytes]:
        for bs in _SECTOR_SIZES:
            last = self.size // bs - 1
            for sector in (256, last - 256, last):
                if sector < 256 or (sector + 1) * bs > self.size:
                    continue
                data = self._pread(512, sector * bs)
                if tag_ok(data, TAG_AVDP, sector):
                    return bs, data
        raise UdfDamaged("no Anchor Volume Descriptor Pointer at sector 256 or at the end")

    def _sequence(self, anchor: bytes) -> dict[int, bytes]:
        """The prevailing descriptors of the main sequence, else of the reserve sequence."""
        errors = []
        for at in (16, 24):  # main, then reserve volume descriptor sequence extent
            length, location = struct.unpack_from("<II", anchor, at)
            try:
                return self._read_sequence(location, length)
            except UdfDamaged as exc:
                errors.append(str(exc))
        raise UdfDamaged(errors[0])

    def _read_sequence(self, location: int, length: int) -> dict[int, bytes]:
        bs = self.block_size
        found: dict[int, bytes] = {}
        partitions: dict[int, bytes] = {}
        hops = read = 0
        sector, end = location, location + length // bs
        while sector < end:
            read += 1
            if read > _MAX_VDS_DESCRIPTORS:
                raise UdfDamaged("the volume descriptor sequence does not end")
            data = self.read(sector * bs, bs)
            ident = struct.unpack_from("<H", data)[0]
            if ident == TAG_TD or not tag_ok(data, ident, sector):
                # An unreadable descriptor ends the sequence, as in the Linux driver: what
                # came before it may be all that is needed (checked below).
                break
            if ident == TAG_VDP:
                hops += 1
                if hops > _MAX_VDS_HOPS:
                    raise UdfDamaged("the volume descriptor pointers form a loop")
                length, location = struct.unpack_from("<II", data, 20)
                sector, end = location, location + length // bs
                continue
            # The descriptor with the highest sequence number prevails (ECMA-167 3/8.4.3).
            if ident == TAG_PD:
                number = struct.unpack_from("<H", data, 22)[0]
                if _newer(data, partitions.get(number)):
                    partitions[number] = data
            elif ident in (TAG_PVD, TAG_LVD) and _newer(data, found.get(ident)):
                found[ident] = data
                if ident == TAG_PVD:
                    self.primary, self.primary_at = data, sector * bs
                else:
                    self._lvd_at = sector * bs
            sector += 1
        if TAG_LVD not in found or not partitions:
            raise UdfDamaged("the volume descriptors name no logical volume or no partition")
        self._partition_descriptors = partitions
        return found

    # ------------------------------------------------------------------------ partitions

    def _setup(self, found: dict[int, bytes], max_extents: int) -> None:
        lvd = found[TAG_LVD]
        if not self.primary:  # no Primary Volume Descriptor: the logical volume's tells discs apart
            self.primary, self.primary_at = lvd, self._lvd_at
        block_size, = struct.unpack_from("<I", lvd, 212)
        if block_size != self.block_size:
            raise UdfUnsupported(f"logical blocks of {block_size} bytes on "
                                 f"{self.block_size}-byte sectors")
        self.label = decode_dstring(lvd[84:212]).strip() or None
        if self.label is None and TAG_PVD in found:
            self.label = decode_dstring(found[TAG_PVD][24:56]).strip() or None
        table_length, count = struct.unpack_from("<II", lvd, 264)
        maps = lvd[440 : 440 + table_length]
        pos = 0
        metadata: list[tuple[int, bytes]] = []
        for index in range(min(count, 64)):
            if pos + 2 > len(maps):
                raise UdfDamaged("the partition map is cut short")
            kind, size = maps[pos], maps[pos + 1]
            entry = maps[pos : pos + size]
            if size < 6 or len(entry) < size:
                raise UdfDamaged("the partition map is damaged")
            if kind == 1:
                self.partitions.append(self._physical(struct.unpack_from("<H", entry, 4)[0]))
            elif kind == 2 and size >= 64:
                ident = entry[5:28].rstrip(b"\x00")
                number = struct.unpack_from("<H", entry, 38)[0]
                if ident == b"*UDF Sparable Partition":
                    self.partitions.append(self._sparable(number, entry))
                elif ident == b"*UDF Metadata Partition":
                    self.partitions.append(self._physical(number))  # replaced below
                    metadata.append((index, entry))
                elif ident == b"*UDF Virtual Partition":
                    raise UdfUnsupported("a virtual partition (VAT: a CD-R written "
                                         "incrementally and never finalised)")
                else:
                    raise UdfUnsupported(f"a partition map of type {ident!r}")
            else:
                raise UdfDamaged(f"partition map entry {index} is of unknown type {kind}")
            pos += size
        if not self.partitions:
            raise UdfDamaged("the logical volume has no partition")
        for index, entry in metadata:
            self.partitions[index] = self._metadata(self.partitions[index], entry, max_extents)
        # The File Set Descriptor is where the logical volume contents use field says.
        _length, fsd_block, fsd_partition = struct.unpack_from("<IIH", lvd, 248)
        _offset, fsd = self.block(fsd_partition, fsd_block)
        if not tag_ok(fsd, TAG_FSD, fsd_block):
            raise UdfDamaged("the file set descriptor is damaged")
        _length, root_block, root_partition = struct.unpack_from("<IIH", fsd, 400)
        self.root = (root_partition, root_block)

    def _physical(self, number: int) -> Partition:
        pd = self._partition_descriptors.get(number)
        if pd is None:
            raise UdfDamaged(f"partition {number} has no partition descriptor")
        start, length = struct.unpack_from("<II", pd, 188)
        if start * self.block_size >= self.size:
            raise UdfDamaged(f"partition {number} starts past the end of the medium")
        return Partition("physical", number, start, length, self.block_size)

    def _sparable(self, number: int, entry: bytes) -> Partition:
        part = self._physical(number)
        packet, tables, table_size = struct.unpack_from("<HBxI", entry, 40)
        if packet == 0:
            raise UdfDamaged("a sparable partition with packets of 0 blocks")
        blocks = -(-min(table_size, 1 << 20) // self.block_size)
        for i in range(min(tables, 4)):
            location, = struct.unpack_from("<I", entry, 48 + 4 * i) if 52 + 4 * i <= 64 else (0,)
            data = self.read(location * self.block_size, blocks * self.block_size)
            if not tag_ok(data, 0, location) or data[17:35] != b"*UDF Sparing Table":
                continue  # the other copies are there for exactly this
            entries, = struct.unpack_from("<H", data, 48)
            spared = []
            for k in range(min(entries, (len(data) - 56) // 8)):
                original, mapped = struct.unpack_from("<II", data, 56 + 8 * k)
                if original < 0xFFFFFFF0:
                    spared.append((original, mapped))
            part.kind, part.packet, part.spared = "sparable", packet, tuple(sorted(spared))
            return part
        raise UdfDamaged("no readable sparing table for the sparable partition")

    def _metadata(self, part: Partition, entry: bytes, max_extents: int) -> Partition:
        """The metadata partition (UDF 2.50): blocks of the metadata file, else its mirror."""
        main, mirror = struct.unpack_from("<II", entry, 40)
        physical = next((i for i, p in enumerate(self.partitions)
                         if p.kind != "metadata" and p.number == part.number), None)
        if physical is None:
            raise UdfDamaged("the metadata partition has no physical partition")
        problem = "no metadata file"
        for location, wanted in ((main, FT_METADATA), (mirror, FT_METADATA_MIRROR)):
            try:
                fe = self.file_entry(physical, location, max_extents)
            except UdfDamaged as exc:
                problem = str(exc)
                continue
            if fe.file_type != wanted or fe.ad_form == AD_EMBEDDED:
                problem = "the metadata file is not one"
                continue
            runs, first = [], 0
            for ext in fe.extents:
                blocks = -(-ext.length // self.block_size)
                if ext.kind == _RECORDED:
                    base = self.partitions[physical]
                    if ext.block + blocks > base.length:
                        raise UdfDamaged("the metadata file lies outside its partition")
                    runs.append((first, base.start + ext.block, blocks))
                first += blocks
            return Partition("metadata", part.number, part.start, part.length,
                             self.block_size, runs=tuple(runs))
        raise UdfDamaged(f"the metadata partition cannot be read: {problem}")

    # ----------------------------------------------------------------------- file entries

    def file_entry(self, partition: int, block: int, max_extents: int) -> FileEntry:
        """Parse the (Extended) File Entry at ``block`` and its allocation descriptors.

        Raises
        ------
        UdfDamaged
            Not a valid file entry, or its descriptors run out of bounds, loop or exceed
            ``max_extents``.
        """
        offset, data = self.block(partition, block)
        ident = struct.unpack_from("<H", data)[0]
        if ident not in (TAG_FE, TAG_EFE) or not tag_ok(data, ident, block):
            raise UdfDamaged(f"no valid file entry at block {block} of partition {partition}")
        file_type = data[27]
        flags, = struct.unpack_from("<H", data, 34)
        size, = struct.unpack_from("<Q", data, 56)
        header = 176 if ident == TAG_FE else 216
        ea_length, ad_length = struct.unpack_from("<II", data, header - 8)
        start = header + ea_length
        if start + ad_length > len(data):
            raise UdfDamaged(f"the file entry at block {block} claims more than its block")
        form = flags & 7
        if form == AD_EMBEDDED:
            if size > ad_length:
                raise UdfDamaged(f"embedded data at block {block} is shorter than the file")
            return FileEntry(file_type, size, form, (), offset + start)
        if form == AD_EXTENDED:
            raise UdfUnsupported("extended allocation descriptors")
        if form not in (AD_SHORT, AD_LONG):
            raise UdfDamaged(f"the file entry at block {block} has descriptors of form {form}")
        extents = self._extents(data[start : start + ad_length], form, partition, max_extents)
        return FileEntry(file_type, size, form, tuple(extents), 0)

    def _extents(self, area: bytes, form: int, partition: int, budget: int) -> list[Extent]:
        out: list[Extent] = []
        seen: set[tuple[int, int]] = set()
        step = 8 if form == AD_SHORT else 16
        while True:
            next_area: tuple[int, int] | None = None
            for pos in range(0, len(area) - step + 1, step):
                raw_length, block = struct.unpack_from("<II", area, pos)
                part = partition if form == AD_SHORT else struct.unpack_from("<H", area, pos + 8)[0]
                kind, length = raw_length >> 30, raw_length & 0x3FFFFFFF
                if length == 0:
                    break  # the descriptors end here (ECMA-167 4/12)
                if kind == _CONTINUATION:
                    next_area = (part, block)
                    break
                out.append(Extent(kind, length, block, part))
                if len(out) > budget:
                    raise UdfDamaged("a file has more allocation descriptors than the limit")
            if next_area is None:
                return out
            if next_area in seen or len(seen) >= _MAX_AED_HOPS:
                raise UdfDamaged("a file's allocation extent descriptors form a loop")
            seen.add(next_area)
            _offset, data = self.block(*next_area)
            if not tag_ok(data, TAG_AED, next_area[1]):
                raise UdfDamaged(f"the allocation extent descriptor at block {next_area[1]} "
                                 "is damaged")
            ad_length, = struct.unpack_from("<I", data, 20)
            area = data[24 : 24 + min(ad_length, len(data) - 24)]
            partition = next_area[0]

    def data_runs(self, fe: FileEntry) -> tuple[tuple[int, int], ...]:
        """Byte runs on the medium holding the file's first ``fe.size`` bytes, in order.

        Unrecorded extents read as zeros (:data:`HOLE`). A file whose descriptors cover less
        than its size ends with a run past the end of the medium, so that reading it fails
        there as a truncated file does, rather than reading as a shorter one.
        """
        if fe.ad_form == AD_EMBEDDED:
            return ((fe.embedded_at, fe.size),) if fe.size else ()
        runs: list[tuple[int, int]] = []
        left = fe.size
        for ext in fe.extents:
            if left <= 0:
                break
            length = min(ext.length, left)
            left -= length
            if ext.kind != _RECORDED:
                runs.append((HOLE, length))
                continue
            if not 0 <= ext.partition < len(self.partitions):
                raise UdfDamaged(f"partition reference {ext.partition} is not in the map")
            blocks = -(-length // self.block_size)
            for offset, run in self.partitions[ext.partition].runs_of(ext.block, blocks):
                take = min(run, length)
                if take > 0:
                    runs.append((offset, take))
                length -= take
        if left > 0:
            runs.append((max(self.size, 0), left))
        return tuple(_merge(runs))


def _newer(data: bytes, old: bytes | None) -> bool:
    """Whether descriptor ``data`` has a higher volume descriptor sequence number than ``old``."""
    return old is None or struct.unpack_from("<I", data, 16) >= struct.unpack_from("<I", old, 16)


def _merge(runs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Join runs that continue each other on the medium (fewer preads)."""
    out: list[tuple[int, int]] = []
    for offset, length in runs:
        if out and offset != HOLE and out[-1][0] != HOLE and out[-1][0] + out[-1][1] == offset:
            out[-1] = (out[-1][0], out[-1][1] + length)
        else:
            out.append((offset, length))
    return out
