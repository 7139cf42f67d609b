"""Each desk screen's behaviour, driven by keys and simulated media (Pilot, headless)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from kiosk.links.printer import DummyReceiptPrinter
from kiosk.media.medium import Role
from kiosk_tui.case import CaseScreen
from kiosk_tui.done import DoneScreen
from kiosk_tui.export import ExportScreen
from kiosk_tui.import_progress import ImportScreen
from kiosk_tui.reports import ReportsScreen
from tests.conftest import make_instance
from tests.ui_kit import (
    BIG_INSTANCES,
    Desk,
    open_pin_dialog,
    run,
    screen_text,
    wait_for,
    wait_screen,
)

# --- Home ----------------------------------------------------------------------------------


def test_home_sends_an_empty_stick_back_and_explains_a_medium_it_cannot_use(
        desk: Desk, tmp_path: Path) -> None:
    app = desk.app()
    odd = tmp_path / "odd"
    odd.mkdir()

    async def script(pilot: Pilot[None]) -> None:
        await wait_screen(pilot, "HomeScreen")
        desk.insert_stick()
        await wait_for(pilot, lambda: any(m.role is Role.TARGET for m in app.media))
        await pilot.pause(0.2)
        assert type(app.screen).__name__ == "HomeScreen"  # a stick first is not imported
        assert any("empty USB stick" in str(n.message) for n in app._notifications)
        desk.watcher.insert(odd, role_hint=Role.UNKNOWN, label="ODD")
        await wait_screen(pilot, "ErrorDialog")
        text = screen_text(app)
        assert "This medium cannot be used" in text and "ODD" in text
        await pilot.press("enter")
        await wait_screen(pilot, "HomeScreen")

    run(app, script)


def test_a_disc_already_in_the_drive_at_start_is_imported(desk: Desk) -> None:
    desk.insert_disc()  # inserted before the kiosk started
    app = desk.app()

    async def script(pilot: Pilot[None]) -> None:
        await wait_screen(pilot, "ReviewScreen")

    run(app, script)


def test_home_opens_a_case_from_todays_list(desk: Desk) -> None:
    case_id = desk.service.import_path(desk.disc)["case_id"]
    app = desk.app()

    async def script(pilot: Pilot[None]) -> None:
        home = await wait_screen(pilot, "HomeScreen")
        await wait_for(pilot, lambda: home.cases)
        await pilot.press("enter")
        case = await wait_screen(pilot, "CaseScreen")
        assert case.case_id == case_id

    run(app, script)


# --- Import and Review -----------------------------------------------------------------------


def test_an_import_can_be_cancelled_and_adds_nothing(desk: Desk, big_disc: Path) -> None:
    app = desk.app()

    async def script(pilot: Pilot[None]) -> None:
        await wait_screen(pilot, "HomeScreen")
        desk.insert_disc(big_disc, label="BIG")
        await wait_screen(pilot, "ImportScreen")
        await pilot.press("escape")
        await wait_screen(pilot, "ErrorDialog")
        assert "Import cancelled" in screen_text(app)
        await pilot.press("enter")
        await wait_screen(pilot, "HomeScreen")

    run(app, script)
    assert desk.service.case_summaries() == []


def test_import_progress_shows_files_megabytes_speed_and_the_current_path(
        desk: Desk, big_disc: Path) -> None:
    app = desk.app()

    async def script(pilot: Pilot[None]) -> None:
        app.push_screen(ImportScreen(path=big_disc, label="BIG"))
        screen = await wait_screen(pilot, "ImportScreen")
        await wait_for(pilot, lambda: screen.progress and screen.progress.phase == "copying"
                       and screen.progress.files_done > 10)
        text = screen_text(app)
        assert "Copying and checking images" in text
        assert f"of {BIG_INSTANCES}" in text and " MB" in text and "MB/s" in text and "/IM0" in text
        await wait_screen(pilot, "HomeScreen", timeout=60)  # dismissed with the report

    run(app, script)


def test_a_medium_pulled_before_the_import_says_what_to_do(desk: Desk) -> None:
    app = desk.app()

    async def script(pilot: Pilot[None]) -> None:
        await wait_screen(pilot, "HomeScreen")
        app.push_screen(ImportScreen(device="/nowhere/disc", label="GONE"))
        await wait_screen(pilot, "ErrorDialog")
        assert "Insert it again" in screen_text(app)

    run(app, script)


def test_review_lists_rejected_files_and_warnings(desk: Desk, tmp_path: Path) -> None:
    disc = tmp_path / "bad-disc"
    shutil.copytree(desk.disc, disc)
    (disc / "BROKEN.DCM").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff")
    app = desk.app()

    async def script(pilot: Pilot[None]) -> None:
        await wait_screen(pilot, "HomeScreen")
        desk.insert_disc(disc)
        await wait_screen(pilot, "ReviewScreen")
        assert "1 file(s) rejected" in screen_text(app)
        assert "not in its DICOMDIR" in screen_text(app) or "DICOMDIR" in screen_text(app)
        await pilot.press("f")
        await wait_screen(pilot, "FileListDialog")
        assert "BROKEN.DCM" in screen_text(app)
        await pilot.press("escape")
        await pilot.press("escape")  # Review's Esc: Home, the case stays in today's list
        await wait_screen(pilot, "HomeScreen")

    run(app, script)


# --- Case ------------------------------------------------------------------------------------


def two_patient_disc(root: Path) -> Path:
    """A disc with images of two different patients (it happens)."""
    make_instance(root / "A1", patient_id="PA", patient_name="WANG^XIAODONG")
    make_instance(root / "B1", patient_id="PB", patient_name="ZHAO^LEI")
    return root


def test_several_patients_must_be_resolved_before_export(desk: Desk, tmp_path: Path) -> None:
    case_id = desk.service.import_path(two_patient_disc(tmp_path / "two"))["case_id"]
    app = desk.app()

    async def script(pilot: Pilot[None]) -> None:
        app.push_screen(CaseScreen(case_id))
        case = await wait_screen(pilot, "CaseScreen")
        await wait_for(pilot, lambda: case.detail is not None)
        assert "Several patients" in screen_text(app)
        await pilot.press("c")  # not yet: nobody decided
        assert type(app.screen).__name__ == "CaseScreen"
        await pilot.press("t")  # first row: this person
        await pilot.press("down", "t", "t")  # second row: ? -> this person -> someone else
        assert case.decisions == {"PA": True, "PB": False}
        await pilot.press("c")
        dialog = await wait_screen(pilot, "IdentityDialog")
        assert dialog.query_one("#id-name").value == "WANG XIAODONG"
        dialog.query_one("#id-dob").value = "1990-01-02"
        await pilot.press("enter")
        await wait_screen(pilot, "CaseScreen")
        await wait_for(pilot, lambda: case.confirmed)
        assert case.check_action("leave", ("export",)) is True

    run(app, script)
    cases = {c["case_id"]: c for c in desk.service.case_summaries()}
    assert len(cases) == 2
    assert [p["patient_id"] for p in cases[case_id]["patients"]] == ["PA"]
    other = next(c for c in cases.values() if c["case_id"] != case_id)
    assert [p["patient_id"] for p in other["patients"]] == ["PB"]


def test_another_disc_is_merged_into_the_same_case(desk: Desk, tmp_path: Path) -> None:
    case_id = desk.service.import_path(desk.disc)["case_id"]
    app = desk.app()

    async def script(pilot: Pilot[None]) -> None:
        app.open_case(case_id)
        await wait_screen(pilot, "CaseScreen")
        await pilot.press("a")
        assert "Insert the next disc" in screen_text(app)
        desk.insert_disc()  # the same disc again: every image is already in the case
        review = await wait_screen(pilot, "ReviewScreen")
        assert review.report["case_id"] == case_id
        assert "22 already in the case" in screen_text(app)
        await pilot.press("enter")
        await wait_screen(pilot, "CaseScreen")

    run(app, script)
    assert len(desk.service.case_summaries()) == 1


# --- Reports --------------------------------------------------------------------------------


def test_reports_show_the_inbox_translation_and_attach_the_pdf_on_the_disc(
        desk: Desk) -> None:
    from kiosk.samples.pdf import minimal_pdf

    report = desk.service.import_path(desk.disc)
    case_id = report["case_id"]
    (desk.service.locations.inbox_dir / f"{case_id}.en.pdf").write_bytes(
        minimal_pdf(["translation"]))
    import os
    os.utime(desk.service.locations.inbox_dir / f"{case_id}.en.pdf", (1, 1))
    desk.service.sync_once()
    app = desk.app()

    async def script(pilot: Pilot[None]) -> None:
        app.push_screen(ReportsScreen(case_id))
        screen = await wait_screen(pilot, "ReportsScreen")
        desk.insert_disc()  # the disc is still in the drive: its PDF can be attached
        await wait_for(pilot, lambda: app.media)
        await wait_for(pilot, lambda: screen.status)
        text = screen_text(app)
        assert "Original report (Chinese): missing" in text
        assert "Translation (English): pending" in text and "office inbox" in text
        await pilot.press("a")
        await wait_screen(pilot, "PickReportDialog")
        assert "REPORT/REPORT.PDF" in screen_text(app) or app.screen.candidates
        await pilot.press("enter")
        await wait_screen(pilot, "ReportsScreen")
        await wait_for(pilot, lambda: "Original report (Chinese): pending" in screen_text(app))
        assert "from the disc" in screen_text(app)

    run(app, script)


# --- Export ---------------------------------------------------------------------------------


def confirmed_case(desk: Desk) -> str:
    case_id = str(desk.service.import_path(desk.disc)["case_id"])
    desk.service.confirm_identity(case_id, passport_name="LI HUA", birth_date="1985-03-14")
    return case_id


def test_export_needs_space_and_leaves_a_hospital_medium_alone(
        desk: Desk, monkeypatch: Any) -> None:
    case_id = confirmed_case(desk)
    real = desk.service.export_check

    def tiny(case: str, target: Any) -> dict[str, Any]:
        return real(case, target) | {"free": 1000, "enough": False}

    monkeypatch.setattr(desk.service, "export_check", tiny)
    app = desk.app()

    async def script(pilot: Pilot[None]) -> None:
        app.push_screen(ExportScreen(case_id))
        export = await wait_screen(pilot, "ExportScreen")
        desk.insert_disc()  # a hospital disc is never a target
        await wait_for(pilot, lambda: "never written to" in screen_text(app))
        assert export.state == "waiting"
        desk.insert_stick()
        await wait_for(pilot, lambda: export.state == "ready")
        assert "Not enough space" in screen_text(app)
        assert export.check_action("write", ()) is None  # Enter is shown but disabled
        await pilot.press("enter")
        assert export.state == "ready"

    run(app, script)
    assert list(desk.stick.iterdir()) == []


def test_an_unencrypted_copy_needs_the_patients_consent(desk: Desk) -> None:
    case_id = confirmed_case(desk)
    desk.insert_stick()
    app = desk.app()
    result: dict[str, Any] = {}

    def exported(report: dict[str, Any] | None) -> None:
        result.update(report or {})

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: app.media)
        app.push_screen(ExportScreen(case_id), exported)
        export = await wait_screen(pilot, "ExportScreen")
        await wait_for(pilot, lambda: export.state == "ready")
        await pilot.press("u")
        await wait_screen(pilot, "ConfirmDialog")
        await pilot.press("n")
        assert export.encrypt
        await pilot.press("u", "y")  # consent given: the coordinator PIN is needed too
        await wait_screen(pilot, "PinDialog")
        await pilot.press("escape")
        await wait_screen(pilot, "ExportScreen")
        assert export.encrypt
        await pilot.press("u", "y")
        await wait_screen(pilot, "PinDialog")
        await pilot.press("2", "4", "6", "8", "enter")
        await wait_screen(pilot, "ExportScreen")
        assert not export.encrypt and "NOT encrypted" in screen_text(app)
        await pilot.press("enter")
        await wait_screen(pilot, "HomeScreen", timeout=60)

    run(app, script)
    assert result["encrypted"] is False and "passphrase" not in result
    logins = [e["details"] for e in desk.service.recent_audit() if e["action"] == "admin_login"]
    assert logins == [{"ok": True, "purpose": "unencrypted_export", "case_id": case_id}]
    [export_entry] = [e["details"] for e in desk.service.recent_audit()
                      if e["action"] == "export"]
    assert export_entry["encrypted"] is False
    assert any((p / "DICOMDIR").exists() for p in desk.stick.iterdir())


# --- Done ------------------------------------------------------------------------------------


def test_done_shows_a_scannable_qr_prints_the_slip_and_clears_itself(
        desk: Desk, tmp_path: Path) -> None:
    import subprocess

    import pytest

    case_id = confirmed_case(desk)
    printer = DummyReceiptPrinter()
    desk.service.printer = printer
    app = desk.app(done_seconds=2)
    decoded: list[str] = []

    async def script(pilot: Pilot[None]) -> None:
        app.push_screen(DoneScreen(case_id, {"encrypted": True, "passphrase": "ABCD-EFGH"},
                                   seconds=2))
        done = await wait_screen(pilot, "DoneScreen")
        await wait_for(pilot, lambda: done.link is not None and done.query("#done-qr"))
        await pilot.pause(0.2)
        qr = done.query_one("#done-qr")
        assert qr.display and qr.size.width == len(qr.lines[0])
        if shutil.which("zbarimg"):
            from tests.links.test_qr import image_from_terminal

            image_from_terminal(qr.lines).save(tmp_path / "qr.png")
            decoded.append(subprocess.run(["zbarimg", "--quiet", "--raw", str(tmp_path / "qr.png")],
                                          capture_output=True, text=True).stdout.strip())
        assert "ABCD-EFGH" in screen_text(app)
        await pilot.press("p")
        await wait_for(pilot, lambda: done.print_state == "printed")
        await wait_screen(pilot, "HomeScreen", timeout=10)  # the countdown ran out

    run(app, script, size=(130, 45))
    assert len(printer.slips) == 1 and b"ABCD-EFGH" in printer.output
    if not decoded:
        pytest.skip("zbarimg (zbar-tools) is not installed: the QR was not decoded")
    assert decoded == [desk.service.case_link(case_id).url]


def test_done_says_so_when_the_window_is_too_small_and_the_printer_is_offline(
        desk: Desk) -> None:
    case_id = confirmed_case(desk)
    desk.service.printer = DummyReceiptPrinter(state="offline")
    app = desk.app()

    async def script(pilot: Pilot[None]) -> None:
        app.push_screen(DoneScreen(case_id, {"encrypted": True, "passphrase": "ABCD-EFGH"}))
        done = await wait_screen(pilot, "DoneScreen")
        await wait_for(pilot, lambda: done.link is not None and done.query("#done-qr"))
        await pilot.pause(0.2)
        assert not done.query_one("#done-qr").display
        assert "too small for the QR code" in screen_text(app)
        await pilot.press("p")
        await wait_screen(pilot, "ErrorDialog")
        assert "does not respond" in screen_text(app)

    # The short link's code (37x19) fits 80x24; a window narrower than the code does not.
    run(app, script, size=(34, 24))


# --- Admin, idle ------------------------------------------------------------------------------


def test_admin_is_behind_the_pin(desk: Desk) -> None:
    app = desk.app()

    async def script(pilot: Pilot[None]) -> None:
        await open_pin_dialog(pilot)
        await pilot.press("1", "1", "1", "1", "enter")
        assert "Wrong PIN (2 tries left)" in screen_text(app)
        await pilot.press("2", "4", "6", "8", "enter")
        admin = await wait_screen(pilot, "AdminScreen")
        assert "kiosk_id" in screen_text(app) and "(set)" not in screen_text(app)
        await pilot.press("2")
        assert admin.section == "sync"
        await pilot.press("4")
        await wait_for(pilot, lambda: "admin_login" in screen_text(app))
        await pilot.press("escape")
        await wait_screen(pilot, "HomeScreen")

    run(app, script)
    logins = [e for e in desk.service.recent_audit() if e["action"] == "admin_login"]
    assert [e["details"]["ok"] for e in logins] == [False, True]


def test_an_idle_desk_goes_back_home(desk: Desk) -> None:
    import time

    case_id = confirmed_case(desk)
    app = desk.app(idle_seconds=1)

    async def script(pilot: Pilot[None]) -> None:
        await wait_screen(pilot, "HomeScreen")
        app.last_input -= 600  # Home stood idle for ten minutes: that does not count
        app.open_case(case_id)
        await wait_screen(pilot, "CaseScreen")
        shown = time.monotonic()
        await wait_screen(pilot, "HomeScreen", timeout=5)
        assert time.monotonic() - shown >= 0.9

    run(app, script)


def test_a_patients_stick_that_holds_dicom_is_written_only_when_the_coordinator_says_so(
        desk: Desk, tmp_path: Path) -> None:
    case_id = confirmed_case(desk)
    stick = tmp_path / "old-stick"
    make_instance(stick / "OLD" / "IM1")  # images from an earlier visit elsewhere
    before = (stick / "OLD" / "IM1").read_bytes()
    app = desk.app()

    async def script(pilot: Pilot[None]) -> None:
        app.push_screen(ExportScreen(case_id))
        export = await wait_screen(pilot, "ExportScreen")
        desk.insert_stick(stick)
        await wait_for(pilot, lambda: export.refused is not None)
        assert "never written to" in screen_text(app) and export.state == "waiting"
        await pilot.press("o")
        await wait_screen(pilot, "ConfirmDialog")
        await pilot.press("y")
        await wait_for(pilot, lambda: export.state == "ready")
        await pilot.press("enter")
        await wait_screen(pilot, "HomeScreen", timeout=60)

    run(app, script)
    assert (stick / "OLD" / "IM1").read_bytes() == before
    assert any(p.name.startswith("MEDPASS_") for p in stick.iterdir())


def test_admin_purges_a_case_after_confirmation(desk: Desk) -> None:
    case_id = desk.service.import_path(desk.disc)["case_id"]
    app = desk.app()

    async def script(pilot: Pilot[None]) -> None:
        await open_pin_dialog(pilot)
        await pilot.press("2", "4", "6", "8", "enter")
        admin = await wait_screen(pilot, "AdminScreen")
        await pilot.press("3")
        await wait_for(pilot, lambda: [c["case_id"] for c in admin.cases] == [case_id])
        await pilot.press("x")
        await wait_screen(pilot, "ConfirmDialog")
        assert "NOT uploaded" in screen_text(app)
        await pilot.press("y")
        await wait_screen(pilot, "PinDialog")  # the only copy: an override, PIN again
        assert desk.service.catalog.case(case_id) is not None
        await pilot.press("2", "4", "6", "8", "enter")
        await wait_for(pilot, lambda: desk.service.catalog.case(case_id) is None)

    run(app, script)
    [purge] = [e["details"] for e in desk.service.recent_audit() if e["action"] == "purge"]
    assert purge["case_id"] == case_id and purge["forced"] is True
    logins = [e["details"] for e in desk.service.recent_audit() if e["action"] == "admin_login"]
    assert [(d["purpose"], d["ok"]) for d in logins] == [("admin", True), ("force_purge", True)]
    assert logins[1]["case_id"] == case_id


def test_the_entry_keys_start_when_the_stick_is_ready_and_a_pulled_stick_drops_them(
        desk: Desk) -> None:
    """PBKDF2 runs while the coordinator reads the screen; the export uses those very keys."""
    case_id = confirmed_case(desk)
    app = desk.app()
    result: dict[str, Any] = {}
    seen: dict[str, Any] = {}

    def exported(report: dict[str, Any] | None) -> None:
        result.update(report or {})

    async def script(pilot: Pilot[None]) -> None:
        app.push_screen(ExportScreen(case_id), exported)
        export = await wait_screen(pilot, "ExportScreen")
        assert export.keys is None  # no stick, no passphrase yet
        desk.insert_stick()
        await wait_for(pilot, lambda: export.state == "ready")
        first = export.keys
        assert first is not None and first._child is not None and first._child.alive
        desk.watcher.remove(str(desk.stick))  # pulled before writing: its keys go
        await wait_for(pilot, lambda: export.state == "waiting")
        assert export.keys is None
        assert first._child._proc.wait(timeout=5) is not None  # the child has ended
        desk.insert_stick()
        await wait_for(pilot, lambda: export.state == "ready")
        assert export.keys is not None and export.keys is not first
        seen["passphrase"] = export.keys.passphrase
        assert seen["passphrase"] != first.passphrase  # a new stick, a new passphrase
        await pilot.press("enter")
        await wait_screen(pilot, "HomeScreen", timeout=60)

    run(app, script)
    assert result["encrypted"] is True and result["passphrase"] == seen["passphrase"]
