"""Hostile ISO9660 images for the tests: real pycdlib images with bytes patched as a crafted disc
would have them (what a reviewer fed the kiosk, at any scale).

* :func:`dense_listing_iso`: one folder whose listing is ``records`` file records packed back to
  back, so records cross 2 KiB blocks and 64 KiB read boundaries (pycdlib parses them all);
* :func:`files_past_the_end_iso`: ``files`` files in one folder, the image cut just after the
  directory, so every file's extent runs past the end of the image;
* :func:`udf_tree_only_iso`: a UDF bridge whose UDF tree holds ``files`` files the ISO9660 tree
  does not list (the census counts the trees :class:`~kiosk.sources.iso.IsoSource` reads).

Also run as a script to write them for measuring: ``python -m tests.sources.crafted_iso
dense|reversed|past|udf OUT.iso N``.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import pycdlib

BLOCK = 2048
_PVD = 16 * BLOCK


def both_endian32(value: int) -> bytes:
    """ECMA-119 7.3.3: a 32-bit number little-endian, then big-endian."""
    return value.to_bytes(4, "little") + value.to_bytes(4, "big")


def _both_endian16(value: int) -> bytes:
    return value.to_bytes(2, "little") + value.to_bytes(2, "big")


def directory_record(ident: bytes, *, extent: int = 0, length: int = 0, folder: bool = False,
                     size: int = 0, system_use: bytes = b"") -> bytes:
    """One directory record (ECMA-119 9.1), padded with zeros to ``size`` bytes if given."""
    body = (b"\x00" + both_endian32(extent) + both_endian32(length)
            + bytes([126, 1, 1, 0, 0, 0, 0])  # 2026-01-01 00:00:00 GMT
            + bytes([2 if folder else 0, 0, 0]) + _both_endian16(1) + bytes([len(ident)]) + ident)
    if len(ident) % 2 == 0:
        body += b"\x00"  # pad so the system use area starts on an even byte
    body += system_use
    record = bytes([len(body) + 1]) + body
    if size:
        assert len(record) <= size <= 255, (len(record), size)
        record = bytes([size]) + record[1:] + b"\x00" * (size - len(record))
    return record


def record_offset(image: bytes | bytearray, dir_extent: int, ident: bytes) -> int:
    """Byte offset of the record named ``ident`` in the (one block) folder at ``dir_extent``."""
    start = offset = dir_extent * BLOCK
    while offset < start + BLOCK and image[offset]:
        if image[offset + 33 : offset + 33 + image[offset + 32]] == ident:
            return offset
        offset += image[offset]
    raise AssertionError(f"{ident!r} not found")


def root_extent(image: bytes | bytearray) -> int:
    """Where the primary volume's root folder is."""
    return int.from_bytes(image[_PVD + 156 + 2 : _PVD + 156 + 6], "little")


def _point_folder_at(image: bytearray, ident: bytes, extent: int, length: int) -> None:
    """Move the root's folder ``ident`` to ``extent``: its record and both path tables."""
    rec = record_offset(image, root_extent(image), ident)
    image[rec + 2 : rec + 18] = both_endian32(extent) + both_endian32(length)
    size = int.from_bytes(image[_PVD + 132 : _PVD + 136], "little")
    for table, order in ((int.from_bytes(image[_PVD + 140 : _PVD + 144], "little"), "little"),
                         (int.from_bytes(image[_PVD + 148 : _PVD + 152], "big"), "big")):
        offset = table * BLOCK
        end = offset + size
        while offset < end:
            name_len = image[offset]
            if image[offset + 8 : offset + 8 + name_len] == ident:
                image[offset + 2 : offset + 6] = extent.to_bytes(4, order)  # type: ignore[arg-type]
            offset += 8 + name_len + name_len % 2


def continuation_entry(block: int, offset: int, length: int) -> bytes:
    """A SUSP CE entry (IEEE P1281 5.1): the System Use area goes on at block/offset."""
    return (b"CE\x1c\x01" + both_endian32(block) + both_endian32(offset)
            + both_endian32(length))


#: A Rock Ridge NM entry of 255 bytes that says "the name goes on" (flags 1).
_NAME_PART = b"NM" + bytes([255, 1, 1]) + b"x" * 250


def dense_listing_iso(out: Path, records: int, *, record_size: int = 0,
                      tail: bytes = b"", ce_chain: int = 0,
                      order: Sequence[int] | None = None) -> Path:
    """An image whose folder ``/A`` lists ``records`` empty files packed back to back.

    Parameters
    ----------
    out : Path
        Where to write the image.
    records : int
        File records in ``/A`` (besides ``.`` and ``..``), named ``F0000000.;1``, ...
    record_size : int
        Bytes per record (44 to 255; 0: the smallest, 44). Bigger records put fewer in each
        64 KiB read, so a small limit can be bypassed with a small image.
    tail : bytes
        Bytes put right after the records, inside the listing (a malformed record, say).
    ce_chain : int
        If given, a chain of that many System Use continuation areas, one per block after the
        listing, each seven Rock Ridge name parts (1.8 KB) and a CE entry to the next; every
        record's CE entry points at the first (pycdlib follows the whole chain for each).
    order : sequence of int, optional
        The order of the records by their number (default ascending: sorted, as ECMA-119 9.3
        wants). pycdlib inserts each record into its folder's sorted list of children and then
        renumbers every child after it, in Python: out of order, that is quadratic.
    """
    iso = pycdlib.PyCdlib()
    # Records with System Use entries need a Rock Ridge parent folder (pycdlib checks).
    iso.new(interchange_level=1, vol_ident="CRAFTED", rock_ridge="1.09" if ce_chain else None)
    iso.add_directory("/A", rr_name="A" if ce_chain else None)
    iso.add_fp(io.BytesIO(b"readme\n"), 7, "/README.TXT;1",
               rr_name="README.TXT" if ce_chain else None)
    buffer = io.BytesIO()
    iso.write_fp(buffer)
    iso.close()
    image = bytearray(buffer.getvalue())
    extent = len(image) // BLOCK
    root = root_extent(image)
    listing = bytearray(directory_record(b"\x00", extent=extent, folder=True)
                        + directory_record(b"\x01", extent=root, length=BLOCK, folder=True))
    area = _NAME_PART * 7
    su = continuation_entry(0, 0, len(area)) if ce_chain else b""
    each = len(directory_record(b"F0000000.;1", size=record_size, system_use=su))
    length = -(-(len(listing) + records * each + len(tail)) // BLOCK) * BLOCK
    first_area = extent + length // BLOCK  # the chain starts right after the listing
    if ce_chain:
        su = continuation_entry(first_area, 0, len(area) + 28 * (ce_chain > 1))
    for i in range(records) if order is None else order:
        listing += directory_record(f"F{i:07d}.;1".encode(), size=record_size, system_use=su)
    listing += tail
    assert length == -(-len(listing) // BLOCK) * BLOCK
    listing += b"\x00" * (length - len(listing))
    for n in range(ce_chain):
        link = area
        if n + 1 < ce_chain:
            link += continuation_entry(first_area + n + 1, 0, len(area) + 28 * (n + 2 < ce_chain))
        listing += link + b"\x00" * (BLOCK - len(link))
    listing[2:18] = both_endian32(extent) + both_endian32(length)  # "." is /A itself
    _point_folder_at(image, b"A", extent, length)
    image += listing
    image[_PVD + 80 : _PVD + 88] = both_endian32(len(image) // BLOCK)  # volume space size
    out.write_bytes(bytes(image))
    return out


def files_past_the_end_iso(out: Path, files: int) -> Path:
    """An image with ``files`` files of 4 KiB in ``/D``, cut right after the directory.

    Every file's extent then runs past the end of the image (a truncated or crafted disc): the
    reader must use the length the disc records, without rereading the listing for each.
    """
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=1, vol_ident="PASTEND")
    iso.add_directory("/D")
    data = b"x" * 4096
    for i in range(files):
        iso.add_fp(io.BytesIO(data), len(data), f"/D/F{i:07d}.;1")
    iso.write(str(out))
    iso.close()
    image = out.read_bytes()
    d = record_offset(image, root_extent(image), b"D")
    d_extent = int.from_bytes(image[d + 2 : d + 6], "little")
    d_length = int.from_bytes(image[d + 10 : d + 14], "little")
    first_data = min(
        int.from_bytes(image[off + 2 : off + 6], "little")
        for off in _records_in(image, d_extent * BLOCK, d_length)
        if image[off + 32] != 1 or image[off + 33] not in (0, 1))  # not "." or ".."
    assert d_extent * BLOCK + d_length <= first_data * BLOCK, "listing first, then the data"
    os.truncate(out, first_data * BLOCK)
    return out


def udf_tree_only_iso(out: Path, files: int) -> Path:
    """A UDF bridge image: ``/README.TXT`` in both trees, ``files`` empty files in UDF only."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, udf="2.60", vol_ident="BRIDGE")
    iso.add_fp(io.BytesIO(b"readme\n"), 7, "/README.TXT;1", udf_path="/README.TXT")
    iso.add_directory(udf_path="/A")
    for i in range(files):
        iso.add_fp(io.BytesIO(b""), 0, udf_path=f"/A/F{i:07d}")
    iso.write(str(out))
    iso.close()
    return out


def _records_in(image: bytes, start: int, length: int) -> list[int]:
    offsets, offset = [], start
    while offset < start + length:
        if image[offset] == 0:
            offset = (offset // BLOCK + 1) * BLOCK
            continue
        offsets.append(offset)
        offset += image[offset]
    return offsets


if __name__ == "__main__":
    kind, target, count = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    if kind == "reversed":
        dense_listing_iso(target, count, order=range(count - 1, -1, -1))
    else:
        {"dense": dense_listing_iso, "past": files_past_the_end_iso,
         "udf": udf_tree_only_iso}[kind](target, count)
    print(target, target.stat().st_size)
