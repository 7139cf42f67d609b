"""What the desk UI tests share: a kiosk with simulated media, the app, waiting for screens."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Static

from kiosk.bootstrap import attach_media, build_service
from kiosk.media.fake_media import FakeMediaWatcher
from kiosk.media.medium import MediumKind, Role
from kiosk.samples.bulk import write_study
from kiosk.samples.sample_disc import build_sample_disc
from kiosk.service import KioskService
from kiosk_tui.app import DemoMedia, KioskApp, make_app


@dataclass
class Desk:
    """A kiosk in a temporary data dir with a simulated drive and USB port."""

    service: KioskService
    watcher: FakeMediaWatcher
    disc: Path  # the sample hospital disc (folder)
    stick: Path  # the patient's empty stick (folder)

    def insert_disc(self, path: Path | None = None, label: str = "HOSPITAL CD") -> None:
        """Put a hospital disc in the simulated drive."""
        self.watcher.insert(path or self.disc, kind=MediumKind.OPTICAL, label=label)

    def insert_stick(self, path: Path | None = None, **kwargs: Any) -> None:
        """Plug the patient's stick into the simulated USB port."""
        kwargs.setdefault("label", "PATIENT")
        self.watcher.insert(path or self.stick, kind=MediumKind.USB, **kwargs)

    def app(self, *, pin: str | None = "2468", **options: Any) -> KioskApp:
        """The desk app on this kiosk (no background sync unless asked; demo keys on).

        ``pin`` is set as the coordinator PIN first, unless one is set already; None leaves a
        kiosk without one (its first start).
        """
        if pin is not None and not self.service.pin_status().set:
            self.service.set_pin(pin, source="test")
        options.setdefault("start_sync", False)
        options.setdefault("demo", DemoMedia(insert={
            "disc": self.insert_disc, "stick": self.insert_stick}))
        return make_app(self.service, **options)


def make_desk(tmp_path: Path, sample_disc: Path) -> Desk:
    """A fresh kiosk whose drive will hold a copy of the session's sample disc."""
    service = build_service(data_dir=tmp_path / "kiosk-data", env={})
    watcher = FakeMediaWatcher()
    attach_media(service, fake=watcher)
    stick = tmp_path / "stick"
    stick.mkdir()
    return Desk(service, watcher, sample_disc, stick)


def run(app: KioskApp, script: Callable[[Pilot[None]], Awaitable[None]],
        size: tuple[int, int] = (80, 24)) -> None:
    """Run ``script`` against ``app`` headless, in its own event loop."""

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await script(pilot)

    asyncio.run(main())


async def wait_for(pilot: Pilot[None], what: Callable[[], object], timeout: float = 15.0,
                   message: str = "") -> Any:
    """Pump the app until ``what()`` is truthy; return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = what()
        if result:
            return result
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {message or what}")


async def wait_screen(pilot: Pilot[None], name: str, timeout: float = 15.0) -> Any:
    """Wait until the screen on top is of class ``name`` and has drawn itself; return it."""
    screen = await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == name
                            and pilot.app.screen, timeout, f"screen {name}, "
                            f"still on {type(pilot.app.screen).__name__}")
    # Its on_mount has run: texts are filled in. (A bare pause() waits for the CPU to go idle,
    # up to a second, which never happens while an import runs.)
    await pilot.pause(0.05)
    return screen


async def open_pin_dialog(pilot: Pilot[None]) -> Any:
    """From the home screen, F9 (Admin): wait for the PIN dialog and return it."""
    await wait_screen(pilot, "HomeScreen")
    await pilot.press("f9")
    return await wait_screen(pilot, "PinDialog")


def screen_text(app: KioskApp) -> str:
    """Every Static's text on the screen on top (what a person could read off it)."""
    parts = []
    for widget in app.screen.query(Static):
        if widget.display:
            parts.append(str(widget.render()))
    return "\n".join(parts)


def widget_text(widget: Widget) -> str:
    """The rendered text of one widget."""
    return str(widget.render())


def is_role(role: Role) -> Callable[[Any], bool]:
    """Filter for media of ``role``."""
    return lambda m: m.role is role


@pytest.fixture(scope="session")
def sample_disc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded sample hospital disc, written once per test session (never modified)."""
    return build_sample_disc(tmp_path_factory.mktemp("sample") / "SAMPLE_DISC").root


@pytest.fixture
def desk(tmp_path: Path, sample_disc: Path) -> Iterator[Desk]:
    """A fresh kiosk with a simulated drive holding the sample disc and an empty stick."""
    desk = make_desk(tmp_path, sample_disc)
    yield desk
    if desk.service.media is not None:
        desk.service.media.close()


#: Images on the big disc: enough for the import to last a second or two on a slow machine.
BIG_INSTANCES = 1200


@pytest.fixture(scope="session")
def big_disc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A disc of one large series (about 160 MB), written once per test session."""
    root = tmp_path_factory.mktemp("big") / "BIG_DISC"
    write_study(root, instances=BIG_INSTANCES, rows=256, columns=256, layout="nested")
    return root
