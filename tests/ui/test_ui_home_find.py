"""Home at scale: the newest page at once, the next page on demand, any case found as you type."""

from __future__ import annotations

from pathlib import Path

import pydicom
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from kiosk.samples.bulk import write_study
from kiosk_tui.home import PAGE, HomeScreen
from tests.ui_kit import Desk, run, wait_for, wait_screen

CASES = PAGE * 2 + 5


def _many_cases(desk: Desk, tmp_path: Path) -> list[str]:
    """``CASES`` cases through the service, one of them a Chinese patient; oldest first."""
    medium = tmp_path / "m"
    write_study(medium, instances=1, rows=8, columns=8, seed=1, patient_id="P1")
    chinese = tmp_path / "zh"
    [path] = write_study(chinese, instances=1, rows=8, columns=8, seed=2, patient_id="PZ")
    ds = pydicom.dcmread(path)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "LI^HUA=李^华"
    ds.save_as(path)
    return [desk.service.import_path(chinese if i == CASES // 2 else medium)["case_id"]
            for i in range(CASES)]


def test_home_pages_the_newest_cases_and_finds_any_by_number_or_chinese_name(
        desk: Desk, tmp_path: Path) -> None:
    ids = _many_cases(desk, tmp_path)
    zh_case = ids[CASES // 2]
    oldest = ids[0]
    app = desk.app()

    async def script(pilot: Pilot[None]) -> None:
        home = await wait_screen(pilot, "HomeScreen")
        assert isinstance(home, HomeScreen)
        await wait_for(pilot, lambda: home.cases)
        table = home.query_one("#today", DataTable)
        assert len(home.cases) == PAGE and table.row_count == PAGE  # a page, not every case
        assert [c["case_id"] for c in home.cases] == ids[::-1][:PAGE]  # newest first
        assert home.total == CASES
        # The cursor at the bottom brings the next page.
        table.focus()
        for _ in range(PAGE):
            await pilot.press("down")
        await wait_for(pilot, lambda: len(home.cases) == 2 * PAGE, message="next page")
        # Find as you type: the Chinese name, then a case number typed in lower case.
        await pilot.press("slash")
        assert isinstance(home.focused, Input)
        for ch in "李华":
            await pilot.press(ch)
        await wait_for(pilot, lambda: [c["case_id"] for c in home.cases] == [zh_case],
                       message="found by Chinese name")
        await pilot.press("escape")
        await wait_for(pilot, lambda: len(home.cases) == PAGE)
        await pilot.press("slash")
        for ch in oldest[-4:].lower():
            await pilot.press(ch)
        await wait_for(pilot, lambda: oldest in [c["case_id"] for c in home.cases],
                       message="found by case number")
        assert len(home.cases) < CASES
        await pilot.press("down", "enter")
        case = await wait_screen(pilot, "CaseScreen")
        assert case.case_id in {c["case_id"] for c in home.cases}

    run(app, script)


def test_kiosk_cases_limits_finds_and_filters_by_date(desk: Desk, tmp_path: Path) -> None:
    ids = _many_cases(desk, tmp_path)
    service = desk.service
    newest = service.case_summaries(limit=3)
    assert [c["case_id"] for c in newest] == ids[::-1][:3]
    assert [c["case_id"] for c in service.case_summaries(find="李")] == [ids[CASES // 2]]
    today = newest[0]["created"][:10]
    assert len(service.case_summaries(find=today)) == CASES
    assert service.case_summaries(since="2999-01-01") == []
    assert len(service.case_summaries(since=today)) == CASES
    page2 = service.case_summaries(limit=PAGE, offset=PAGE)
    assert len(page2) == PAGE and not {c["case_id"] for c in page2} & {
        c["case_id"] for c in service.case_summaries(limit=PAGE)}


def test_a_page_and_its_total_come_from_one_look_at_the_index(desk: Desk,
                                                               tmp_path: Path) -> None:
    ids = _many_cases(desk, tmp_path)
    service = desk.service
    cases, total = service.case_page(limit=PAGE)
    assert [c["case_id"] for c in cases] == ids[::-1][:PAGE] and total == CASES
    cases, total = service.case_page(limit=PAGE, offset=2 * PAGE)
    assert [c["case_id"] for c in cases] == ids[::-1][2 * PAGE:] and total == CASES
    cases, total = service.case_page(limit=PAGE, find="李")
    assert [c["case_id"] for c in cases] == [ids[CASES // 2]] and total == 1
    # After a search the view is built: the same page comes from it, the same total.
    assert service.case_page(limit=3) == (service.case_summaries(limit=3), CASES)
    today = cases[0]["created"][:10]
    catalog = service.catalog
    assert catalog.case_page(limit=2, since=today)[1] == CASES
    assert catalog.case_page(limit=2, since="2999-01-01") == ([], 0)
    assert service.count_cases(find="李") == 1 and service.count_cases(since=today) == CASES
    assert service.count_cases(since=today, find="李") == 1


def test_home_shows_a_value_with_brackets_as_it_is_not_as_a_style(desk: Desk,
                                                                    tmp_path: Path) -> None:
    # A hospital's modality field is free text to us: "[b]" must not be read as bold markup.
    write_study(tmp_path / "odd", instances=1, rows=8, columns=8, seed=3, patient_id="P3",
                modality="[b]CT")
    case = desk.service.import_path(tmp_path / "odd")["case_id"]
    app = desk.app()

    async def script(pilot: Pilot[None]) -> None:
        home = await wait_screen(pilot, "HomeScreen")
        assert isinstance(home, HomeScreen)
        await wait_for(pilot, lambda: home.cases)
        assert case in [c["case_id"] for c in home.cases]
        await pilot.pause()
        assert "[b]CT" in pilot.app.export_screenshot()  # on screen as it is

    run(app, script)
