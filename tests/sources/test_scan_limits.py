"""Limits on untrusted media (issue #9, part 5): files, depth, size per file, time per scan.

Every limit is fed through a directory source and an ISO image of the same tree (xorriso, read
by pycdlib: no mount), then through ``kiosk import --json``. Stop limits (files, time) keep
what was read, verified, and report the import as not complete (exit 4, like a medium pulled
mid-import); skip limits (depth, size) list what was left out under ``rejected`` and go on.
"""

from __future__ import annotations

import dataclasses
import json
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from kiosk.cli.main import import_exit_code
from kiosk.config import load_config
from kiosk.dicom.instance import NotReadable, read_header
from kiosk.errors import ConfigError
from kiosk.ingest.one_pass import Rejected, ingest_file
from kiosk.service import KioskService
from kiosk.sources.directory import DirectorySource
from kiosk.sources.opener import open_source
from kiosk.sources.scan_limits import ScanLimits, format_bytes
from kiosk.sources.source import Entry, EntryKind
from tests.conftest import json_report, make_instance
from tests.media_fixtures import iso_image, need_tools
from tests.ui_kit import Desk, run, screen_text, wait_for, wait_screen

KINDS = ("directory", "iso")


def _limit(service: KioskService, **limits: object) -> None:
    """Give the service's importer these scan limits (the rest stay the defaults)."""
    options = service.importer.options
    service.importer.options = dataclasses.replace(
        options, limits=dataclasses.replace(options.limits, **limits))


def _medium(tree: Path, kind: str, tmp_path: Path) -> Path:
    """``tree`` itself, or an ISO9660 + Rock Ridge image of it."""
    if kind == "directory":
        return tree
    need_tools("xorriso")
    return iso_image(tree, tmp_path / f"{tree.name}-fakecd.iso", "LIMITS")


def _flat_disc(root: Path, images: int) -> list[Path]:
    """``images`` small CT images of one series directly under ``root`` (IM00..IMnn)."""
    study, series = "1.2.826.0.1.3680043.9.9999.1", "1.2.826.0.1.3680043.9.9999.1.1"
    for i in range(images):
        make_instance(root / f"IM{i:02d}", study_uid=study, series_uid=series, seed=i)
    return sorted(root.iterdir())


def _accounted(report: dict[str, object]) -> int:
    """Entries the report accounts for: instances found, rejected and ignored."""
    inst = report["instances"]
    assert isinstance(inst, dict)
    rejected, ignored = report["rejected"], report["ignored"]
    assert isinstance(rejected, list) and isinstance(ignored, list)
    return int(inst["found"]) + len(rejected) + len(ignored)


class StepClock:
    """A monotonic clock that moves ``step`` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.now, self.step, self.reads = 0.0, step, 0

    def __call__(self) -> float:
        self.reads += 1
        self.now += self.step
        return self.now


# --------------------------------------------------------------------------- configuration


def test_the_defaults_fit_real_hospital_discs_and_come_from_the_config() -> None:
    settings = load_config(None, env={}).import_
    limits = ScanLimits.from_settings(settings)
    assert limits == ScanLimits()
    assert (limits.max_files, limits.max_depth) == (200_000, 32)
    assert limits.max_file_bytes == 4 * 1024**3 and limits.max_seconds == 1800


def test_the_limits_are_read_from_the_import_section(tmp_path: Path) -> None:
    toml = tmp_path / "kiosk.toml"
    toml.write_text("[import]\nmax_files = 500\nmax_depth = 8\nmax_file_bytes = 2097152\n"
                    "max_seconds = 60\n")
    limits = ScanLimits.from_settings(load_config(toml, env={}).import_)
    assert (limits.max_files, limits.max_depth, limits.max_file_bytes, limits.max_seconds) == (
        500, 8, 2 * 1024 * 1024, 60)


@pytest.mark.parametrize("line,key", [
    ("max_files = 0", "import.max_files"),
    ("max_files = 20000000", "import.max_files"),
    ("max_depth = 0", "import.max_depth"),
    ("max_depth = 129", "import.max_depth"),
    ("max_file_bytes = 1000", "import.max_file_bytes"),
    ("max_seconds = 5", "import.max_seconds"),
    ("max_seconds = 100000", "import.max_seconds"),
    ('max_files = "many"', "import.max_files"),
    ("max_seconds = 60.5", "import.max_seconds"),
])
def test_a_bad_limit_stops_the_kiosk_with_a_message_naming_it(
        tmp_path: Path, line: str, key: str) -> None:
    toml = tmp_path / "kiosk.toml"
    toml.write_text(f"[import]\n{line}\n")
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(toml, env={})


def test_sizes_are_shown_in_binary_units() -> None:
    assert [format_bytes(n) for n in (0, 1023, 1024, 1536 * 1024, 4 * 1024**3, 5 * 1024**4)] == [
        "0 bytes", "1023 bytes", "1 KiB", "1.5 MiB", "4 GiB", "5120 GiB"]


# ------------------------------------------------------------------------------ max_files


@pytest.mark.parametrize("kind", KINDS)
def test_too_many_files_stop_the_scan_keep_what_was_read_and_report_it_incomplete(
        service: KioskService, tmp_path: Path, kind: str) -> None:
    tree = tmp_path / "MANY"
    _flat_disc(tree, 8)
    (tree / "README.TXT").write_text("hospital viewer\n")
    medium = _medium(tree, kind, tmp_path)
    _limit(service, max_files=5)

    report = service.import_path(medium)

    assert report["limits"]["stopped"] == "max_files"
    assert report["complete"] is False
    assert "more than 5 files" in report["error"] and "import.max_files" in report["error"]
    # The first five entries (sorted by name: IM00..IM04) were read, stored and verified.
    assert _accounted(report) == 5
    assert report["instances"]["found"] == report["instances"]["verified"] == 5
    assert import_exit_code(report) == 4  # did not complete: like a medium pulled mid-import
    job = service.catalog.jobs(kind="import")[-1]
    assert job["state"] == "incomplete"
    case = service.case_detail(report["case_id"])
    assert case["status"] == "incomplete"  # usable, but never shown as complete

    # Raised limit, same medium: the rest goes into the same case, nothing is copied twice.
    _limit(service, max_files=100)
    again = service.import_path(medium)
    assert again["case_id"] == report["case_id"]
    assert again["complete"] is True and again["limits"]["stopped"] is None
    assert again["instances"]["duplicates"] == 5 and again["instances"]["imported"] == 3
    assert import_exit_code(again) == 0


def test_the_file_limit_counts_every_entry_not_just_dicom(
        service: KioskService, tmp_path: Path) -> None:
    tree = tmp_path / "LINKS"
    tree.mkdir()
    for i in range(4):
        (tree / f"A{i}.lnk").symlink_to("/etc/passwd")
    _flat_disc(tree / "Z", 2)
    _limit(service, max_files=4)
    report = service.import_path(tree)
    assert report["limits"]["stopped"] == "max_files"
    assert [i["path"] for i in report["ignored"]] == [f"A{i}.lnk" for i in range(4)]
    assert report["instances"]["found"] == 0 and report["case_id"] is None
    assert import_exit_code(report) == 4  # nothing imported, and the scan did not finish


def test_exactly_max_files_is_not_a_stop(service: KioskService, tmp_path: Path) -> None:
    _flat_disc(tmp_path / "EXACT", 4)
    _limit(service, max_files=4)
    report = service.import_path(tmp_path / "EXACT")
    assert report["complete"] is True and report["limits"]["stopped"] is None
    assert report["instances"]["verified"] == 4 and import_exit_code(report) == 0


# ------------------------------------------------------------------------------ max_depth


def _deep_tree(root: Path, depth: int) -> None:
    """One image at each depth 0..``depth`` (folders L1/L2/...), plus a text file at the bottom."""
    folder = root
    for level in range(depth + 1):
        make_instance(folder / f"IM{level}", seed=level)
        folder = folder / f"L{level + 1}"
    (folder.parent / "NOTES.TXT").write_text("deep\n")


@pytest.mark.parametrize("kind", KINDS)
def test_folders_nested_deeper_than_max_depth_are_skipped_with_a_reason(
        service: KioskService, tmp_path: Path, kind: str) -> None:
    tree = tmp_path / "DEEP"
    _deep_tree(tree, 6)
    medium = _medium(tree, kind, tmp_path)
    _limit(service, max_depth=3)

    report = service.import_path(medium)

    # Images at depth 0-3 are in; L1/L2/L3/L4 (whose files would be 4 deep) is not entered.
    paths = sorted(r.source_path for s in service.catalog.studies(report["case_id"])
                   for r in service.catalog.manifest(s))
    assert paths == ["IM0", "L1/IM1", "L1/L2/IM2", "L1/L2/L3/IM3"]
    assert report["rejected"] == [{
        "path": "L1/L2/L3/L4",
        "reason": "folder nested more than 3 levels deep: not searched (limit import.max_depth)"}]
    assert report["limits"]["too_deep"] == 1 and report["limits"]["stopped"] is None
    assert report["complete"] is True and import_exit_code(report) == 0  # skipped, not stopped


@pytest.mark.parametrize("kind", KINDS)
def test_every_too_deep_folder_is_reported_once(tmp_path: Path, kind: str) -> None:
    tree = tmp_path / "BUSH"
    for branch in ("A", "B"):
        for leaf in ("x", "y"):
            path = tree / branch / "deeper" / leaf / "IMG"
            path.parent.mkdir(parents=True)
            path.write_bytes(b"not dicom")
    (tree / "B" / "empty" / "deeper").mkdir(parents=True)
    medium = _medium(tree, kind, tmp_path)
    source = open_source(medium)
    try:
        listed = [(e.path, e.kind) for e in source.entries(max_depth=1)]
    finally:
        source.close()
    deep = [path for path, kind_ in listed if kind_ is EntryKind.TOO_DEEP]
    assert deep == ["A/deeper", "B/deeper", "B/empty"]  # an empty folder too: same for both
    assert all(path.count("/") <= 1 for path, _ in listed)


def test_the_folder_walk_never_follows_a_tree_deeper_than_the_hard_bound(tmp_path: Path) -> None:
    root = tmp_path / "ABYSS"
    folder = root
    for _ in range(200):  # deeper than MAX_DEPTH (128), still within PATH_MAX
        folder = folder / "d"
    folder.mkdir(parents=True)
    (folder / "bottom").write_bytes(b"x")
    entries = list(DirectorySource(root).entries(max_depth=10_000))
    assert [(e.path.count("/"), e.kind) for e in entries] == [(128, EntryKind.TOO_DEEP)]


# -------------------------------------------------------------------------- max_file_bytes


@pytest.mark.parametrize("kind", KINDS)
def test_a_dicom_file_larger_than_the_limit_is_not_copied_and_says_why(
        service: KioskService, tmp_path: Path, kind: str) -> None:
    tree = tmp_path / "BIG"
    make_instance(tree / "SMALL", seed=1)
    make_instance(tree / "LARGE", rows=1024, columns=768, seed=2)  # 1.5 MiB of pixels
    (tree / "VIDEO.MP4").write_bytes(bytes(3 * 1024 * 1024))  # large, but not DICOM
    medium = _medium(tree, kind, tmp_path)
    _limit(service, max_file_bytes=1024 * 1024)

    report = service.import_path(medium)

    assert report["instances"]["found"] == report["instances"]["verified"] == 1
    [rejected] = report["rejected"]
    assert rejected["path"] == "LARGE"
    assert rejected["reason"].startswith("1.5 MiB is more than the limit for one file, 1 MiB")
    assert "import.max_file_bytes" in rejected["reason"] and "not copied" in rejected["reason"]
    # A large file that is not DICOM is just not DICOM.
    assert report["ignored"] == [{"path": "VIDEO.MP4",
                                  "reason": "not DICOM (no DICM marker or DICOM header)"}]
    assert report["limits"]["too_large"] == 1
    assert report["complete"] is True and import_exit_code(report) == 0
    # Not a byte of it reached the store, not even its staging folder.
    assert service.store.leftovers() == []
    assert report["bytes"] < 1024 * 1024


def test_a_file_that_grows_past_its_listed_size_is_cut_off_at_the_limit(
        service: KioskService, tmp_path: Path) -> None:
    tree = tmp_path / "GROWING"
    make_instance(tree / "IM", rows=1024, columns=1024, seed=3)  # 2 MiB
    source = DirectorySource(tree)
    staging = service.store.tmp_dir / "grow"
    staging.mkdir(parents=True)
    limits = ScanLimits(max_file_bytes=1024 * 1024)
    # Listed when it was small: what the medium says is only a claim.
    outcome = ingest_file(source, Entry("IM", 1000, EntryKind.FILE), service.store, staging, 0,
                          limits)
    assert isinstance(outcome, Rejected) and outcome.limit == "max_file_bytes"
    assert "kept growing past the limit for one file, 1 MiB" in outcome.reason
    assert list(staging.iterdir()) == []  # the partial copy was thrown away


# ------------------------------------------------------------------------------ max_seconds


@pytest.mark.parametrize("kind", KINDS)
def test_a_scan_running_out_of_time_stops_and_keeps_what_was_read(
        service: KioskService, tmp_path: Path, kind: str) -> None:
    tree = tmp_path / "SLOW"
    _flat_disc(tree, 8)
    medium = _medium(tree, kind, tmp_path)
    # One "second" per clock reading; the listing reads it once per entry (8), so the copy
    # gets a few seconds before the 12-second limit.
    clock = StepClock(1.0)
    _limit(service, max_seconds=12, clock=clock)

    report = service.import_path(medium)

    assert report["limits"]["stopped"] == "max_seconds"
    assert report["complete"] is False
    assert "took longer than 0.2 minutes" in report["error"]
    assert "import.max_seconds" in report["error"]
    found = report["instances"]["found"]
    assert 0 < found < 8 and report["instances"]["verified"] == found
    assert _accounted(report) == found
    assert import_exit_code(report) == 4
    assert service.case_detail(report["case_id"])["status"] == "incomplete"


@pytest.mark.parametrize("kind", KINDS)
def test_time_running_out_while_listing_imports_nothing_and_says_so(
        service: KioskService, tmp_path: Path, kind: str) -> None:
    tree = tmp_path / "SLOWER"
    _flat_disc(tree, 8)
    medium = _medium(tree, kind, tmp_path)
    _limit(service, max_seconds=10, clock=StepClock(3.0))
    report = service.import_path(medium)
    assert report["limits"]["stopped"] == "max_seconds" and report["complete"] is False
    assert report["instances"]["found"] == 0 and report["case_id"] is None
    assert import_exit_code(report) == 4  # not "nothing importable": the scan did not finish


def test_the_real_clock_is_the_default_and_a_generous_limit_does_not_stop(
        service: KioskService, tmp_path: Path) -> None:
    _flat_disc(tmp_path / "QUICK", 3)
    report = service.import_path(tmp_path / "QUICK")
    assert report["limits"] == {
        "stopped": None, "max_files": 200_000, "max_depth": 32, "max_file_bytes": 4 * 1024**3,
        "max_seconds": 1800, "too_deep": 0, "too_large": 0}
    assert report["complete"] is True


# ----------------------------------------------------------------------------- the CLI


@pytest.fixture
def limits_config(tmp_path: Path) -> Callable[[str], Path]:
    def write(body: str) -> Path:
        path = tmp_path / "limits.toml"
        path.write_text("[import]\n" + body)
        return path
    return write


@pytest.mark.parametrize("kind", KINDS)
def test_kiosk_import_json_reports_a_stopped_scan_with_exit_4(
        run_cli: Callable[..., tuple[int, str, str]], limits_config: Callable[[str], Path],
        tmp_path: Path, kind: str) -> None:
    tree = tmp_path / "CLI"
    _flat_disc(tree, 6)
    medium = _medium(tree, kind, tmp_path)
    config = limits_config("max_files = 4\n")

    code, out, _err = run_cli("--config", str(config), "import", str(medium), "--json")

    report = json_report(out)
    assert code == 4
    assert report["complete"] is False and report["limits"]["stopped"] == "max_files"
    assert report["limits"]["max_files"] == 4
    assert report["error"].startswith("Scan stopped: the medium holds more than 4 files")
    assert report["instances"]["verified"] == 4


def test_kiosk_import_json_lists_skipped_folders_and_files_with_exit_0(
        run_cli: Callable[..., tuple[int, str, str]], limits_config: Callable[[str], Path],
        tmp_path: Path) -> None:
    tree = tmp_path / "SKIPS"
    _deep_tree(tree, 3)
    make_instance(tree / "LARGE", rows=1024, columns=1024, seed=9)
    config = limits_config("max_depth = 2\nmax_file_bytes = 1048576\n")

    code, out, _err = run_cli("--config", str(config), "import", str(tree), "--json")
    report = json_report(out)
    assert code == 0 and report["complete"] is True
    assert {r["path"]: r["reason"].split(":")[0] for r in report["rejected"]} == {
        "L1/L2/L3": "folder nested more than 2 levels deep",
        "LARGE": "2 MiB is more than the limit for one file, 1 MiB (import.max_file_bytes)"}
    assert (report["limits"]["too_deep"], report["limits"]["too_large"]) == (1, 1)

    code, text, _err = run_cli("--config", str(config), "import", str(tree))
    assert "Limit:     1 folder(s) nested more than 2 deep were not searched" in text
    assert "Limit:     1 DICOM file(s) larger than 1 MiB were not copied" in text


def test_kiosk_import_refuses_a_bad_limit_with_exit_2(
        run_cli: Callable[..., tuple[int, str, str]], limits_config: Callable[[str], Path],
        tmp_path: Path) -> None:
    _flat_disc(tmp_path / "ANY", 1)
    code, out, err = run_cli("--config", str(limits_config("max_depth = -1\n")), "import",
                             str(tmp_path / "ANY"), "--json")
    assert code == 2 and "import.max_depth" in err
    assert out == "" or json.loads(out)  # nothing but (at most) one JSON object


def test_the_step_clock_is_read_a_bounded_number_of_times(
        service: KioskService, tmp_path: Path) -> None:
    # The time limit costs one clock reading per entry and pass, not per chunk or per file.
    _flat_disc(tmp_path / "COUNTED", 5)
    clock = StepClock(0.0)
    _limit(service, clock=clock)
    service.import_path(tmp_path / "COUNTED")
    assert clock.reads == 1 + 5 + 5


# ------------------------------------------------------------------------------ the desk UI


def test_the_review_screen_explains_the_limits_in_english_and_chinese(
        desk: Desk, tmp_path: Path) -> None:
    disc = tmp_path / "LIMITED_CD"
    make_instance(disc / "A" / "B" / "C" / "IM", seed=1)  # "A/B" is too deep at max_depth 1
    make_instance(disc / "BIG0", rows=1024, columns=1024, seed=2)
    _flat_disc(disc, 4)
    _limit(desk.service, max_files=4, max_depth=1, max_file_bytes=1024 * 1024)
    app = desk.app()

    async def script(pilot: Pilot[None]) -> None:
        await wait_screen(pilot, "HomeScreen")
        desk.insert_disc(disc)
        await wait_screen(pilot, "ReviewScreen")
        text = screen_text(app)
        assert "Import incomplete: the medium holds more than 4 files, the limit" in text
        assert "1 folder(s) nested more than 1 levels deep were not searched" in text
        assert "1 DICOM file(s) larger than 1 MiB were not copied" in text
        await pilot.press("f2")
        await wait_for(pilot, lambda: "导入不完整" in screen_text(app))
        text = screen_text(app)
        assert "介质中的文件超过上限 4 个" in text
        assert "1 个嵌套超过 1 层的文件夹未被搜索" in text
        assert "1 个大于 1 MiB 的 DICOM 文件未被复制" in text

    run(app, script)


# ------------------------------------------------- a header of millions of tiny elements


def _element_bomb(path: Path, elements: int) -> Path:
    """A Part 10 CT header holding ``elements`` empty private elements before its UIDs.

    Every element is 8 bytes, so 8 MB hold a million: dcmread keeps each in memory.
    """
    def el(group: int, elem: int, vr: bytes, value: bytes) -> bytes:
        return struct.pack("<HH2sH", group, elem, vr, len(value)) + value

    meta = (struct.pack("<HH2sHL", 2, 1, b"OB", 0, 2) + b"\0\1"
            + el(2, 2, b"UI", b"1.2.840.10008.5.1.4.1.1.2\0") + el(2, 3, b"UI", b"1.2.3.4\0")
            + el(2, 0x10, b"UI", b"1.2.840.10008.1.2.1\0"))
    body = bytearray(b"\0" * 128 + b"DICM" + el(2, 0, b"UL", struct.pack("<L", len(meta)))
                     + meta + el(8, 0x16, b"UI", b"1.2.840.10008.5.1.4.1.1.2\0")
                     + el(8, 0x18, b"UI", b"1.2.3.4\0"))
    for i in range(elements):
        body += struct.pack("<HH2sH", 0x0009 + 2 * (i // 0xF000), 0x1000 + i % 0xF000, b"SH", 0)
    body += el(0x20, 0x0D, b"UI", b"1.2.3\0") + el(0x20, 0x0E, b"UI", b"1.2.3.5\0")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(body))
    return path


def test_a_header_needing_too_many_reads_is_refused_with_a_reason(tmp_path: Path) -> None:
    bomb = _element_bomb(tmp_path / "BOMB", 50_000)
    with bomb.open("rb") as fh:
        assert read_header(fh, force=False).sop_instance_uid == "1.2.3.4"  # a real header
    with bomb.open("rb") as fh, pytest.raises(NotReadable, match="too many elements"):
        read_header(fh, force=False, max_reads=10_000)


@pytest.mark.slow
def test_a_file_of_millions_of_tiny_elements_is_rejected_not_read_forever(
        service: KioskService, tmp_path: Path) -> None:
    # 2 million elements (16 MB). Unbounded, dcmread's cost grows with the element count
    # (16 s and 420 MB per million here): a 4 GiB file like it would exhaust the memory.
    _element_bomb(tmp_path / "HOSTILE" / "BOMB", 2_000_000)
    make_instance(tmp_path / "HOSTILE" / "IM1")
    report = service.import_path(tmp_path / "HOSTILE")
    assert report["instances"]["verified"] == 1
    [rejected] = report["rejected"]
    assert rejected["path"] == "BOMB" and "too many elements" in rejected["reason"]
    assert report["complete"] is True and import_exit_code(report) == 0
