"""Reading a medium's DICOMDIR (kiosk/sources/dicomdir.py): both readers, and hostile DICOMDIRs.

The fast reader (a struct walk over the standard encoding) must give exactly the records
``dcmread`` gives; reading must end on DICOMDIRs built to loop, to nest without end, or to hold
far more records than any disc.
"""

from __future__ import annotations

import dataclasses
import shutil
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from pydicom import dcmread

from kiosk.service import KioskService
from kiosk.sources.dicomdir import PYDICOM_MAX_BYTES, DicomdirIndex, read_dicomdir
from kiosk.sources.scan_limits import ScanLimits
from tests.conftest import PYDICOM_FILES, make_instance

DICOMDIR_SET = PYDICOM_FILES / "dicomdirtests"
REAL = sorted([*DICOMDIR_SET.glob("DICOMDIR*"), DICOMDIR_SET / "TINY_ALPHA" / "DICOMDIR"])
EXPLICIT_LE, IMPLICIT_LE = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"

T = TypeVar("T")


def within(seconds: float, work: Callable[[], T]) -> T:
    """``work()``, which must finish within ``seconds`` (a hang fails instead of hanging)."""
    result: list[T] = []
    thread = threading.Thread(target=lambda: result.append(work()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    assert result, "it raised (see the thread's traceback above)"
    return result[0]


# --- building DICOMDIR bytes by hand (hostile ones cannot be written with pydicom) -----------

def element(tag: int, vr: bytes, value: bytes, *, undefined: bool = False) -> bytes:
    """One explicit VR little endian element."""
    group, elem = tag >> 16, tag & 0xFFFF
    if vr in (b"OB", b"SQ", b"UN", b"UT"):
        length = 0xFFFFFFFF if undefined else len(value)
        return struct.pack("<HH2sHL", group, elem, vr, 0, length) + value
    return struct.pack("<HH2sH", group, elem, vr, len(value)) + value


def item(body: bytes, *, undefined: bool = False) -> bytes:
    if undefined:
        return struct.pack("<HHL", 0xFFFE, 0xE000, 0xFFFFFFFF) + body + struct.pack(
            "<HHL", 0xFFFE, 0xE00D, 0)
    return struct.pack("<HHL", 0xFFFE, 0xE000, len(body)) + body


SEQ_END = struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)


def even(text: str) -> bytes:
    raw = text.encode("latin-1")
    return raw + b" " if len(raw) % 2 else raw


def image_record(file_id: str, uid: str = "1.2.3.4") -> bytes:
    return (element(0x00041430, b"CS", even("IMAGE"))
            + element(0x00041500, b"CS", even(file_id))
            + element(0x00041511, b"UI", uid.encode() + b"\0" * (len(uid) % 2)))


def dicomdir(records: list[bytes], *, syntax: str = EXPLICIT_LE) -> bytes:
    """A DICOMDIR whose record sequence (undefined length) holds ``records`` (item bodies)."""
    ts = syntax.encode() + b"\0" * (len(syntax) % 2)
    meta = (element(0x00020001, b"OB", b"\0\1")
            + element(0x00020002, b"UI", b"1.2.840.10008.1.3.10")
            + element(0x00020003, b"UI", b"1.2.3.4.5\0") + element(0x00020010, b"UI", ts))
    header = b"\0" * 128 + b"DICM" + element(0x00020000, b"UL", struct.pack("<L", len(meta)))
    body = b"".join(item(r) for r in records)
    return (header + meta + element(0x00041130, b"CS", b"DISC")
            + element(0x00041220, b"SQ", body + SEQ_END, undefined=True))


def same(a: DicomdirIndex, b: DicomdirIndex) -> bool:
    return (a.records, a.problems, a.readable) == (b.records, b.problems, b.readable)


# --- the two readers --------------------------------------------------------------------------

@pytest.mark.parametrize("path", REAL, ids=lambda p: str(p.relative_to(DICOMDIR_SET)))
def test_the_fast_reader_and_dcmread_agree_on_real_dicomdirs(path: Path) -> None:
    data = path.read_bytes()
    fast = read_dicomdir(data, "CD/DICOMDIR")
    slow = read_dicomdir(data, "CD/DICOMDIR", use_pydicom=True)
    assert same(fast, slow)
    assert slow.reader == "pydicom" and fast.reader in ("fast", "pydicom")
    assert len(fast.records) in (0, 31, 50)
    assert all(r.file_id.startswith("CD/") for r in fast.records)


def test_the_standard_encoding_is_read_by_the_fast_reader() -> None:
    fast = read_dicomdir((DICOMDIR_SET / "DICOMDIR").read_bytes(), "DICOMDIR")
    assert fast.reader == "fast" and len(fast.records) == 31
    implicit = read_dicomdir((DICOMDIR_SET / "DICOMDIR-implicit").read_bytes(), "DICOMDIR")
    assert implicit.reader == "pydicom" and len(implicit.records) == 31


def test_hand_made_records_read_the_same_both_ways() -> None:
    records = [
        image_record("A\\B\\IM1"),
        image_record("IM2 "),  # trailing padding
        element(0x00041430, b"CS", even("PATIENT")),  # references no file
        image_record("..\\ETC\\PASSWD"),  # refused with a problem
        image_record(""),  # an empty File ID references nothing
        element(0x00041430, b"CS", even("SERIES"))  # a nested sequence inside a record
        + element(0x00041500, b"CS", even("SUB\\IM3"))
        + element(0x00880200, b"SQ", item(element(0x00280010, b"US", b"\x10\x00"),
                                          undefined=True) + SEQ_END, undefined=True),
    ]
    data = dicomdir(records)
    fast = read_dicomdir(data, "DICOMDIR")
    assert fast.reader == "fast" and same(fast, read_dicomdir(data, "DICOMDIR", use_pydicom=True))
    assert [r.file_id for r in fast.records] == ["A/B/IM1", "IM2", "SUB/IM3"]
    assert fast.records[0].record_type == "IMAGE" and fast.records[0].sop_instance_uid == "1.2.3.4"
    assert fast.problems == ["DICOMDIR record 3 points outside the medium (..\\ETC\\PASSWD); "
                             "ignored"]


def test_an_unexpected_vr_goes_to_dcmread_which_decides() -> None:
    data = dicomdir([element(0x00041500, b"LO", even("IM1"))])  # File ID as LO, not CS
    index = read_dicomdir(data, "DICOMDIR")
    assert index.reader == "pydicom"
    assert same(index, read_dicomdir(data, "DICOMDIR", use_pydicom=True))


# --- hostile DICOMDIRs -------------------------------------------------------------------------

def test_offsets_that_loop_are_never_followed(service: KioskService, tmp_path: Path) -> None:
    medium = tmp_path / "cd"
    shutil.copytree(DICOMDIR_SET, medium, ignore=shutil.ignore_patterns("DICOMDIR*", "TINY*"))
    ds = dcmread(DICOMDIR_SET / "DICOMDIR")
    records = ds.DirectoryRecordSequence
    first = records[0].seq_item_tell
    for record in records:
        # Every "next" points back at the first record, every "lower level" at itself.
        record.OffsetOfTheNextDirectoryRecord = first
        record.OffsetOfReferencedLowerLevelDirectoryEntity = record.seq_item_tell
    ds.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity = first
    ds.save_as(medium / "DICOMDIR")
    data = (medium / "DICOMDIR").read_bytes()

    for use_pydicom in (False, True):
        index = within(10, lambda u=use_pydicom: read_dicomdir(data, "DICOMDIR", use_pydicom=u))
        assert len(index.records) == 31 and index.readable

    report = within(60, lambda: service.import_path(medium))
    assert report["dicomdir"]["records"] == 31 and report["dicomdir"]["missing"] == []
    assert report["complete"] is True


def test_sequences_nested_without_end_inside_a_record_end_the_read() -> None:
    nested = b""
    for _ in range(5000):  # far past the fast reader's 16 and pydicom's recursion limit
        nested = element(0x00880200, b"SQ", item(nested, undefined=True) + SEQ_END,
                         undefined=True)
    data = dicomdir([image_record("IM1"), element(0x00041430, b"CS", even("SERIES")) + nested])
    assert len(data) < PYDICOM_MAX_BYTES
    index = within(30, lambda: read_dicomdir(data, "DICOMDIR"))
    assert index.reader == "pydicom"
    assert index.readable is False and "damaged" in index.problems[0]


def test_a_dicomdir_listing_more_files_than_a_scan_reads_is_not_used() -> None:
    data = dicomdir([image_record(f"IMG\\IM{i:05d}") for i in range(3000)])
    index = read_dicomdir(data, "DICOMDIR", max_records=1000)
    assert index.readable is False and index.records == []
    assert index.problems == ["DICOMDIR lists more than 1,000 files, more than one scan reads "
                              "(import.max_files); it was not used and the whole medium was "
                              "searched instead"]
    assert len(read_dicomdir(data, "DICOMDIR", max_records=3000).records) == 3000


def test_a_huge_dicomdir_is_read_quickly_and_in_little_memory() -> None:
    # 400,000 tiny records (16 MB): dcmread needs ~45 s and ~1 GB for this; the walk must not.
    data = dicomdir([element(0x00041500, b"CS", b"IM") for _ in range(400_000)])
    started = time.monotonic()
    index = within(60, lambda: read_dicomdir(data, "DICOMDIR", max_records=200_000))
    assert index.reader == "fast" and index.readable is False
    assert time.monotonic() - started < 20


def test_a_huge_non_standard_dicomdir_is_not_handed_to_dcmread() -> None:
    big = [image_record(f"IMG\\IM{i:06d}") for i in range(PYDICOM_MAX_BYTES // 40)]
    data = dicomdir(big, syntax="1.2.840.10008.1.2.2")  # big endian: not the standard encoding
    assert len(data) > PYDICOM_MAX_BYTES
    index = within(10, lambda: read_dicomdir(data, "DICOMDIR"))
    assert index.readable is False and index.records == []
    assert index.problems[0].startswith("DICOMDIR is not a standard DICOMDIR (transfer syntax "
                                        "1.2.840.10008.1.2.2 is not Explicit VR Little Endian)")
    assert "too large to read safely" in index.problems[0]


def test_the_scan_file_limit_applies_to_the_dicomdir_too(
        service: KioskService, tmp_path: Path) -> None:
    medium = tmp_path / "cd"
    for i in range(3):
        make_instance(medium / "IMG" / f"IM{i:05d}", seed=i)
    (medium / "DICOMDIR").write_bytes(dicomdir([image_record(f"IMG\\IM{i:05d}")
                                                for i in range(50)]))
    service.importer.options = dataclasses.replace(service.importer.options,
                                                   limits=ScanLimits(max_files=10))
    report = service.import_path(medium)
    assert report["complete"] is True and report["instances"]["verified"] == 3
    assert report["dicomdir"]["readable"] is False and report["dicomdir"]["missing"] == []
    assert any("lists more than 10 files" in p for p in report["dicomdir"]["problems"])


def test_a_record_whose_character_set_is_not_cs_reads_as_damaged_both_ways() -> None:
    # Found by tests/test_fuzz.py: dcmread converts the character set of every record as it
    # reads it and fails on a US one; the fast reader skipped it and read 1 record.
    record = (element(0x00041430, b"CS", even("PATIENT"))
              + element(0x00041500, b"CS", even("IM1"))
              + element(0x00080005, b"US", b"\x01\x00"))
    data = dicomdir([record])
    index = read_dicomdir(data, "DICOMDIR")
    assert same(index, read_dicomdir(data, "DICOMDIR", use_pydicom=True))
    assert index.readable is False and "damaged" in index.problems[0]
