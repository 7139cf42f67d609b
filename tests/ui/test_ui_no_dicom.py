"""The desk on a hospital medium of pictures and a viewer: what is there, and what to ask for."""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot

from kiosk.media.medium import MediumKind, Role
from tests.ingest.test_no_dicom import _picture_disc
from tests.ui_kit import Desk, run, screen_text, wait_for, wait_screen


def test_a_stick_of_pictures_says_in_both_languages_to_ask_for_a_dicom_export(
        desk: Desk, tmp_path: Path) -> None:
    pictures = _picture_disc(tmp_path / "pictures")
    app = desk.app()

    async def script(pilot: Pilot[None]) -> None:
        await wait_screen(pilot, "HomeScreen")
        # The coordinator says it is the hospital's medium (the role check cannot know).
        desk.watcher.insert(pictures, kind=MediumKind.USB, role_hint=Role.SOURCE,
                            label="HOSPITAL")
        await wait_screen(pilot, "ErrorDialog", timeout=30)
        text = " ".join(screen_text(app).split())
        assert "No images found" in text
        assert "4 picture(s)" in text and "DICOM export" in text
        await pilot.press("f2")
        await wait_for(pilot, lambda: "DICOM 格式导出" in screen_text(app))
        assert "4 张图片" in screen_text(app)
        await pilot.press("enter")
        await wait_screen(pilot, "HomeScreen")

    run(app, script)
