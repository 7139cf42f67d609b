"""The viewer's screens in Chromium, fed by the in-memory Source (docs/viewer.md "Source"):
series and thumbnails, stack scroll, window/level and presets, the HU under the pointer, a
length in mm, the language switch, names, the phone layout, an image the page cannot show,
reports and the custody banner. The images are made here, so every expected value is known."""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian

from kiosk.samples.pdf import minimal_pdf
from tests.viewer.browser_kit import PHONE, OpenedPage, close, open_page, to_page

ROWS, COLS = 24, 32
SPACING = (0.5, 0.8)  # Pixel Spacing: row spacing, column spacing (mm)
INTERCEPT = -1024
STUDY = "1.2.826.0.1.3680043.8.498.1"
HTJ2K = "1.2.840.10008.1.2.4.201"  # High-Throughput JPEG 2000: no decoder on the page


def slice_pixels(index: int) -> np.ndarray:
    """Stored values of slice `index`: a ramp along x shifted by the slice, so every slice
    differs and every pixel's HU is known (HU = stored + INTERCEPT)."""
    y, x = np.mgrid[0:ROWS, 0:COLS]
    return (500 + 40 * x + 7 * y + 300 * index).astype(np.uint16)


def ct_slice(index: int, *, series: str = "1.2.826.0.1.3680043.8.498.2", number: int = 1,
             spacing: tuple[float, float] | None = SPACING, syntax: str = ExplicitVRLittleEndian,
             frames: int = 1) -> bytes:
    """One small CT instance with a Chinese name, a file VOI window and Pixel Spacing."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = f"{series}.{index + 1}"
    meta.TransferSyntaxUID = UID(syntax)
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = STUDY
    ds.SeriesInstanceUID = series
    ds.PatientName = "LI^Hua=李^华"
    ds.PatientID = "P042"
    ds.PatientBirthDate = "19800101"
    ds.Modality = "CT"
    ds.StudyDate = "20261127"
    ds.StudyDescription = "胸部CT Chest CT"
    ds.SeriesDescription = f"Axial {number}"
    ds.SeriesNumber = number
    ds.InstanceNumber = index + 1
    ds.Rows, ds.Columns = ROWS, COLS
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = INTERCEPT, 1, "HU"
    ds.WindowCenter, ds.WindowWidth = [300, -500], [1200, 1400]
    ds.WindowCenterWidthExplanation = ["MEDIASTINUM", "LUNG"]
    if spacing:
        ds.PixelSpacing = list(spacing)
    if frames > 1:
        ds.NumberOfFrames = frames
        ds.FrameTime = 125.0
        ds.PixelData = np.stack([slice_pixels(i) for i in range(frames)]).tobytes()
    else:
        ds.PixelData = slice_pixels(index).tobytes()
    if syntax != ExplicitVRLittleEndian:
        ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(60)])
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True, implicit_vr=False, little_endian=True)
    return buffer.getvalue()


SLICES = 5
ORIGINAL = "REPORTS/ORIGINAL_ZH.PDF"
TRANSLATION = "REPORTS/TRANSLATION_EN.PDF"

_SHOW = """
async ([refs, reports, custody, lang]) => {
  const ui = globalThis.medpassLib.ui;
  if (lang) ui.setLanguage(lang);
  const instances = {};
  for (const [ref, name] of refs) instances[ref] = globalThis[name];
  const rs = reports.map(([r, name]) => ({ ...r, bytes: globalThis[name] }));
  const source = new ui.MemorySource({ instances, reports: rs, custody, label: "test" });
  globalThis.testSource = source;
  const screen = await ui.app.show(source);
  globalThis.testScreen = screen;
  return true;
}
"""


@dataclass
class Shown:
    """A page showing a MemorySource."""

    opened: OpenedPage

    @property
    def page(self) -> Any:
        return self.opened.page


def show(opened: OpenedPage, instances: dict[str, bytes], *, reports: bool = True,
         custody: dict[str, Any] | None = None, lang: str | None = "en") -> Shown:
    """Put the instances (and two report PDFs) into the page and show them in the viewer."""
    page = opened.page
    refs = []
    for i, (ref, data) in enumerate(instances.items()):
        refs.append([ref, to_page(page, data, f"inst{i}")])
    rs = []
    if reports:
        to_page(page, minimal_pdf(["Original report (zh)"]), "pdf0")
        to_page(page, minimal_pdf(["Certified translation"]), "pdf1")
        rs = [
            [{"ref": ORIGINAL, "title": "CT report", "language": "zh", "role": "original"}, "pdf0"],
            [{"ref": TRANSLATION, "title": "CT report (English)", "language": "en",
              "role": "translation", "translates": ORIGINAL, "translator": "Wang Fang",
              "certified": True}, "pdf1"],
        ]
    page.evaluate(_SHOW, [refs, rs, custody or {"state": "unsigned"}, lang])
    wait_vp(page, "frame !== null || v.img?.displayable === false")
    return Shown(opened)


def stack() -> dict[str, bytes]:
    """A five-slice CT series and a second series of one slice."""
    out = {f"PT000000/ST000000/SE000000/IM{i:06d}": ct_slice(i) for i in range(SLICES)}
    second = ct_slice(0, series="1.2.826.0.1.3680043.8.498.3", number=2)
    out["PT000000/ST000000/SE000001/IM000000"] = second
    return out


@pytest.fixture
def opened(viewer_browser: Any) -> Iterator[OpenedPage]:
    """A fresh desktop page; no request leaves it and nothing is logged as an error."""
    page = open_page(viewer_browser)
    yield page
    assert network(page) == []
    assert [e for e in page.console_errors if e not in PDF_VIEWER_ERRORS] == []
    close(page)


# Chromium's own PDF viewer (in the reports' iframes) loads its chrome:// resources, which the
# kit aborts like any other request: not the network, but logged as failed loads.
PDF_VIEWER_ERRORS = {"Failed to load resource: net::ERR_FAILED"}


def network(opened: OpenedPage) -> list[str]:
    """Requests that could reach a network (the browser's internal chrome:// ones cannot)."""
    return [u for u in opened.outside_requests() if not u.startswith(("chrome://", "chrome-extension://"))]


def canvas_pixels(page: Any) -> np.ndarray:
    """The viewport canvas as an (h, w, 4) array."""
    data = page.evaluate("""() => { const c = globalThis.testScreen.viewport.canvas;
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height);
      return [c.width, c.height, Array.from(d.data)]; }""")
    return np.array(data[2], np.uint8).reshape(data[1], data[0], 4)


def overlay(page: Any, name: str) -> str:
    return page.locator(f"[data-testid=overlay-{name}]").inner_text()


def wait_drawn(page: Any) -> None:
    """Two animation frames: the viewport draws on the next one."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def vp(page: Any, expr: str) -> Any:
    """A value of the viewport (globalThis.testScreen.viewport), e.g. vp(page, "scale")."""
    return page.evaluate(f"() => globalThis.testScreen.viewport.{expr}")


def wait_vp(page: Any, condition: str, timeout: float = 30_000) -> None:
    """Wait until a condition on the viewport `v` holds, e.g. wait_vp(page, "index === 2")."""
    page.wait_for_function("() => { const v = globalThis.testScreen?.viewport;"
                           f" return v && v.{condition}; }}", timeout=timeout)


def client_point(page: Any, x: float, y: float) -> tuple[float, float]:
    p = page.evaluate("([x, y]) => globalThis.testScreen.viewport.clientPoint(x, y)", [x, y])
    return p["x"], p["y"]


def test_series_list_thumbnails_header_and_chinese_name(opened: OpenedPage) -> None:
    shown = show(opened, stack())
    page = shown.page
    buttons = page.locator("button.series")
    assert buttons.count() == 2
    assert "5 images" in buttons.nth(0).inner_text() and "1 image" in buttons.nth(1).inner_text()
    page.wait_for_function("() => [...document.querySelectorAll('canvas.thumb')]"
                           ".every(c => c.dataset.drawn === 'true')")
    # Each thumbnail holds the slice's picture: not blank, and its shape is the image's.
    stats = page.evaluate("""() => [...document.querySelectorAll('canvas.thumb')].map(c => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let lo = 255, hi = 0;
      for (let i = 0; i < d.length; i += 4) { lo = Math.min(lo, d[i]); hi = Math.max(hi, d[i]); }
      return [c.width, c.height, lo, hi]; })""")
    for w, h, lo, hi in stats:
        assert (w, h) == (COLS, ROWS)
        assert hi - lo > 50
    assert page.locator("[data-testid=patient-name]").first.inner_text() == "LI Hua 李华"
    header = page.locator("[data-testid=series-header]").inner_text()
    assert "LI Hua 李华" in header and "2026-11-27" in header and "胸部CT Chest CT" in header
    assert overlay(page, "slice") == "Image 1/5"


def test_a_thumbnail_skips_an_image_that_cannot_be_shown(opened: OpenedPage) -> None:
    page = show(opened, {"IM0": ct_slice(0), "IM1": ct_slice(1, syntax=HTJ2K)}).page
    page.wait_for_function("() => document.querySelector('canvas.thumb').dataset.drawn")
    assert page.locator("canvas.thumb").get_attribute("data-drawn") == "true"


def test_scrolling_by_wheel_keys_and_drag_changes_the_slice(opened: OpenedPage) -> None:
    page = show(opened, stack()).page
    wait_drawn(page)
    before = canvas_pixels(page)
    box = page.locator(".viewport-canvas").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.wheel(0, 100)
    wait_vp(page, "frame && v.index === 1")
    wait_drawn(page)
    assert overlay(page, "slice") == "Image 2/5"
    after = canvas_pixels(page)
    assert np.abs(after.astype(int) - before.astype(int)).mean() > 5
    page.keyboard.press("End")
    wait_vp(page, "index === 4")
    assert overlay(page, "slice") == "Image 5/5"
    page.keyboard.press("ArrowUp")
    wait_vp(page, "index === 3")
    page.keyboard.press("Home")
    wait_vp(page, "index === 0")
    page.keyboard.press("PageDown")
    wait_vp(page, "index === 4")  # +10, clamped
    # A drag with the scroll tool (the default): up goes back, one slice per 12 px.
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx, cy - 30, steps=6)
    page.mouse.up()
    wait_vp(page, "index === 2")
    assert overlay(page, "slice") == "Image 3/5"


def test_window_drag_presets_and_reset(opened: OpenedPage) -> None:
    page = show(opened, stack()).page
    wait_drawn(page)
    assert overlay(page, "window").startswith("W 1200 / L 300")  # the file's first window
    before = canvas_pixels(page)
    box = page.locator(".viewport-canvas").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.down(button="right")
    page.mouse.move(cx + 80, cy + 60, steps=5)
    page.mouse.up(button="right")
    wait_drawn(page)
    assert not overlay(page, "window").startswith("W 1200 / L 300")
    dragged = canvas_pixels(page)
    assert np.abs(dragged.astype(int) - before.astype(int)).mean() > 1
    presets = page.locator("button.preset")
    labels = presets.all_inner_texts()
    # The file's own windows come first, then the CT presets, then Reset.
    assert labels[:2] == ["File: MEDIASTINUM", "File: LUNG"]
    assert labels[2:6] == ["Soft tissue 400/40", "Lung 1500/-600", "Bone 1800/400", "Brain 80/40"]
    assert labels[-1] == "Reset"
    page.get_by_role("button", name="Bone 1800/400").click()
    wait_drawn(page)
    assert overlay(page, "window").startswith("W 1800 / L 400")
    bone = canvas_pixels(page)
    # Bone window at 400 HU: the canvas shows exactly renderFrame's output for that window.
    hu = slice_pixels(0).astype(float) + INTERCEPT
    lo, hi = 400 - 0.5 - (1800 - 1) / 2, 400 - 0.5 + (1800 - 1) / 2
    want = np.where(hu <= lo, 0, np.where(hu > hi, 255, ((hu - 399.5) / 1799 + 0.5) * 255))
    got = sample_image(page, bone)
    assert np.abs(got - want).max() <= 1.0
    page.get_by_role("button", name="Reset").click()
    wait_drawn(page)
    assert overlay(page, "window").startswith("W 1200 / L 300")
    # From the keyboard: Ctrl+Up raises the level, Ctrl+Right widens the window.
    page.locator(".viewport").focus()
    page.keyboard.press("Control+ArrowUp")
    page.keyboard.press("Control+ArrowRight")
    w = vp(page, "currentWindow()")
    assert w["center"] > 300 and w["width"] > 1200


def sample_image(page: Any, pixels: np.ndarray) -> np.ndarray:
    """The canvas at the centre of every image pixel: the image as drawn, (ROWS, COLS)."""
    box = page.locator(".viewport-canvas").bounding_box()
    dpr = page.evaluate("() => devicePixelRatio")
    out = np.zeros((ROWS, COLS))
    for y in range(ROWS):
        for x in range(COLS):
            px, py = client_point(page, x + 0.5, y + 0.5)
            out[y, x] = pixels[int((py - box["y"]) * dpr), int((px - box["x"]) * dpr), 0]
    return out


def test_the_value_under_the_pointer_is_the_hu_of_that_pixel(opened: OpenedPage) -> None:
    page = show(opened, stack()).page
    wait_drawn(page)
    for x, y in [(3, 5), (30, 20), (0, 0)]:
        page.mouse.move(*client_point(page, x + 0.5, y + 0.5))
        want = int(slice_pixels(0)[y, x]) + INTERCEPT
        assert overlay(page, "value") == f"{want} HU at ({x}, {y})"


def test_a_length_is_in_mm_from_pixel_spacing(opened: OpenedPage) -> None:
    page = show(opened, stack()).page
    wait_drawn(page)
    page.get_by_role("button", name="Measure").click()
    a, b = (2.5, 2.5), (8.5, 10.5)
    page.mouse.move(*client_point(page, *a))
    page.mouse.down()
    page.mouse.move(*client_point(page, *b), steps=4)
    page.mouse.up()
    # 6 columns × 0.8 mm and 8 rows × 0.5 mm.
    want = math.hypot(6 * SPACING[1], 8 * SPACING[0])
    assert overlay(page, "length") == f"{want:.1f} mm"
    lengths = vp(page, "currentLengths()")
    assert abs(lengths[0]["length"]["value"] - want) < 0.05
    # Measure picked by mouse: the arrow keys still change slices; a length stays on its slice.
    page.keyboard.press("ArrowDown")
    wait_vp(page, "index === 1")
    assert overlay(page, "length") == ""
    page.keyboard.press("ArrowUp")
    wait_vp(page, "index === 0")
    assert overlay(page, "length") == f"{want:.1f} mm"


def test_a_length_without_pixel_spacing_is_in_pixels_and_by_keyboard(opened: OpenedPage) -> None:
    page = show(opened, {"IM0": ct_slice(0, spacing=None)}, reports=False).page
    wait_drawn(page)
    page.get_by_role("button", name="Measure").click()
    page.locator(".viewport").focus()
    # Measure picked by mouse: arrows still change slices (one slice here, so nothing moves);
    # the first Enter shows the cross-hair at the centre and sets the first point.
    page.keyboard.press("Enter")
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    for _ in range(3):
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    want = f"{math.hypot(5, 3):.1f} pixels (no pixel spacing in the file)"
    assert overlay(page, "length") == want
    # The probe also reads the value where it stands.
    x, y = COLS // 2 + 5, ROWS // 2 + 3
    assert overlay(page, "value") == f"{int(slice_pixels(0)[y, x]) + INTERCEPT} HU at ({x}, {y})"


def test_switching_to_chinese_changes_every_text(opened: OpenedPage) -> None:
    page = show(opened, stack()).page
    assert page.get_by_role("button", name="Measure").count() == 1
    page.locator("[data-testid=language]").click()
    page.wait_for_function("() => document.documentElement.lang === 'zh-CN'")
    assert overlay(page, "slice") == "影像 1/5"
    assert page.get_by_role("button", name="测量").count() == 1
    assert page.locator("button.series").nth(0).inner_text().count("5 幅影像") == 1
    assert "未签名" in page.locator("[data-testid=custody]").inner_text()
    labels = page.locator("[data-testid=report-label]").all_inner_texts()
    assert labels[0].startswith("原始报告（中文）")
    assert page.locator("[data-testid=language]").inner_text() == "English"
    assert page.locator("[data-testid=patient-name]").first.inner_text() == "LI Hua 李华"


def test_the_language_follows_the_browser(viewer_browser: Any) -> None:
    context = viewer_browser.new_context(locale="zh-CN")
    try:
        page = context.new_page()
        from tests.viewer.browser_kit import opener_path
        page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:")
                   else r.abort())
        page.goto(opener_path().resolve().as_uri())
        page.wait_for_function("() => globalThis.medpassLib?.ui !== undefined")
        assert page.locator("h1").inner_text() == "打开此 U 盘中的影像"
    finally:
        context.close()


def test_an_image_that_cannot_be_shown_says_so_and_the_rest_scrolls(opened: OpenedPage) -> None:
    instances = {"IM0": ct_slice(0), "IM1": ct_slice(1, syntax=HTJ2K)}
    page = show(opened, instances, reports=False).page
    page.keyboard.press("Tab")  # focus something, then the viewport
    page.locator(".viewport").focus()
    page.keyboard.press("ArrowDown")
    wait_vp(page, "index === 1 && v.img?.displayable === false")
    message = page.locator(".viewport-message")
    assert message.is_visible()
    text = message.inner_text()
    assert "Cannot display this image" in text and "still on the stick" in text
    page.locator("[data-testid=language]").click()
    assert "无法显示此影像" in message.inner_text() and "U 盘" in message.inner_text()
    page.locator(".viewport").focus()
    page.keyboard.press("ArrowUp")
    wait_vp(page, "frame !== null")
    assert not message.is_visible()


def test_cine_plays_a_multiframe_image_at_its_frame_time(opened: OpenedPage) -> None:
    page = show(opened, {"IM0": ct_slice(0, frames=6)}, reports=False).page
    assert overlay(page, "slice") == "Image 1/1\nFrame 1/6"
    assert page.locator(".fps").inner_text() == "8 frames/s"  # Frame Time 125 ms
    # A lone multi-frame image: scrolling moves through its frames.
    page.locator(".viewport").focus()
    page.keyboard.press("ArrowDown")
    wait_vp(page, "frameIndex === 1")
    page.get_by_role("button", name="Play").click()
    wait_vp(page, "frameIndex === 4", timeout=5000)
    page.get_by_role("button", name="Pause").click()
    assert not vp(page, "playing")


def test_zoom_by_keys_and_buttons(opened: OpenedPage) -> None:
    page = show(opened, stack()).page
    start = vp(page, "scale")
    page.get_by_role("button", name="Zoom in").click()
    assert vp(page, "scale") == pytest.approx(start * 1.25)
    page.locator(".viewport").focus()
    page.keyboard.press("-")
    page.keyboard.press("-")
    assert vp(page, "scale") == pytest.approx(start * 1.25 * 0.64)
    page.keyboard.press("0")
    assert vp(page, "scale") == pytest.approx(start)
    assert f"Zoom {round(start * 100)}%" in overlay(page, "window")


def test_reports_open_beside_the_images_labelled(opened: OpenedPage) -> None:
    page = show(opened, stack()).page
    page.wait_for_function(
        "() => document.querySelectorAll('iframe.report-frame[src^=\"blob:\"]').length === 2")
    labels = page.locator("[data-testid=report-label]").all_inner_texts()
    assert labels[0] == "Original report (Chinese): CT report"
    assert labels[1] == ("Certified English translation of: Original report (Chinese): CT report, "
                         "translator Wang Fang")
    # Beside the images: the reports column is right of the viewport on a desktop.
    view = page.locator(".viewport").bounding_box()
    rep = page.locator(".reports").bounding_box()
    assert rep["x"] >= view["x"] + view["width"]
    # The desktop viewer fills the 1280×800 window without the page scrolling either way.
    size = page.evaluate("() => { const d = document.documentElement; return"
                         " [d.scrollWidth, d.clientWidth, d.scrollHeight, d.clientHeight]; }")
    assert size[0] <= size[1] and size[2] <= size[3]


@pytest.mark.parametrize(("custody", "words"), [
    ({"state": "checking", "checked": 3, "total": 9}, ["Checking the chain of custody… 3/9 files"]),
    ({"state": "verified", "kioskId": "KIOSK-SZ-01", "created": "2026-11-27T08:15:00Z",
      "fingerprint": "3F2A 9C01 0000", "images": 6, "originals": 1, "translations": 1},
     ["Verified: 6 images, the original report, its certified translation, from kiosk KIOSK-SZ-01 "
      "on 2026-11-27 08:15 UTC (key fingerprint 3F2A 9C01 0000)"]),
    ({"state": "warning", "kioskId": "K1", "problems": [
        {"path": "PT000000/ST000000/SE000000/IM000002", "problem": "changed"},
        {"path": "REPORTS/TRANSLATION_EN.PDF",
         "problem": {"en": "hash differs", "zh": "哈希不符"}}]},
     ["does not match what the kiosk signed",
      "PT000000/ST000000/SE000000/IM000002 — changed since the kiosk signed it",
      "REPORTS/TRANSLATION_EN.PDF — hash differs"]),
    ({"state": "unsigned"}, ["Unsigned: this package carries no kiosk signature"]),
], ids=["checking", "verified", "warning", "unsigned"])
def test_custody_banner_states(opened: OpenedPage, custody: dict[str, Any],
                               words: list[str]) -> None:
    page = show(opened, stack(), custody=custody).page
    banner = page.locator("[data-testid=custody]")
    assert banner.get_attribute("data-state") == custody["state"]
    text = banner.inner_text()
    for w in words:
        assert w in text


def test_custody_banner_follows_change_events(opened: OpenedPage) -> None:
    page = show(opened, stack(), custody={"state": "checking", "checked": 0, "total": 4}).page
    banner = page.locator("[data-testid=custody]")
    page.evaluate("() => globalThis.testSource.custody.set({checked: 2})")
    assert "2/4" in banner.inner_text()
    page.evaluate("""() => globalThis.testSource.custody.set({state: 'verified', checked: 4,
      kioskId: 'K9', created: '2026-01-02T03:04:05Z', fingerprint: 'AAAA BBBB', images: 1,
      originals: 1, translations: 1})""")
    assert banner.get_attribute("data-state") == "verified"
    assert ("Verified: 1 image, the original report, its certified translation, from kiosk K9"
            in banner.inner_text())
    page.locator("[data-testid=language]").click()
    assert "已核验：1 幅影像" in banner.inner_text()


def test_save_for_pacs_falls_back_to_a_download(opened: OpenedPage) -> None:
    page = opened.page
    # No showSaveFilePicker (Firefox, Safari, a policy): gathered in memory, then downloaded.
    page.evaluate("() => { globalThis.showSaveFilePicker = undefined; }")
    show(opened, stack())
    page.evaluate("""() => { globalThis.testSource.saveForPacs = async (w, {onProgress}) => {
        const writer = w.getWriter(); await writer.write(new TextEncoder().encode('PK-test-'));
        onProgress({done: 1, total: 2}); await writer.write(new Uint8Array([1, 2, 3]));
        await writer.close(); };
      globalThis.testScreen.save.el.hidden = false; }""")
    with page.expect_download() as info:
        page.get_by_role("button", name="Save for your PACS").click()
    path = info.value.path()
    assert path is not None
    with open(path, "rb") as f:
        assert f.read() == b"PK-test-\x01\x02\x03"
    assert info.value.suggested_filename == "MEDPASS_FOR_PACS.zip"
    assert page.locator(".save-note").is_visible()


def test_phone_layout_has_no_horizontal_scroll_and_touch_scrolls(viewer_browser: Any) -> None:
    opened = open_page(viewer_browser, viewport=PHONE)
    try:
        page = show(opened, stack()).page
        wait_drawn(page)
        widths = page.evaluate("() => [document.documentElement.scrollWidth,"
                               " document.documentElement.clientWidth]")
        assert widths[0] <= widths[1] == PHONE["width"]
        box = page.locator(".viewport").bounding_box()
        assert box["width"] <= PHONE["width"] and box["height"] > 300
        # One finger swipes through slices; two fingers pinch to zoom (touch pointer events).
        session = page.context.new_cdp_session(page)
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

        def touch(kind: str, points: list[tuple[float, float]]) -> None:
            session.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [
                {"x": px, "y": py, "id": i} for i, (px, py) in enumerate(points)]})

        touch("touchStart", [(x, y)])
        for k in range(1, 6):
            touch("touchMove", [(x, y + 10 * k)])
        touch("touchEnd", [])
        wait_vp(page, "index === 4")
        scale = vp(page, "scale")
        touch("touchStart", [(x - 20, y), (x + 20, y)])
        for k in range(1, 4):
            touch("touchMove", [(x - 20 - 10 * k, y), (x + 20 + 10 * k, y)])
        touch("touchEnd", [])
        # The fingers went from 40 px apart to 100 px: 2.5 times the size.
        assert vp(page, "scale") == pytest.approx(scale * 100 / 40, rel=0.05)
        assert vp(page, "index") == 4  # pinching did not scroll
        # A tap reads the value under the finger (no hover on a phone).
        page.evaluate("() => globalThis.testScreen.viewport.fit()")
        wait_drawn(page)
        tx, ty = client_point(page, 5.5, 7.5)
        touch("touchStart", [(tx, ty)])
        touch("touchEnd", [])
        want = int(slice_pixels(4)[7, 5]) + INTERCEPT
        assert overlay(page, "value") == f"{want} HU at (5, 7)"
        page.screenshot(path="/tmp/ui_phone.png", full_page=True)
        assert network(opened) == []
    finally:
        close(opened)
