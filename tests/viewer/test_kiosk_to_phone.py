"""Issue 17's walk end to end on real parts: a kiosk (the ``kiosk`` command, as a desk runs it)
syncs to an office gateway made by ``kiosk gateway config`` (Debian's Orthanc with our plugin);
the patient's QR, read back with ``zbarimg``, opens the case on a phone (Debian's chromium at
412x915, touch): passcode, the first image, a swipe, the certified translation. Then the
coordinator revokes the link and the phone gets the revoked page."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kiosk.samples.pdf import minimal_pdf
from kiosk.samples.sample_disc import build_sample_disc
from kiosk.store.locations import Locations
from tests.gateway.gateway_kit import KIOSK_PASSWORD, KIOSK_USER
from tests.gateway.real_gateway import RealGateway, missing_parts
from tests.viewer.browser_kit import PHONE
from tests.viewer.test_share_phone import _canvas, _swipe

pytestmark = pytest.mark.slow


def _kiosk(env: dict[str, str], *args: str) -> str:
    """Run ``kiosk ARGS`` as a desk would; its stdout (fails the test with stderr)."""
    done = subprocess.run([sys.executable, "-m", "kiosk.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"kiosk {' '.join(args)}: {done.stderr}"
    assert "Traceback" not in done.stderr
    return done.stdout


def test_a_case_from_the_desk_opens_on_a_phone_from_its_qr(viewer_browser: Any,
                                                          tmp_path: Path) -> None:
    reason = missing_parts()
    if reason:
        pytest.skip(reason)
    if shutil.which("zbarimg") is None:
        pytest.skip("zbarimg is not installed (zbar-tools; .ci/install installs it)")
    data_dir = tmp_path / "kiosk-data"
    config = tmp_path / "kiosk.toml"
    config.write_text("[link]\npasscode = true\n[sync]\nbatch_instances = 16\n")
    env = {**os.environ, "KIOSK_DATA_DIR": str(data_dir), "KIOSK_CONFIG": str(config)}
    for name in [k for k in env if k.startswith("KIOSK_CLOUD") or k == "KIOSK_LINK_BASE_URL"]:
        del env[name]
    # The office trusts this kiosk's key (`kiosk link pubkey`, given to --trust-key).
    pem = tmp_path / "desk.pem"
    pem.write_text(_kiosk(env, "link", "pubkey"))
    gateway = RealGateway(tmp_path / "office", [], extra=("--trust-key", str(pem)))
    gateway.start()
    try:
        env |= {"KIOSK_CLOUD_URL": gateway.url + "/dicom-web", "KIOSK_CLOUD_USER": KIOSK_USER,
                "KIOSK_CLOUD_PASSWORD": KIOSK_PASSWORD, "KIOSK_LINK_BASE_URL": gateway.url}
        _walk(env, gateway, data_dir, tmp_path, viewer_browser)
    finally:
        gateway.stop()


def _walk(env: dict[str, str], gateway: RealGateway, data_dir: Path, tmp_path: Path,
          browser: Any) -> None:
    # The desk: the hospital disc in, the office's certified translation in the inbox.
    disc = build_sample_disc(tmp_path / "disc")
    imported = json.loads(_kiosk(env, "import", str(disc.root), "--json"))
    case_id = imported["case_id"]
    # The hospital's Chinese report (from the disc) and the office's certified translation,
    # as the office inbox delivers them (docs: kiosk/cloud/translations.py).
    inbox = Locations(data_dir).inbox_dir
    original = inbox / f"{disc.study_uids[0]}.zh.pdf"
    original.write_bytes(disc.report_pdf.read_bytes())
    translation = inbox / f"{disc.study_uids[0]}.en.pdf"
    translation.write_bytes(minimal_pdf(["Certified translation: chest CT, no acute finding."]))
    for path in (original, translation):
        os.utime(path, (time.time() - 3600,) * 2)  # settled: the office finished writing
    _kiosk(env, "sync", "--once")
    stick = tmp_path / "stick"
    stick.mkdir()
    exported = json.loads(_kiosk(env, "export", case_id, "--to", str(stick), "--json"))
    sync = _kiosk(env, "sync", "--once")
    assert "FAILED" not in sync, sync

    # The slip's QR, read back by a scanner: the short link, version 5 or less.
    shown = json.loads(_kiosk(env, "qr", case_id, "--png", str(tmp_path / "qr.png"),
                              "--json"))
    scanned = subprocess.run(["zbarimg", "--raw", "-q", str(tmp_path / "qr.png")],
                             capture_output=True, text=True, timeout=30).stdout.strip()
    assert scanned == shown["url"] == exported["link"]
    assert scanned.startswith(gateway.url + "/s/") and shown["qr_version"] <= 5
    assert shown["passcode"] not in scanned
    share = gateway.kiosk("GET", f"/kiosk/shares/{shown['id']}").json()
    assert share["state"] == "live" and share["studies_present"] == len(disc.study_uids)

    # The phone.
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True,
                                  device_scale_factor=2, service_workers="block",
                                  locale="en-US")
    try:
        page = context.new_page()
        page.goto(scanned)
        page.locator("#passcode").wait_for(timeout=15_000)
        page.locator("#passcode").fill(shown["passcode"])
        page.locator("#passcode").press("Enter")
        page.wait_for_function("() => medpassLib.ui.app?.screen()?.viewport?.frame != null",
                               timeout=30_000)
        page.wait_for_timeout(300)
        before = _canvas(page)
        assert len(np.unique(before[..., 0])) > 20
        _swipe(page, 240)
        page.wait_for_function("() => { const v = medpassLib.ui.app.screen().viewport;"
                               " return v.index > 0 && v.frame != null; }", timeout=15_000)
        page.wait_for_timeout(300)
        assert np.abs(_canvas(page).astype(int) - before.astype(int)).sum() > 0
        # The hospital's report and the office's certified translation, as the kiosk sent.
        page.wait_for_function(
            "() => document.querySelectorAll('[data-testid=report-label]').length >= 2",
            timeout=15_000)
        labels = page.locator("[data-testid=report-label]").all_inner_texts()
        assert labels[0].startswith("Original report (Chinese)"), labels
        assert labels[1].startswith("Certified English translation of"), labels
        banner = page.locator("[data-testid=custody][data-state=verified]")
        banner.wait_for(timeout=15_000)
        assert "certified translation" in banner.inner_text()

        # The coordinator revokes it; after the next sync the phone gets the revoked page.
        _kiosk(env, "link", "revoke", case_id)
        _kiosk(env, "sync", "--once")
        answer = gateway.request("GET", f"/s/{shown['id']}")
        assert answer.status == 410
        page.reload()
        text = page.locator("body").inner_text()
        assert "This link has been withdrawn" in text and "此链接已被撤销" in text
        assert case_id not in text and "Li Hua" not in text  # the page leaks nothing
    finally:
        context.close()
