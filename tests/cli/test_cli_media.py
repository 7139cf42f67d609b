"""``kiosk watch`` and ``kiosk doctor`` as a coordinator or a script uses them.

``kiosk watch --json`` runs as a real subprocess under a real udevd while a disc image is
attached and detached; its lines are read with a timeout.
"""

from __future__ import annotations

import http.server
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kiosk.cli import doctor
from kiosk.cli import media as cli_media
from kiosk.cli.doctor import Check, Status
from kiosk.config import CloudSettings, Config, PrinterSettings
from kiosk.errors import PrinterUnavailableError
from kiosk.media.medium import MediaAction, MediaEvent, Medium, MediumKind, Role
from kiosk.samples.bulk import write_study
from kiosk.store.locations import Locations
from tests.media_fixtures import Loop, iso_image

# ------------------------------------------------------------------------- kiosk watch


class Lines:
    """Read a subprocess's pipe line by line, with a deadline per line."""

    def __init__(self, stream: Any) -> None:
        self.fd = stream.fileno()
        os.set_blocking(self.fd, False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.fd, selectors.EVENT_READ)
        self.buffer = b""

    def next(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not self.selector.select(left):
                raise AssertionError(f"no line within {timeout} s (have {self.buffer!r})")
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise AssertionError(f"stream closed (have {self.buffer!r})")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode()


@pytest.fixture
def watch_json(udevd: None, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Lines]]:
    """``kiosk watch --json`` running, and listening (its stderr said so)."""
    env = {**os.environ, "KIOSK_DATA_DIR": str(tmp_path / "data"), "PYTHONUNBUFFERED": "0"}
    env.pop("KIOSK_CONFIG", None)
    # Started the way a shell starts `kiosk watch --json &`: with SIGINT ignored.
    proc = subprocess.Popen([sys.executable, "-m", "kiosk.cli.main", "watch", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        err = Lines(proc.stderr)
        assert "watching for discs and sticks" in err.next(30)
        yield proc, Lines(proc.stdout)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


@pytest.mark.root
def test_kiosk_watch_json_prints_one_line_per_insert_and_remove(
        watch_json: tuple[subprocess.Popen[bytes], Lines], tmp_path: Path) -> None:
    proc, out = watch_json
    tree = tmp_path / "CD"
    write_study(tree, instances=3, rows=16, columns=16, layout="nested")
    image = iso_image(tree, tmp_path / "fakecd-watch.iso", "WATCH_CD")

    def next_for(device: str) -> dict[str, Any]:
        while True:  # other media on a shared machine may come and go: skip them
            event = json.loads(out.next(5))
            if event["device"] == device:
                return event

    with Loop(image, read_only=True) as loop:
        inserted = next_for(loop.device)
        loop.detach()
        removed = next_for(loop.device)

    keys = {"action", "device", "role", "label", "fs_type", "vendor", "model", "serial",
            "size"}
    assert keys <= set(inserted) and keys <= set(removed)
    assert inserted["action"] == "insert" and removed["action"] == "remove"
    for event in (inserted, removed):
        assert (event["role"], event["label"], event["fs_type"], event["kind"]) == (
            "source", "WATCH_CD", "iso9660", "optical")
        assert event["vendor"] == "MedPass" and event["model"] == "Fake_DVD_Drive"
        assert event["size"] == image.stat().st_size

    proc.send_signal(signal.SIGINT)  # Ctrl-C, or `kill -INT` from the script
    assert proc.wait(10) == 0


def test_a_watch_line_for_people() -> None:
    medium = Medium(device="/dev/sr0", kind=MediumKind.OPTICAL, fs_type="iso9660",
                    label="HOSPITAL CD", vendor="HL-DT-ST", model="DVDRAM GP57EB40",
                    size=652_345_344, role=Role.SOURCE, role_reason="DICOMDIR at the root")
    line = cli_media.format_event(MediaEvent(MediaAction.INSERT, medium))
    assert line.split()[:5] == ["insert", "/dev/sr0", "source", "optical", "iso9660"]
    assert "HOSPITAL CD  652.3 MB  HL-DT-ST DVDRAM GP57EB40  (DICOMDIR at the root)" in line


def test_kiosk_watch_json_objects_carry_the_contract_keys() -> None:
    event = MediaEvent(MediaAction.REMOVE, Medium(device="/dev/sdb1", kind=MediumKind.USB))
    data = json.loads(json.dumps(event.to_json()))
    assert data["action"] == "remove" and data["role"] == "unknown" and data["kind"] == "usb"
    assert {"device", "label", "fs_type", "vendor", "model", "serial", "size"} <= set(data)


# ------------------------------------------------------------------------- kiosk doctor


def test_doctor_exits_0_when_the_essentials_are_fine_and_1_when_one_is_not(
        run_cli: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    fine = [Check("udev", Status.OK, "udevd is running"),
            Check("optical", Status.WARN, "no optical drive found", "connect a USB DVD drive",
                  essential=False)]
    monkeypatch.setattr(cli_media, "run_checks", lambda config, locations: fine)
    code, out, _ = run_cli("doctor")
    assert code == 0
    assert out.splitlines() == [
        "ok    udev      udevd is running",
        "warn  optical   no optical drive found",
        "              fix: connect a USB DVD drive",
        "",
        "All essential checks passed."]

    broken = [*fine, Check("space", Status.FAIL, "1.0 GiB free", "purge delivered cases")]
    monkeypatch.setattr(cli_media, "run_checks", lambda config, locations: broken)
    code, out, _ = run_cli("doctor")
    assert code == 1
    assert "FAIL  space     1.0 GiB free\n              fix: purge delivered cases" in out
    assert out.endswith("1 essential check(s) failed: space.\n")


def test_doctor_on_this_machine_checks_everything_with_a_fix_for_each_problem(
        run_cli: Callable[..., tuple[int, str, str]]) -> None:
    code, out, _ = run_cli("doctor")
    names = [line.split()[1] for line in out.splitlines()
             if line[:4].strip() in ("ok", "warn", "FAIL", "skip")]
    assert names == ["udev", "mount", "tools", "optical", "printer", "space", "cloud"]
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(("warn", "FAIL")):
            assert lines[i + 1].strip().startswith("fix: ")
    assert code == (1 if "FAIL" in out else 0)


def test_udev_not_running_is_essential_and_says_how_to_start_it() -> None:
    check = doctor.check_udev(lambda: (False, "udevd is not running"))
    assert check.failed and "systemd-udevd --daemon" in check.fix


def test_an_unprivileged_kiosk_needs_sudo_for_the_mount_helper(tmp_path: Path) -> None:
    helper = tmp_path / "kiosk-mount-helper"
    helper.touch()
    def which(tool: str) -> str:
        return f"/usr/bin/{tool}"

    assert doctor.check_mount(euid=0, which=which).status is Status.OK
    allowed = doctor.check_mount(euid=1000, helper=str(helper), run=lambda argv: 0,
                                 which=which)
    refused = doctor.check_mount(euid=1000, helper=str(helper), run=lambda argv: 1,
                                 which=which)
    missing = doctor.check_mount(euid=1000, helper=str(tmp_path / "nope"), which=which)
    no_sudo = doctor.check_mount(euid=1000, helper=str(helper),
                                 which=lambda t: None if t == "sudo" else which(t))
    assert allowed.status is Status.OK
    assert refused.failed and f"NOPASSWD: {helper}" in refused.fix
    assert "/etc/sudoers.d/medpass-kiosk" in refused.fix
    assert missing.failed and "missing" in missing.detail
    assert no_sudo.failed and "apt-get install sudo" in no_sudo.fix


def test_missing_tools_and_drives_are_warnings_not_failures() -> None:
    tools = doctor.check_tools(lambda name: None if name == "eject" else f"/usr/bin/{name}")
    assert (tools.status, tools.fix) == (Status.WARN, "apt-get install eject")
    assert not tools.failed
    none = doctor.check_optical(lambda: [])
    assert none.status is Status.WARN and not none.failed
    drive = doctor.check_optical(lambda: [("/dev/null", "DVD-RW")])
    assert (drive.status, drive.detail) == (Status.OK, "/dev/null (DVD-RW)")


def test_the_printer_is_reported_but_optional() -> None:
    off = Config(printer=PrinterSettings(enabled=False))
    assert doctor.check_printer(off).detail == "no printer configured (printer.enabled = false)"

    def nothing(_v: int, _p: int) -> object:
        raise PrinterUnavailableError("No receipt printer is connected.")

    check = doctor.check_printer(Config(), find=nothing)
    assert check.status is Status.WARN and not check.failed
    assert check.detail == "not found: No receipt printer is connected." and check.fix


def test_free_space_below_a_dvd_fails_and_low_space_warns(tmp_path: Path) -> None:
    where = Locations(tmp_path / "not-created-yet")

    def free(n: int) -> Callable[[Path], tuple[int, int, int]]:
        return lambda path: (100 << 30, (100 << 30) - n, n)

    assert doctor.check_space(where, free(2 << 30)).failed
    low = doctor.check_space(where, free(10 << 30))
    assert low.status is Status.WARN and not low.failed
    assert doctor.check_space(where, free(50 << 30)).status is Status.OK


@pytest.fixture
def http_server() -> Iterator[Callable[[int], str]]:
    """A local HTTP server answering every GET with the status the test asks for."""
    servers = []

    def start(status: int) -> str:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/dicom-web"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_the_cloud_is_optional_and_checked_when_configured(
        http_server: Callable[[int], str]) -> None:
    assert doctor.check_cloud(Config()).status is Status.SKIP
    ok = doctor.check_cloud(Config(cloud=CloudSettings(url=http_server(200))))
    assert ok.status is Status.OK and "HTTP 200" in ok.detail
    refused = doctor.check_cloud(Config(cloud=CloudSettings(url=http_server(401),
                                                            user="u", password="p")))
    assert refused.status is Status.WARN and "credentials" in refused.detail
    closed = http_server(200).rsplit(":", 1)[0] + ":9/dicom-web"  # discard port: nobody home
    down = doctor.check_cloud(Config(cloud=CloudSettings(url=closed)), timeout=2)
    assert down.status is Status.WARN and not down.failed and "outbox" in down.fix


def test_cloud_credentials_are_sent_with_the_check() -> None:
    seen: list[urllib.request.Request] = []

    def opener(request: urllib.request.Request, timeout: float) -> int:
        seen.append(request)
        return 200

    doctor.check_cloud(Config(cloud=CloudSettings(url="https://pacs.example/dicom-web",
                                                  token="t0k")), opener=opener)
    assert seen[0].get_header("Authorization") == "Bearer t0k"
