"""The desk tells systemd it is ready and alive, over a real AF_UNIX datagram socket."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot

from kiosk.system.sd_notify import alive, notify
from tests.ui_kit import Desk, run, wait_screen


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[socket.socket]:
    """A stand-in for systemd's notification socket: a bound datagram socket."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(2.0)
    try:
        yield sock
    finally:
        sock.close()


def test_the_watchdog_ping_reaches_the_manager(manager: socket.socket) -> None:
    assert alive({"NOTIFY_SOCKET": manager.getsockname()}) is True
    assert manager.recv(4096).decode().splitlines() == ["READY=1", "WATCHDOG=1"]


def test_an_abstract_socket_name_works_too() -> None:
    name = f"medpass-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2.0)
        assert notify("STATUS=importing", {"NOTIFY_SOCKET": "@" + name}) is True
        assert sock.recv(4096) == b"STATUS=importing"


def test_without_a_manager_nothing_happens() -> None:
    assert alive({}) is False
    assert alive({"NOTIFY_SOCKET": ""}) is False


@pytest.mark.parametrize("value", ["relative/path", "@", "vsock:2:1234"])
def test_an_address_it_cannot_speak_to_is_ignored(value: str) -> None:
    assert notify("WATCHDOG=1", {"NOTIFY_SOCKET": value}) is False


def test_a_vanished_manager_does_not_stop_the_desk(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(gone))
    gone.unlink()
    assert alive({"NOTIFY_SOCKET": str(gone)}) is False
    not_a_socket = tmp_path / "file"
    not_a_socket.write_text("x")
    assert alive({"NOTIFY_SOCKET": str(not_a_socket)}) is False


def test_the_process_environment_is_used_by_default(
        manager: socket.socket, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", manager.getsockname())
    assert alive() is True
    assert b"WATCHDOG=1" in manager.recv(4096)


def test_the_running_desk_pings_the_watchdog_every_second(
        desk: Desk, manager: socket.socket, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", manager.getsockname())
    app = desk.app()
    manager.setblocking(False)
    pings: list[bytes] = []

    async def script(pilot: Pilot[None]) -> None:
        await wait_screen(pilot, "HomeScreen")
        deadline = time.monotonic() + 5.0
        while len(pings) < 2 and time.monotonic() < deadline:
            await pilot.pause(0.1)
            with contextlib.suppress(BlockingIOError):
                pings.append(manager.recv(4096))

    run(app, script)
    assert len(pings) >= 2, "the UI's one-second timer did not ping twice in 5 s"
    assert all(b"WATCHDOG=1" in p for p in pings)
