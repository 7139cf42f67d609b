"""A disc is read in the order its files lie on it, not in the order their names sort.

A CD seeks in about 100 ms; read in directory order a 2,000-file disc can spend minutes moving
its head (bench/disc_order.py measures it). The readers say where each file lies
(``Entry.location``); the importer reads in ascending location.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

import pytest

from kiosk.bootstrap import build_service
from kiosk.ingest.importer import disc_order
from kiosk.sources.directory import DirectorySource
from kiosk.sources.source import MAX_DEPTH, Entry, EntryKind
from tests.conftest import make_instance


def test_disc_order_sorts_by_location_and_keeps_the_rest_as_listed() -> None:
    listed = [Entry("a", 1, EntryKind.FILE, 3000), Entry("b", 1, EntryKind.FILE, None),
              Entry("c", 1, EntryKind.FILE, 1000), Entry("d", 0, EntryKind.SYMLINK),
              Entry("e", 1, EntryKind.FILE, 2000)]
    assert [e.path for e in disc_order(listed)] == ["c", "e", "a", "b", "d"]
    nothing_known = [Entry("z", 1, EntryKind.FILE), Entry("y", 1, EntryKind.FILE)]
    assert disc_order(nothing_known) == nothing_known


class _Recording:
    """A folder whose files claim the given locations; records the order files are opened."""

    def __init__(self, root: Path, layout: dict[str, int]) -> None:
        self.inner = DirectorySource(root)
        self.description, self.label, self.filesystem = str(root), "DISC", "iso9660"
        self.layout = layout
        self.opened: list[str] = []

    def entries(self, max_depth: int = MAX_DEPTH) -> Iterator[Entry]:
        for entry in self.inner.entries(max_depth):
            yield replace(entry, location=self.layout.get(entry.path))

    def open(self, path: str) -> BinaryIO:
        self.opened.append(path)
        return self.inner.open(path)

    def is_present(self) -> bool:
        return True

    def close(self) -> None:
        self.inner.close()


def test_the_importer_reads_files_in_ascending_location(tmp_path: Path) -> None:
    disc = tmp_path / "disc"
    disc.mkdir()
    names = [f"IM{n:04d}" for n in range(12)]
    for n, name in enumerate(names):
        make_instance(disc / name, seed=n)
    # The burner wrote them in reverse: the last name lies first on the disc.
    layout = {name: (len(names) - n) * 1_000_000 for n, name in enumerate(names)}
    (tmp_path / "kiosk.toml").write_text("[import]\nworkers = 1\n")
    service = build_service(config_file=tmp_path / "kiosk.toml", data_dir=tmp_path / "data")
    source = _Recording(disc, layout)
    report = service.import_source(source)
    assert report["instances"]["verified"] == 12
    assert source.opened == sorted(names, key=layout.__getitem__)
    assert source.opened == list(reversed(names))


def _filefrag_offset(path: Path) -> int | None:
    """The first extent's physical byte offset, as e2fsprogs' filefrag reports it."""
    out = subprocess.run(["filefrag", "-v", "-b1", str(path)], capture_output=True, text=True,
                         check=True).stdout
    match = re.search(r"^\s*0:\s+\d+\.\.\s*\d+:\s+(\d+)\.\.", out, re.MULTILINE)
    return int(match.group(1)) if match else None


@pytest.fixture
def ext4_stick(tmp_path: Path) -> Iterator[Path]:
    """A real ext4 file system on a loop device, mounted (needs root)."""
    if os.geteuid() != 0 or not shutil.which("mkfs.ext4") or not shutil.which("filefrag"):
        pytest.skip("needs root, mkfs.ext4 and filefrag (e2fsprogs) to mount a loop device")
    image, mnt = tmp_path / "stick.img", tmp_path / "mnt"
    mnt.mkdir()
    with open(image, "wb") as fh:
        fh.truncate(64 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_a_mounted_stick_tells_where_its_files_lie_and_is_read_in_that_order(
        ext4_stick: Path, tmp_path: Path) -> None:
    # Written in the opposite order to their names, with a gap, so name order != block order.
    names = [f"IM{n:04d}" for n in range(8)]
    for n, name in enumerate(reversed(names)):
        make_instance(ext4_stick / name, seed=n, rows=64, columns=64)
        os.sync()
    source = DirectorySource(ext4_stick)
    entries = {e.path: e for e in source.entries() if e.kind is EntryKind.FILE}
    for name in names:
        assert entries[name].location == _filefrag_offset(ext4_stick / name)
    assert all(entries[name].location for name in names)
    by_block = sorted(names, key=lambda n: entries[n].location or 0)
    assert by_block != names  # the layout really differs from the name order
    (tmp_path / "kiosk.toml").write_text("[import]\nworkers = 1\n")
    service = build_service(config_file=tmp_path / "kiosk.toml", data_dir=tmp_path / "data")
    recording = _Recording(ext4_stick, {})
    recording.entries = source.entries  # type: ignore[method-assign]  # the real locations
    report = service.import_source(recording)
    assert report["instances"]["verified"] == 8
    assert recording.opened == by_block


def test_a_folder_on_tmpfs_says_nothing_and_is_read_as_listed(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir():
        pytest.skip("no /dev/shm (tmpfs) on this machine")
    folder = Path(os.path.realpath(shm)) / f"kiosk-test-{os.getpid()}"
    folder.mkdir()
    try:
        for n in range(3):
            make_instance(folder / f"IM{n}", seed=n)
        entries = [e for e in DirectorySource(folder).entries() if e.kind is EntryKind.FILE]
        assert [e.location for e in entries] == [None, None, None]
        assert disc_order(entries) == entries
    finally:
        shutil.rmtree(folder)
