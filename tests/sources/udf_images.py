"""UDF disc images for the tests: bridge (ISO9660 + UDF) and UDF-only, made from a tree of files.

pycdlib writes UDF only as a bridge (UDF 2.60 beside ISO9660). A UDF-only disc, as Windows and
many PACS burn them, is made from such an image by rewriting its volume recognition sequence
from sector 16: the ISO9660 descriptors (``CD001``) go, ``BEA01``/``NSR02``/``TEA01`` remain,
so nothing that looks for ISO9660 finds it any more (pycdlib refuses the result), while the UDF
structures, which the sequence does not point to, are untouched. 7-Zip lists and extracts both.

Run as a script to write a UDF-only image of the sample disc, of pydicom's test files, or of a
directory::

    .venv/bin/python -m tests.sources.udf_images OUT.iso [--sample | --pydicom | --tree DIR]
"""

from __future__ import annotations

import argparse
import binascii
import io
import os
import struct
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pycdlib

__all__ = ["bridge_image", "fe_at", "fid", "fid_at", "grow_partition",
           "partition_start", "point_at", "pydicom_files", "retag", "sample_disc_files",
           "tree_files", "udf_only", "udf_only_image", "with_metadata_partition"]

_SECTOR = 2048


def bridge_image(files: Mapping[str, bytes], out: Path, *, symlinks: Mapping[str, str] = {},
                 label: str = "UDF DISC", extended: bool = False) -> Path:
    """Write an ISO9660 + UDF 2.60 bridge image holding ``files`` (POSIX path -> bytes).

    Folders are made as the paths need them. ``symlinks`` (path -> target) become UDF
    symlinks. ``extended`` writes Extended File Entries (UDF 2.00+) instead of File Entries.
    The ISO9660 side gets numbered 8.3 names (``/D3/F7.;1``) and, as on a real bridge disc,
    Joliet names that are the UDF names.
    """
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=1, udf="2.60", joliet=3,
            vol_ident=label[:32].replace(" ", "_").upper())
    # Extended File Entries are chosen per entry by pycdlib when a creation time is given.
    when = {"creation_time": 1_700_000_000.0} if extended else {}
    folders: dict[str, str] = {"": ""}
    counter = 0

    def folder(udf_dir: str) -> str:
        nonlocal counter
        if udf_dir not in folders:
            parent = folder(udf_dir.rpartition("/")[0])
            counter += 1
            folders[udf_dir] = f"{parent}/D{counter}"
            iso.add_directory(folders[udf_dir], udf_path="/" + udf_dir,
                              joliet_path="/" + udf_dir)
        return folders[udf_dir]

    for rel in sorted(files):
        data = files[rel]
        parent = folder(rel.rpartition("/")[0])
        counter += 1
        iso.add_fp(io.BytesIO(data), len(data), f"{parent}/F{counter}.;1",
                   udf_path="/" + rel, joliet_path="/" + rel, **when)  # type: ignore[arg-type]
    for rel, target in sorted(symlinks.items()):
        folder(rel.rpartition("/")[0])
        iso.add_symlink(udf_symlink_path="/" + rel, udf_target=target)
    iso.write(str(out))
    iso.close()
    return out


def udf_only(image: Path, out: Path | None = None) -> Path:
    """Turn a bridge image into a UDF-only one (in place, or into ``out``).

    Raises
    ------
    ValueError
        ``image`` has no UDF volume recognition sequence after its ISO9660 descriptors.
    """
    data = bytearray(image.read_bytes())
    sector = 16
    while data[sector * _SECTOR + 1 : sector * _SECTOR + 6] == b"CD001":
        sector += 1
    if data[sector * _SECTOR + 1 : sector * _SECTOR + 6] != b"BEA01":
        raise ValueError(f"{image} has no UDF volume recognition sequence")
    end = sector
    while data[end * _SECTOR + 1 : end * _SECTOR + 6] != b"TEA01":
        end += 1
    sequence = [_vrs(b"BEA01"), _vrs(b"NSR02"), _vrs(b"TEA01")]
    data[16 * _SECTOR : (end + 1) * _SECTOR] = b"".join(sequence).ljust(
        (end + 1 - 16) * _SECTOR, b"\x00")
    target = out or image
    target.write_bytes(bytes(data))
    return target


def _vrs(ident: bytes) -> bytes:
    """One 2048-byte volume structure descriptor (ECMA-167 2/9.1): type 0, ident, version 1."""
    return (b"\x00" + ident + b"\x01").ljust(_SECTOR, b"\x00")


def udf_only_image(files: Mapping[str, bytes], out: Path, *,
                   symlinks: Mapping[str, str] = {}, label: str = "UDF DISC",
                   extended: bool = False) -> Path:
    """A UDF-only image holding ``files``: :func:`bridge_image`, then :func:`udf_only`."""
    return udf_only(bridge_image(files, out, symlinks=symlinks, label=label, extended=extended))


def tree_files(root: Path) -> dict[str, bytes]:
    """Every regular file below ``root`` as POSIX relative path -> bytes."""
    found: dict[str, bytes] = {}
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                found[path.relative_to(root).as_posix()] = path.read_bytes()
    return found


def pydicom_files() -> dict[str, bytes]:
    """pydicom's own test files: its DICOMDIR file-set and two single instances beside it.

    Files no one on this team wrote: the DICOMDIR of ``dicomdirtests`` with the instances it
    references (nested folders, upper-case names without extensions), ``CT_small.dcm`` and
    ``MR_small.dcm`` in a folder of their own.
    """
    from pydicom.data import get_testdata_file

    dicomdir = get_testdata_file("DICOMDIR")
    assert dicomdir is not None, "pydicom's test data has no DICOMDIR"
    root = Path(str(dicomdir)).parent
    files = {rel: data for rel, data in tree_files(root).items()
             if rel == "DICOMDIR" or rel[0].isdigit()}  # the file-set, not its variants
    for name in ("CT_small.dcm", "MR_small.dcm"):
        path = get_testdata_file(name)
        assert path is not None, f"pydicom's test data has no {name}"
        files[f"Extra Images/{name}"] = Path(str(path)).read_bytes()
    return files


def sample_disc_files() -> dict[str, bytes]:
    """The files of the sample hospital disc (:mod:`kiosk.samples.sample_disc`)."""
    from kiosk.samples.sample_disc import build_sample_disc

    with tempfile.TemporaryDirectory() as tmp:
        disc = build_sample_disc(Path(tmp) / "disc")
        return tree_files(disc.root)


# ------------------------------------------------------------------ crafting damaged discs
# What a crafted or damaged disc looks like is written into the bytes of a good image: these
# find the descriptors by their tags (never through the reader under test) and re-seal them.


def retag(data: bytearray, offset: int) -> None:
    """Recompute the checksum and CRC of the descriptor tag at ``offset`` after a patch."""
    crc_length, = struct.unpack_from("<H", data, offset + 10)
    crc = binascii.crc_hqx(bytes(data[offset + 16 : offset + 16 + crc_length]), 0)
    struct.pack_into("<H", data, offset + 8, crc)
    data[offset + 4] = (sum(data[offset : offset + 4]) + sum(data[offset + 5 : offset + 16])) & 0xFF


def partition_start(data: bytes | bytearray) -> int:
    """The first sector of the (only) partition, from the first Partition Descriptor."""
    for at in range(16 * _SECTOR, 300 * _SECTOR, _SECTOR):
        if struct.unpack_from("<HxxxxxxxxxxI", data, at) == (5, at // _SECTOR):
            return int(struct.unpack_from("<I", data, at + 188)[0])
    raise ValueError("no partition descriptor")


def fid_at(data: bytes | bytearray, name: str) -> int:
    """Byte offset of the File Identifier Descriptor naming ``name`` (8-bit CS0, no impl use)."""
    raw = b"\x08" + name.encode("latin-1")
    pos = 0
    while (pos := bytes(data).find(raw, pos + 1)) >= 0:
        at = pos - 38
        if at >= 0 and struct.unpack_from("<H", data, at)[0] == 257 and data[at + 19] == len(raw):
            return at
    raise ValueError(f"no FID named {name!r}")


def fe_at(data: bytes | bytearray, fid: int) -> int:
    """Byte offset of the file entry the FID at ``fid`` points to."""
    block, = struct.unpack_from("<I", data, fid + 24)
    return (partition_start(data) + block) * _SECTOR


def grow_partition(data: bytearray, payload: bytes) -> int:
    """Append ``payload`` (padded to whole blocks) inside the partition; return its first block.

    Every Partition Descriptor (main and reserve sequence) is lengthened to cover it.
    """
    start = partition_start(data)
    first = len(data) // _SECTOR
    data += payload + bytes(-len(payload) % _SECTOR)
    for at in range(16 * _SECTOR, 300 * _SECTOR, _SECTOR):
        if struct.unpack_from("<HxxxxxxxxxxI", data, at) == (5, at // _SECTOR):
            struct.pack_into("<I", data, at + 192, len(data) // _SECTOR - start)
            retag(data, at)
    return first - start


def fid(name: str, block: int, *, directory: bool = False, implementation_use: int = 0) -> bytes:
    """A File Identifier Descriptor for ``name`` pointing at the ICB in ``block``."""
    raw = b"\x08" + name.encode("latin-1")
    body = bytearray(38 + implementation_use + len(raw))
    struct.pack_into("<HHBBHHHI", body, 0, 257, 2, 0, 0, 0, 0, 0, 0)
    body[18] = 0x02 if directory else 0
    body[19] = len(raw)
    struct.pack_into("<IIH", body, 20, _SECTOR, block, 0)
    struct.pack_into("<H", body, 36, implementation_use)
    body[38 + implementation_use :] = raw
    body += bytes(-len(body) % 4)
    struct.pack_into("<H", body, 10, len(body) - 16)
    retag(body, 0)
    return bytes(body)


def point_at(data: bytearray, fe: int, block: int, length: int) -> None:
    """Make the file entry at ``fe`` hold ``length`` bytes at ``block`` (one short_ad)."""
    ea_length, = struct.unpack_from("<I", data, fe + 168)
    struct.pack_into("<Q", data, fe + 56, length)
    struct.pack_into("<II", data, fe + 176 + ea_length, length, block)
    retag(data, fe)


def _sectors_with_tag(data: bytes | bytearray, tag_id: int, first: int, last: int) -> list[int]:
    return [n * _SECTOR for n in range(first, min(last, len(data) // _SECTOR))
            if struct.unpack_from("<H", data, n * _SECTOR)[0] == tag_id]


def with_metadata_partition(data: bytearray, *, damage_main: bool = False) -> bytearray:
    """Move the file system's metadata into a UDF 2.50 metadata partition (in place).

    A second partition map (type 2, ``*UDF Metadata Partition``) on the same physical
    partition; a metadata file (file type 250) and its mirror (251) whose two extents cover
    the partition block for block; the file set, the root and every folder entry addressed
    through the metadata partition (reference 1). ``damage_main`` spoils the metadata file so
    that only its mirror can be read.
    """
    start = partition_start(data)
    length = len(data) // _SECTOR - start
    half = length // 2

    def metadata_file(file_type: int, block: int) -> bytes:
        fe = bytearray(_SECTOR)
        ads = struct.pack("<IIII", half * _SECTOR, 0, (length - half) * _SECTOR, half)
        struct.pack_into("<HHBBHHHI", fe, 0, 261, 3, 0, 0, 0, 0, 176 + len(ads) - 16, block)
        struct.pack_into("<IHHHBB", fe, 16, 0, 4, 0, 1, 0, file_type)
        struct.pack_into("<Q", fe, 56, length * _SECTOR)
        struct.pack_into("<II", fe, 168, 0, len(ads))
        fe[176 : 176 + len(ads)] = ads
        retag(fe, 0)
        return bytes(fe)

    main_at = length
    files = metadata_file(250, main_at) + metadata_file(251, main_at + 1)
    if damage_main:
        files = bytes(64) + files[64:]
    grow_partition(data, files)
    for lvd in _sectors_with_tag(data, 6, 16, 256):
        table, count = struct.unpack_from("<II", data, lvd + 264)
        number, = struct.unpack_from("<H", data, lvd + 440 + 4)
        entry = bytearray(64)
        entry[0:2] = b"\x02\x40"
        entry[5 : 5 + 23] = b"*UDF Metadata Partition"
        entry[28:30] = b"\x50\x02"  # identifier suffix: UDF revision 2.50
        struct.pack_into("<HHIIIIH", entry, 36, 1, number, main_at, main_at + 1, 0xFFFFFFFF,
                         32, 16)
        data[lvd + 440 + table : lvd + 440 + table + 64] = entry
        struct.pack_into("<II", data, lvd + 264, table + 64, count + 1)
        struct.pack_into("<H", data, lvd + 248 + 8, 1)  # the file set, through the metadata
        struct.pack_into("<H", data, lvd + 10, 440 + table + 64 - 16)
        retag(data, lvd)
    fsd = (start + struct.unpack_from("<I", data, _sectors_with_tag(data, 6, 16, 256)[0]
                                      + 248 + 4)[0]) * _SECTOR
    struct.pack_into("<H", data, fsd + 400 + 8, 1)  # the root, through the metadata
    retag(data, fsd)
    for fe in _sectors_with_tag(data, 261, start, start + length):
        if data[fe + 27] != 4:  # only folders list entries
            continue
        ea, _ad = struct.unpack_from("<II", data, fe + 168)
        size, = struct.unpack_from("<Q", data, fe + 56)
        _ad_length, block = struct.unpack_from("<II", data, fe + 176 + ea)
        listing = (start + block) * _SECTOR
        pos = listing
        while pos < listing + size:
            name_length, iu = data[pos + 19], struct.unpack_from("<H", data, pos + 36)[0]
            struct.pack_into("<H", data, pos + 28, 1)
            retag(data, pos)
            pos += 38 + iu + name_length + (-(38 + iu + name_length) % 4)
    return data


def main(argv: list[str] | None = None) -> int:
    """Write a UDF-only image (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--sample", action="store_true", help="the sample hospital disc")
    group.add_argument("--pydicom", action="store_true", help="pydicom's test files")
    group.add_argument("--tree", type=Path, help="a directory")
    parser.add_argument("--bridge", action="store_true", help="keep the ISO9660 side")
    args = parser.parse_args(argv)
    files = (sample_disc_files() if args.sample else pydicom_files() if args.pydicom
             else tree_files(args.tree))
    image = bridge_image(files, args.out)
    if not args.bridge:
        udf_only(image)
    print(f"{args.out}: {len(files)} files, {args.out.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
