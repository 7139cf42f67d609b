"""The mount helper as a service: the unprivileged desk asks over a Unix socket, no sudo.

The appliance's ``kiosk-mount-helper.socket`` hands each connection to
``kiosk-mount-helper serve`` (root). Here a real listening socket and
:func:`kiosk.media.mount_helper.serve` in a thread stand in for systemd's part; the request, the
answer, the caller's identity (from the kernel) and every kind of bad request are real.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kiosk.cli import doctor
from kiosk.cli.doctor import Status
from kiosk.errors import MediaError
from kiosk.media import mount_helper
from kiosk.media.medium import Medium, MediumKind, Role
from kiosk.media.mounter import SocketHelperBackend

#: A Python another user may run (the test venv's may live under /root).
SYSTEM_PYTHON = "/usr/bin/python3"
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (the helper runs as root)")


def stick(device: str = "/dev/sdb1") -> Medium:
    return Medium(device=device, kind=MediumKind.USB, fs_type="vfat", label="STICK",
                  disk=device.rstrip("0123456789"))


class Service:
    """A listening socket whose connections are answered one at a time by ``handle``."""

    def __init__(self, path: Path, handle: Callable[[socket.socket], object]) -> None:
        self.path = path
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen()
        self.handle = handle
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                self.handle(conn)

    def close(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(timeout=5)


@pytest.fixture
def helper_service(tmp_path: Path) -> Iterator[Service]:
    """The helper answering on a socket, as systemd would start it for each connection."""
    service = Service(tmp_path / "mount-helper.sock", mount_helper.serve)
    yield service
    service.close()


def ask_raw(data: bytes) -> dict[str, object]:
    """Send ``data`` to ``serve`` over a socket pair; return its answer."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.sendall(data)
        ours.shutdown(socket.SHUT_WR)
        status = mount_helper.serve(theirs)
        theirs.shutdown(socket.SHUT_WR)
        answer = json.loads(ours.makefile("rb").read())
    assert answer["status"] == status
    return dict(answer)


@root_only
def test_a_request_is_answered_as_the_command_line_would(helper_service: Service) -> None:
    backend = SocketHelperBackend(helper_service.path)
    assert isinstance(backend.cleanup(), list)
    # A refusal comes back with the helper's own words.
    with pytest.raises(MediaError, match=r"not a plain device name|mount helper"):
        backend.unmount("/dev/../etc")


@root_only
def test_the_machines_own_disk_is_refused_through_the_socket_too(
        helper_service: Service, udevd: None) -> None:
    root_dev = os.stat("/").st_dev
    node = Path(f"/sys/dev/block/{os.major(root_dev)}:{os.minor(root_dev)}")
    if os.major(root_dev) == 0 or not node.exists():
        pytest.skip("the root file system here has no block device")
    device = "/dev/" + node.resolve().name
    with pytest.raises(MediaError, match="is not a removable medium the kiosk may use"):
        SocketHelperBackend(helper_service.path).mount(stick(device), Role.TARGET)


@root_only
@pytest.mark.skipif(not os.access(SYSTEM_PYTHON, os.X_OK), reason=f"no {SYSTEM_PYTHON}")
def test_the_caller_is_known_from_the_kernel_not_from_the_request() -> None:
    seen: list[tuple[int, int]] = []
    # Somewhere the other user can reach (pytest's tmp_path is private to root).
    shared = Path(tempfile.mkdtemp(prefix="medpass-peer-"))
    os.chmod(shared, 0o755)
    service = Service(shared / "who.sock", lambda conn: seen.append(
        mount_helper.peer_credentials(conn)))
    os.chmod(service.path, 0o666)
    try:
        subprocess.run([SYSTEM_PYTHON, "-c",
                        "import socket, sys; s = socket.socket(socket.AF_UNIX); "
                        "s.connect(sys.argv[1]); s.close()", str(service.path)],
                       user=65534, group=65534, check=True, timeout=30)
    finally:
        service.close()
        shutil.rmtree(shared)
    assert seen == [(65534, 65534)]


@pytest.mark.parametrize(("request_bytes", "reason"), [
    (b"", "a request is"),
    (b"mount --role source /dev/sdb1\n", "bad request"),
    (b'{"args": ["cleanup"]}\n', "a request is"),
    (b'{"argv": []}\n', "a request is"),
    (b'{"argv": ["mount", 7]}\n', "a request is"),
    (b'["cleanup"]\n', "a request is"),
    (b'{"argv": ["serve"]}\n', "serve is not a request"),
    (b'{"argv": ["cleanup", "' + b"x" * 5000 + b'"]}\n', "longer than 4096 bytes"),
])
def test_a_bad_request_is_refused_without_running_anything(request_bytes: bytes,
                                                           reason: str) -> None:
    answer = ask_raw(request_bytes)
    assert answer["status"] == 2 and answer["stdout"] == ""
    assert reason in str(answer["stderr"])


def test_an_unknown_action_is_a_usage_error() -> None:
    answer = ask_raw(b'{"argv": ["format", "/dev/sda"]}\n')
    assert answer["status"] == (2 if os.geteuid() == 0 else 1)
    assert "invalid choice" in str(answer["stderr"]) or "must run as root" in str(
        answer["stderr"])


def test_no_service_listening_is_reported_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"did not answer .*kiosk doctor"):
        SocketHelperBackend(tmp_path / "nobody-here.sock").mount(stick(), Role.SOURCE)


def test_a_garbled_answer_is_reported(tmp_path: Path) -> None:
    def garble(conn: socket.socket) -> None:
        conn.recv(4096)
        conn.sendall(b"hello\n")

    service = Service(tmp_path / "garbled.sock", garble)
    try:
        with pytest.raises(MediaError, match="answered something unexpected"):
            SocketHelperBackend(service.path).cleanup()
    finally:
        service.close()


def test_a_service_that_never_answers_times_out(tmp_path: Path) -> None:
    release = threading.Event()
    service = Service(tmp_path / "silent.sock", lambda conn: release.wait(10))
    try:
        with pytest.raises(MediaError, match="did not answer"):
            SocketHelperBackend(service.path, timeout=0.5).eject(stick())
    finally:
        release.set()
        service.close()


def test_serve_needs_a_socket_on_standard_input() -> None:
    helper = Path(sys.executable).parent / "kiosk-mount-helper"
    result = subprocess.run([str(helper), "serve"], stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=60)
    if os.geteuid() == 0:
        assert result.returncode == 2 and "expects a socket connection" in result.stderr
    else:
        assert result.returncode == 1 and "must run as root" in result.stderr


@pytest.fixture
def helper_socket(tmp_path: Path) -> Iterator[Path]:
    """A socket bound where the helper service's would be (nothing answers on it)."""
    path = tmp_path / "mount-helper.sock"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        yield path


def test_doctor_accepts_the_helper_service(helper_socket: Path) -> None:
    check = doctor.check_mount(euid=1000, which=lambda t: f"/usr/bin/{t}",
                               socket_path=helper_socket)
    assert check.status is Status.OK and str(helper_socket) in check.detail


def test_doctor_says_when_the_kiosk_may_not_use_the_helper_service(helper_socket: Path) -> None:
    check = doctor.check_mount(euid=1000, which=lambda t: f"/usr/bin/{t}",
                               socket_path=helper_socket, access=lambda p, mode: False)
    assert check.failed and "may not connect" in check.detail and "group kiosk" in check.fix
