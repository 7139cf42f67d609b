"""The QR scans: from the PNG, and from the terminal at the size the README promises."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from kiosk.links import qr
from kiosk.service import KioskService
from tests.conftest import make_instance

Run = Callable[..., tuple[int, str, str]]
needs_zbar = pytest.mark.skipif(shutil.which("zbarimg") is None,
                                reason="zbarimg (zbar-tools) is not installed")
#: README "Link and QR": the terminal size `kiosk qr` needs, per link kind.
README_SIZES = {"kiosk": (80, 24), "orthanc-share": (100, 50)}
SECRET = "orthanc-auth-service-shared-secret-0123456789"


def zbar(png: Path) -> str:
    """What zbarimg reads from an image (its stderr carries D-Bus noise)."""
    proc = subprocess.run(["zbarimg", "--quiet", "--raw", str(png)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, f"zbarimg found no code: {proc.stderr}"
    return proc.stdout.rstrip("\n")


def image_from_terminal(lines: list[str], scale: int = 4) -> Image.Image:
    """Rebuild the code from half-block text: each cell is two modules, blocks are light."""
    rows = [ln.replace("\xa0", " ") for ln in lines]
    width = max(len(r) for r in rows)
    img = Image.new("L", (width, 2 * len(rows)), 0)
    light = {"\u2588": (True, True), "\u2580": (True, False), "\u2584": (False, True)}
    for y, row in enumerate(rows):
        for x, char in enumerate(row):
            top, bottom = light.get(char, (False, False))
            img.putpixel((x, 2 * y), 255 if top else 0)
            img.putpixel((x, 2 * y + 1), 255 if bottom else 0)
    return img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)


@pytest.fixture
def case_id(service: KioskService, tmp_path: Path) -> str:
    make_instance(tmp_path / "cd" / "IM1")
    return str(service.import_path(tmp_path / "cd", case_id="C20261127-7KQM")["case_id"])


@needs_zbar
def test_the_png_scans_to_exactly_the_printed_link(run_cli: Run, case_id: str,
                                                   tmp_path: Path) -> None:
    png = tmp_path / "link.png"
    code, out, err = run_cli("qr", case_id, "--png", str(png))
    assert code == 0, err
    link = out.splitlines()[-1]
    assert link.startswith("https://") and "valid until" in out.splitlines()[-2]
    assert zbar(png) == link
    code, out, _ = run_cli("qr", case_id)  # same link on screen as in the PNG
    assert code == 0 and out.splitlines()[-1] == link
    code, out, err = run_cli("qr", "C19990101-NONE")
    assert code == 2 and out == "" and "no case" in err


@needs_zbar
def test_the_terminal_lines_scan_when_rebuilt_into_an_image(tmp_path: Path) -> None:
    data = "https://link.medpass.example/s/" + "x" * 300
    lines = qr.terminal_lines(data)
    assert set("".join(lines)) <= {"\u2588", "\u2580", "\u2584", " "}
    assert qr.terminal_size(data) == (len(lines[0]), len(lines))
    image_from_terminal(lines).save(tmp_path / "t.png")
    assert zbar(tmp_path / "t.png") == data


@needs_zbar
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
@pytest.mark.parametrize("kind", ["kiosk", "orthanc-share"])
def test_kiosk_qr_scans_off_a_real_terminal_of_the_readme_size(
        case_id: str, data_dir: Path, tmp_path: Path, kind: str) -> None:
    columns, rows = README_SIZES[kind]
    config = tmp_path / "kiosk.toml"
    config.write_text(f'[link]\nkind = "{kind}"\n')
    env = {**os.environ, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "KIOSK_LINK_SECRET": SECRET,
           "TERM": "xterm-256color"}
    command = (f"{sys.executable} -m kiosk.cli.main --data-dir {data_dir} --config {config} qr "
               f"{case_id}; sleep 30")
    tmux = ["tmux", "-u", "-L", f"kiosk-qr-test-{os.getpid()}", "-f", "/dev/null"]
    subprocess.run([*tmux, "new-session", "-d", "-x", str(columns), "-y", str(rows), "-s", "qr",
                    command], check=True, env=env, timeout=30)
    try:
        deadline, screen = time.monotonic() + 30, ""
        while time.monotonic() < deadline:
            screen = subprocess.run([*tmux, "capture-pane", "-p", "-J", "-t", "qr"],
                                    capture_output=True, text=True, check=True,
                                    timeout=30).stdout
            if "https://" in screen:
                break
            time.sleep(0.2)
        size = subprocess.run([*tmux, "display", "-p", "-t", "qr",
                               "#{window_width}x#{window_height}"],
                              capture_output=True, text=True, check=True, timeout=30).stdout
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, timeout=30)
    assert size.strip() == f"{columns}x{rows}"
    lines = screen.splitlines()
    link = next(ln.strip() for ln in lines if ln.startswith("https://"))
    code_lines = [ln for ln in lines if ln.strip() and set(ln) <= set("\u2588\u2580\u2584 \xa0")]
    # The whole code is on screen: first and last rows are the quiet zone, nothing scrolled off.
    assert lines[0] == code_lines[0] and set(code_lines[0]) == {"\u2588"}
    image_from_terminal(code_lines).save(tmp_path / "screen.png")
    assert zbar(tmp_path / "screen.png") == link
