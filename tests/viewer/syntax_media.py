"""One small DICOM image per transfer syntax and photometric case, made at test time, and what
pydicom says the viewer must show for each.

The viewer (OPEN_IMAGES.html, docs/viewer.md "DICOM") must decode every transfer syntax on the
kiosk's media and render the same pixels as pydicom. This module makes the test images and
computes pydicom's answer; the browser tests (tests/viewer/test_dicom_*.py) compare the page with
it. Other tests may import it: it has no test of its own and needs no browser.

Images (`generated_cases`), all from the kiosk's own synthetic studies (kiosk.samples):

* native: implicit VR LE, explicit VR LE, deflated explicit VR LE, explicit VR big endian, each a
  signed 16-bit CT with rescale slope/intercept (HU) and a GB18030 patient name; the CT with
  VOI LUT Function SIGMOID and LINEAR_EXACT, and with no window and a slope of 0.5; MONOCHROME1
  and MONOCHROME2 12-bit CR; RGB planar 0 and 1; YBR_FULL; YBR_FULL_422; PALETTE COLOR;
  a multi-frame image;
* compressed with pydicom's own encoders: RLE lossless (pydicom), JPEG-LS lossless and
  near-lossless (pyjpegls; RGB pixel- and plane-interleaved), JPEG 2000 lossless and lossy
  (pylibjpeg-openjpeg), multi-frame ones among them;
* compressed with dcmtk's ``dcmcjpeg`` (skipped where it is missing; .ci/install installs
  dcmtk): JPEG baseline 8-bit grey and RGB as YBR_FULL_422, YBR_FULL and RGB, JPEG extended
  8-bit and 12-bit, JPEG lossless process 14 and SV1 (grey, CT, RGB, multi-frame);
* an unknown transfer syntax and a known one without a decoder (the viewer must say "cannot
  display, still on the stick").

`pydicom_test_files` lists the images shipped in pydicom's wheel (no download), and
`charset_cases` one instance per character set the kiosk imports (GB18030, GBK, ISO 2022 IR 58,
UTF-8).

`expected(data, index)` is pydicom's view of frame `index`: the modality values (Modality LUT
applied), the default window (the file's first Window Center/Width, else the frame's
min..max), and the 8-bit RGB the viewer must render: grey through pydicom's `apply_windowing`
(scaled to 0..255, MONOCHROME1 inverted), colour as pydicom's `pixel_array` in RGB (YBR
converted, PALETTE COLOR through `apply_color_lut`, more than 8 bits cut to the top 8 stored).
Lossy files are compared with pydicom's decode of the same file.

`show(page, data, index)` asks the page (opened with tests/viewer/browser_kit.open_page) to load
the bytes with medpassLib.dicom.loadImage and render frame `index` at defaultWindow; its
`Shown` gives renderFrame's pixels, frame.values and the header back as numpy arrays.
"""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_windowing, pixel_array
from pydicom.uid import (
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
    SecondaryCaptureImageStorage,
)

from kiosk.samples.studies import cr_dataset, ct_dataset, make_file_meta, sample_uid
from tests.viewer.browser_kit import to_page

__all__ = ["Case", "Expected", "Shown", "charset_cases", "expected", "generated_cases", "mad",
           "pydicom_test_files", "show"]

SIZE = 96  # pixels a side: big enough for codecs' blocks and subsampling, small for the page


@dataclass(frozen=True)
class Case:
    """One test image: its Part 10 bytes and what it is."""

    name: str  # the test id: "jpeg-baseline-ybr422"
    data: bytes
    syntax: str  # Transfer Syntax UID
    source: str  # how it was made ("pydicom RLE encoder", "dcmcjpeg +eb", "pydicom test file X")
    lossy: bool = False
    displayable: bool = True  # False: the viewer must say it cannot display it


@dataclass(frozen=True)
class Expected:
    """pydicom's view of one frame (what the viewer must show)."""

    rgb: np.ndarray  # uint8 (rows, columns, 3): the render at the default window
    values: np.ndarray | None  # float64 (rows, columns): modality values; None for colour
    window: tuple[float, float] | None  # (center, width) used; None for colour
    reference: str = "pydicom"  # "dcmdjpeg, then pydicom" where pydicom's decoders fail


def _bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _ct(index: int = 3, size: int = SIZE) -> Dataset:
    """The sample CT (signed 16-bit, stored = HU + 1024) with a -2000 HU padding corner, so that
    some stored values are negative, as outside a scanner's circular field of view."""
    ds = ct_dataset(study_uid=sample_uid("syntax", "study"), series_uid=sample_uid("syntax", "ct"),
                    for_uid=sample_uid("syntax", "for"), sop_uid=sample_uid("syntax", "ct", index),
                    index=index, slices=8, size=size, seed=16)
    stored = np.frombuffer(ds.PixelData, "<i2").reshape(size, size).copy()
    stored[: size // 6, : size // 6] = -2000 + 1024
    ds.PixelData = stored.tobytes()
    return ds


def _cr(monochrome1: bool = False) -> Dataset:
    """The sample CR (12 bits stored in 16), MONOCHROME2 or inverted as MONOCHROME1."""
    ds = cr_dataset(study_uid=sample_uid("syntax", "study"), series_uid=sample_uid("syntax", "cr"),
                    sop_uid=sample_uid("syntax", "cr", monochrome1), index=0, size=SIZE // 2,
                    lateral=False)
    if monochrome1:
        stored = np.frombuffer(ds.PixelData, "<u2")
        ds.PixelData = (4095 - stored).astype("<u2").tobytes()
        ds.PhotometricInterpretation = "MONOCHROME1"
        ds.WindowCenter = "2495"  # 4095 - 1600: the same picture as the MONOCHROME2 one
    return ds


def _voi(function: str | None, slope: float = 1.0) -> Dataset:
    """The CT with a VOI LUT Function (SIGMOID, LINEAR_EXACT) or, for None, no window at all
    (the viewer then windows the frame's min..max); `slope` != 1 stores HU / slope."""
    ds = _ct()
    if function is None:
        del ds.WindowCenter, ds.WindowWidth, ds.WindowCenterWidthExplanation
    else:
        ds.VOILUTFunction = function
    if slope != 1.0:
        hu = np.frombuffer(ds.PixelData, "<i2").astype(np.float64) - 1024
        ds.RescaleSlope = str(slope)
        ds.PixelData = np.rint((hu + 1024) / slope).astype("<i2").tobytes()
    return ds


def _grey8() -> Dataset:
    """The CR cut to 8 bits (what JPEG baseline holds)."""
    ds = _cr()
    stored = np.frombuffer(ds.PixelData, "<u2") >> 4
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.WindowCenter, ds.WindowWidth = "100", "180"
    ds.PixelData = stored.astype(np.uint8).tobytes()
    ds["PixelData"].VR = "OB"
    return ds


def _rgb_pixels(rows: int = SIZE, columns: int = SIZE) -> np.ndarray:
    """A colour test picture: smooth gradients (what JPEG keeps) and saturated blocks."""
    y, x = np.mgrid[0:rows, 0:columns]
    rgb = np.stack([x * 255 // max(columns - 1, 1), y * 255 // max(rows - 1, 1),
                    (x + y) * 255 // max(rows + columns - 2, 1)], axis=-1).astype(np.uint8)
    b = rows // 4
    rgb[b : 2 * b, b : 2 * b] = (230, 30, 40)
    rgb[2 * b : 3 * b, 2 * b : 3 * b] = (20, 200, 60)
    return rgb


def _secondary_capture(name: str, rows: int, columns: int) -> Dataset:
    uid = sample_uid("syntax", "sc", name)
    ds = Dataset()
    ds.file_meta = make_file_meta(SecondaryCaptureImageStorage, uid)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = uid
    ds.PatientName = "LI^Hua=李^华"
    ds.PatientID = "SYNTAX"
    ds.StudyInstanceUID = sample_uid("syntax", "study")
    ds.SeriesInstanceUID = sample_uid("syntax", "sc-series")
    ds.Modality = "OT"
    ds.ConversionType = "WSD"
    ds.InstanceNumber = 1
    ds.Rows, ds.Columns = rows, columns
    ds.PixelRepresentation = 0
    return ds


def _rgb(planar: int, rows: int = SIZE, columns: int = SIZE) -> Dataset:
    ds = _secondary_capture(f"rgb{planar}", rows, columns)
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = planar
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    rgb = _rgb_pixels(rows, columns)
    ds.PixelData = (rgb.transpose(2, 0, 1) if planar else rgb).tobytes()
    return ds


def _ybr_full() -> Dataset:
    """RGB stored as full-range YCbCr (PS3.3 C.7.6.3.1.2), as pydicom converts it."""
    from pydicom.pixels import convert_color_space

    ds = _rgb(0)
    ds.PhotometricInterpretation = "YBR_FULL"
    ds.PixelData = convert_color_space(_rgb_pixels(), "RGB", "YBR_FULL").tobytes()
    return ds


def _ybr_full_422() -> Dataset:
    """Native YBR_FULL_422: Y0 Y1 Cb Cr per pair of pixels (PS3.3 C.7.6.3.1.2)."""
    from pydicom.pixels import convert_color_space

    ds = _rgb(0)
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ybr = convert_color_space(_rgb_pixels(), "RGB", "YBR_FULL").astype(np.uint16)
    pairs = ybr.reshape(SIZE, SIZE // 2, 2, 3)
    cb = ((pairs[:, :, 0, 1] + pairs[:, :, 1, 1]) // 2).astype(np.uint8)
    cr = ((pairs[:, :, 0, 2] + pairs[:, :, 1, 2]) // 2).astype(np.uint8)
    out = np.stack([pairs[:, :, 0, 0], pairs[:, :, 1, 0], cb, cr], axis=-1).astype(np.uint8)
    ds.PixelData = out.tobytes()
    return ds


def _palette() -> Dataset:
    """8-bit indices through a 256-entry, 16-bit palette (a hot-iron-like map)."""
    ds = _secondary_capture("palette", SIZE, SIZE)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "PALETTE COLOR"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    ds.PixelData = ((x + y) * 255 // (2 * SIZE - 2)).astype(np.uint8).tobytes()
    i = np.arange(256, dtype=np.float64)
    lut = {"Red": np.clip(i * 3, 0, 255), "Green": np.clip(i * 3 - 255, 0, 255),
           "Blue": np.clip(i * 3 - 510, 0, 255)}
    for colour, values in lut.items():
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, 16])
        words = (values * 257).astype("<u2").tobytes()
        setattr(ds, f"{colour}PaletteColorLookupTableData", words)
    return ds


def _multiframe(frames: int = 4) -> Dataset:
    """Four CT slices as one multi-frame image (each frame different)."""
    ds = _ct()
    parts = [np.frombuffer(_ct(index=i).PixelData, "<i2") for i in range(frames)]
    ds.NumberOfFrames = frames
    ds.FrameIncrementPointer = 0x00181063
    ds.FrameTime = "100"
    ds.PixelData = np.concatenate(parts).astype("<i2").tobytes()
    return ds


def _as_syntax(ds: Dataset, syntax: str) -> Dataset:
    """Native `ds` written in another native syntax (big endian: the pixel words swapped)."""
    ds.file_meta.TransferSyntaxUID = UID(syntax)
    if syntax == ExplicitVRBigEndian and ds.BitsAllocated == 16:
        kind = "i2" if ds.PixelRepresentation else "u2"
        ds.PixelData = np.frombuffer(ds.PixelData, "<" + kind).astype(">" + kind).tobytes()
    return ds


def _compressed(ds: Dataset, syntax: str, **kwargs: object) -> Dataset:
    ds.compress(UID(syntax), **kwargs)  # type: ignore[arg-type]
    return ds


def _dcmcjpeg(ds: Dataset, *options: str) -> bytes:
    """Compress with dcmtk's dcmcjpeg (the JPEG family pydicom cannot encode)."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp, "in.dcm"), Path(tmp, "out.dcm")
        src.write_bytes(_bytes(ds))
        subprocess.run(["dcmcjpeg", *options, str(src), str(dst)], check=True,
                       capture_output=True, timeout=60)
        return dst.read_bytes()


def _unknown_syntax(uid: str) -> bytes:
    """A CT whose pixel data is encapsulated in a transfer syntax the viewer cannot decode."""
    ds = _ct()
    ds.file_meta.TransferSyntaxUID = UID(uid)
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(60)])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True, implicit_vr=False, little_endian=True)
    return buffer.getvalue()


def has_dcmcjpeg() -> bool:
    """Whether dcmtk's dcmcjpeg is on the PATH."""
    return shutil.which("dcmcjpeg") is not None


JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.57"
JPEG_SV1 = "1.2.840.10008.1.2.4.70"

# (name, transfer syntax, the image, how it is encoded, lossy). "native": written as is in that
# syntax; "pydicom": Dataset.compress (keyword options in the dict); a tuple: dcmcjpeg options.
_Make = Callable[[], Dataset]
_CASES: list[tuple[str, str, _Make, str | tuple[str, ...], dict[str, object], bool]] = [
    ("implicit-le-ct", ImplicitVRLittleEndian, _ct, "native", {}, False),
    ("explicit-le-ct", ExplicitVRLittleEndian, _ct, "native", {}, False),
    ("deflated-ct", DeflatedExplicitVRLittleEndian, _ct, "native", {}, False),
    ("big-endian-ct", ExplicitVRBigEndian, _ct, "native", {}, False),
    ("big-endian-rgb", ExplicitVRBigEndian, lambda: _rgb(0), "native", {}, False),
    ("monochrome2-cr", ExplicitVRLittleEndian, _cr, "native", {}, False),
    ("monochrome1-cr", ExplicitVRLittleEndian, lambda: _cr(monochrome1=True), "native", {}, False),
    ("grey8", ExplicitVRLittleEndian, _grey8, "native", {}, False),
    ("voi-sigmoid", ExplicitVRLittleEndian, lambda: _voi("SIGMOID"), "native", {}, False),
    ("voi-linear-exact", ExplicitVRLittleEndian, lambda: _voi("LINEAR_EXACT"), "native", {},
     False),
    ("no-window-slope-half", ExplicitVRLittleEndian, lambda: _voi(None, 0.5), "native", {}, False),
    ("rgb-planar0", ExplicitVRLittleEndian, lambda: _rgb(0), "native", {}, False),
    ("rgb-planar1", ExplicitVRLittleEndian, lambda: _rgb(1), "native", {}, False),
    ("rgb-odd-size", ExplicitVRLittleEndian, lambda: _rgb(1, rows=31, columns=37), "native", {},
     False),
    ("ybr-full", ExplicitVRLittleEndian, _ybr_full, "native", {}, False),
    ("ybr-full-422", ExplicitVRLittleEndian, _ybr_full_422, "native", {}, False),
    ("palette", ExplicitVRLittleEndian, _palette, "native", {}, False),
    ("multiframe-ct", ExplicitVRLittleEndian, _multiframe, "native", {}, False),
    ("rle-ct", RLELossless, _ct, "pydicom", {}, False),
    ("rle-rgb", RLELossless, lambda: _rgb(0), "pydicom", {}, False),
    ("rle-multiframe", RLELossless, _multiframe, "pydicom", {}, False),
    ("jpegls-lossless-ct", JPEGLSLossless, _ct, "pydicom", {}, False),
    ("jpegls-lossless-rgb", JPEGLSLossless, lambda: _rgb(0), "pydicom", {}, False),
    ("jpegls-near-ct", JPEGLSNearLossless, _ct, "pydicom", {"jls_error": 3}, True),
    ("jpegls-multiframe", JPEGLSLossless, _multiframe, "pydicom", {}, False),
    ("jpegls-lossless-rgb-planar", JPEGLSLossless, lambda: _rgb(1), "pydicom", {}, False),
    ("j2k-lossless-ct", JPEG2000Lossless, _ct, "pydicom", {}, False),
    ("j2k-lossless-cr", JPEG2000Lossless, _cr, "pydicom", {}, False),
    ("j2k-lossless-rgb", JPEG2000Lossless, lambda: _rgb(0), "pydicom", {}, False),
    ("j2k-lossy-ct", JPEG2000, _ct, "pydicom", {"j2k_cr": [10]}, True),
    ("j2k-lossy-rgb", JPEG2000, lambda: _rgb(0), "pydicom", {"j2k_cr": [10]}, True),
    ("jpeg-baseline-grey", JPEG_BASELINE, _grey8, ("+eb",), {}, True),
    ("jpeg-baseline-ybr422", JPEG_BASELINE, lambda: _rgb(0), ("+eb",), {}, True),
    ("jpeg-baseline-ybr444", JPEG_BASELINE, lambda: _rgb(0), ("+eb", "+s4"), {}, True),
    ("jpeg-baseline-rgb", JPEG_BASELINE, lambda: _rgb(0), ("+eb", "+cr"), {}, True),
    ("jpeg-extended-12bit", JPEG_EXTENDED, _cr, ("+ee",), {}, True),
    ("jpeg-extended-8bit", JPEG_EXTENDED, _grey8, ("+ee",), {}, True),
    ("jpeg-lossless-p14-ct", JPEG_LOSSLESS, _ct, ("+el",), {}, False),
    ("jpeg-lossless-p14-cr", JPEG_LOSSLESS, _cr, ("+el", "+sv", "4"), {}, False),
    ("jpeg-lossless-sv1-ct", JPEG_SV1, _ct, ("+e1",), {}, False),
    ("jpeg-lossless-sv1-grey8", JPEG_SV1, _grey8, ("+e1",), {}, False),
    ("jpeg-lossless-sv1-rgb", JPEG_SV1, lambda: _rgb(0), ("+e1",), {}, False),
    ("jpeg-lossless-multiframe", JPEG_SV1, _multiframe, ("+e1",), {}, False),
]


@cache
def generated_cases() -> tuple[Case, ...]:
    """Every generated case (see the module docstring); dcmcjpeg's only where it is installed."""
    out = []
    for name, syntax, make, how, options, lossy in _CASES:
        if how == "native":
            data, source = _bytes(_as_syntax(make(), syntax)), "pydicom"
        elif how == "pydicom":
            data, source = _bytes(_compressed(make(), syntax, **options)), "pydicom encoder"
        elif has_dcmcjpeg():
            data, source = _dcmcjpeg(make(), *how), "dcmcjpeg " + " ".join(how)
        else:
            continue
        out.append(Case(name, data, syntax, source, lossy))
    for name, uid in (("unknown-syntax", "1.2.826.0.1.3680043.2.9999.1"),
                      ("htj2k-no-decoder", "1.2.840.10008.1.2.4.201")):
        out.append(Case(name, _unknown_syntax(uid), uid, "pydicom", displayable=False))
    return tuple(out)


# pydicom's own test images shipped in its wheel (pydicom.data.get_testdata_file finds them
# without a download), with the syntaxes and photometrics they bring. Lossy ones are marked.
PYDICOM_IMAGES: dict[str, bool] = {
    "CT_small.dcm": False, "MR_small.dcm": False, "MR_small_implicit.dcm": False,
    "MR_small_bigendian.dcm": False, "MR_small_expb.dcm": False, "MR_small_RLE.dcm": False,
    "MR_small_jp2klossless.dcm": False, "MR_small_jpeg_ls_lossless.dcm": False,
    "MR_small_padded.dcm": False, "ExplVR_BigEnd.dcm": False, "image_dfl.dcm": False,
    "JPEG-lossy.dcm": True, "JPGExtended.dcm": True, "JPEG2000.dcm": True,
    "JPEGLSNearLossless_08.dcm": True, "JPEGLSNearLossless_16.dcm": True,
    "SC_rgb_jpeg_dcmtk.dcm": True, "SC_rgb_jpeg_gdcm.dcm": True, "SC_rgb_jpeg_lossy_gdcm.dcm": True,
    "SC_rgb_dcmtk_+eb+cr.dcm": True, "SC_rgb_dcmtk_+eb+cy+np.dcm": True,
    "SC_rgb_dcmtk_+eb+cy+s2.dcm": True, "SC_rgb_dcmtk_+eb+cy+s4.dcm": True,
    "SC_rgb_dcmtk_+eb+cy+n1.dcm": True, "SC_rgb_dcmtk_+eb+cy+n2.dcm": True,
    "SC_rgb_jpeg.dcm": True, "SC_rgb_jpeg_dcmd.dcm": True, "SC_rgb_jpeg_app14_dcmd.dcm": True,
    "SC_jpeg_no_color_transform.dcm": True, "SC_jpeg_no_color_transform_2.dcm": True,
    "SC_rgb_small_odd.dcm": False, "SC_rgb_small_odd_big_endian.dcm": False,
    "SC_rgb_small_odd_jpeg.dcm": True, "SC_ybr_full_422_uncompressed.dcm": False,
    "SC_rgb_rle.dcm": False, "SC_rgb_rle_2frame.dcm": False, "SC_rgb_rle_16bit.dcm": False,
    "SC_rgb_rle_16bit_2frame.dcm": False, "SC_rgb_rle_32bit.dcm": False,
    "SC_rgb_rle_32bit_2frame.dcm": False, "SC_rgb_jls_lossy_line.dcm": True,
    "SC_rgb_jls_lossy_sample.dcm": True, "examples_palette.dcm": False,
    "examples_rgb_color.dcm": False, "examples_ybr_color.dcm": True,
    "examples_jpeg2k.dcm": True, "examples_overlay.dcm": False, "liver_1frame.dcm": False,
    "liver_expb_1frame.dcm": False, "rtdose.dcm": False, "rtdose_1frame.dcm": False,
    "rtdose_expb.dcm": False, "rtdose_rle.dcm": False, "rtdose_rle_1frame.dcm": False,
    "693_J2KI.dcm": True, "J2K_pixelrep_mismatch.dcm": False, "GDCMJ2K_TextGBR.dcm": False,
    "JPEG2000-embedded-sequence-delimiter.dcm": False,
}


def pydicom_test_files() -> list[tuple[str, Path, bool]]:
    """(name, path, lossy) of each of PYDICOM_IMAGES that this pydicom ships (no download)."""
    from pydicom.data import get_testdata_file

    out = []
    for name, lossy in PYDICOM_IMAGES.items():
        try:
            path = get_testdata_file(name, download=False)
        except (ValueError, OSError):
            path = None
        if path:
            out.append((name, Path(str(path)), lossy))
    return out


def charset_cases() -> list[tuple[str, bytes]]:
    """(label, Part 10 bytes) of one CT per character set the kiosk imports: the sample's own
    GB18030 bytes, and GBK, ISO 2022 IR 58 (GB2312 designated by ESC $ ) A, as PS3.5 6.1.2.5
    writes it: pydicom would write bare GB2312 bytes) and UTF-8, each with a Chinese study
    description beside the name."""
    description = "胸部CT平扫 Chest CT"
    esc = b"\x1b$)A"
    ir58_name = b"Zhang^Wei=" + esc + "张".encode("gb2312") + b"^" + esc + "伟".encode("gb2312")
    ir58_text = esc + "胸部".encode("gb2312") + b"CT" + "平扫".encode("gb2312") + b" Chest CT"
    cases: dict[str, tuple[str | list[str], bytes | None, bytes | None]] = {
        "GB18030": ("GB18030", None, None),
        "GBK": ("GBK", "Wang^Fang=王^芳".encode("gbk"), description.encode("gbk")),
        "ISO 2022 IR 58": (["", "ISO 2022 IR 58"], ir58_name, ir58_text),
        "ISO_IR 192": ("ISO_IR 192", "LI^Hua=李^华".encode(), description.encode()),
    }
    out = []
    for label, (charset, name, text) in cases.items():
        ds = _ct()
        if name is not None and text is not None:
            ds.SpecificCharacterSet = charset
            ds.add_new(0x00100010, "PN", name)
            ds.add_new(0x00081030, "LO", text + b" " * (len(text) % 2))
        out.append((label, _bytes(ds)))
    return out


def _frame(ds: Dataset, index: int) -> np.ndarray:
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    arr = pixel_array(ds, index=index) if frames > 1 else ds.pixel_array
    return np.asarray(arr)


def _linear_voi_8bit(values: np.ndarray, ds: Dataset, center: float, width: float) -> np.ndarray:
    """pydicom's apply_windowing (PS3.3 C.11.2.1.2) at (center, width), scaled to 0..255."""
    windowed = ds.copy()
    windowed.WindowCenter = center
    windowed.WindowWidth = width
    for keyword in ("VOILUTSequence",):
        if keyword in windowed:
            del windowed[keyword]
    # apply_windowing's output spans the range the stored values can take after the modality
    # LUT (its own y_min..y_max): put that range onto 0..255.
    bits = int(ds.BitsStored)
    if ds.get("ModalityLUTSequence"):
        y_min, y_max = 0.0, 2.0 ** int(ds.ModalityLUTSequence[0].LUTDescriptor[2]) - 1
    elif int(ds.PixelRepresentation) == 0:
        y_min, y_max = 0.0, 2.0**bits - 1
    else:
        y_min, y_max = -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1
    if ds.get("RescaleSlope") is not None and ds.get("RescaleIntercept") is not None:
        slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
        y_min, y_max = y_min * slope + intercept, y_max * slope + intercept
    out = apply_windowing(values.astype(np.float64), windowed)
    grey = (np.asarray(out, dtype=np.float64) - y_min) / (y_max - y_min) * 255.0
    if ds.PhotometricInterpretation == "MONOCHROME1":
        grey = 255.0 - grey
    return np.clip(np.rint(grey), 0, 255).astype(np.uint8)


def _dcmdjpeg(data: bytes) -> bytes:
    """`data` decompressed by dcmtk's dcmdjpeg (for JPEG files pydicom's plugins refuse)."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp, "in.dcm"), Path(tmp, "out.dcm")
        src.write_bytes(data)
        subprocess.run(["dcmdjpeg", str(src), str(dst)], check=True, capture_output=True,
                       timeout=60)
        return dst.read_bytes()


def expected(data: bytes, index: int = 0) -> Expected:
    """pydicom's view of frame `index` of `data` (see the module docstring).

    Where none of pydicom's decoders can read a JPEG file (pydicom's own JPEG-lossy.dcm, which
    libjpeg refuses for its SOS parameters), dcmtk's dcmdjpeg decompresses it first, when
    installed; otherwise pydicom's RuntimeError is raised.
    """
    ds = dcmread(io.BytesIO(data))
    try:
        arr = _frame(ds, index)
    except RuntimeError:
        jpeg = ds.file_meta.TransferSyntaxUID.startswith("1.2.840.10008.1.2.4.5")
        if not jpeg or not has_dcmcjpeg():
            raise
        return replace(expected(_dcmdjpeg(data), index), reference="dcmdjpeg, then pydicom")
    photometric = str(ds.PhotometricInterpretation)
    if photometric == "PALETTE COLOR":
        rgb = np.asarray(apply_color_lut(arr, ds))
        bits = int(ds.RedPaletteColorLookupTableDescriptor[2])
        rgb = (rgb >> 8) if bits > 8 else rgb
        return Expected(rgb.astype(np.uint8), None, None)
    if int(ds.SamplesPerPixel) == 3:
        shift = max(0, int(ds.BitsStored) - 8)
        return Expected((arr.astype(np.uint64) >> shift).astype(np.uint8), None, None)
    values = np.asarray(apply_modality_lut(arr, ds), dtype=np.float64)
    centers = ds.get("WindowCenter")
    widths = ds.get("WindowWidth")
    window: tuple[float, float] | None = None
    if centers is not None and widths is not None:
        c = centers[0] if hasattr(centers, "__len__") and not isinstance(centers, str) else centers
        w = widths[0] if hasattr(widths, "__len__") and not isinstance(widths, str) else widths
        if float(w) > 0:
            window = (float(c), float(w))
    if window is None:
        lo, hi = float(values.min()), float(values.max())
        window = ((lo + hi) / 2, max(1.0, hi - lo))
    grey = _linear_voi_8bit(values, ds, *window)
    return Expected(np.repeat(grey[..., None], 3, axis=-1), values, window)


# Runs in the page: loadImage, frame(index), defaultWindow, renderFrame; typed arrays go back
# as base64 (a JSON array of a million numbers is slow through Playwright).
_SHOW = """
async ([name, index, points, thumb]) => {
  const lib = globalThis.medpassLib.dicom;
  const b64 = (bytes) => {
    let s = "";
    for (let i = 0; i < bytes.length; i += 8192) {
      s += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192));
    }
    return btoa(s);
  };
  const reason = (img) => img.reason
    ? { en: img.reason.en, zh: img.reason.zh, text: String(img.reason) } : null;
  const t0 = performance.now();
  const img = await lib.loadImage(globalThis[name]);
  const loadMs = performance.now() - t0;
  const h = img.header;
  const out = { displayable: img.displayable, reason: reason(img), loadMs,
    header: { rows: h.rows, columns: h.columns, frames: h.frames, photometric: h.photometric,
      bitsStored: h.bitsStored, signed: h.signed, transferSyntax: h.transferSyntax,
      transferSyntaxName: h.transferSyntaxName, rescale: h.rescale, windows: h.windows,
      patientName: h.patientName, studyDescription: h.studyDescription,
      warnings: h.warnings.map(String) },
    cached: img._cache ? img._cache.size : null };
  if (!img.displayable) return out;
  const t1 = performance.now();
  const frame = await img.frame(index);
  out.frameMs = performance.now() - t1;
  if (!frame) return { ...out, displayable: img.displayable, reason: reason(img) };
  const win = lib.defaultWindow(img, frame);
  const t2 = performance.now();
  const data = lib.renderFrame(img, frame, win);
  out.renderMs = performance.now() - t2;
  out.window = frame.samples === 1 ? win : null;
  out.width = data.width;
  out.height = data.height;
  out.rgba = b64(new Uint8Array(data.data.buffer));
  out.samples = frame.samples;
  if (frame.values) out.values = b64(new Uint8Array(Float64Array.from(frame.values).buffer));
  out.points = points.map(([x, y]) => frame.valueAt(x + 0.5, y + 0.5));
  if (thumb) {
    const t = lib.renderThumbnail(img, frame, thumb);
    out.thumb = { width: t.width, height: t.height, rgba: b64(new Uint8Array(t.data.buffer)) };
  }
  return out;
}
"""


@dataclass
class Shown:
    """The page's answer for one image and frame."""

    raw: dict[str, Any]

    @property
    def displayable(self) -> bool:
        """What img.displayable said."""
        return bool(self.raw["displayable"])

    @property
    def header(self) -> dict[str, Any]:
        """The subset of img.header the tests read."""
        return dict(self.raw["header"])

    def rgb(self) -> np.ndarray:
        """renderFrame's output as (rows, columns, 3) uint8 (alpha checked to be opaque)."""
        rgba = np.frombuffer(base64.b64decode(self.raw["rgba"]), np.uint8)
        rgba = rgba.reshape(self.raw["height"], self.raw["width"], 4)
        assert (rgba[..., 3] == 255).all()
        return rgba[..., :3]

    def values(self) -> np.ndarray | None:
        """frame.values as (rows, columns) float64, or None for colour."""
        if "values" not in self.raw:
            return None
        v = np.frombuffer(base64.b64decode(self.raw["values"]), np.float64)
        return v.reshape(self.raw["height"], self.raw["width"])

    def thumbnail(self) -> np.ndarray:
        """renderThumbnail's output as (rows, columns, 3) uint8."""
        t = self.raw["thumb"]
        rgba = np.frombuffer(base64.b64decode(t["rgba"]), np.uint8)
        rgba = rgba.reshape(t["height"], t["width"], 4)
        assert (rgba[..., 3] == 255).all()
        return rgba[..., :3]


def show(page: Any, data: bytes, index: int = 0, points: list[tuple[int, int]] | None = None,
         thumb: int | None = None) -> Shown:
    """Load `data` in the page and render frame `index` at its default window."""
    name = to_page(page, data, "dicomUnderTest")
    return Shown(page.evaluate(_SHOW, [name, index, points or [], thumb]))


def mad(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    """Mean and max absolute difference of two uint8 images."""
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return float(d.mean()), int(d.max())
