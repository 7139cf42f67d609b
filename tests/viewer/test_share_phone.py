"""The phone page (SHARE.html) in Debian's chromium at 412x915 (mobile, touch) against the fake
gateway of tests/viewer/fake_gateway.py, which answers as docs/gateway.md's phone API and the
real gateway's code (kiosk/gateway/app.py) say: passcode wrong then right, the first image of a
300-slice CT (timed), a swipe to the next slice, the Chinese report and its certified English
translation, the custody banner; a locked and an expired link; a tampered manifest."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.dicom.encapsulated import build_report_instance
from kiosk.gateway.app import _QUERY_NAMES, _STUDY_TAIL, _UID
from kiosk.samples.bulk import write_study
from kiosk.samples.pdf import minimal_pdf
from kiosk.viewer import DIST
from tests.viewer.browser_kit import PHONE
from tests.viewer.fake_gateway import FakeGateway, FakeShare, new_share_id, sha256
from tests.viewer.test_manifest_js import detached_jws
from tests.viewer.test_ui_viewer import PDF_VIEWER_ERRORS

SLICES = 300
PASSCODE = "314159"
FIRST_IMAGE_BUDGET = 2.0  # seconds on loopback (issue 17)


@dataclass
class Data:
    """The files the fake gateway holds and the manifest a kiosk would have signed."""

    files: list[Path]
    study: str
    manifest: dict[str, Any]
    jws: str


def _manifest(ct: list[Path], reports: list[tuple[Path, str, str, str]]) -> dict[str, Any]:
    """A manifest as kiosk/package/plan.py writes one (the fields the page reads)."""
    files = []
    for n, path in enumerate(ct):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        files.append({"path": f"PT000000/ST000000/SE000000/IM{n:06d}", "size": path.stat().st_size,
                      "sha256": sha256(path), "kind": "dicom",
                      "sop_instance_uid": str(ds.SOPInstanceUID),
                      "study_uid": str(ds.StudyInstanceUID)})
    entries = []
    for n, (path, role, language, pdf_sha) in enumerate(reports):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        file_id = f"PT000000/ST000000/SE{n + 1:06d}/IM000000"
        files.append({"path": file_id, "size": path.stat().st_size, "sha256": sha256(path),
                      "kind": "dicom", "sop_instance_uid": str(ds.SOPInstanceUID),
                      "report_id": f"r{n}"})
        name = "REPORTS/ORIGINAL_ZH.PDF" if role == "original" else "REPORTS/TRANSLATION_EN.PDF"
        entries.append({"file": name, "sha256": pdf_sha, "dicom_file": file_id,
                        "language": language, "role": role, "certified": role == "translation",
                        "translator": "Wang Fang" if role == "translation" else None,
                        "title": str(ds.DocumentTitle), "study_uid": str(ds.StudyInstanceUID),
                        "translates": "REPORTS/ORIGINAL_ZH.PDF" if role == "translation"
                        else None})
    return {"format": "medpass-kiosk-package/1", "kiosk_version": "test", "kiosk_id": "desk-07",
            "created": "2026-12-07T09:30:00Z", "case_id": "C-1", "encrypted": False,
            "patients": [{"name": "LI^Hua=李^华", "id": "P300"}], "studies": [], "reports": entries,
            "files": files, "beside": []}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Data:
    root = tmp_path_factory.mktemp("share")
    ct = write_study(root / "ct", instances=SLICES, rows=512, columns=512,
                     patient_name="LI^Hua=李^华", patient_id="P300", seed=17)
    header = pydicom.dcmread(ct[0], stop_before_pixels=True)
    reports = []
    for n, (role, language, title) in enumerate([("original", "zh", "胸部CT报告"),
                                                 ("translation", "en", "Chest CT report")]):
        pdf = minimal_pdf([f"{title} ({role})"])
        made = build_report_instance(header, patient_name="LI^Hua=李^华", pdf=pdf, title=title,
                                     language=language, role=role,
                                     certified=role == "translation",
                                     translator="Wang Fang" if role == "translation" else None,
                                     series_number=90 + n, provenance="test", station="desk-07")
        path = root / f"report-{role}.dcm"
        path.write_bytes(made.data)
        reports.append((path, role, language, hashlib.sha256(pdf).hexdigest()))
    manifest = _manifest(ct, reports)
    key = Ed25519PrivateKey.generate()
    # MANIFEST.JSON's bytes as the kiosk writes them (kiosk/package/plan.py).
    jws = detached_jws(json.dumps(manifest, ensure_ascii=False, indent=1).encode(), key)
    return Data(ct + [r[0] for r in reports], str(header.StudyInstanceUID), manifest, jws)


@pytest.fixture(scope="module")
def gateway(data: Data) -> Iterator[FakeGateway]:
    page = DIST / "SHARE.html"
    if not page.is_file():
        pytest.skip(f"{page} is not built (bash kiosk/viewer/build)")
    fake = FakeGateway(page, data.files).start()
    try:
        yield fake
    finally:
        fake.stop()


@dataclass
class Phone:
    """A phone's page and what it asked for."""

    page: Any
    origin: str
    requests: list[str]
    console_errors: list[str]

    def outside(self) -> list[str]:
        """Requests to any other origin than the gateway's (blob:/data: stay in the page)."""
        return [u for u in self.requests if not u.startswith((self.origin, "blob:", "data:",
                                                                 "chrome://",
                                                                 "chrome-extension://"))]


@pytest.fixture
def phone(viewer_browser: Any, gateway: FakeGateway) -> Iterator[Any]:
    opened: list[Phone] = []

    def open_(url: str) -> Phone:
        origin = re.match(r"https?://[^/]+", url)[0]  # type: ignore[index]
        context = viewer_browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True,
                                             device_scale_factor=2, service_workers="block",
                                             locale="en-US")
        page = context.new_page()
        p = Phone(page, origin, [], [])
        page.on("request", lambda r: p.requests.append(r.url))
        page.on("console", lambda m: p.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: p.console_errors.append(str(e)))
        context.route("**/*", lambda route: route.continue_()
                      if route.request.url.startswith(origin) else route.abort())
        page.goto(url)
        opened.append(p)
        return p

    yield open_
    for p in opened:
        p.page.context.close()


def _message(page: Any, pattern: str) -> str:
    locator = page.locator("[data-testid=share-message]")
    page.wait_for_function("(re) => new RegExp(re).test(document.querySelector("
                           "'[data-testid=share-message]')?.textContent ?? '')", arg=pattern,
                           timeout=15_000)
    return str(locator.inner_text())


def _canvas(page: Any) -> np.ndarray:
    d = page.evaluate("""() => { const c = medpassLib.ui.app.screen().viewport.canvas;
      const x = c.getContext('2d').getImageData(0, 0, c.width, c.height);
      return {w: c.width, h: c.height, px: Array.from(x.data)}; }""")
    return np.array(d["px"], dtype=np.uint8).reshape(d["h"], d["w"], 4)


def _swipe(page: Any, down: float) -> None:
    """One finger dragged `down` CSS px over the image (Chrome's touch events, through CDP)."""
    box = page.locator(".viewport-canvas").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.08
    cdp = page.context.new_cdp_session(page)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    steps = 12
    for k in range(1, steps + 1):
        cdp.send("Input.dispatchTouchEvent",
                 {"type": "touchMove", "touchPoints": [{"x": x, "y": y + down * k / steps}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


def _as_the_gateway_allows(gateway: FakeGateway) -> None:
    """Every DICOMweb request the page made is one the real gateway passes on unchanged."""
    for path, query in gateway.dicomweb_requests():
        assert set(query) <= _QUERY_NAMES | {"StudyInstanceUID"} if path == "studies" \
            else set(query) <= _QUERY_NAMES, (path, query)
        if path != "studies":
            m = re.fullmatch(rf"studies/({_UID})(.*)", path)
            assert m is not None and _STUDY_TAIL.fullmatch(m[2]), path


def test_passcode_first_image_swipe_and_translation(phone: Any, gateway: FakeGateway,
                                                   data: Data) -> None:
    share = gateway.add(FakeShare(new_share_id(), [data.study], passcode=PASSCODE,
                                  manifest=data.manifest, manifest_jws=data.jws))
    p = phone(gateway.url(share.id))
    page = p.page
    page.locator("#passcode").wait_for(timeout=15_000)
    page.locator("#passcode").fill("000000")
    page.locator("#passcode").press("Enter")
    assert "Tries left: 4" in _message(page, "Tries left")
    # The same words in Chinese after the switch.
    page.locator("[data-testid=language]").click()
    assert "剩余尝试次数：4" in page.locator("[data-testid=share-message]").inner_text()
    page.locator("[data-testid=language]").click()

    gateway.requests.clear()
    page.locator("#passcode").fill(PASSCODE)
    started = time.monotonic()
    page.locator("#passcode").press("Enter")
    page.wait_for_function("() => medpassLib.ui.app?.screen()?.viewport?.frame != null",
                           timeout=30_000)
    first_image = time.monotonic() - started
    t = page.evaluate("() => medpassLib.share.state.timings")
    fetched = page.evaluate("() => medpassLib.share.state.source.stats")
    print(f"\nfirst image of a {SLICES}-slice 512x512 CT: {first_image:.3f} s after the passcode"
          f" (page: {(t['firstImage'] - t['share']) / 1000:.3f} s after /api/share);"
          f" {fetched['instances']} instances fetched by then")
    assert first_image < FIRST_IMAGE_BUDGET
    assert fetched["instances"] < SLICES / 4  # not the whole stack before the first image

    # The image: many distinct values, the patient's name in both scripts.
    page.wait_for_timeout(300)
    before = _canvas(page)
    assert len(np.unique(before[..., 0])) > 50
    assert "李华" in page.locator("[data-testid=patient-name]").first.inner_text()
    assert page.locator("[data-testid=overlay-slice]").inner_text().endswith(f"1/{SLICES}")

    # A swipe down goes forward through the stack: 40 slices at 12 px a slice, past the
    # phantom's next section (write_study changes its picture every SLICES/8 slices).
    _swipe(page, 480)
    page.wait_for_function("() => { const v = medpassLib.ui.app.screen().viewport;"
                           " return v.index > 0 && v.frame != null; }", timeout=15_000)
    page.wait_for_timeout(300)
    index = page.evaluate("() => medpassLib.ui.app.screen().viewport.index")
    assert index >= SLICES // 8
    assert page.evaluate("() => medpassLib.ui.app.screen().viewport.img.header.instanceNumber")\
        == index + 1
    overlay = page.locator("[data-testid=overlay-slice]").inner_text()
    assert overlay.endswith(f"{index + 1}/{SLICES}")
    assert np.abs(_canvas(page).astype(int) - before.astype(int)).sum() > 0

    # The Chinese original and its certified English translation, labelled, as PDFs.
    page.wait_for_function("() => document.querySelectorAll('.reports iframe').length === 2",
                           timeout=15_000)
    labels = page.locator("[data-testid=report-label]").all_inner_texts()
    assert labels[0].startswith("Original report (Chinese)")
    assert labels[1].startswith("Certified English translation of") and "Wang Fang" in labels[1]
    head = page.evaluate("""async () => { const f = document.querySelectorAll('.reports iframe')[1];
      const b = await (await fetch(f.src)).arrayBuffer();
      return new TextDecoder().decode(new Uint8Array(b).slice(0, 5)); }""")
    assert head == "%PDF-"

    # Custody: signed, from the kiosk; the download link; the gateway's routes only.
    banner = page.locator("[data-testid=custody][data-state=verified]")
    banner.wait_for(timeout=15_000)
    assert "desk-07" in banner.inner_text()
    assert page.locator("[data-testid=download]").get_attribute("href") == f"/s/{share.id}/download"
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"]
    _as_the_gateway_allows(gateway)
    assert p.outside() == []
    # Chromium logs every 4xx: the two 401s are the contract's answers (no cookie yet, the
    # wrong passcode), nothing else may fail.
    expected = "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
    errors = [e for e in p.console_errors if e not in PDF_VIEWER_ERRORS]
    assert errors == [expected, expected]
    problems = page.evaluate("() => medpassLib.share.state.source.custody.summary().problems")
    assert problems == []


def test_a_locked_link_says_so(phone: Any, gateway: FakeGateway, data: Data) -> None:
    share = gateway.add(FakeShare(new_share_id(), [data.study], passcode=PASSCODE,
                                  attempts_left=1))
    p = phone(gateway.url(share.id))
    page = p.page
    page.locator("#passcode").fill("111111")
    page.locator("#passcode").press("Enter")
    assert "Tries left: 0" in _message(page, "Tries left")
    page.locator("#passcode").fill(PASSCODE)  # right, but too late
    page.locator("#passcode").press("Enter")
    assert "locked" in _message(page, "locked")
    page.locator("[data-testid=language]").click()
    assert "链接已锁定" in page.locator("[data-testid=share-message]").inner_text()
    assert page.locator("#passcode").count() == 0
    assert p.outside() == []


def test_a_link_that_expires_while_open_says_so(phone: Any, gateway: FakeGateway,
                                                 data: Data) -> None:
    share = gateway.add(FakeShare(new_share_id(), [data.study], passcode=PASSCODE))
    p = phone(gateway.url(share.id))
    page = p.page
    page.locator("#passcode").wait_for(timeout=15_000)
    share.expires = time.time() - 1
    page.locator("#passcode").fill(PASSCODE)
    page.locator("#passcode").press("Enter")
    assert "This link has expired." in _message(page, "expired")
    page.locator("[data-testid=language]").click()
    assert "此链接已过期" in page.locator("[data-testid=share-message]").inner_text()


def test_a_tampered_manifest_shows_the_warning(phone: Any, gateway: FakeGateway,
                                               data: Data) -> None:
    edited = deepcopy(data.manifest)
    edited["files"][0]["sha256"] = "0" * 64  # what a changed image would need to pass
    share = gateway.add(FakeShare(new_share_id(), [data.study], manifest=edited,
                                  manifest_jws=data.jws))
    p = phone(gateway.url(share.id))  # no passcode: straight to the images
    page = p.page
    banner = page.locator("[data-testid=custody][data-state=warning]")
    banner.wait_for(timeout=30_000)
    assert "MANIFEST.JWS" in banner.inner_text()
    page.wait_for_function("() => medpassLib.ui.app?.screen()?.viewport?.frame != null",
                           timeout=30_000)
    # The first image, whose hash the edited manifest gives wrongly, is named too.
    page.wait_for_function("() => medpassLib.share.state.source.custody.summary().problems"
                           ".some(p => p.problem === 'changed')", timeout=15_000)
    assert "PT000000/ST000000/SE000000/IM000000" in banner.inner_text()


def test_a_share_without_a_manifest_is_unsigned(phone: Any, gateway: FakeGateway,
                                               data: Data) -> None:
    unsigned = gateway.add(FakeShare(new_share_id(), [data.study]))
    page = phone(gateway.url(unsigned.id)).page
    page.locator("[data-testid=custody][data-state=unsigned]").wait_for(timeout=30_000)
