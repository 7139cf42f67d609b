"""The coordinator PIN on the desk: chosen at first start, asked for Admin and for every
override (unencrypted copy, purge of data not uploaded, several patients in one case), the
lockout shown and kept across a restart; retention runs in the background."""

from __future__ import annotations

import time
from pathlib import Path

from textual.pilot import Pilot

from kiosk.cloud.fake import FakeCloud
from kiosk.cloud.outbox import OUTBOX
from kiosk.retention.policy import DAY
from kiosk_tui.case import CaseScreen
from kiosk_tui.home import HomeScreen
from tests.sync_kit import fake_syncer, import_study
from tests.ui.test_ui_screens import two_patient_disc
from tests.ui_kit import Desk, open_pin_dialog, run, screen_text, wait_for, wait_screen


def _logins(desk: Desk) -> list[tuple[str, bool]]:
    return [(e["details"]["purpose"], e["details"]["ok"]) for e in desk.service.recent_audit()
            if e["action"] == "admin_login"]


async def _type(pilot: Pilot[None], digits: str) -> None:
    await pilot.press(*digits, "enter")


def test_the_first_start_asks_for_a_pin_typed_twice_and_refuses_bad_ones(desk: Desk) -> None:
    app = desk.app(pin=None)

    async def script(pilot: Pilot[None]) -> None:
        await wait_screen(pilot, "SetPinDialog")
        assert "No coordinator PIN is set yet" in screen_text(app)
        await _type(pilot, "582039")
        await _type(pilot, "582093")
        assert "The two PINs differ" in screen_text(app)
        await _type(pilot, "1111")
        await _type(pilot, "1111")
        assert "One digit repeated" in screen_text(app)
        await _type(pilot, "123")
        await _type(pilot, "123")
        assert "4 to 12 digits" in screen_text(app)
        assert not desk.service.pin_status().set
        await _type(pilot, "582039")
        await _type(pilot, "582039")
        await wait_screen(pilot, "HomeScreen")
        assert desk.service.pin_matches("582039")
        await pilot.press("f9")  # from now on: the PIN, not a new one
        await wait_screen(pilot, "PinDialog")
        await _type(pilot, "582039")
        await wait_screen(pilot, "AdminScreen")

    run(app, script)
    assert _logins(desk) == [("admin", True)]
    [entry] = [e["details"] for e in desk.service.recent_audit() if e["action"] == "pin_set"]
    assert entry == {"source": "ui", "replaced": False}


def test_a_pin_put_off_at_start_is_asked_for_before_admin_opens(desk: Desk) -> None:
    app = desk.app(pin=None)

    async def script(pilot: Pilot[None]) -> None:
        await wait_screen(pilot, "SetPinDialog")
        await pilot.press("escape")  # later
        await wait_screen(pilot, "HomeScreen")
        await pilot.press("f9")
        await wait_screen(pilot, "SetPinDialog")
        await _type(pilot, "736201")
        await _type(pilot, "736201")
        await wait_screen(pilot, "AdminScreen")  # the PIN just chosen counts as typed

    run(app, script)
    assert _logins(desk) == [("admin", True)]


def test_wrong_pins_lock_the_dialog_and_a_restart_does_not_unlock_it(desk: Desk) -> None:
    app = desk.app()

    async def script(pilot: Pilot[None]) -> None:
        await open_pin_dialog(pilot)
        await _type(pilot, "1111")
        assert "Wrong PIN (2 tries left)" in screen_text(app)
        await _type(pilot, "2222")
        await _type(pilot, "3333")
        assert "wait 30 s" in screen_text(app)
        await _type(pilot, "2468")  # the right PIN, refused while locked
        assert type(app.screen).__name__ == "PinDialog"

    run(app, script)
    restarted = desk.app()

    async def again(pilot: Pilot[None]) -> None:
        await open_pin_dialog(pilot)
        await wait_for(pilot, lambda: "Too many wrong PINs" in screen_text(restarted))

    run(restarted, again)
    assert _logins(desk)[-2:] == [("admin", False), ("admin", False)]
    assert desk.service.pin_status().locked_seconds > 0


def test_keeping_several_patients_in_one_case_needs_the_pin(desk: Desk, tmp_path: Path) -> None:
    case_id = desk.service.import_path(two_patient_disc(tmp_path / "two"))["case_id"]
    app = desk.app()

    async def script(pilot: Pilot[None]) -> None:
        app.push_screen(CaseScreen(case_id))
        case = await wait_screen(pilot, "CaseScreen")
        await wait_for(pilot, lambda: case.detail is not None)
        await pilot.press("t", "down", "t")  # both "this person": two IDs, one person
        assert case.decisions == {"PA": True, "PB": True}
        await pilot.press("c")
        await wait_screen(pilot, "PinDialog")
        assert case_id in screen_text(app)
        await pilot.press("escape")  # no PIN: nothing confirmed, nothing moved
        await wait_screen(pilot, "CaseScreen")
        await pilot.press("c")
        await wait_screen(pilot, "PinDialog")
        await _type(pilot, "2468")
        dialog = await wait_screen(pilot, "IdentityDialog")
        dialog.query_one("#id-dob").value = "1990-01-02"
        await pilot.press("enter")
        await wait_screen(pilot, "CaseScreen")
        await wait_for(pilot, lambda: case.confirmed)

    run(app, script)
    assert _logins(desk) == [("keep_patients", True)]
    identity = desk.service.case_detail(case_id)["identity"]
    assert identity["patient_ids"] == ["PA", "PB"] and len(desk.service.case_summaries()) == 1


def test_admin_changes_the_pin(desk: Desk) -> None:
    app = desk.app()

    async def script(pilot: Pilot[None]) -> None:
        await open_pin_dialog(pilot)
        await _type(pilot, "2468")
        await wait_screen(pilot, "AdminScreen")
        await pilot.press("p")
        await wait_screen(pilot, "SetPinDialog")
        assert "Change the coordinator PIN" in screen_text(app)
        await _type(pilot, "9876")
        await _type(pilot, "9876")
        assert "Consecutive digits" in screen_text(app)
        await _type(pilot, "604417")
        await _type(pilot, "604417")
        await wait_screen(pilot, "AdminScreen")

    run(app, script)
    assert desk.service.pin_matches("604417") and not desk.service.pin_matches("2468")
    [entry] = [e["details"] for e in desk.service.recent_audit() if e["action"] == "pin_set"
               and e["details"]["source"] == "admin"]
    assert entry["replaced"] is True


def test_the_desk_purges_cases_due_for_retention_in_the_background(
        desk: Desk, tmp_path: Path) -> None:
    service = desk.service
    service._syncer = fake_syncer(service, FakeCloud())
    old, _, _ = import_study(service, tmp_path, seed=1)
    fresh, _, _ = import_study(service, tmp_path, seed=2)
    for case in (old, fresh):
        stick = tmp_path / f"stick-{case}"
        stick.mkdir()
        service.export_case(case, stick)
    service.sync_once()
    long_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 20 * DAY))
    service.catalog.db.update("cases", {"delivered": long_ago}, case_id=old)
    service.catalog.db.update(OUTBOX, {"finished": long_ago}, case_id=old)
    app = desk.app(start_retention=True)

    async def script(pilot: Pilot[None]) -> None:
        home = await wait_screen(pilot, "HomeScreen")
        assert isinstance(home, HomeScreen)
        await wait_for(pilot, lambda: service.catalog.case(old) is None, message="retention")
        await wait_for(pilot, lambda: [c["case_id"] for c in home.cases] == [fresh])

    run(app, script)
    assert [e["details"]["reason"] for e in service.recent_audit()
            if e["action"] == "purge"] == ["retention"]
