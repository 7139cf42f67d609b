"""The viewer's DICOM layer in Chromium beyond the pixels: names in every character set, what the
doctor reads for an image the page cannot show, frames decoded one at a time, a large image in
reasonable time, and renderThumbnail (docs/viewer.md "DICOM")."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import JPEGLSLossless

from kiosk.samples.sample_disc import build_sample_disc
from tests.viewer.browser_kit import close, open_page, to_page
from tests.viewer.syntax_media import (
    _ct,
    _multiframe,
    charset_cases,
    expected,
    generated_cases,
    mad,
    show,
)


@pytest.fixture(scope="module")
def page(viewer_browser: Any) -> Iterator[Any]:
    """One page for the module."""
    opened = open_page(viewer_browser)
    yield opened.page
    assert opened.outside_requests() == []
    assert opened.console_errors == []
    close(opened)


def _case(name: str) -> Any:
    return next(c for c in generated_cases() if c.name == name)


# ISO 2022 escape sequences (ESC, intermediates, final): pydicom leaves IR 58's in the text.
ESCAPES = re.compile("\x1b[\x20-\x2f]+[\x30-\x7e]")


def _pydicom_name(data: bytes) -> tuple[str, str, str]:
    """pydicom's decoding of the patient name: the whole value and its first two groups."""
    pn = dcmread(io.BytesIO(data), stop_before_pixels=True).PatientName
    return tuple(ESCAPES.sub("", str(v)) for v in (pn, pn.alphabetic, pn.ideographic))  # type: ignore[return-value]


def _check_name(shown: dict[str, str], data: bytes) -> None:
    whole, alphabetic, ideographic = _pydicom_name(data)
    assert ideographic  # every case has a Chinese name: a test that could not fail otherwise
    # The decoded value is pydicom's; the display form joins components as docs/viewer.md says
    # ("LI^Hua=李^华" -> "LI Hua", "李华", "LI Hua 李华").
    assert shown["stored"].rstrip("=") == whole.rstrip("=")
    assert shown["alphabetic"] == alphabetic.replace("^", " ")
    assert shown["ideographic"] == ideographic.replace("^", "")
    assert shown["display"] == f"{shown['alphabetic']} {shown['ideographic']}"


@pytest.mark.parametrize(("charset", "data"), charset_cases(), ids=[c for c, _ in charset_cases()])
def test_patient_names_decode_as_pydicom_decodes_them(page: Any, charset: str, data: bytes) -> None:
    got = show(page, data).header
    _check_name(got["patientName"], data)
    description = dcmread(io.BytesIO(data), stop_before_pixels=True).StudyDescription
    assert got["studyDescription"] == ESCAPES.sub("", description) == "胸部CT平扫 Chest CT"
    assert got["warnings"] == []


def test_the_sample_discs_images_show_their_gb18030_name_and_hu(page: Any, tmp_path: Path) -> None:
    disc = build_sample_disc(tmp_path / "disc", ct_slices=2, size=64)
    files = sorted(p for p in Path(tmp_path / "disc").rglob("IM*") if p.is_file())
    assert files, disc
    for path in files:
        data = path.read_bytes()
        got = show(page, data, points=[(32, 32)])
        want = expected(data)
        assert got.displayable
        _check_name(got.header["patientName"], data)
        assert got.header["patientName"]["display"] == "Li Hua 李华"
        assert mad(got.rgb(), want.rgb)[0] <= 1.0
        assert want.values is not None
        assert got.raw["points"][0] == want.values[32, 32]


@pytest.mark.parametrize("name", ["unknown-syntax", "htj2k-no-decoder"])
def test_an_image_the_page_cannot_decode_says_so_in_both_languages(page: Any, name: str) -> None:
    case = _case(name)
    got = show(page, case.data)
    assert not got.displayable
    reason = got.raw["reason"]
    assert "Cannot display" in reason["en"] and "still on the stick" in reason["en"]
    assert "无法显示" in reason["zh"] and "U 盘" in reason["zh"]
    # The header is still there for the doctor: who, and what the file holds.
    assert got.header["patientName"]["display"] == "Li Hua 李华"
    assert got.header["transferSyntax"] == case.syntax
    assert (got.header["rows"], got.header["columns"]) == (96, 96)


def test_a_file_that_is_not_dicom_is_not_displayable_and_never_throws(page: Any) -> None:
    got = show(page, b"PK\x03\x04 this is a zip, not DICOM" * 10)
    assert not got.displayable
    assert "still on the stick" in got.raw["reason"]["en"]


def test_a_damaged_frame_is_reported_without_the_decoders_words(page: Any) -> None:
    ds = dcmread(io.BytesIO(_case("jpegls-lossless-ct").data))
    codestream = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([codestream[: len(codestream) // 3]])  # cut: the scan ends early
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    got = show(page, buffer.getvalue())
    assert not got.displayable
    assert got.raw["loadMs"] < 2000  # CharLS alone spent 7.8 s on this cut (the page froze)
    reason = got.raw["reason"]
    assert reason["en"] == ("Cannot display this image (frame 1 could not be decoded); "
                            "it is still on the stick.")
    assert reason["zh"] == "无法显示此影像（第 1 帧无法解码）；影像仍完整保存在 U 盘中。"


_LAZY = """
async ([name]) => {
  const img = await globalThis.medpassLib.dicom.loadImage(globalThis[name]);
  const decoded = img._cache.size;
  const frame = await img.frame(img.header.frames - 1);
  const missing = await img.frame(img.header.frames);
  return { decoded, frames: img.header.frames, last: frame.valueAt(10, 10), after: img._cache.size,
           missing, displayable: img.displayable };
}
"""


@pytest.mark.parametrize("name", ["multiframe-ct", "jpegls-multiframe", "rle-multiframe"])
def test_frames_are_decoded_one_at_a_time(page: Any, name: str) -> None:
    case = _case(name)
    to_page(page, case.data, "lazy")
    got = page.evaluate(_LAZY, ["lazy"])
    assert got["decoded"] == 1  # loadImage decoded frame 0 only
    assert got["after"] == 2
    assert got["missing"] is None and got["displayable"]
    want = expected(case.data, got["frames"] - 1)
    assert want.values is not None
    assert got["last"] == want.values[10, 10]


def test_a_large_image_decodes_and_renders_in_reasonable_time(page: Any) -> None:
    big = _ct(size=1024)
    big.compress(JPEGLSLossless)
    buffer = io.BytesIO()
    big.save_as(buffer, enforce_file_format=True)
    got = show(page, buffer.getvalue())
    assert got.displayable
    timing = (got.raw["loadMs"], got.raw["frameMs"], got.raw["renderMs"])
    print(f"FIGURE 1024x1024 JPEG-LS CT: load+decode {timing[0]:.0f} ms, render {timing[2]:.0f} ms")
    assert timing[0] + timing[2] < 5000
    assert mad(got.rgb(), expected(buffer.getvalue()).rgb)[1] <= 1


def _box(rgb: np.ndarray, h: int, w: int) -> np.ndarray:
    """The block mean renderThumbnail documents, in numpy."""
    H, W = rgb.shape[:2]
    rows = [(y * H // h, (y + 1) * H // h) for y in range(h)]
    cols = [(x * W // w, (x + 1) * W // w) for x in range(w)]
    out = np.empty((h, w, 3), np.float64)
    for y, (r0, r1) in enumerate(rows):
        for x, (c0, c1) in enumerate(cols):
            out[y, x] = rgb[r0:r1, c0:c1].reshape(-1, 3).mean(axis=0)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


@pytest.mark.parametrize(("name", "size", "shape"), [
    ("explicit-le-ct", 40, (40, 40)), ("monochrome1-cr", 32, (32, 32)),
    ("rgb-odd-size", 16, (13, 16)), ("jpeg-baseline-ybr422", 64, (64, 64)),
    ("palette", 500, (96, 96)),
])
def test_thumbnails_keep_the_aspect_and_the_default_window(page: Any, name: str, size: int,
                                                          shape: tuple[int, int]) -> None:
    case = _case(name) if any(c.name == name for c in generated_cases()) else None
    if case is None:
        pytest.skip(f"{name} needs dcmcjpeg")
    got = show(page, case.data, thumb=size)
    thumb = got.thumbnail()
    assert thumb.shape[:2] == shape
    want = _box(expected(case.data).rgb, *shape)
    mean, worst = mad(thumb, want)
    assert mean <= 1.0
    assert case.lossy or worst <= 1


def test_a_thumbnail_of_nothing_is_nothing(page: Any) -> None:
    to_page(page, _case("unknown-syntax").data, "nothing")
    got = page.evaluate("""async ([n]) => { const d = globalThis.medpassLib.dicom;
      const img = await d.loadImage(globalThis[n]);
      return d.renderThumbnail(img, await img.frame(0), 64); }""", ["nothing"])
    assert got is None


def test_multiframe_header_keeps_the_frame_time(page: Any) -> None:
    ds = _multiframe()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    to_page(page, buffer.getvalue(), "cine")
    got = page.evaluate("""async ([n]) => { const img = await globalThis.medpassLib.dicom
      .loadImage(globalThis[n]); return [img.header.frames, img.header.frameTimeMs]; }""", ["cine"])
    assert got == [4, 100]
