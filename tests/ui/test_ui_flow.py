"""The desk flow end to end, by keyboard: disc in → review → case → stick → QR → Home again."""

from __future__ import annotations

import zipfile

from textual.pilot import Pilot

from tests.ui_kit import (
    Desk,
    run,
    screen_text,
    wait_for,
    wait_screen,
)


def test_a_coordinator_walks_one_patient_through_by_keyboard_alone(desk: Desk) -> None:
    desk.service.links.minter.passcode = True  # type: ignore[attr-defined] # [link] passcode
    app = desk.app()
    seen: dict[str, str] = {}

    async def script(pilot: Pilot[None]) -> None:
        await wait_screen(pilot, "HomeScreen")
        desk.insert_disc()  # the hospital CD goes into the drive: the import starts by itself
        review = await wait_screen(pilot, "ReviewScreen")
        text = screen_text(app)
        assert "✓ All 22 images copied and verified" in text
        assert "Li Hua 李华" in text and "SZ20261127001" in text and "born 1985-03-14" in text
        assert "3 not DICOM (ignored)" in text
        case_id = review.report["case_id"]

        await pilot.press("enter")
        case = await wait_screen(pilot, "CaseScreen")
        await wait_for(pilot, lambda: case.detail is not None)
        assert app.screen.check_action("leave", ("export",)) is None  # not before the identity
        await pilot.press("c")
        dialog = await wait_screen(pilot, "IdentityDialog")
        dob = dialog.query_one("#id-dob")
        dob.value = "1985-02-30"
        await pilot.press("enter")
        assert "YYYY-MM-DD" in screen_text(app)  # the facade's words, under the fields
        dob.value = "1985-03-14"
        await pilot.press("enter")
        await wait_screen(pilot, "CaseScreen")
        await wait_for(pilot, lambda: case.confirmed)
        assert "✓ Confirmed: LI HUA, born 1985-03-14" in screen_text(app)

        await pilot.press("e")
        export = await wait_screen(pilot, "ExportScreen")
        assert "Insert the patient's own USB stick" in screen_text(app)
        await pilot.press("s")  # the demo key: the patient's stick goes in
        await wait_for(pilot, lambda: export.state == "ready")
        text = screen_text(app)
        assert "PATIENT" in text and "free" in text and "22 images" in text
        await pilot.press("enter")
        done = await wait_screen(pilot, "DoneScreen", timeout=60)
        await wait_for(pilot, lambda: done.link is not None)
        seen["passphrase"] = done.passphrase or ""
        seen["link"] = done.link.url
        text = screen_text(app)
        assert seen["passphrase"] in text and seen["link"] in text
        assert "Shown only now" in text
        code = done.link.passcode
        assert code and f"Link passcode: {code[:3]} {code[3:]}" in text
        assert code not in seen["link"]

        await pilot.press("enter")
        await wait_screen(pilot, "HomeScreen")
        home = app.screen
        await wait_for(pilot, lambda: home.cases)
        # Idle: the case number is listed, nothing about the patient is on screen.
        svg = app.export_screenshot()
        assert case_id in svg
        for private in ("Li Hua", "李华", "1985", "SZ20261127001", seen["passphrase"]):
            assert private not in svg

    run(app, script)
    folders = [p for p in desk.stick.iterdir() if p.name.startswith("MEDPASS_")]
    assert len(folders) == 1 and not folders[0].name.endswith("INCOMPLETE")
    archive = next(folders[0].glob("*.zip"))
    with zipfile.ZipFile(archive) as z:  # AES entries: listed without the passphrase
        assert "DICOMDIR" in z.namelist()
    assert desk.service.case_link(desk.service.case_summaries()[0]["case_id"]).url == seen["link"]


def test_one_key_switches_every_screen_between_english_and_chinese(desk: Desk) -> None:
    app = desk.app()

    async def script(pilot: Pilot[None]) -> None:
        await wait_screen(pilot, "HomeScreen")
        assert "Insert the hospital disc or USB stick" in screen_text(app)
        await pilot.press("f2")
        assert "请插入医院光盘或U盘" in screen_text(app)
        assert "F2" in screen_text(app) and "English" in screen_text(app)  # the key bar too
        desk.insert_disc()
        await wait_screen(pilot, "ReviewScreen")
        assert "✓ 全部 22 张影像已复制并校验" in screen_text(app)
        await pilot.press("f")  # the file list dialog follows the language
        await wait_screen(pilot, "FileListDialog")
        assert "未导入的文件" in screen_text(app)
        await pilot.press("f2")
        assert "Files not imported" in screen_text(app)
        assert "VIEWER/VIEWER.EXE" in screen_text(app)

    run(app, script)
