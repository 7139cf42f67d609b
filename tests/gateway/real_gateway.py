"""A real office gateway for the tests: ``kiosk gateway config`` + Debian's Orthanc.

The configuration is written by the CLI exactly as an office would (docs/gateway.md), Orthanc is
started with it, and the tests talk HTTP to it with ``urllib`` (never the kiosk's own client),
so they judge the gateway independently. Skips with a reason when Orthanc or its Python or
DICOMweb plugin is missing (``.ci/install`` installs them).
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.gateway_kit import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    KIOSK_PASSWORD,
    KIOSK_USER,
    KioskKey,
    basic,
)
from tests.orthanc import free_port

_PLUGIN_DIRS = ("/usr/share/orthanc/plugins", "/usr/lib/orthanc")
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_PLAIN = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def missing_parts() -> str | None:
    """Why a gateway cannot run here, or None."""
    if not (shutil.which("Orthanc") or Path("/usr/sbin/Orthanc").exists()):
        return "Orthanc is not installed (apt-get install orthanc; .ci/install does)"
    for stem, package in (("OrthancPython", "orthanc-python"),
                          ("OrthancDicomWeb", "orthanc-dicomweb")):
        if not any(Path(d).glob(f"lib{stem}.so*") for d in _PLUGIN_DIRS):
            return f"{package} is not installed (.ci/install installs it)"
    return None


@dataclass
class Answer:
    """One HTTP answer."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


class GatewayClient:
    """HTTP to a gateway (directly, or through nginx with TLS) with ``urllib``."""

    def __init__(self, url: str, context: ssl.SSLContext | None = None) -> None:
        self.url = url
        self._opener = (_PLAIN if context is None else urllib.request.build_opener(
            urllib.request.ProxyHandler({}), _NoRedirect(),
            urllib.request.HTTPSHandler(context=context)))

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> Answer:
        """One request; errors are answers too."""
        req = urllib.request.Request(self.url + path, data=body, method=method,
                                     headers=headers or {})
        try:
            with self._opener.open(req, timeout=30) as response:
                return Answer(response.status, response.read(), dict(response.headers))
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, exc.read(), dict(exc.headers))

    @staticmethod
    def kiosk_auth() -> str:
        """The kiosk's ``Authorization`` header value."""
        return basic(KIOSK_USER, KIOSK_PASSWORD)

    def kiosk(self, method: str, path: str, data: Any = None) -> Answer:
        """A request with the kiosk's credentials (JSON body)."""
        body = None if data is None else json.dumps(data).encode()
        return self.request(method, path, body, {"Authorization": self.kiosk_auth(),
                                                 "Content-Type": "application/json"})

    def admin(self, method: str, path: str, body: bytes | None = None) -> Answer:
        """A request with the office's admin credentials."""
        return self.request(method, path, body,
                            {"Authorization": basic(ADMIN_USER, ADMIN_PASSWORD)})

    def stow(self, files: list[Path]) -> Answer:
        """STOW-RS the files with the kiosk's credentials, as a kiosk uploads."""
        boundary = uuid.uuid4().hex
        parts = b"".join(b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom"
                         b"\r\n\r\n" + f.read_bytes() + b"\r\n" for f in files)
        body = parts + b"--" + boundary.encode() + b"--\r\n"
        return self.request("POST", "/dicom-web/studies", body, {
            "Authorization": basic(KIOSK_USER, KIOSK_PASSWORD),
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
            "Accept": "application/dicom+json"})


class RealGateway(GatewayClient):
    """One Orthanc process started from ``kiosk gateway config`` output."""

    def __init__(self, folder: Path, keys: list[KioskKey], *, database: str | None = None,
                 extra: tuple[str, ...] = ()) -> None:
        self.folder = folder
        self.port = free_port()
        super().__init__(f"http://127.0.0.1:{self.port}")
        keys_dir = folder / "keys"
        keys_dir.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "kiosk.cli.main", "gateway", "config",
                "--out", str(folder / "gw"), "--public-url", self.url,
                "--http-port", str(self.port), "--kiosk-user", KIOSK_USER,
                "--kiosk-password", KIOSK_PASSWORD, "--admin-user", ADMIN_USER,
                "--admin-password", ADMIN_PASSWORD, *extra]
        for key in keys:
            args += ["--trust-key", str(key.write_public(keys_dir))]
        if database:
            args += ["--database", database]
        self.config_output = subprocess.run(args, capture_output=True, text=True, check=True,
                                            timeout=60).stdout
        self.config = folder / "gw" / "orthanc.json"
        self.proc: subprocess.Popen[bytes] | None = None

    def twin(self, name: str) -> RealGateway:
        """A second Orthanc process of the same office: a copy of the file, another port."""
        twin = object.__new__(RealGateway)
        twin.folder = self.folder / name
        twin.folder.mkdir()
        twin.port = free_port()
        GatewayClient.__init__(twin, f"http://127.0.0.1:{twin.port}")
        settings = json.loads(self.config.read_text())
        settings["HttpPort"] = twin.port
        twin.config = twin.folder / "orthanc.json"
        twin.config.write_text(json.dumps(settings), encoding="utf-8")
        twin.config_output = self.config_output
        twin.proc = None
        return twin

    def start(self, timeout: float = 30.0) -> None:
        """Start Orthanc and wait until the gateway's door answers."""
        log = open(self.folder / "orthanc.log", "ab")  # noqa: SIM115 - owned by the process
        binary = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
        self.proc = subprocess.Popen([binary, str(self.config)], stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Orthanc exited ({self.proc.returncode}): "
                                   f"{self.log()[-2000:]}")
            try:
                if self.request("GET", "/").status == 401:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the gateway did not answer in time: {self.log()[-2000:]}")

    def stop(self) -> None:
        """Stop Orthanc."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def log(self) -> str:
        """Orthanc's log so far."""
        path = self.folder / "orthanc.log"
        return path.read_text(errors="replace") if path.exists() else ""


def start_gateway(folder: Path, keys: list[KioskKey], **kwargs: Any) -> RealGateway:
    """A started gateway (skips the test when the parts are missing)."""
    reason = missing_parts()
    if reason:
        pytest.skip(reason)
    gateway = RealGateway(folder, keys, **kwargs)
    gateway.start()
    return gateway
