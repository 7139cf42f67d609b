"""Issue 16 item 3: the page's pixels are pydicom's, for every transfer syntax and photometric.

Each image (tests/viewer/syntax_media.py: one made here per syntax and photometric case, and
every image pydicom ships in its wheel) is loaded in Chromium by medpassLib.dicom and frame 0
(and the last frame of a multi-frame image) rendered at defaultWindow. The render must match
pydicom's pixel_array through the same Modality LUT and window (mean absolute difference ≤ 1
grey level of 8; lossless syntaxes at most 1 anywhere, which is rounding), and frame.values /
frame.valueAt must be pydicom's modality values (HU for the CT). Lossy files are compared with
pydicom's decode of the same file. Each test prints a `FIGURE` line (MAD, max) for the report.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom import dcmread

from tests.viewer.browser_kit import close, open_page
from tests.viewer.syntax_media import (
    Case,
    expected,
    generated_cases,
    mad,
    pydicom_test_files,
    show,
)

POINTS = [(0, 0), (5, 7), (20, 40), (47, 47)]


@pytest.fixture(scope="module")
def page(viewer_browser: Any) -> Iterator[Any]:
    """One page for the module (the codecs start once)."""
    opened = open_page(viewer_browser)
    yield opened.page
    assert opened.outside_requests() == []
    close(opened)


def _frames(data: bytes) -> list[int]:
    frames = int(dcmread(io.BytesIO(data), stop_before_pixels=True).get("NumberOfFrames", 1) or 1)
    return [0] if frames == 1 else [0, frames - 1]


def _check(page: Any, label: str, data: bytes, index: int, lossy: bool) -> None:
    ds = dcmread(io.BytesIO(data), stop_before_pixels=True)
    want = expected(data, index)
    rows, columns = want.rgb.shape[:2]
    points = [(min(x, columns - 1), min(y, rows - 1)) for x, y in POINTS]
    got = show(page, data, index, points)
    assert got.displayable, got.raw["reason"]
    h = got.header
    assert (h["rows"], h["columns"]) == (int(ds.Rows), int(ds.Columns))
    assert h["frames"] == int(ds.get("NumberOfFrames", 1) or 1)
    assert h["transferSyntax"] == ds.file_meta.TransferSyntaxUID
    assert h["photometric"] == ds.PhotometricInterpretation
    rgb = got.rgb()
    assert rgb.shape == want.rgb.shape
    mean, worst = mad(rgb, want.rgb)
    values = got.values()
    value_note = ""
    if want.values is None:
        assert values is None
    else:
        assert values is not None and want.window is not None
        window = got.raw["window"]
        assert window["center"] == pytest.approx(want.window[0])
        assert window["width"] == pytest.approx(want.window[1])
        diff = np.abs(values - want.values)
        scale = max(1.0, float(np.abs(want.values).max()))
        value_note = f" values max |d| {diff.max():.3g}"
        if lossy:  # another decoder of the same codec family: its rounding, nothing more
            assert diff.mean() <= 1.0 * abs(float(ds.get("RescaleSlope", 1) or 1))
        else:
            assert diff.max() <= 1e-6 * scale
            for (x, y), v in zip(points, got.raw["points"], strict=True):
                assert v == pytest.approx(want.values[y, x], rel=1e-6, abs=1e-6)
    print(f"FIGURE {label} frame {index}: MAD {mean:.3f} max {worst} ({want.reference})"
          f"{value_note}")
    assert mean <= 1.0
    if not lossy:
        assert worst <= 1


@pytest.mark.parametrize(
    ("case", "index"),
    [pytest.param(c, i, id=f"{c.name}-f{i}") for c in generated_cases() if c.displayable
     for i in _frames(c.data)],
)
def test_each_syntax_renders_as_pydicom(page: Any, case: Case, index: int) -> None:
    _check(page, case.name, case.data, index, case.lossy)


@pytest.mark.parametrize(
    ("path", "lossy", "index"),
    [pytest.param(p, lossy, i, id=f"{name}-f{i}") for name, p, lossy in pydicom_test_files()
     for i in _frames(p.read_bytes())],
)
def test_pydicom_test_images_render_as_pydicom(page: Any, path: Path, lossy: bool,
                                               index: int) -> None:
    data = path.read_bytes()
    try:
        expected(data, index)
    except RuntimeError as e:
        # pydicom (and dcmtk) cannot decode it either: the page must say so, never fail blank.
        got = show(page, data, index)
        print(f"FIGURE {path.name} frame {index}: no reference ({str(e)[:80]}); page "
              f"displayable={got.displayable}")
        if not got.displayable:
            assert "still on the stick" in got.raw["reason"]["en"]
        return
    _check(page, path.name, data, index, lossy)
