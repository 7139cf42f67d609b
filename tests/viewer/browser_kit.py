"""A real browser for the viewer's tests: Debian's chromium driven by Playwright, offline.

``viewer_browser`` (session) launches ``/usr/bin/chromium`` headless with ``executable_path``
(never ``playwright install``, which downloads a browser). :func:`open_page` opens a page in a
fresh context that aborts every request but the page itself and records them all, so a test can
assert that OPEN_IMAGES.html never reaches the network. Where chromium or Playwright is missing
the tests skip with a reason (``.ci/install`` installs both).
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kiosk.viewer import DIST, OPENER_NAME

CHROMIUM = "/usr/bin/chromium"
PHONE = {"width": 412, "height": 915}
DESKTOP = {"width": 1280, "height": 800}
# The flags that keep Chromium off this machine's closed network (DESIGN.md §6).
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions"]


def opener_path() -> Path:
    """The built OPEN_IMAGES.html; skip when the install did not build it."""
    path = DIST / OPENER_NAME
    if not path.is_file():
        pytest.skip(f"{path} is not built (bash kiosk/viewer/build)")
    return path


@pytest.fixture(scope="session")
def viewer_browser() -> Iterator[Any]:
    """One headless chromium for the session."""
    if shutil.which(CHROMIUM) is None:
        pytest.skip("Debian's chromium is not installed (.ci/install installs it)")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="Playwright is not installed (pip install -e '.[test]')")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class OpenedPage:
    """A page and every request it made beyond loading itself (all aborted)."""

    page: Any
    url: str
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def outside_requests(self) -> list[str]:
        """Requests other than the page itself, in-page blob:/data: URLs and the browser's own
        resources (chrome://, e.g. its PDF viewer's, which never leave the machine)."""
        return [u for u in self.requests
                if u.split("#")[0] != self.url
                and not u.startswith(("blob:", "data:", "chrome://", "chrome-extension://"))]


def open_page(browser: Any, path: Path | None = None, *, viewport: dict[str, int] | None = None,
              wait_for_lib: bool = True) -> OpenedPage:
    """Open ``path`` (default: the built opener) from ``file://`` with the network cut off."""
    target = (path or opener_path()).resolve()
    url = target.as_uri()
    context = browser.new_context(viewport=viewport or DESKTOP, accept_downloads=True,
                                  service_workers="block")
    page = context.new_page()
    opened = OpenedPage(page=page, url=url)
    page.on("request", lambda req: opened.requests.append(req.url))
    page.on("console", lambda msg: opened.console_errors.append(msg.text)
            if msg.type == "error" else None)
    page.on("pageerror", lambda exc: opened.console_errors.append(str(exc)))

    def only_the_page(route: Any) -> None:
        if route.request.url.split("#")[0] == url:
            route.continue_()
        else:
            route.abort()

    context.route("**/*", only_the_page)
    page.goto(url)
    if wait_for_lib:
        page.wait_for_function("() => globalThis.medpassLib !== undefined", timeout=15_000)
    return opened


def to_page(page: Any, data: bytes, name: str = "bytes") -> str:
    """Put ``data`` into the page as ``globalThis[name]`` (an ArrayBuffer); return that name."""
    page.evaluate("([n, b64]) => { const s = atob(b64); const a = new Uint8Array(s.length);"
                  " for (let i = 0; i < s.length; i++) a[i] = s.charCodeAt(i);"
                  " globalThis[n] = a.buffer; }", [name, base64.b64encode(data).decode()])
    return name


def close(opened: OpenedPage) -> None:
    """Close the page's context."""
    opened.page.context.close()
