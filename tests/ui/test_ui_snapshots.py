"""Layout snapshots of the desk at 80×24 (SVG, pytest-textual-snapshot): few and deterministic.

Nothing time- or path-dependent is on these screens: a fixed case number, no clock, no temp
paths, no background sync. Update after an intended change with ``pytest --snapshot-update``
and look at the SVGs under ``tests/ui/__snapshots__/``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot

from kiosk_tui.review import ReviewScreen
from tests.ui_kit import Desk, wait_for, wait_screen

SIZE = (80, 24)
Snap = Callable[..., bool]


async def settled(pilot: Pilot[None]) -> None:
    """The cloud status is read (it comes from a worker) before the picture is taken."""
    await wait_for(pilot, lambda: pilot.app.sync_status is not None)  # type: ignore[attr-defined]


def test_home_in_english(desk: Desk, snap_compare: Snap) -> None:
    assert snap_compare(desk.app(), terminal_size=SIZE, run_before=settled)


def test_home_in_chinese(desk: Desk, snap_compare: Snap) -> None:
    assert snap_compare(desk.app(), press=["f2"], terminal_size=SIZE, run_before=settled)


def test_review_of_the_sample_disc(desk: Desk, snap_compare: Snap) -> None:
    report: dict[str, Any] = desk.service.import_path(desk.disc, case_id="C20261127-DEMO")

    async def review(pilot: Pilot[None]) -> None:
        await settled(pilot)
        pilot.app.push_screen(ReviewScreen(report))
        screen = await wait_screen(pilot, "ReviewScreen")
        await wait_for(pilot, lambda: screen.series)

    assert snap_compare(desk.app(), terminal_size=SIZE, run_before=review)
