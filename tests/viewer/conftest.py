"""Fixtures of the viewer's browser tests (see browser_kit)."""

from tests.viewer.browser_kit import viewer_browser  # noqa: F401 - session fixture: chromium
