"""The doctor's walk on real exports, in Chromium from file:// with every request blocked: pick
the archive (all its parts), type the slip's passphrase, see the studies with thumbnails,
scroll, window, read the reports, and the verified banner with the kiosk's fingerprint; on a
desktop and on a phone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kiosk.service import KioskService
from tests.conftest import PYDICOM_FILES
from tests.package_kit import Package, edit_manifest, export_sample
from tests.viewer.browser_kit import PHONE, OpenedPage, close, open_page
from tests.viewer.test_ui_viewer import PDF_VIEWER_ERRORS, network, wait_drawn


def unlock(opened: OpenedPage, files: list[Path], passphrase: str) -> None:
    """What the doctor does on the first screen."""
    page = opened.page
    page.locator("#archive").set_input_files([str(p) for p in files])
    page.locator("#passphrase").fill(passphrase)
    page.locator("#passphrase").press("Enter")
    page.wait_for_function("() => { const v = globalThis.medpassLib.ui.app.screen()?.viewport;"
                           " return v && v.frame !== null; }", timeout=30_000)


def canvas(page: Any) -> np.ndarray:
    data = page.evaluate("""() => { const c = medpassLib.ui.app.screen().viewport.canvas;
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height);
      return {w: c.width, h: c.height, px: Array.from(d.data)}; }""")
    return np.array(data["px"], dtype=np.uint8).reshape(data["h"], data["w"], 4)


def banner(page: Any, state: str) -> str:
    locator = page.locator(f"[data-testid=custody][data-state={state}]")
    locator.wait_for(timeout=30_000)
    return str(locator.inner_text())


def finish(opened: OpenedPage) -> None:
    assert network(opened) == []
    assert [e for e in opened.console_errors if e not in PDF_VIEWER_ERRORS] == []
    close(opened)


def test_the_sample_disc_on_a_desktop(viewer_browser: Any, service: KioskService,
                                      tmp_path: Path) -> None:
    package = export_sample(service, tmp_path, ct_slices=6, size=96, reports=True)
    opened = open_page(viewer_browser)
    page = opened.page
    try:
        # Everything in the folder picked at once, as a doctor would.
        unlock(opened, sorted(package.folder.iterdir()), package.passphrase)
        assert "李华" in page.locator("[data-testid=patient-name]").first.inner_text()
        assert page.locator("button.series").count() >= 2  # CT and CR
        page.wait_for_function("() => document.querySelector('canvas.thumb')"
                               "?.dataset.drawn === 'true'", timeout=30_000)
        text = banner(page, "verified")  # the layout is settled once the check is done
        wait_drawn(page)
        before = canvas(page)
        page.locator(".viewport").focus()
        page.keyboard.press("ArrowDown")
        page.wait_for_function("() => medpassLib.ui.app.screen().viewport.index === 1"
                               " && medpassLib.ui.app.screen().viewport.frame !== null")
        wait_drawn(page)
        assert "2/" in page.locator("[data-testid=overlay-slice]").inner_text()
        scrolled = canvas(page)
        assert np.abs(scrolled.astype(int) - before.astype(int)).sum() > 0
        for _ in range(5):  # window/level from the keyboard: narrower, brighter
            page.keyboard.press("Control+ArrowUp")
            page.keyboard.press("Control+ArrowRight")
        wait_drawn(page)
        assert np.abs(canvas(page).astype(int) - scrolled.astype(int)).sum() > 0
        # The original and its certified translation beside the images, labelled, as PDFs.
        labels = page.locator("[data-testid=report-label]").all_inner_texts()
        manifest = json.loads(package.entries()["MANIFEST.JSON"])
        [original] = [r for r in manifest["reports"] if r["role"] == "original"]
        [translation] = [r for r in manifest["reports"] if r["role"] == "translation"]
        assert translation["translates"] == original["file"]
        assert len(labels) == 2 and labels[0].startswith("Original report (Chinese)")
        assert labels[1].startswith("Certified English translation of") and "Wang Fang" in labels[1]
        frames = page.evaluate("() => Array.from(document.querySelectorAll('.reports iframe'),"
                               " f => f.src)")
        assert len(frames) == 2 and all(f.startswith("blob:") for f in frames)
        assert "Verified: 8 images, the original report, its certified translation" in text
        assert service.manifest_signer.fingerprint in text
        assert f"from kiosk {manifest['kiosk_id']}" in text
    finally:
        finish(opened)


def test_a_split_package_on_a_phone(viewer_browser: Any, service: KioskService,
                                    tmp_path: Path) -> None:
    package = export_sample(service, tmp_path, ct_slices=12, size=96, split_size=64 << 10)
    assert len(package.volumes()) >= 3
    opened = open_page(viewer_browser, viewport=PHONE)
    page = opened.page
    try:
        unlock(opened, package.volumes()[::-1], package.passphrase)
        banner(page, "verified")
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= PHONE["width"]  # never a sideways scroll on a phone
    finally:
        finish(opened)


def test_a_wrong_passphrase_then_the_right_one(viewer_browser: Any, service: KioskService,
                                               tmp_path: Path) -> None:
    package = export_sample(service, tmp_path)
    opened = open_page(viewer_browser)
    page = opened.page
    try:
        page.locator("#archive").set_input_files([str(package.folder / "IMAGES.zip")])
        page.locator("#passphrase").fill("AAAA-BBBB-CCCC-DDDD-EEEE")
        page.locator("#passphrase").press("Enter")
        message = page.locator("[data-testid=unlock-message]")
        message.wait_for()
        assert "passphrase" in message.inner_text()
        unlock(opened, [package.folder / "IMAGES.zip"], package.passphrase)
    finally:
        finish(opened)


def test_a_tampered_manifest_turns_the_banner_red(viewer_browser: Any, service: KioskService,
                                                  tmp_path: Path) -> None:
    package = export_sample(service, tmp_path)

    edit_manifest(package, created="2020-01-01T00:00:00Z")
    opened = open_page(viewer_browser)
    try:
        unlock(opened, [package.folder / "IMAGES.zip"], package.passphrase)
        text = banner(opened.page, "warning")
        assert "MANIFEST.JWS" in text
    finally:
        finish(opened)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_multi_patient_disc_filed_as_one_person(viewer_browser: Any, service: KioskService,
                                                  tmp_path: Path, lang: str) -> None:
    """pydicom's two-patient DICOMDIR test disc, confirmed as one person at the desk."""
    disc = tmp_path / "cd"
    shutil.copytree(PYDICOM_FILES / "dicomdirtests" / "77654033", disc / "77654033")
    shutil.copytree(PYDICOM_FILES / "dicomdirtests" / "98892003", disc / "98892003")
    imported = service.import_path(disc)
    service.file_by_patient(imported, prior=[], same_person=True)
    stick = tmp_path / "stick"
    stick.mkdir()
    report = service.export_case(imported["case_id"], stick)
    package = Package(Path(report["folder"]), report["passphrase"], imported["case_id"])
    opened = open_page(viewer_browser)
    page = opened.page
    try:
        if lang == "zh":
            page.locator("[data-testid=language]").click()
        unlock(opened, [package.folder / "IMAGES.zip"], package.passphrase)
        assert page.locator("[data-testid=patient-name]").count() == 2
        text = banner(page, "verified")
        assert ("已核验：" if lang == "zh" else "Verified: ") in text
    finally:
        finish(opened)


def test_an_unencrypted_copy_opens_from_its_folder_without_a_passphrase(
        viewer_browser: Any, service: KioskService, tmp_path: Path) -> None:
    package = export_sample(service, tmp_path, reports=True, encrypt=False)
    assert (package.folder / "OPEN_IMAGES.html").is_file()
    opened = open_page(viewer_browser)
    page = opened.page
    try:
        page.locator("#folder").set_input_files(str(package.folder))
        assert page.locator("#passphrase").is_hidden()  # nothing to type
        assert page.evaluate("() => document.activeElement.id") == "open"
        page.keyboard.press("Enter")
        page.wait_for_function("() => { const v = globalThis.medpassLib.ui.app.screen()?.viewport;"
                               " return v && v.frame !== null; }", timeout=30_000)
        text = banner(page, "verified")
        assert "Verified: 6 images, the original report, its certified translation" in text
        assert page.locator("[data-testid=report-label]").count() == 2
    finally:
        finish(opened)


def test_a_changed_file_in_an_unencrypted_copy_is_named(
        viewer_browser: Any, service: KioskService, tmp_path: Path) -> None:
    package = export_sample(service, tmp_path, encrypt=False)
    image = sorted(p for p in (package.folder / "PT000000").rglob("*") if p.is_file())[-1]
    image.write_bytes(image.read_bytes()[:-2] + b"\0\0")
    opened = open_page(viewer_browser)
    try:
        opened.page.locator("#folder").set_input_files(str(package.folder))
        opened.page.locator("#open").click()
        text = banner(opened.page, "warning")
        assert image.relative_to(package.folder).as_posix() in text
    finally:
        finish(opened)
