"""The unlock screen in Chromium: choosing the archive's parts (missing ones named), the slip's
passphrase, a wrong passphrase in both languages with the field kept, progress while opening,
then the viewer. The zip reader is stood in for by a stub with docs/viewer.md's interface
(describeFiles, openPackage, PackageError) until source/zip lands; the walk on a real export
replaces it then."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.viewer.browser_kit import OpenedPage, close, open_page, to_page
from tests.viewer.test_ui_viewer import PDF_VIEWER_ERRORS, ct_slice, network

PASSPHRASE = "K7QM-4XRT-9HWC-PN3E-Z5YB"

# A stand-in for source/zip: parts by name, the passphrase compared, progress reported, and
# the opened "package" an in-memory Source. It records what it was given.
_STUB = """
([pass]) => {
  const ui = globalThis.medpassLib.ui;
  const calls = globalThis.stubCalls = [];
  let release = null;
  globalThis.stubHold = false;
  globalThis.stubRelease = () => release && release();
  const describeFiles = (files) => {
    const parts = files.map(f => f.name).filter(n => /^IMAGES\\.zip(\\.\\d{3})?$/.test(n)).sort();
    const missing = [];
    const numbered = parts.filter(n => /\\.\\d{3}$/.test(n)).map(n => +n.slice(-3));
    for (let i = 1; i < Math.max(0, ...numbered); i++) {
      const name = `IMAGES.zip.${String(i).padStart(3, '0')}`;
      if (!parts.includes(name)) missing.push(name);
    }
    return { ok: parts.length > 0 && missing.length === 0, encrypted: true, parts, missing,
             message: parts.length ? null : { en: 'There is no IMAGES.zip among these files.',
                                              zh: '这些文件中没有 IMAGES.zip。' } };
  };
  const openPackage = async (files, passphrase, { onProgress }) => {
    calls.push({ names: files.map(f => f.name), passphrase });
    onProgress({ done: 1, total: 2 });
    if (globalThis.stubHold) await new Promise(r => { release = r; });
    if (passphrase !== pass) {
      const e = new Error('wrong passphrase');
      e.code = 'wrong-passphrase';
      e.message = { en: 'Wrong passphrase (zip).', zh: '密码错误（zip）。' };
      throw e;
    }
    return new ui.MemorySource({ instances: { IM0: globalThis.inst0 },
                                 custody: { state: 'checking', checked: 0, total: 3 } });
  };
  ui.app.unlock({ describeFiles, openPackage });
}
"""


@pytest.fixture
def opened(viewer_browser: Any) -> Iterator[OpenedPage]:
    """The unlock screen with the stub reader; nothing reaches the network."""
    page = open_page(viewer_browser)
    to_page(page.page, ct_slice(0), "inst0")
    page.page.evaluate(_STUB, [PASSPHRASE])
    yield page
    assert network(page) == []
    assert [e for e in page.console_errors if e not in PDF_VIEWER_ERRORS] == []
    close(page)


def files(*names: str) -> list[dict[str, Any]]:
    return [{"name": n, "mimeType": "application/octet-stream", "buffer": b"x" * 10} for n in names]


def test_the_page_opens_on_the_unlock_screen_explaining_what_to_choose(viewer_browser: Any) -> None:
    opened = open_page(viewer_browser)
    try:
        page = opened.page
        assert page.locator("h1").inner_text() == "Open the images on this stick"
        hint = page.locator(".hint").first.inner_text()
        assert "IMAGES.zip" in hint and "IMAGES.zip.001, .002" in hint
        # Without the zip reader (not yet in this build, or broken) the page says so in words.
        page.locator("#passphrase").fill(PASSPHRASE)
        page.locator("#open").click()
        message = page.locator("[data-testid=unlock-message]").inner_text()
        assert message in ("This page cannot open archives (its archive reader is missing).",
                           "Choose the archive first.")
    finally:
        close(opened)


def test_missing_parts_are_named_before_the_passphrase(opened: OpenedPage) -> None:
    page = opened.page
    page.locator("#archive").set_input_files(files("IMAGES.zip.003", "README.TXT", "IMAGES.zip.001",
                                                   "OPEN_IMAGES.html"))
    chosen = page.locator("[data-testid=chosen]")
    assert chosen.inner_text() == ("Chosen: IMAGES.zip.001, IMAGES.zip.003 "
                                   "Missing: IMAGES.zip.002. Choose all the parts together.")
    assert chosen.get_attribute("data-ok") == "false"
    page.locator("[data-testid=language]").click()
    assert "缺少：IMAGES.zip.002" in chosen.inner_text()
    page.locator("#archive").set_input_files(files("README.TXT"))
    assert chosen.inner_text() == "这些文件中没有 IMAGES.zip。"


def test_dropped_files_count_like_picked_ones(opened: OpenedPage) -> None:
    page = opened.page
    page.evaluate("""() => { const dt = new DataTransfer();
      for (const n of ['IMAGES.zip.002', 'IMAGES.zip.001']) dt.items.add(new File(['x'], n));
      document.querySelector('.unlock').dispatchEvent(new DragEvent('drop', { dataTransfer: dt,
        bubbles: true, cancelable: true })); }""")
    chosen = page.locator("[data-testid=chosen]")
    assert chosen.inner_text() == "Chosen: IMAGES.zip.001, IMAGES.zip.002"
    assert chosen.get_attribute("data-ok") == "true"
    # The passphrase field is next: the doctor can type at once.
    assert page.evaluate("() => document.activeElement.id") == "passphrase"


def test_a_wrong_passphrase_says_so_and_keeps_the_field(opened: OpenedPage) -> None:
    page = opened.page
    page.locator("#archive").set_input_files(files("IMAGES.zip"))
    field = page.locator("#passphrase")
    field.fill("K7QM-4XRT-9HWC-PN3E-Z5YA")
    field.press("Enter")
    message = page.locator("[data-testid=unlock-message]")
    message.wait_for()
    assert message.inner_text() == ("The passphrase does not open this archive. Check it against "
                                    "the slip and try again (letters and digits, with dashes).")
    assert field.input_value() == "K7QM-4XRT-9HWC-PN3E-Z5YA"
    assert page.evaluate("() => document.activeElement.id") == "passphrase"
    page.locator("[data-testid=language]").click()
    assert message.inner_text().startswith("密码无法打开此压缩包")
    assert page.locator("#open").inner_text() == "打开"


def test_the_slip_passphrase_opens_typed_loosely_with_progress(opened: OpenedPage) -> None:
    page = opened.page
    page.locator("#archive").set_input_files(files("IMAGES.zip"))
    # Typed in lower case, without dashes, with a space: the slip's form is what is tried.
    page.locator("#passphrase").fill("k7qm4xrt 9hwcpn3ez5yb")
    page.evaluate("() => { globalThis.stubHold = true; }")
    page.keyboard.press("Tab")  # to Show
    page.keyboard.press("Tab")  # to Open: the whole screen works from the keyboard
    assert page.evaluate("() => document.activeElement.id") == "open"
    page.keyboard.press("Enter")
    page.wait_for_function("() => globalThis.stubCalls.length === 1")
    assert page.locator("progress.opening").is_visible()
    assert page.locator(".progress-text").inner_text() == "Opening… 50%"
    assert page.locator("#open").is_disabled()
    page.evaluate("() => globalThis.stubRelease()")
    page.locator("button.series").first.wait_for()
    assert page.evaluate("() => globalThis.stubCalls[0].passphrase") == PASSPHRASE
    assert page.locator("[data-testid=custody]").get_attribute("data-state") == "checking"
    assert page.locator("#passphrase").count() == 0  # the unlock screen (and the passphrase) gone


def test_show_reveals_the_passphrase(opened: OpenedPage) -> None:
    page = opened.page
    field = page.locator("#passphrase")
    assert field.get_attribute("type") == "password"
    page.get_by_role("button", name="Show").click()
    assert field.get_attribute("type") == "text"
    assert page.get_by_role("button", name="Hide").get_attribute("aria-pressed") == "true"
