"""The encapsulated pixel data walk: fast on millions of fragments, bounded by the import's time.

A crafted file of millions of empty fragments (8 bytes each) used to cost one seek and one
8-byte read per item: 2 M of them (16 MB) took 2.2 s, a 4 GiB one about 10 minutes, and the
import's ``max_seconds`` was only checked between files. Now items are parsed from blocks, with
numpy for the dense ones, and the walk spends from the import's deadline.

The walk is checked against the plain definition (one item header after another, PS3.5 A.4) on
random item sequences, whole and damaged: same verdict, same byte.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import struct
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydicom.encaps import encapsulate
from pydicom.uid import JPEG2000

from kiosk.cli.main import import_exit_code
from kiosk.dicom.deadline import CHECK_EVERY, TimeLimitReached
from kiosk.dicom.instance import InstanceHeader, check_pixel_data, parse_header
from kiosk.service import KioskService
from kiosk.sources.scan_limits import MAX_SECONDS
from tests.conftest import make_instance

ITEM = struct.pack("<HH", 0xFFFE, 0xE000)
DELIMITER = struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)


class StepClock:
    """A monotonic clock that moves ``step`` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.now, self.step, self.reads = 0.0, step, 0

    def __call__(self) -> float:
        self.reads += 1
        self.now += self.step
        return self.now


def _item(length: int, fill: int = 0) -> bytes:
    return ITEM + struct.pack("<L", length) + bytes([fill]) * length


@functools.cache
def _head() -> bytes:
    """A JPEG 2000 instance written by pydicom, up to its pixel data's items."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "SHELL"
        ds = make_instance(path, rows=8, columns=8)
        ds.file_meta.TransferSyntaxUID = JPEG2000
        ds.PixelData = encapsulate([b"\x01\x02"], has_bot=True)
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
        ds.save_as(path, enforce_file_format=True)
        data = path.read_bytes()
    return data[:data.rindex(b"\xe0\x7f\x10\x00OB\0\0\xff\xff\xff\xff") + 12]


def _file(items: bytes) -> bytes:
    return _head() + items


def _header(data: bytes) -> InstanceHeader:
    return parse_header(io.BytesIO(data), force=False)


# --- the plain definition ---------------------------------------------------------------------

def _reference(items: bytes) -> tuple[str, int | None]:
    """Walk the items one header at a time: ("ok" | "truncated" | "damaged" | "empty", byte)."""
    pos, count = 0, 0
    while True:
        if pos + 8 > len(items):
            return "truncated", None
        group, elem, length = struct.unpack_from("<HHL", items, pos)
        tag = group << 16 | elem
        if tag == 0xFFFEE0DD:
            return ("ok" if count >= 2 else "empty"), None
        if tag != 0xFFFEE000 or length == 0xFFFFFFFF:
            return "damaged", pos
        if pos + 8 + length > len(items):
            return "truncated", pos
        pos, count = pos + 8 + length, count + 1


def _verdict(problem: str | None, offset: int) -> tuple[str, int | None]:
    if problem is None:
        return "ok", None
    if "no fragments" in problem:
        return "empty", None
    kind = "truncated" if "truncated" in problem else "damaged"
    if "at byte" in problem:
        return kind, int(problem.split("at byte ")[1].split()[0]) - offset
    return kind, None


# Mostly tiny items (where numpy takes over), now and then one larger than a block.
_LENGTHS = st.one_of(st.just(0), st.integers(0, 40).map(lambda n: 2 * n),
                     st.integers(0, 40).map(lambda n: 2 * n),
                     st.sampled_from([4094, 70_000, 1 << 20]))


@settings(max_examples=100, deadline=None)
@example(lengths=[0], repeat=20_000, damage=("tag", 0.7))
@example(lengths=[0, 2], repeat=20_000, damage=("cut", 0.9))
@example(lengths=[2, 0, 0, 6, 40], repeat=3000, damage=None)
@given(lengths=st.lists(_LENGTHS, min_size=0, max_size=300),
       repeat=st.integers(1, 400),
       damage=st.one_of(st.none(), st.tuples(st.sampled_from(["tag", "undefined", "cut",
                                                              "no-delimiter"]),
                                            st.floats(0, 1, exclude_max=True))))
def test_the_walk_agrees_with_the_plain_definition(
        lengths: list[int], repeat: int, damage: tuple[str, float] | None) -> None:
    # Repeating the pattern makes long regular stretches (numpy's runs) and irregular ones;
    # a few megabytes in all.
    pattern = b"".join(_item(n, fill=0xE0) for n in lengths)
    repeat = max(1, min(repeat, (4 << 20) // max(len(pattern), 1)))
    body = pattern * repeat
    starts, pos = [], 8  # item offsets, after the Basic Offset Table
    for n in lengths * repeat:
        starts.append(pos)
        pos += 8 + n
    items = bytearray(_item(0) + body + DELIMITER)
    if damage is not None and starts:
        kind, where = damage
        at = starts[int(where * len(starts))]
        if kind == "tag":
            items[at + 2] ^= 0x01  # E000 -> E001
        elif kind == "undefined":
            items[at + 4:at + 8] = b"\xff\xff\xff\xff"
        elif kind == "cut":
            del items[at + 5:]
        else:
            del items[-8:]
    data = _file(bytes(items))
    header = _header(data)
    offset = header.pixel_offset + 12
    problem = check_pixel_data(io.BytesIO(data), len(data), header)
    assert _verdict(problem, offset) == _reference(bytes(items)), problem


# --- millions of empty fragments --------------------------------------------------------------

N = 2_000_000


@pytest.fixture(scope="module")
def crafted() -> bytes:
    """A real instance whose pixel data is 2 M empty fragments (16 MB)."""
    return _file(_item(0) + _item(0) * N + DELIMITER)


class _Counted(io.BytesIO):
    """Counts the bytes read from it."""

    read_bytes = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.read_bytes += len(data)
        return data


def test_millions_of_empty_fragments_are_walked_in_a_fraction_of_a_second(
        crafted: bytes) -> None:
    header = _header(crafted)
    # The same bytes read and summed, in this run, as the yardstick for "fast".
    started = time.process_time()
    plain = io.BytesIO(crafted)
    total = 0
    while chunk := plain.read(1 << 20):
        total += chunk.count(b"\xfe")
    plain_seconds = time.process_time() - started
    started = time.process_time()
    assert check_pixel_data(io.BytesIO(crafted), len(crafted), header) is None
    walk_seconds = time.process_time() - started
    # Before: 2.2 s for these bytes. A generous bound that the old walk could not meet.
    assert walk_seconds < max(5 * plain_seconds, 0.5), (walk_seconds, plain_seconds, total)


def test_the_walk_stops_at_the_deadline_and_reads_the_clock_once_a_mebibyte(
        crafted: bytes) -> None:
    header = _header(crafted)
    clock = StepClock(1.0)
    fp = _Counted(crafted)
    with pytest.raises(TimeLimitReached):
        check_pixel_data(fp, len(crafted), header, deadline=5.0, clock=clock)
    assert clock.reads == 5  # the fifth reading is past the deadline
    assert fp.read_bytes <= 6 * CHECK_EVERY < len(crafted) // 2  # stopped early


def test_without_a_deadline_small_files_never_read_the_clock() -> None:
    data = _file(_item(0) + _item(100) * 50 + DELIMITER)
    clock = StepClock(1000.0)
    assert check_pixel_data(io.BytesIO(data), len(data), _header(data), deadline=1.0,
                            clock=clock) is None
    assert clock.reads == 0


def test_an_import_whose_time_runs_out_inside_one_file_stops_and_says_so(
        service: KioskService, tmp_path: Path, crafted: bytes) -> None:
    disc = tmp_path / "disc"
    disc.mkdir()
    (disc / "FRAGS").write_bytes(crafted)
    # One "second" per clock reading: the listing and the start of the file take a few, the
    # walk one per MiB, so the 10-second limit runs out inside the file (its last one).
    clock = StepClock(1.0)
    options = service.importer.options
    service.importer.options = dataclasses.replace(options, limits=dataclasses.replace(
        options.limits, max_seconds=10, clock=clock))
    report = service.import_path(disc)
    assert report["limits"]["stopped"] == MAX_SECONDS
    assert report["complete"] is False and "import.max_seconds" in report["error"]
    [rejected] = report["rejected"]
    assert rejected["path"] == "FRAGS" and "time limit" in rejected["reason"]
    assert report["instances"]["found"] == 0
    assert import_exit_code(report) == 4
    assert clock.reads < 30  # it stopped, it did not walk the 16 MB to the end
    assert service.store.leftovers() == []  # its staged copy is gone
