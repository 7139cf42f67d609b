"""One contract, every Source: a directory, a Rock Ridge ISO and a UDF-only image of the same tree
behave the same.

The scanner and the ingester only talk to :class:`kiosk.sources.source.Source`, so whatever medium a
coordinator inserts, they must see the same paths, sizes, kinds, order and bytes.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import cast

import pycdlib
import pytest

from kiosk.errors import SourceReadError
from kiosk.sources.directory import DirectorySource
from kiosk.sources.iso import IsoSource
from kiosk.sources.source import Entry, EntryKind, Source
from kiosk.sources.udf import UdfSource
from tests.sources.udf_images import udf_only_image


def _data(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


#: The tree every implementation is built from: nested directories, an empty file, a 3 MiB
#: file, and names whose case must survive (upper case sorts before lower case).
FILES: dict[str, bytes] = {
    "DICOMDIR": _data(1, 4_321),
    "Big.bin": _data(2, 3 * 1024 * 1024),
    "empty.dat": b"",
    "Study1/Series_A/IM0001.dcm": _data(3, 70_001),
    "Study1/Series_A/im0002.DCM": _data(4, 2_048),
    "Study1/Series_A/Deeper/Last.txt": b"the last file\n",
    "Study1/series_b/IM0001": _data(5, 1),
    "report.PDF": _data(6, 12_345),
}
#: Symlinks and their targets: one leaves the medium, one points inside it.
SYMLINKS: dict[str, str] = {
    "outside": "/etc/passwd",
    "Study1/to_readme": "../DICOMDIR",
}

#: What entries() must yield, in this order (depth first, code point order within a directory).
EXPECTED: list[Entry] = [
    Entry("Big.bin", 3 * 1024 * 1024, EntryKind.FILE),
    Entry("DICOMDIR", 4_321, EntryKind.FILE),
    Entry("Study1/Series_A/Deeper/Last.txt", 14, EntryKind.FILE),
    Entry("Study1/Series_A/IM0001.dcm", 70_001, EntryKind.FILE),
    Entry("Study1/Series_A/im0002.DCM", 2_048, EntryKind.FILE),
    Entry("Study1/series_b/IM0001", 1, EntryKind.FILE),
    Entry("Study1/to_readme", 0, EntryKind.SYMLINK),
    Entry("empty.dat", 0, EntryKind.FILE),
    Entry("outside", 0, EntryKind.SYMLINK),
    Entry("report.PDF", 12_345, EntryKind.FILE),
]


def _make_tree(root: Path) -> Path:
    for rel, data in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    for rel, target in SYMLINKS.items():
        (root / rel).symlink_to(target)
    return root


def _rock_ridge_iso_of(tree: Path, out: Path) -> Path:
    """Write a Rock Ridge ISO of ``tree`` with pycdlib (the real names live in Rock Ridge)."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=1, rock_ridge="1.09", vol_ident="CONTRACT")
    counter = 0
    iso_dirs = {tree: ""}
    for dirpath, dirnames, filenames in os.walk(tree):
        here = Path(dirpath)
        parent_iso = iso_dirs[here]
        for name in sorted(dirnames + filenames):
            counter += 1
            path = here / name
            if path.is_symlink():
                iso.add_symlink(
                    symlink_path=f"{parent_iso}/L{counter}.;1",
                    rr_symlink_name=name,
                    rr_path=os.readlink(path),
                )
            elif path.is_dir():
                iso_dirs[path] = f"{parent_iso}/D{counter}"
                iso.add_directory(iso_dirs[path], rr_name=name)
            else:
                data = path.read_bytes()
                iso.add_fp(io.BytesIO(data), len(data), f"{parent_iso}/F{counter}.;1", rr_name=name)
        dirnames[:] = [d for d in dirnames if not (here / d).is_symlink()]
    iso.write(str(out))
    iso.close()
    return out


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _make_tree(tmp_path_factory.mktemp("contract") / "tree")


@pytest.fixture(scope="module")
def rr_image(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _rock_ridge_iso_of(tree, tmp_path_factory.mktemp("contract-iso") / "tree.iso")


@pytest.fixture(scope="module")
def udf_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return udf_only_image(FILES, tmp_path_factory.mktemp("contract-udf") / "tree.iso",
                          symlinks=SYMLINKS)


@pytest.fixture(params=["directory", "iso", "udf"])
def source(request: pytest.FixtureRequest, tree: Path, rr_image: Path,
           udf_image: Path) -> Iterator[Source]:
    src: Source
    if request.param == "directory":
        src = DirectorySource(tree)
    elif request.param == "iso":
        src = IsoSource(rr_image)
    else:
        src = UdfSource(udf_image)
    try:
        yield src
    finally:
        src.close()


def _read(src: Source, path: str, chunk: int = 65_536) -> bytes:
    out = bytearray()
    with src.open(path) as f:
        while block := f.read(chunk):
            out += block
    return bytes(out)


class TestSourceContract:
    """What the scanner and the ingester rely on, for every Source implementation."""

    def test_entries_paths_sizes_kinds_and_order(self, source: Source) -> None:
        # Where the data is on the device differs by medium (tests/sources/test_udf.py).
        assert [replace(e, location=None) for e in source.entries()] == EXPECTED

    def test_entries_can_be_listed_twice(self, source: Source) -> None:
        assert list(source.entries()) == list(source.entries())

    def test_paths_are_relative_posix_without_dot_dot(self, source: Source) -> None:
        for entry in source.entries():
            assert not entry.path.startswith("/")
            assert ".." not in entry.path.split("/")

    def test_open_gives_the_same_bytes(self, source: Source) -> None:
        for rel, data in FILES.items():
            assert _read(source, rel) == data, rel

    def test_small_chunks_and_readinto(self, source: Source) -> None:
        data = FILES["Study1/Series_A/IM0001.dcm"]
        assert _read(source, "Study1/Series_A/IM0001.dcm", chunk=1000) == data
        with source.open("Study1/Series_A/IM0001.dcm") as f:
            buf = bytearray(4096)
            assert cast(io.RawIOBase, f).readinto(buf) == 4096
            assert bytes(buf) == data[:4096]

    def test_seek_and_tell(self, source: Source) -> None:
        data = FILES["Big.bin"]
        with source.open("Big.bin") as f:
            f.seek(2_000_000)
            assert f.tell() == 2_000_000
            assert f.read(100) == data[2_000_000:2_000_100]

    def test_open_missing_path_is_a_read_error(self, source: Source) -> None:
        with pytest.raises(SourceReadError):
            source.open("Study1/NOPE.dcm")
        with pytest.raises(SourceReadError):
            source.open("nope/at/all")

    def test_symlinks_are_never_followed(self, source: Source) -> None:
        for rel in SYMLINKS:
            with pytest.raises(SourceReadError):
                source.open(rel)

    def test_directories_are_not_opened_as_files(self, source: Source) -> None:
        with pytest.raises(SourceReadError):
            source.open("Study1")

    def test_is_present(self, source: Source) -> None:
        assert source.is_present()

    def test_reading_from_two_threads_gives_correct_bytes(self, source: Source) -> None:
        # Small chunks so that the two readers interleave many times; the same big file
        # twice plus the others, so a shared seek position would show up as wrong bytes.
        paths = ["Big.bin", "Big.bin", *sorted(FILES)]
        expected = {p: hashlib.sha256(FILES[p]).hexdigest() for p in FILES}

        def digest(path: str) -> tuple[str, str]:
            h = hashlib.sha256()
            with source.open(path) as f:
                while block := f.read(8192):
                    h.update(block)
            return path, h.hexdigest()

        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(digest, paths * 2))
        assert len(results) == 2 * len(paths)
        for path, got in results:
            assert got == expected[path], path
