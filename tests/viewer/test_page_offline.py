"""OPEN_IMAGES.html is one self-contained file that never reaches the network."""

from __future__ import annotations

import re
from typing import Any

from kiosk.viewer import DIST, LICENSES_NAME
from tests.viewer.browser_kit import close, open_page, opener_path


def test_the_page_is_one_file_under_the_budget_with_no_external_reference() -> None:
    html = opener_path().read_text(encoding="utf-8")
    assert len(html.encode()) <= 3_000_000
    # No src=/href= to anything but blob:/data:/fragments: the page must not need its siblings.
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"'#][^"']*)["']""", html)
    assert [r for r in refs if not r.startswith(("blob:", "data:"))] == []
    assert "default-src 'none'" in html


def test_the_page_loads_offline_and_makes_no_request(viewer_browser: Any) -> None:
    opened = open_page(viewer_browser)
    try:
        assert opened.page.evaluate("() => typeof globalThis.medpassLib.dicom") == "object"
        assert opened.outside_requests() == []
        assert opened.console_errors == []
    finally:
        close(opened)


def test_licences_list_only_permissive_licences() -> None:
    text = (DIST / LICENSES_NAME).read_text(encoding="utf-8")
    assert "GPL" not in text.replace("LGPL", "")  # dwv and friends stay off the stick
