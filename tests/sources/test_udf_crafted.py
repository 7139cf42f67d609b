"""Crafted and damaged UDF discs: refused with a clear message, fast, never a traceback.

Each disc is a good UDF-only image (tests/sources/udf_images.py) with one thing made wrong the
way a hostile or broken burner would: a folder that contains itself, a folder claiming hundreds
of thousands of entries or gigabytes of listing, allocation descriptors that chain in a
circle, a cut-off image, garbage where descriptors should be. Patched descriptors are re-sealed
(checksum and CRC) so the reader cannot refuse them for a bad tag alone.
"""

from __future__ import annotations

import io
import json
import random
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pycdlib
import pytest
from pydicom.data import get_testdata_file

from kiosk.errors import DiscTreeLimitError, MediumRemovedError, SourceError, SourceReadError
from kiosk.sources.opener import open_source
from kiosk.sources.scan_limits import ScanLimits
from kiosk.sources.source import MAX_DEPTH, EntryKind
from kiosk.sources.udf import UdfSource
from kiosk_tui.dialogs import error_say
from kiosk_tui.i18n import t
from tests.sources.udf_images import (
    fe_at,
    fid,
    fid_at,
    grow_partition,
    partition_start,
    point_at,
    retag,
    udf_only,
    udf_only_image,
)

Cli = Callable[..., tuple[int, str, str]]

FILES = {
    "A/B/IM0001.dcm": Path(str(get_testdata_file("CT_small.dcm"))).read_bytes(),
    "A/IM0002.dcm": b"x" * 5000,
    "README.TXT": b"hello\n",
}


@pytest.fixture
def good(tmp_path: Path) -> bytearray:
    return bytearray(udf_only_image(FILES, tmp_path / "good.iso").read_bytes())


def _write(tmp_path: Path, data: bytes | bytearray, name: str = "crafted.iso") -> Path:
    out = tmp_path / name
    out.write_bytes(bytes(data))
    return out


def _refused(path: Path, limits: ScanLimits | None = None, within: float = 5.0) -> SourceError:
    """Open ``path`` expecting a refusal within ``within`` seconds; return the error."""
    start = time.monotonic()
    with pytest.raises(SourceError) as caught:
        open_source(path, limits)
    assert time.monotonic() - start < within
    return caught.value


def _explained_in_both_languages(exc: DiscTreeLimitError) -> None:
    """The desk shows a tree refusal in English and Chinese (screens/i18n.py)."""
    _title, text = error_say(exc)
    assert not isinstance(text, str)
    key, values = text
    english, chinese = t(key, "en", **values), t(key, "zh", **values)
    assert english != key and chinese != english and "{" not in chinese
    assert "光盘" in chinese


# ----------------------------------------------------------------------------- the tree


def test_a_folder_that_contains_itself_is_refused_as_a_loop(good: bytearray,
                                                            tmp_path: Path) -> None:
    a_entry = fe_at(good, fid_at(good, "A"))
    b = fid_at(good, "B")  # A/B now points back at A
    struct.pack_into("<I", good, b + 24, a_entry // 2048 - partition_start(good))
    retag(good, b)
    exc = _refused(_write(tmp_path, good))
    assert isinstance(exc, DiscTreeLimitError) and exc.limit == "loop"
    assert "loop" in exc.text
    _explained_in_both_languages(exc)


def _many_entries(good: bytearray, count: int, implementation_use: int = 0) -> bytearray:
    """Folder A listing ``count`` entries, all hard links to one file (a few bytes each)."""
    target = fe_at(good, fid_at(good, "IM0002.dcm")) // 2048 - partition_start(good)
    listing = b"".join(fid(f"F{i:07}", target, implementation_use=implementation_use)
                       for i in range(count))
    block = grow_partition(good, listing)
    point_at(good, fe_at(good, fid_at(good, "A")), block, len(listing))
    return good


def test_a_folder_claiming_more_entries_than_the_limit_allows_is_refused(
        good: bytearray, tmp_path: Path) -> None:
    limits = ScanLimits(max_files=1000)
    exc = _refused(_write(tmp_path, _many_entries(good, 5000)), limits)
    assert isinstance(exc, DiscTreeLimitError) and exc.limit == "max_files"
    assert exc.values == {"n": "3,024", "limit": "1,000"}
    assert "import.max_files" in exc.text
    _explained_in_both_languages(exc)


def test_hundreds_of_thousands_of_entries_are_refused_at_the_default_limit_fast(
        good: bytearray, tmp_path: Path) -> None:
    # 450,000 records in 22 MB: past twice the default max_files (200,000) plus slack.
    exc = _refused(_write(tmp_path, _many_entries(good, 450_000)), within=30)
    assert isinstance(exc, DiscTreeLimitError) and exc.limit == "max_files"
    assert exc.values["n"] == "401,024"


def test_a_disc_just_within_the_limit_opens_with_every_entry(good: bytearray,
                                                            tmp_path: Path) -> None:
    with UdfSource(_write(tmp_path, _many_entries(good, 2000)), ScanLimits(max_files=1000)) as src:
        listed = [e.path for e in src.entries()]
        assert len([p for p in listed if p.startswith("A/F")]) == 2000
        with src.open("A/F0001999") as f:
            assert f.read() == FILES["A/IM0002.dcm"]  # a hard link reads as its target


def test_listings_far_larger_than_their_entries_are_refused(good: bytearray,
                                                            tmp_path: Path) -> None:
    # 40 FIDs carrying 60,000 bytes of "implementation use" each: 2.4 MB for 40 records.
    exc = _refused(_write(tmp_path, _many_entries(good, 40, implementation_use=60_000)))
    assert isinstance(exc, DiscTreeLimitError) and exc.limit == "directory_bytes"
    _explained_in_both_languages(exc)


def test_a_listing_claiming_gigabytes_is_refused_without_reading_them(good: bytearray,
                                                                      tmp_path: Path) -> None:
    a_entry = fe_at(good, fid_at(good, "A"))
    block, = struct.unpack_from("<I", good, a_entry + 176 + 4)
    point_at(good, a_entry, block, 0x3FFFF800)  # one extent of 1 GiB on a 1 MB image
    exc = _refused(_write(tmp_path, good), within=2)
    assert "not a readable UDF disc" in exc.text and "outside partition" in exc.text


def test_folders_nested_past_the_deepest_listing_are_not_read(tmp_path: Path) -> None:
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=4, udf="2.60")
    iso_path = udf_path = ""
    for level in range(MAX_DEPTH + 10):
        iso_path, udf_path = iso_path + f"/D{level}", udf_path + f"/d{level}"
        iso.add_directory(iso_path, udf_path=udf_path)
    iso.add_fp(io.BytesIO(b"deep"), 4, iso_path + "/F.;1", udf_path=udf_path + "/deep.dcm")
    iso.add_fp(io.BytesIO(b"top"), 3, "/TOP.;1", udf_path="/top.dcm")
    image = tmp_path / "deep.iso"
    iso.write(str(image))
    iso.close()
    with UdfSource(udf_only(image)) as src:
        listed = list(src.entries(max_depth=MAX_DEPTH))
        assert [e.kind for e in listed] == [EntryKind.TOO_DEEP, EntryKind.FILE]
        assert listed[0].path.count("/") == MAX_DEPTH
        assert listed[1].path == "top.dcm"


def test_the_tree_is_read_within_max_seconds(good: bytearray, tmp_path: Path) -> None:
    now = [0.0]

    def slow_disc() -> float:  # every clock reading finds another minute gone
        now[0] += 60
        return now[0]

    limits = ScanLimits(max_seconds=30, clock=slow_disc)
    exc = _refused(_write(tmp_path, _many_entries(good, 200)), limits)
    assert isinstance(exc, DiscTreeLimitError) and exc.limit == "max_seconds"
    _explained_in_both_languages(exc)


# ------------------------------------------------------------------------ file entries


def test_allocation_descriptors_chained_in_a_circle_make_one_unreadable_entry(
        good: bytearray, tmp_path: Path) -> None:
    start = partition_start(good)
    at = len(good) // 2048 - start  # where the circular AED will be
    aed = bytearray(2048)
    struct.pack_into("<HHBBHHHI", aed, 0, 258, 2, 0, 0, 0, 0, 8 + 8, at)  # CRC over 16 bytes
    struct.pack_into("<II", aed, 16, 0, 8)  # previous AED, length of its descriptors
    struct.pack_into("<II", aed, 24, 3 << 30 | 2048, at)  # "continued at": itself
    retag(aed, 0)
    assert grow_partition(good, bytes(aed)) == at
    victim = fe_at(good, fid_at(good, "IM0002.dcm"))
    ads = victim + 176 + struct.unpack_from("<I", good, victim + 168)[0]
    struct.pack_into("<II", good, ads, 3 << 30 | 2048, at)
    retag(good, victim)
    with UdfSource(_write(tmp_path, good)) as src:
        kinds = {e.path: (e.kind, e.size) for e in src.entries()}
    assert kinds["A/IM0002.dcm"] == (EntryKind.SPECIAL, -1)
    assert kinds["A/B/IM0001.dcm"] == (EntryKind.FILE, len(FILES["A/B/IM0001.dcm"]))


def test_a_file_entry_of_garbage_is_one_unreadable_entry_and_the_rest_reads(
        good: bytearray, tmp_path: Path) -> None:
    victim = fe_at(good, fid_at(good, "README.TXT"))
    good[victim : victim + 2048] = random.Random(1).randbytes(2048)
    with UdfSource(_write(tmp_path, good)) as src:
        kinds = {e.path: (e.kind, e.size) for e in src.entries()}
        assert kinds["README.TXT"] == (EntryKind.SPECIAL, -1)
        with src.open("A/B/IM0001.dcm") as f:
            assert f.read() == FILES["A/B/IM0001.dcm"]


# ------------------------------------------------------------------ truncated and garbage


def test_a_truncated_image_lists_and_fails_only_the_files_past_the_cut(tmp_path: Path) -> None:
    files = {f"F{i}.DCM": random.Random(i).randbytes(300_000) for i in range(6)}
    image = udf_only_image(files, tmp_path / "cut.iso")
    with open(image, "r+b") as fh:
        fh.truncate(image.stat().st_size // 2)
    with UdfSource(image) as src:
        assert [(e.path, e.size) for e in src.entries()] == [(n, 300_000) for n in sorted(files)]
        good = failed = 0
        for name, data in files.items():
            try:
                with src.open(name) as f:
                    assert f.read() == data
                good += 1
            except SourceReadError as exc:
                assert "ends before this file" in exc.text
                failed += 1
        assert good >= 1 and failed >= 1
        assert src.is_present()


@pytest.mark.parametrize("keep_sectors", [20, 200, 258, 262])
def test_an_image_cut_inside_its_descriptors_is_refused(good: bytearray, tmp_path: Path,
                                                        keep_sectors: int) -> None:
    exc = _refused(_write(tmp_path, good[: keep_sectors * 2048]))
    assert "UDF" in exc.text and "光盘" in exc.text
    assert not isinstance(exc, DiscTreeLimitError)


def _garbage(data: bytearray, first: int, last: int, seed: int = 7) -> bytearray:
    rng = random.Random(seed)
    data[first * 2048 : last * 2048] = rng.randbytes((last - first) * 2048)
    return data


@pytest.mark.parametrize(("first", "last", "what"), [
    (32, 64, "volume descriptor"),  # main and reserve volume descriptor sequences
    (256, 257, "Anchor"),  # sector 256 and...
])
def test_garbage_descriptors_are_refused_with_a_clear_message(
        good: bytearray, tmp_path: Path, first: int, last: int, what: str) -> None:
    data = _garbage(good, first, last)
    if what == "Anchor":
        data = _garbage(data, len(data) // 2048 - 1, len(data) // 2048)  # ...the backup
        data = _garbage(data, len(data) // 2048 - 257, len(data) // 2048 - 256)
    exc = _refused(_write(tmp_path, data))
    assert what in exc.text and "damaged" in exc.text and "请医院重新刻录光盘" in exc.text


def test_a_garbage_root_listing_is_refused(good: bytearray, tmp_path: Path) -> None:
    a_entry = fe_at(good, fid_at(good, "A"))
    fsd_root = a_entry  # any listing will do: make A's listing garbage, A is read first
    block, = struct.unpack_from("<I", good, fsd_root + 176 + 4)
    start = (partition_start(good) + block) * 2048
    good[start : start + 2048] = random.Random(3).randbytes(2048)
    exc = _refused(_write(tmp_path, good))
    assert "folder listing" in exc.text and "damaged" in exc.text


def _mutations(good: bytes, count: int) -> Iterator[bytearray]:
    """Random damage to the descriptors, half of it re-sealed as a crafted disc would be."""
    rng = random.Random(20261207)
    start = partition_start(good)
    hot = [16, 17, 18, *range(32, 40), *range(48, 56), 256, *range(start, start + 24)]
    for _ in range(count):
        data = bytearray(good)
        for _ in range(rng.randint(1, 6)):
            sector = rng.choice(hot)
            at = sector * 2048 + rng.randrange(0, 512)
            data[at : at + rng.randint(1, 8)] = rng.randbytes(rng.randint(1, 8))
            if rng.random() < 0.5:
                retag(data, sector * 2048)
        yield data


def test_random_damage_gives_a_clear_error_or_a_readable_disc_never_a_crash(
        good: bytearray, tmp_path: Path) -> None:
    outcomes = {"opened": 0, "refused": 0}
    for n, data in enumerate(_mutations(bytes(good), 300)):
        image = _write(tmp_path, data, f"m{n}.iso")
        started = time.monotonic()
        try:
            src = open_source(image, ScanLimits(max_files=1000))
        except SourceError as exc:
            assert exc.text and "Traceback" not in exc.text
            outcomes["refused"] += 1
        else:
            try:
                for entry in src.entries():
                    if entry.kind is EntryKind.FILE:
                        try:
                            with src.open(entry.path) as f:
                                f.read(1 << 20)
                        except (SourceReadError, MediumRemovedError):
                            pass
            finally:
                src.close()
            outcomes["opened"] += 1
        assert time.monotonic() - started < 2, f"mutation {n} took too long"
        image.unlink()
    assert outcomes["opened"] > 0 and outcomes["refused"] > 0


# ----------------------------------------------------------------------- kiosk import


def test_kiosk_import_of_a_crafted_disc_exits_2_with_the_reason(good: bytearray,
                                                                tmp_path: Path,
                                                                run_cli: Cli) -> None:
    a_entry = fe_at(good, fid_at(good, "A"))
    b = fid_at(good, "B")
    struct.pack_into("<I", good, b + 24, a_entry // 2048 - partition_start(good))
    retag(good, b)
    code, out, err = run_cli("import", str(_write(tmp_path, good)), "--json")
    assert code == 2
    assert "form a loop" in err and "Traceback" not in err + out
    if out.strip():
        assert json.loads(out)


def test_kiosk_import_of_a_udf_disc_with_an_unreadable_entry_reports_it(
        good: bytearray, tmp_path: Path, run_cli: Cli) -> None:
    victim = fe_at(good, fid_at(good, "README.TXT"))
    good[victim : victim + 2048] = bytes(2048)
    code, out, err = run_cli("import", str(_write(tmp_path, good)), "--json")
    report = json.loads(out)
    assert code == 0, err
    assert report["rejected"] == [{"path": "README.TXT", "reason": "unreadable directory entry"}]
    assert report["complete"] is True
    assert report["instances"]["found"] == report["instances"]["verified"] == 1


def test_names_no_mount_could_show_are_made_safe_and_kept_apart(good: bytearray,
                                                                 tmp_path: Path) -> None:
    # README.TXT (8-bit CS0, 11 bytes) becomes 16-bit CS0 holding a lone surrogate and a "/".
    readme = fid_at(good, "README.TXT")
    good[readme + 38 : readme + 49] = b"\x10" + b"\xd8\x00" + "a/b.".encode("utf-16-be")
    retag(good, readme)
    # Folder A lists one name three times, and "..", all for IM0002.dcm's entry.
    target = fe_at(good, fid_at(good, "IM0002.dcm")) // 2048 - partition_start(good)
    listing = b"".join(fid(name, target) for name in ("SAME", "SAME", "..", "SAME"))
    point_at(good, fe_at(good, fid_at(good, "A")), grow_partition(good, listing), len(listing))
    with UdfSource(_write(tmp_path, good)) as src:
        paths = [e.path for e in src.entries()]
        assert paths == ["A/SAME", "A/SAME~2", "A/SAME~3", "A/__", "\ufffda_b."]
        json.dumps(paths, ensure_ascii=False).encode("utf-8")  # storable in the report as is
        with src.open("\ufffda_b.") as f:
            assert f.read() == FILES["README.TXT"]
        for path in paths[:4]:
            with src.open(path) as f:
                assert f.read() == FILES["A/IM0002.dcm"]
