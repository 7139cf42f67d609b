"""``kiosk gateway config``: what it writes, and a clear message for every unusable value."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gateway.gateway_kit import KioskKey
from tests.gateway.real_gateway import missing_parts


def _config(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    key = KioskKey.new().write_public(tmp_path)
    args = ["--out", str(tmp_path / "gw"), "--public-url", "https://gw.example",
            "--http-port", "8042", "--kiosk-user", "desk", "--kiosk-password", "p" * 16,
            "--trust-key", str(key)]
    return subprocess.run([sys.executable, "-m", "kiosk.cli.main", "gateway", "config",
                           *args, *extra], capture_output=True, text=True, timeout=60)


def test_a_generated_admin_password_is_shown_once_and_kept_private(tmp_path: Path) -> None:
    if missing_parts():
        pytest.skip(missing_parts())
    done = _config(tmp_path)
    assert done.returncode == 0, done.stderr
    password = (tmp_path / "gw" / "admin-password").read_text().strip()
    assert len(password) >= 20 and password in done.stdout
    assert (tmp_path / "gw" / "admin-password").stat().st_mode & 0o077 == 0
    section = json.loads((tmp_path / "gw" / "orthanc.json").read_text())["MedPassGateway"]
    assert section["admin_password"] == password
    assert section["database"].startswith("sqlite:///")
    assert len(bytes.fromhex(section["client_key_secret"])) == 32


@pytest.mark.parametrize(("extra", "message"), [
    (["--public-url", "gw.example"], "must start with https://"),
    (["--http-port", "70000"], "is not a TCP port"),
    (["--kiosk-password", "short"], "at least 12 characters"),
    (["--admin-password", "short"], "at least 12 characters"),
    (["--trust-key", "/nonexistent/key.pem"], "cannot be read"),
    (["--database", "mysql://db/x"], "only postgresql://"),
    (["--database", "postgresql://"], "postgresql://USER:PASSWORD@HOST:PORT/DB"),
    (["--limit-client", "0"], "must be at least 1"),
])
def test_unusable_values_are_refused_with_a_clear_message(tmp_path: Path, extra: list[str],
                                                          message: str) -> None:
    done = _config(tmp_path, *extra)
    assert done.returncode != 0
    assert message in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "gw" / "orthanc.json").exists()


def test_a_file_that_is_not_a_public_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "not-a-key.pem").write_text("hello\n")
    done = _config(tmp_path, "--trust-key", str(tmp_path / "not-a-key.pem"))
    assert done.returncode != 0 and "kiosk link pubkey" in done.stderr + done.stdout
