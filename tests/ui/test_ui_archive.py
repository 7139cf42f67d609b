"""Encrypted zips on a hospital medium, at the desk: the Review says so and asks the password.

The disc holds one loose image and a 7-Zip AES archive (pydicom's test files in it). Driven by
the keyboard alone through Textual's pilot: the notice in English and Chinese, a wrong password
(asked again, nothing lost), the right one (the rest is added to the same case, nothing copied
twice); and a medium holding nothing but the encrypted archive, where the password is asked for
before there is anything to review.
"""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot

from tests.sources.zip_kit import dicom_bytes, seven_zip, tree_of
from tests.ui_kit import Desk, run, screen_text, wait_for, wait_screen

CT, MR, PLAN = (dicom_bytes(n) for n in ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm"))
PASSWORD = "19800131"


def _disc(tmp_path: Path, *, loose: bool) -> Path:
    tree = tree_of(tmp_path / "tree", {"IMG/CT": CT, "IMG/MR": MR})
    disc = tmp_path / "disc"
    disc.mkdir()
    seven_zip(disc / "CLOUD_FILM.zip", tree, password=PASSWORD, encryption="AES256")
    if loose:
        (disc / "PLAN.dcm").write_bytes(PLAN)
    return disc


async def _type(pilot: Pilot[None], text: str) -> None:
    await pilot.press(*text)
    await pilot.press("enter")


def _keys(app: object) -> str:
    return str(app.screen.query_one("#keybar").render())  # type: ignore[attr-defined]


def test_review_asks_the_password_and_imports_the_rest_into_the_same_case(
        desk: Desk, tmp_path: Path) -> None:
    disc = _disc(tmp_path, loose=True)
    app = desk.app()

    async def script(pilot: Pilot[None]) -> None:
        await wait_screen(pilot, "HomeScreen")
        desk.insert_disc(disc, label="HOSPITAL")
        review = await wait_screen(pilot, "ReviewScreen")
        case_id = review.report["case_id"]
        text = screen_text(app)
        assert "2 file(s) in CLOUD_FILM.zip are encrypted and were not imported" in text
        assert "Press P" in text and "Archive password" in _keys(app)
        await pilot.press("f2")
        assert "CLOUD_FILM.zip 中有 2 个加密文件未导入：需要密码" in screen_text(app)
        assert "压缩包密码" in _keys(app)
        await pilot.press("f2")

        await pilot.press("p")
        dialog = await wait_screen(pilot, "ArchivePasswordDialog")
        assert "2 file(s) in CLOUD_FILM.zip are encrypted" in screen_text(app)
        await pilot.press("enter")  # nothing typed: asked to type it, no import
        assert "Type the password first." in screen_text(app)
        assert app.screen is dialog
        await _type(pilot, "19800113")  # a wrong one
        review = await wait_for(pilot, lambda: type(app.screen).__name__ == "ReviewScreen"
                                and app.screen is not review and app.screen)
        await pilot.pause(0.05)
        assert review.report["case_id"] == case_id
        assert review.report["instances"]["found"] == 1  # the loose image, still there
        assert "The password did not open 2 file(s) in CLOUD_FILM.zip" in screen_text(app)

        await pilot.press("p")
        await wait_screen(pilot, "ArchivePasswordDialog")
        assert "That password did not open them" in screen_text(app)
        await _type(pilot, PASSWORD)
        review = await wait_for(pilot, lambda: type(app.screen).__name__ == "ReviewScreen"
                                and app.screen is not review and app.screen)
        await pilot.pause(0.05)
        inst = review.report["instances"]
        assert (inst["found"], inst["imported"], inst["duplicates"]) == (3, 2, 1)
        assert review.report["case_id"] == case_id
        text = screen_text(app)
        assert "encrypted" not in text and "Archive password" not in _keys(app)
        assert "1 zip archive(s) on this medium: 2 image(s) imported from them." in text
        await pilot.press("enter")
        await wait_screen(pilot, "CaseScreen")

    run(app, script)
    detail = desk.service.case_detail(desk.service.case_summaries()[0]["case_id"])
    assert sum(s["instances"] for s in detail["studies"]) == 3


def test_a_medium_with_only_an_encrypted_archive_asks_before_review(desk: Desk,
                                                                   tmp_path: Path) -> None:
    disc = _disc(tmp_path, loose=False)
    app = desk.app()

    async def script(pilot: Pilot[None]) -> None:
        await wait_screen(pilot, "HomeScreen")
        desk.insert_disc(disc, label="EMAILED")
        await wait_screen(pilot, "ArchivePasswordDialog")
        await pilot.press("f2")
        assert "CLOUD_FILM.zip 中有 2 个文件已加密" in screen_text(app)
        await pilot.press("f2")
        first = app.screen
        await _type(pilot, "wrong")
        # Imported again, nothing opened: asked again, saying why.
        dialog = await wait_for(pilot, lambda: type(app.screen).__name__ ==
                                "ArchivePasswordDialog" and app.screen is not first
                                and app.screen)
        await pilot.pause(0.05)
        assert "That password did not open them" in screen_text(app)
        assert desk.service.case_summaries() == []  # nothing to make a case of yet
        assert dialog is app.screen
        await _type(pilot, PASSWORD)
        review = await wait_screen(pilot, "ReviewScreen")
        assert review.report["instances"]["verified"] == 2
        assert "✓ All 2 images copied and verified" in screen_text(app)

    run(app, script)


def test_going_on_without_the_password_leaves_the_desk_at_home(desk: Desk,
                                                              tmp_path: Path) -> None:
    disc = _disc(tmp_path, loose=False)
    app = desk.app()

    async def script(pilot: Pilot[None]) -> None:
        await wait_screen(pilot, "HomeScreen")
        desk.insert_disc(disc, label="EMAILED")
        await wait_screen(pilot, "ArchivePasswordDialog")
        await pilot.press("escape")
        await wait_screen(pilot, "HomeScreen")

    run(app, script)
    assert desk.service.case_summaries() == []
