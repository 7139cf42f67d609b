"""The desk stays responsive while a large import runs in its worker thread."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from textual import events
from textual.pilot import Pilot

from tests.ui_kit import Desk, run, wait_screen

#: The issue's promise: a key press is handled within 100 ms while an import runs.
LIMIT_SECONDS = 0.100


def test_a_key_press_is_handled_within_100_ms_while_a_big_import_runs(
        desk: Desk, big_disc: Path) -> None:
    app = desk.app()
    handled: list[float] = []
    latencies: list[tuple[float, str]] = []
    toggle = app.action_toggle_language

    def timed_toggle() -> None:
        handled.append(time.perf_counter())
        toggle()

    app.action_toggle_language = timed_toggle  # type: ignore[method-assign]

    async def script(pilot: Pilot[None]) -> None:
        await wait_screen(pilot, "HomeScreen")
        desk.insert_disc(big_disc, label="BIG")  # about 160 MB in 1,200 files
        screen = await wait_screen(pilot, "ImportScreen")
        while screen.busy:
            phase = screen.progress.phase if screen.progress else "counting"
            if phase not in ("copying", "verifying"):
                await asyncio.sleep(0.01)
                continue
            count, sent = len(handled), time.perf_counter()
            # Posted like the terminal driver posts it; pilot.press would wait for idle CPU.
            app.post_message(events.Key("f2", None))
            while len(handled) == count and time.perf_counter() - sent < 2.0:
                await asyncio.sleep(0.001)
            latencies.append((handled[-1] - sent if len(handled) > count else 2.0, phase))
            await asyncio.sleep(0.05)

    run(app, script)
    assert len(latencies) >= 3, f"the import ended too soon to measure: {latencies}"
    worst = max(seconds for seconds, _phase in latencies)
    assert worst < LIMIT_SECONDS, f"slowest key press took {worst * 1000:.0f} ms: {latencies}"
