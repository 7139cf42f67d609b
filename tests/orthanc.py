"""A real DICOMweb server for the tests: Debian's Orthanc with its DICOMweb plugin.

The session fixture :func:`orthanc` starts one private Orthanc (own storage and index in a temp
dir, a free loopback port, no DICOM listener, basic auth, remote access refused) and stops it
at the end. Tests that need it skip with a reason when Orthanc or the plugin is not installed
(``.ci/install`` installs both, so CI runs them). Only 127.0.0.1 is ever contacted.

The checks here use ``urllib`` (not the kiosk's HTTP client) so they judge the kiosk's uploads
independently, and Orthanc's own REST API (not DICOMweb) to place "office" objects.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

USER, PASSWORD = "kiosk", "orthanc-test-password"
_PLUGIN_DIRS = ("/usr/share/orthanc/plugins", "/usr/lib/orthanc")
# Never a proxy from the environment: the tests talk to loopback only.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    """A TCP port nobody listens on right now (on 127.0.0.1)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_orthanc() -> tuple[str, str] | None:
    """``(binary, DICOMweb plugin)`` paths, or None when either is missing."""
    binary = shutil.which("Orthanc") or shutil.which("Orthanc", path="/usr/sbin:/usr/bin")
    plugins = [p for d in _PLUGIN_DIRS for p in sorted(Path(d).glob("libOrthancDicomWeb.so*"))]
    if not binary or not plugins:
        return None
    return binary, str(plugins[0])


class OrthancServer:
    """One Orthanc process with a private configuration; can be stopped and started again."""

    def __init__(self, workdir: Path, binary: str, plugin: str) -> None:
        self.workdir = workdir
        self.binary = binary
        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.dicomweb = f"{self.root}/dicom-web"
        self.config = workdir / "orthanc.json"
        self.config.write_text(json.dumps({
            "Name": "medpass-test",
            "StorageDirectory": str(workdir / "storage"),
            "IndexDirectory": str(workdir / "index"),
            "HttpPort": self.port,
            "DicomServerEnabled": False,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {USER: PASSWORD},
            "Plugins": [plugin],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
            "StorageCompression": False,
            "SaveJobs": False,
        }), encoding="utf-8")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> None:
        """Start Orthanc and wait until ``/system`` answers."""
        log = open(self.workdir / "orthanc.log", "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen([self.binary, str(self.config)], stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Orthanc exited ({self.proc.returncode}); see "
                                   f"{self.workdir / 'orthanc.log'}")
            try:
                self.get("/system")
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("Orthanc did not answer /system in time")

    def stop(self, *, hard: bool = False) -> None:
        """Stop Orthanc (``hard``: SIGKILL, a crash or power cut) and wait for it."""
        if self.proc is not None and self.proc.poll() is None:
            if hard:
                self.proc.kill()
            else:
                self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    # --- independent checks -----------------------------------------------------------------

    def request(self, method: str, path: str, data: bytes | None = None,
                headers: dict[str, str] | None = None) -> bytes:
        """An authenticated request to Orthanc; the body of the answer."""
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        req = urllib.request.Request(self.root + path, data=data, method=method,
                                     headers={"Authorization": f"Basic {token}",
                                              **(headers or {})})
        with _OPENER.open(req, timeout=10) as response:
            return bytes(response.read())

    def get(self, path: str) -> Any:
        """GET a JSON answer."""
        return json.loads(self.request("GET", path) or b"null")

    def count_instances(self) -> int:
        """Instances stored in Orthanc (duplicates would show here)."""
        return int(self.get("/statistics")["CountInstances"])

    def qido_instances(self, study_uid: str) -> list[str]:
        """SOP Instance UIDs of a study, found with QIDO-RS."""
        body = self.request("GET", f"/dicom-web/studies/{study_uid}/instances",
                            headers={"Accept": "application/dicom+json"})
        return [item["00080018"]["Value"][0] for item in json.loads(body or b"[]")]

    def put_instance(self, data: bytes) -> None:
        """Store an instance through Orthanc's REST API (as the office would)."""
        self.request("POST", "/instances", data=data,
                     headers={"Content-Type": "application/dicom"})


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    """A running private Orthanc with DICOMweb and basic auth (skips when not installed)."""
    found = find_orthanc()
    if found is None:
        pytest.skip("Orthanc or its DICOMweb plugin is not installed "
                    "(apt-get install orthanc orthanc-dicomweb; .ci/install does)")
    server = OrthancServer(tmp_path_factory.mktemp("orthanc"), *found)
    server.start()
    try:
        yield server
    finally:
        server.stop(hard=True)  # its storage is thrown away; a polite stop takes 2 s


class StallingProxy:
    """A loopback TCP forwarder that stops forwarding when request number N begins.

    Lets a test freeze an upload in the middle (the kiosk is blocked waiting for the server)
    and then kill the kiosk: a deterministic "crash with a job in flight".
    """

    def __init__(self, upstream_port: int, stall_at_post: int) -> None:
        self.upstream_port = upstream_port
        self.stall_at_post = stall_at_post
        self.posts = 0
        self.release = threading.Event()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = int(self._sock.getsockname()[1])
        self._closed = False
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _addr = self._sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pump, args=(client, upstream, True),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False),
                             daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, outbound: bool) -> None:
        try:
            while chunk := src.recv(65536):
                if outbound:
                    with self._lock:
                        self.posts += chunk.count(b"POST /")
                        stalled = self.posts >= self.stall_at_post
                    if stalled:
                        self.release.wait()
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Stop accepting and let stalled connections go."""
        self._closed = True
        self.release.set()
        self._sock.close()


def wait_for(predicate: Any, timeout: float = 20.0, step: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


__all__ = ["PASSWORD", "USER", "OrthancServer", "StallingProxy", "free_port", "orthanc",
           "wait_for"]
