"""Verification understands every transfer syntax pydicom reads, and flags only real damage.

The files are pydicom's own test files (written by others: dcmtk, GDCM, vendors), one or more per
transfer syntax that ships offline, imported through ``kiosk import DIR --json``. Each must be
stored and verified with no problem; each cut inside its pixel data must be flagged. Where pydicom
ships no file of a transfer syntax (HTJ2K, MPEG-2/4, HEVC, …), pydicom itself encapsulates frames
under that syntax: the check is about the encapsulation (PS3.5 A.4), never the codec.

Why a deflated file matters: its data set, pixel data included, is one deflate stream after the
File Meta Information (PS3.5 A.5), so the pixel data is nowhere in the file's own bytes.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import shutil
import struct
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path

import pydicom.data
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import (
    UID,
    AllTransferSyntaxes,
    DeflatedExplicitVRLittleEndian,
)

from kiosk.dicom.deflate import InflatedFile, InflateError
from kiosk.dicom.instance import (
    InstanceHeader,
    NotReadable,
    TimeLimitReached,
    check_pixel_data,
    parse_header,
    read_header,
    scan_header,
)
from tests.conftest import PYDICOM_FILES, json_report, make_instance

#: pydicom's test files by transfer syntax (all ship in its wheel, so they are there offline).
CLEAN = {
    "Deflated Explicit VR Little Endian": ["image_dfl.dcm"],
    "Explicit VR Little Endian": ["CT_small.dcm", "MR_small_padded.dcm", "SC_rgb_small_odd.dcm",
                                  "SC_ybr_full_422_uncompressed.dcm", "examples_palette.dcm"],
    "Implicit VR Little Endian": ["MR_small_implicit.dcm", "rtdose.dcm",
                                  "SC_rgb_jpeg_dcmd.dcm"],
    "Explicit VR Big Endian": ["MR_small_bigendian.dcm", "ExplVR_BigEnd.dcm",
                               "SC_rgb_small_odd_big_endian.dcm", "rtdose_expb.dcm"],
    # SC_rgb_jpeg.dcm: its data set is implicit VR under an explicit syntax; pydicom reads it.
    "JPEG Baseline (Process 1)": ["SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_jpeg.dcm",
                                  "examples_ybr_color.dcm", "SC_rgb_small_odd_jpeg.dcm"],
    "JPEG Extended (Process 2 and 4)": ["JPEG-lossy.dcm", "JPGExtended.dcm"],
    "JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])": [
        "SC_rgb_jpeg_gdcm.dcm"],
    "JPEG-LS Lossless Image Compression": ["MR_small_jpeg_ls_lossless.dcm"],
    # The embedded one holds a sequence delimiter's bytes inside a fragment.
    "JPEG 2000 Image Compression": ["JPEG2000.dcm", "JPEG2000-embedded-sequence-delimiter.dcm",
                                    "693_J2KI.dcm", "SC_rgb_gdcm_KY.dcm"],
    "JPEG 2000 Image Compression (Lossless Only)": ["MR_small_jp2klossless.dcm",
                                                    "GDCMJ2K_TextGBR.dcm", "examples_jpeg2k.dcm"],
    "RLE Lossless": ["SC_rgb_rle.dcm", "SC_rgb_rle_32bit_2frame.dcm", "MR_small_RLE.dcm",
                     "rtdose_rle.dcm"],
}
FILES = [name for names in CLEAN.values() for name in names]
#: JPEG-LS near-lossless: pydicom's two files have no Study/Series Instance UID, so the import
#: rejects them for that; their pixel data is checked directly.
NEAR_LOSSLESS = ["JPEGLSNearLossless_08.dcm", "JPEGLSNearLossless_16.dcm"]


def _path(name: str) -> Path:
    found = pydicom.data.get_testdata_file(name)
    assert found is not None, f"{name} should ship with pydicom"
    return Path(str(found))


def test_the_files_are_of_the_transfer_syntax_they_stand_for() -> None:
    for syntax, names in CLEAN.items():
        for name in names:
            ds = dcmread(_path(name), stop_before_pixels=True)
            assert ds.file_meta.TransferSyntaxUID.name == syntax, name
    # A download-only file is not there offline: it must not be counted on.
    assert not (PYDICOM_FILES / "emri_small_jpeg_2k_lossless.dcm").exists()


def _pixel_start_in_file(data: bytes) -> int:
    """Offset in ``data`` from which a cut lands inside the pixel data (pydicom says where)."""
    fp = io.BytesIO(data)
    ds = dcmread(fp, stop_before_pixels=True)
    if ds.file_meta.TransferSyntaxUID != DeflatedExplicitVRLittleEndian:
        return fp.tell() + 12
    # Deflated: find where the pixel data starts in the inflated data set, then how many of the
    # file's bytes it takes to inflate that far.
    meta_end = len(data) - len(_deflated_part(data))
    inflated = zlib.decompress(data[meta_end:], -zlib.MAX_WBITS)
    stream = io.BytesIO(inflated)
    read_dataset(stream, False, True, stop_when=lambda tag, *_: tag == 0x7FE00010)
    target = stream.tell() + 12
    inflater, done = zlib.decompressobj(-zlib.MAX_WBITS), 0
    for pos in range(meta_end, len(data), 64):
        done += len(inflater.decompress(data[pos:pos + 64]))
        if done > target:
            return pos + 64
    raise AssertionError("no pixel data in the deflated stream")


def _deflated_part(data: bytes) -> bytes:
    """The deflate stream of a deflated file: everything after its File Meta group."""
    pos = 132
    while data[pos:pos + 2] == b"\x02\x00":
        vr = data[pos + 4:pos + 6]
        if vr in (b"OB", b"OW", b"UN", b"UT", b"SQ"):
            pos += 12 + int.from_bytes(data[pos + 8:pos + 12], "little")
        else:
            pos += 8 + int.from_bytes(data[pos + 6:pos + 8], "little")
    return data[pos:]


def _cut(data: bytes) -> bytes:
    """``data`` cut halfway through its pixel data."""
    start = _pixel_start_in_file(data)
    assert start < len(data) - 16
    return data[:start + (len(data) - start) // 2]


def test_every_transfer_syntax_pydicom_ships_imports_clean_from_the_command_line(
        run_cli, tmp_path: Path) -> None:
    disc = tmp_path / "disc"
    disc.mkdir()
    for name in FILES:
        shutil.copy(_path(name), disc / name)
    code, out, _err = run_cli("import", str(disc), "--json")
    report = json_report(out)
    assert report["verification"]["problems"] == []
    assert report["rejected"] == []
    assert report["instances"]["found"] == len(FILES)
    assert report["instances"]["verified"] == report["instances"]["found"]
    assert report["instances"]["imported"] == len(FILES)
    assert report["complete"] is True
    assert code == 0


@pytest.mark.parametrize("name", FILES)
def test_each_file_cut_inside_its_pixel_data_is_flagged(
        run_cli, tmp_path: Path, name: str) -> None:
    disc = tmp_path / "disc"
    disc.mkdir()
    (disc / "CUT").write_bytes(_cut(_path(name).read_bytes()))
    code, out, _err = run_cli("import", str(disc), "--json")
    report = json_report(out)
    [problem] = report["verification"]["problems"]
    assert problem["path"] == "CUT" and "truncated" in problem["problem"], problem
    assert report["instances"]["verified"] == 0
    assert code == 4


@pytest.mark.parametrize("name", NEAR_LOSSLESS)
def test_near_lossless_jpeg_ls_pixel_data_is_whole_and_a_cut_one_is_not(name: str) -> None:
    data = _path(name).read_bytes()
    header = read_header(io.BytesIO(data), force=False)
    assert header.transfer_syntax == "1.2.840.10008.1.2.4.81"
    assert check_pixel_data(io.BytesIO(data), len(data), header) is None
    cut = _cut(data)
    problem = check_pixel_data(io.BytesIO(cut), len(cut), read_header(io.BytesIO(cut),
                                                                      force=False))
    assert problem is not None and "truncated encapsulated" in problem


def test_the_deflated_header_is_the_one_pydicom_reads() -> None:
    data = _path("image_dfl.dcm").read_bytes()
    header = parse_header(io.BytesIO(data), force=False)
    full = dcmread(io.BytesIO(data))
    assert header.transfer_syntax == DeflatedExplicitVRLittleEndian
    assert (header.sop_instance_uid, header.study_uid, header.series_uid) == (
        full.SOPInstanceUID, full.StudyInstanceUID, full.SeriesInstanceUID)
    assert (header.rows, header.columns, header.bits_allocated) == (
        full.Rows, full.Columns, full.BitsAllocated)
    assert check_pixel_data(io.BytesIO(data), len(data), header) is None


# --- syntaxes pydicom ships no file of: frames encapsulated by pydicom itself ----------------

ENCAPSULATED = sorted(str(ts) for ts in AllTransferSyntaxes if ts.is_encapsulated)


def _encapsulated_file(path: Path, syntax: str, frames: int = 3) -> None:
    ds = make_instance(path, rows=8, columns=8)
    # Stand-in codestreams of uneven sizes: the check is about items and delimiters only.
    ds.PixelData = encapsulate([bytes([i + 1]) * (100 + 37 * i) for i in range(frames)],
                               has_bot=True)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.NumberOfFrames = frames
    ds.file_meta.TransferSyntaxUID = UID(syntax)
    ds.save_as(path, enforce_file_format=True)


def test_every_encapsulated_syntax_is_checked_by_its_items_whole_and_cut(
        run_cli, tmp_path: Path) -> None:
    disc, cut = tmp_path / "disc", tmp_path / "cut"
    cut.mkdir()
    for i, syntax in enumerate(ENCAPSULATED):
        _encapsulated_file(disc / f"TS{i:03d}", syntax)
        data = (disc / f"TS{i:03d}").read_bytes()
        (cut / f"TS{i:03d}").write_bytes(data[:-60])  # inside the last fragment
    code, out, _err = run_cli("import", str(disc), "--json")
    report = json_report(out)
    assert report["verification"]["problems"] == []
    assert report["instances"]["verified"] == len(ENCAPSULATED) and code == 0
    code, out, _err = run_cli("import", str(cut), "--json")
    problems = json_report(out)["verification"]["problems"]
    assert sorted(p["path"] for p in problems) == sorted(p.name for p in cut.iterdir())
    assert all("truncated encapsulated" in p["problem"] for p in problems)
    assert code == 4


def _deflated_file(path: Path, rows: int = 64, frames: int = 1) -> bytes:
    """A deflated instance written by pydicom; returns its uncompressed pixel bytes."""
    ds = make_instance(path, rows=rows, columns=rows)
    pixels = bytes(range(256)) * (rows * rows * 2 * frames // 256)
    ds.PixelData = pixels
    ds.NumberOfFrames = frames
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)
    return pixels


def test_a_deflated_multi_frame_image_written_by_pydicom_is_verified(tmp_path: Path) -> None:
    _deflated_file(tmp_path / "DFL", rows=128, frames=5)
    data = (tmp_path / "DFL").read_bytes()
    header = parse_header(io.BytesIO(data), force=False)
    assert header.number_of_frames == 5
    assert check_pixel_data(io.BytesIO(data), len(data), header) is None


def test_a_deflated_stream_that_does_not_inflate_is_flagged_not_crashed(tmp_path: Path) -> None:
    _deflated_file(tmp_path / "DFL", rows=128, frames=4)
    data = bytearray((tmp_path / "DFL").read_bytes())
    start = _pixel_start_in_file(bytes(data))
    # Garbage in the middle of the compressed pixel data: the stream breaks there.
    middle = start + (len(data) - start) // 2
    data[middle:middle + 64] = b"\xff" * 64
    header = parse_header(io.BytesIO(bytes(data)), force=False)
    problem = check_pixel_data(io.BytesIO(bytes(data)), len(data), header)
    assert problem is not None and ("does not inflate" in problem or "truncated" in problem)


def test_a_deflated_file_whose_header_does_not_inflate_is_rejected_with_a_reason(
        run_cli, tmp_path: Path) -> None:
    disc = tmp_path / "disc"
    _deflated_file(disc / "DFL")
    data = (disc / "DFL").read_bytes()
    stream = _deflated_part(data)
    (disc / "DFL").write_bytes(data[:len(data) - len(stream)] + b"\xff" * 16 + stream[16:])
    make_instance(disc / "GOOD")
    code, out, _err = run_cli("import", str(disc), "--json")
    report = json_report(out)
    [rejected] = report["rejected"]
    assert rejected["path"] == "DFL" and "inflate" in rejected["reason"]
    assert report["instances"]["verified"] == 1 and code == 0


def _bomb(tmp: Path, *, before_pixels: int = 0, pixels: int | None = None) -> bytes:
    """A real instance, deflated, with ``before_pixels`` zeros in a private element just before
    its pixel data and (optionally) ``pixels`` zero bytes of pixel data; streamed, so the test
    never holds the inflated bytes either."""
    make_instance(tmp / "PLAIN", rows=512, columns=512)
    plain = (tmp / "PLAIN").read_bytes()
    data_set = _deflated_part(plain)
    pixel_tag = data_set.index(b"\xe0\x7f\x10\x00OW")
    z = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)  # level 1: zeros deflate fast
    out = [_deflated_meta(plain), z.compress(data_set[:pixel_tag])]

    def zeros(n: int) -> None:
        chunk = bytes(1 << 20)
        while n > 0:
            out.append(z.compress(chunk[:min(n, len(chunk))]))
            n -= len(chunk)

    if before_pixels:
        out.append(z.compress(struct.pack("<HH2sH", 0x7FDF, 0x0010, b"LO", 4) + b"BOMB"
                              + struct.pack("<HH2sHL", 0x7FDF, 0x1010, b"OB", 0, before_pixels)))
        zeros(before_pixels)
    if pixels is None:
        out.append(z.compress(data_set[pixel_tag:]))
    else:
        out.append(z.compress(struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OW", 0, pixels)))
        zeros(pixels)
    out.append(z.flush())
    return b"".join(out)


@pytest.fixture(scope="module")
def header_bomb(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """Two MB on the disc; 300 MiB of zeros inflated before its pixel data."""
    return _bomb(tmp_path_factory.mktemp("bomb"), before_pixels=300 << 20)


@pytest.fixture(scope="module")
def pixel_bomb(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """Five MB on the disc; 1 GiB of (zero) pixel data inflated."""
    return _bomb(tmp_path_factory.mktemp("bomb"), pixels=1 << 30)


def _peak(work: Callable[[], object]) -> tuple[object, int]:
    tracemalloc.start()
    try:
        result = work()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_deflate_bomb_before_the_pixels_is_read_in_bounded_memory(header_bomb: bytes) -> None:
    assert len(header_bomb) < 3 << 20
    header, peak = _peak(lambda: parse_header(io.BytesIO(header_bomb), force=False))
    assert isinstance(header, InstanceHeader) and header.rows == 512
    assert header.pixel_offset > 300 << 20  # past the zeros, in the inflated data set
    assert peak < 32 << 20, f"{peak / 2**20:.0f} MiB"  # pydicom alone: 600 MiB
    problem, peak = _peak(lambda: check_pixel_data(io.BytesIO(header_bomb), len(header_bomb),
                                                   header))
    assert problem is None and peak < 32 << 20


def test_a_deflate_bomb_in_the_pixels_is_checked_in_bounded_memory(pixel_bomb: bytes) -> None:
    assert len(pixel_bomb) < 6 << 20
    header = parse_header(io.BytesIO(pixel_bomb), force=False)
    problem, peak = _peak(lambda: check_pixel_data(io.BytesIO(pixel_bomb), len(pixel_bomb),
                                                   header))
    assert problem is None  # 1 GiB of pixel data where 512 KiB are needed: padding, not damage
    assert peak < 32 << 20, f"{peak / 2**20:.0f} MiB"


class StepClock:
    """A monotonic clock that moves ``step`` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.now, self.step, self.reads = 0.0, step, 0

    def __call__(self) -> float:
        self.reads += 1
        self.now += self.step
        return self.now


def test_inflating_a_bomb_stops_at_the_import_deadline(header_bomb: bytes,
                                                       pixel_bomb: bytes) -> None:
    clock = StepClock(1.0)
    with pytest.raises(TimeLimitReached):
        parse_header(io.BytesIO(header_bomb), force=False, deadline=10.0, clock=clock)
    assert clock.reads == 10  # once per MiB inflated: it stopped ~10 MiB in, not 300
    header = parse_header(io.BytesIO(pixel_bomb), force=False)
    clock = StepClock(1.0)
    with pytest.raises(TimeLimitReached):
        check_pixel_data(io.BytesIO(pixel_bomb), len(pixel_bomb), header, deadline=10.0,
                         clock=clock)
    assert clock.reads == 10


def test_a_data_set_inflating_past_the_bound_is_refused(pixel_bomb: bytes) -> None:
    start = len(pixel_bomb) - len(_deflated_part(pixel_bomb))
    inflated = InflatedFile(io.BytesIO(pixel_bomb), start, limit=64 << 20)
    with pytest.raises(InflateError, match="inflates to more than"):
        inflated.seek(100 << 20)
        inflated.read(1)


def test_a_native_image_longer_than_its_dimensions_need_is_not_flagged(tmp_path: Path) -> None:
    # MR_small_padded.dcm is the real-world case; this one has a kilobyte of padding.
    ds = make_instance(tmp_path / "PAD", rows=16, columns=16)
    ds.PixelData = ds.PixelData + b"\0" * 1024
    ds.save_as(tmp_path / "PAD", enforce_file_format=True)
    data = (tmp_path / "PAD").read_bytes()
    header = parse_header(io.BytesIO(data), force=False)
    assert check_pixel_data(io.BytesIO(data), len(data), header) is None


def test_a_dataset_deflated_by_pydicom_is_what_the_helpers_above_expect(tmp_path: Path) -> None:
    # The test's own helpers, checked once: the cut lands inside the inflated pixel data.
    pixels = _deflated_file(tmp_path / "DFL", rows=128)
    data = (tmp_path / "DFL").read_bytes()
    inflated = zlib.decompress(_deflated_part(data), -zlib.MAX_WBITS)
    assert inflated.endswith(pixels)
    cut = _cut(data)
    partial = zlib.decompressobj(-zlib.MAX_WBITS).decompress(_deflated_part(cut))
    assert len(inflated) - len(pixels) < len(partial) < len(inflated)
    assert isinstance(read_dataset(io.BytesIO(inflated), False, True), Dataset)


# --- the deflated path reads what the plain one reads -----------------------------------------

def _deflated_meta(plain: bytes) -> bytes:
    """``plain``'s preamble and File Meta Information, saying Deflated Explicit VR LE."""
    meta_end = len(plain) - len(_deflated_part(plain))
    meta = FileMetaDataset(read_dataset(io.BytesIO(plain[132:meta_end]), False, True))
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    buf = DicomBytesIO()
    buf.write(plain[:132])
    write_file_meta_info(buf, meta, enforce_standard=True)
    return buf.getvalue()


def _deflated_twin(plain: bytes, data_set: bytes) -> tuple[bytes, bytes]:
    """(``data_set`` after ``plain``'s File Meta, the same deflated): one data set, two files."""
    meta_end = len(plain) - len(_deflated_part(plain))
    deflater = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    deflated = _deflated_meta(plain) + deflater.compress(data_set) + deflater.flush()
    return plain[:meta_end] + data_set, deflated


@functools.cache
def _plain_seeds() -> tuple[bytes, ...]:
    return tuple(_path(name).read_bytes()
                 for name in ("CT_small.dcm", "JPEG2000.dcm", "MR_small_RLE.dcm"))


def _comparable(header: InstanceHeader) -> InstanceHeader:
    return dataclasses.replace(header, transfer_syntax="", pixel_offset=0, deflated_at=None)


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2), cut=st.floats(0, 1), junk=st.binary(min_size=0, max_size=6),
       where=st.floats(0, 1, exclude_max=True))
# A VR byte made invalid: the length becomes 4 bytes (1.7 MB), deferred; read back from the
# plain file it was the rest of the file, from the inflated stream the File Meta's UID.
@example(seed=1, cut=0.0, junk=b"\x00", where=0.03515625)
def test_a_deflated_header_reads_like_the_same_data_set_undeflated(
        seed: int, cut: float, junk: bytes, where: float) -> None:
    plain = _plain_seeds()[seed]
    data_set = _deflated_part(plain)  # (a plain file's data set: everything after its meta)
    at = int(where * len(data_set))
    data_set = data_set[:at] + junk + data_set[at + len(junk):]
    data_set = data_set[:max(1, int(len(data_set) * (0.5 + cut / 2)))]
    explicit, deflated = _deflated_twin(plain, data_set)

    def read(data: bytes) -> InstanceHeader | str:
        try:
            return read_header(io.BytesIO(data), force=False)
        except NotReadable as exc:
            return f"NotReadable: {exc}"

    slow, reference = read(deflated), read(explicit)
    if isinstance(reference, InstanceHeader) and isinstance(slow, InstanceHeader):
        assert _comparable(slow) == _comparable(reference)
        assert slow.deflated_at == len(deflated) - len(_deflated_part(deflated))
        assert slow.pixel_offset == reference.pixel_offset - (len(explicit) - len(data_set))
    else:
        assert isinstance(slow, str) == isinstance(reference, str), (slow, reference)
    fast = scan_header(io.BytesIO(deflated))
    if fast is not None:
        assert fast == slow
    # And the whole check never raises on it.
    if isinstance(slow, InstanceHeader):
        problem = check_pixel_data(io.BytesIO(deflated), len(deflated), slow)
        assert problem is None or isinstance(problem, str)
