"""A hostile disc's directory tree is counted, within the import limits, before it is indexed.

Every image is real (genisoimage or pycdlib), and the hostile ones are real images with bytes
patched the way a crafted disc would have them. The point of each test: opening ends quickly,
with a message naming what was wrong, instead of pycdlib parsing without bound.
"""

from __future__ import annotations

import io
import os
import subprocess
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pycdlib
import pytest

from kiosk.errors import DiscTreeLimitError, SourceError
from kiosk.sources.iso import IsoSource
from kiosk.sources.iso_census import census, max_records
from kiosk.sources.opener import open_source
from kiosk.sources.scan_limits import ScanLimits
from kiosk.sources.source import EntryKind
from tests.media_fixtures import need_tools
from tests.sources.crafted_iso import dense_listing_iso, udf_tree_only_iso

_BLOCK = 2048


def _genisoimage(tree: Path, out: Path) -> Path:
    need_tools("genisoimage")
    subprocess.run(["genisoimage", "-quiet", "-J", "-o", str(out), str(tree)], check=True,
                   timeout=120)
    return out


def _wide_disc(tmp_path: Path, files: int) -> Path:
    tree = tmp_path / "wide"
    tree.mkdir()
    for i in range(files):
        (tree / f"IM{i:05d}").write_bytes(b"x")
    return _genisoimage(tree, tmp_path / "wide.iso")


def _two_folders(tmp_path: Path) -> Path:
    """/A/B/FILE.;1 with pycdlib (ISO9660 names only)."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=1, vol_ident="LOOP")
    iso.add_directory("/A")
    iso.add_directory("/A/B")
    iso.add_fp(io.BytesIO(b"data"), 4, "/A/B/FILE.;1")
    out = tmp_path / "two.iso"
    iso.write(str(out))
    iso.close()
    return out


def _record_offset(image: bytes, dir_extent: int, ident: bytes) -> int:
    """Byte offset of the record named ``ident`` in the folder at ``dir_extent``."""
    start = dir_extent * _BLOCK
    offset = start
    while offset < start + _BLOCK:
        size = image[offset]
        if size == 0:
            break
        if image[offset + 33 : offset + 33 + image[offset + 32]] == ident:
            return offset
        offset += size
    raise AssertionError(f"{ident!r} not found")


def _root_extent(image: bytes) -> int:
    return int.from_bytes(image[16 * _BLOCK + 156 + 2 : 16 * _BLOCK + 156 + 6], "little")


def _both_endian(value: int) -> bytes:
    return value.to_bytes(4, "little") + value.to_bytes(4, "big")


def test_a_normal_disc_is_counted_and_opens_as_before(tmp_path: Path) -> None:
    image = _wide_disc(tmp_path, 30)
    with open(image, "rb") as fh:
        found = census(fh.fileno(), ScanLimits())
    assert found.entries == 30 and found.folders == 1 and found.depth == 0
    with IsoSource(image) as source:
        assert source.naming == "joliet"
        assert sum(1 for e in source.entries() if e.kind is EntryKind.FILE) == 30


def test_a_disc_a_little_over_max_files_still_opens_so_the_scan_can_stop_it(
        tmp_path: Path) -> None:
    image = _wide_disc(tmp_path, 40)
    with IsoSource(image, ScanLimits(max_files=5)) as source:
        assert len(list(source.entries())) == 40  # the importer stops at 5 and says so


def test_a_disc_with_far_more_entries_than_max_files_is_refused_before_indexing(
        tmp_path: Path) -> None:
    limits = ScanLimits(max_files=5)
    image = _wide_disc(tmp_path, max_records(limits) + 1)
    began = time.monotonic()
    with pytest.raises(DiscTreeLimitError) as caught:
        IsoSource(image, limits)
    assert time.monotonic() - began < 5
    assert caught.value.limit == "max_files"
    assert "import.max_files" in caught.value.text and "1,034 entries" in caught.value.text
    # The same disc opens when the limit is raised.
    with IsoSource(image, ScanLimits(max_files=1000)) as source:
        assert source.naming == "joliet"


def test_a_folder_that_contains_itself_is_reported_as_a_loop(tmp_path: Path) -> None:
    path = _two_folders(tmp_path)
    image = bytearray(path.read_bytes())
    root = _root_extent(bytes(image))
    a = _record_offset(bytes(image), root, b"A")
    a_extent = int.from_bytes(image[a + 2 : a + 6], "little")
    b = _record_offset(bytes(image), a_extent, b"B")
    image[b + 2 : b + 10] = _both_endian(root)  # /A/B is the root again
    path.write_bytes(bytes(image))

    with pytest.raises(DiscTreeLimitError) as caught:
        open_source(path)
    assert caught.value.limit == "loop" and "loop" in caught.value.text
    assert caught.value.exit_code == 2


def test_a_folder_listing_claiming_a_gigabyte_is_refused_without_reading_it(
        tmp_path: Path) -> None:
    path = _two_folders(tmp_path)
    image = bytearray(path.read_bytes())
    a = _record_offset(bytes(image), _root_extent(bytes(image)), b"A")
    image[a + 10 : a + 18] = _both_endian(1 << 30)
    path.write_bytes(bytes(image))
    with open(path, "r+b") as fh:
        fh.truncate((1 << 30) + len(image))  # sparse: the "listing" is a gigabyte of zeros

    began = time.monotonic()
    with pytest.raises(DiscTreeLimitError) as caught:
        IsoSource(path)
    assert time.monotonic() - began < 2
    assert caught.value.limit == "directory_bytes" and "crafted" in caught.value.text


def test_a_path_table_far_larger_than_the_folders_is_refused(tmp_path: Path) -> None:
    path = _two_folders(tmp_path)
    image = bytearray(path.read_bytes())
    pvd = 16 * _BLOCK
    image[pvd + 132 : pvd + 140] = _both_endian(64 << 20)  # pycdlib would read 64 MiB twice
    path.write_bytes(bytes(image))
    with pytest.raises(DiscTreeLimitError) as caught:
        IsoSource(path)
    assert caught.value.limit == "directory_bytes"


def _jumping_clock(step: float) -> Callable[[], float]:
    now = [0.0]

    def clock() -> float:
        now[0] += step
        return now[0]
    return clock


def test_folders_that_take_too_long_to_read_stop_the_open_with_the_time_limit(
        tmp_path: Path) -> None:
    tree = tmp_path / "many-folders"
    for i in range(40):
        (tree / f"D{i:02d}").mkdir(parents=True)
        (tree / f"D{i:02d}" / "F").write_bytes(b"x")
    image = _genisoimage(tree, tmp_path / "folders.iso")
    limits = ScanLimits(max_seconds=60, clock=_jumping_clock(30.0))  # 30 "s" per reading
    with pytest.raises(DiscTreeLimitError) as caught:
        IsoSource(image, limits)
    assert caught.value.limit == "max_seconds"
    text = caught.value.text
    assert "longer than 1 minutes" in text and "import.max_seconds" in text


def test_kiosk_import_of_a_hostile_disc_exits_2_with_the_message(
        run_cli: Callable[..., tuple[int, str, str]], tmp_path: Path) -> None:
    image = _wide_disc(tmp_path, max_records(ScanLimits(max_files=5)) + 1)
    config = tmp_path / "limits.toml"
    config.write_text("[import]\nmax_files = 5\n")
    code, out, err = run_cli("--config", str(config), "import", str(image), "--json")
    assert code == 2
    assert "import.max_files" in out + err and "was not read" in out + err


# --- listings packed across read boundaries (issue 15: the census bypass) -------------------------

def _chinese(exc: DiscTreeLimitError) -> str:
    """The refusal as the desk shows it in Chinese."""
    from kiosk_tui.dialogs import error_say
    from kiosk_tui.i18n import t

    _, (key, values) = error_say(exc)
    return t(key, "zh", **values)


def test_records_that_cross_blocks_and_64k_reads_are_all_counted(tmp_path: Path) -> None:
    # 3,000 records of 44 bytes, packed: records cross 2 KiB blocks and 64 KiB reads, and
    # pycdlib parses every one of them, so the census must count every one of them too.
    image = dense_listing_iso(tmp_path / "dense.iso", 3000)
    with open(image, "rb") as fh:
        found = census(fh.fileno(), ScanLimits())
    assert found.entries == 3000 + 2  # /A's files, /A and /README.TXT
    assert found.folders == 2
    with IsoSource(image) as source:
        assert sum(1 for e in source.entries() if e.kind is EntryKind.FILE) == found.entries - 1


def test_a_listing_packed_past_the_limit_is_refused_before_pycdlib_reads_it(
        tmp_path: Path) -> None:
    # The reviewer's disc, scaled down: 257 records fit the first 64 KiB read, the census
    # stopped at the 258th (it crosses the read) and pycdlib then indexed all 20,000.
    limits = ScanLimits(max_files=100)  # 1,224 records at most
    image = dense_listing_iso(tmp_path / "bypass.iso", 20_000, record_size=255)
    tracemalloc.start()
    began = time.monotonic()
    try:
        with pytest.raises(DiscTreeLimitError) as caught:
            IsoSource(image, limits)
        took = time.monotonic() - began
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert caught.value.limit == "max_files"
    assert "1,224 entries" in caught.value.text and "import.max_files" in caught.value.text
    assert "1,224" in _chinese(caught.value) and "import.max_files" in _chinese(caught.value)
    # Refused by counting 64 KiB reads, never by loading the 5 MB listing into pycdlib.
    assert took < 2 and peak < 2 * 1024 * 1024, (took, peak)


def test_listing_bytes_the_census_cannot_parse_are_charged_to_its_budget(
        tmp_path: Path) -> None:
    # Ten records, a record too short to be one, then 8 MiB the walk never parses: what it
    # does not count it must pay for, so a listing cannot hide its size behind one bad byte.
    garbage = bytes([20]) + b"\x01" * (8 << 20)
    image = dense_listing_iso(tmp_path / "hidden.iso", 10, tail=garbage)
    with open(image, "rb") as fh, pytest.raises(DiscTreeLimitError) as caught:
        census(fh.fileno(), ScanLimits())
    assert caught.value.limit == "directory_bytes" and "crafted" in caught.value.text
    assert "篡改" in _chinese(caught.value)


def test_a_listing_cut_by_the_end_of_the_image_counts_what_is_there(tmp_path: Path) -> None:
    image = dense_listing_iso(tmp_path / "cut.iso", 3000)
    full = image.stat().st_size
    listing = 2 * 34 + 3000 * 44  # "." and "..", then the records; the image ends with it
    start = full - -(-listing // _BLOCK) * _BLOCK
    os.truncate(image, full - 40 * 1024)  # the listing's last 40 KiB gone
    left = full - 40 * 1024 - start - 2 * 34
    # pycdlib parses the whole records that are left, and the cut one if 33 bytes of it are.
    expected = 2 + left // 44 + (left % 44 >= 33)
    with open(image, "rb") as fh:
        assert census(fh.fileno(), ScanLimits()).entries == expected
    with pytest.raises(SourceError):  # pycdlib then says the disc is damaged
        IsoSource(image)


def test_the_udf_tree_of_a_bridge_disc_is_not_parsed_behind_the_census(tmp_path: Path) -> None:
    # A UDF bridge whose UDF side lists 5,000 files the ISO9660 side does not: the census
    # counts the trees IsoSource reads, and pycdlib used to parse the UDF one as well (a file
    # entry read and parsed for each: 20,000 took 1 s and 50 MB, a million would not fit).
    image = udf_tree_only_iso(tmp_path / "bridge.iso", 5000)
    tracemalloc.start()
    try:
        with IsoSource(image) as source:
            peak = tracemalloc.get_traced_memory()[1]
            assert [e.path for e in source.entries()] == ["README.TXT"]
            with source.open("README.TXT") as fh:
                assert fh.read() == b"readme\n"
    finally:
        tracemalloc.stop()
    assert peak < 2 * 1024 * 1024, peak


def test_rock_ridge_continuation_chains_followed_for_every_record_are_charged(
        tmp_path: Path) -> None:
    # 100 records whose Rock Ridge entries all go on in the same chain of 100 continuation
    # areas (180 KB): pycdlib follows the whole chain again for each record (1.2 s, 62 MB
    # here; 300 x 300 in a 0.7 MB image: 13 s, 408 MB), so the census pays for every visit.
    image = dense_listing_iso(tmp_path / "chain.iso", 100, ce_chain=100)
    tracemalloc.start()
    began = time.monotonic()
    try:
        with pytest.raises(DiscTreeLimitError) as caught:
            IsoSource(image)
        took = time.monotonic() - began
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert caught.value.limit == "directory_bytes" and "crafted" in caught.value.text
    assert "篡改" in _chinese(caught.value)
    assert took < 1 and peak < 2 * 1024 * 1024, (took, peak)


def test_a_disc_of_long_rock_ridge_names_in_continuation_areas_still_opens(
        tmp_path: Path) -> None:
    # xorriso puts what does not fit a record (a 200-character name) in a continuation area:
    # real discs with one for every file are well within what the census allows.
    need_tools("xorriso")
    tree = tmp_path / "long"
    tree.mkdir()
    names = [f"{i:04d}-" + "n" * 195 for i in range(200)]  # libisofs fails at 300 here
    for name in names:
        (tree / name).write_bytes(b"x")
    image = tmp_path / "long.iso"
    subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", "-R", "-o", str(image), str(tree)],
                   check=True, timeout=120, capture_output=True)
    assert image.read_bytes().count(b"CE\x1c\x01") > 200  # one per file, one for the root
    with IsoSource(image) as source:
        assert source.naming == "rockridge"
        assert [e.path for e in source.entries()] == names


@pytest.mark.parametrize("shape", ["reversed", "the last thousand names first"])
def test_a_listing_out_of_order_is_refused_before_pycdlib_sorts_it(
        tmp_path: Path, shape: str) -> None:
    # pycdlib renumbers every child after each record it inserts out of order, in Python:
    # 10,000 records in reverse took 6 s, 20,000 took 25 s, and 200,000 (a 9 MB image) still
    # ran after 15 minutes, out of reach of the deadline (nothing is read meanwhile).
    n = 3000
    order = (range(n - 1, -1, -1) if shape == "reversed"
             else [*range(n - 1000, n), *range(n - 1000)])  # each later one goes before 1,000
    image = dense_listing_iso(tmp_path / "order.iso", n, order=order)
    began = time.monotonic()
    with pytest.raises(DiscTreeLimitError) as caught:
        IsoSource(image)
    assert time.monotonic() - began < 1
    assert caught.value.limit == "directory_bytes"
    assert "out of order" in caught.value.text and "crafted" in caught.value.text
    assert "篡改" in _chinese(caught.value)
    # Sorted, or with a few names out of place (a sloppy authoring tool), the same records open.
    for name, few in (("sorted", range(n)), ("sloppy", [*range(n - 20, n), *range(n - 20)])):
        with IsoSource(dense_listing_iso(tmp_path / f"{name}.iso", n, order=few)) as source:
            assert sum(1 for _ in source.entries()) == n + 1
