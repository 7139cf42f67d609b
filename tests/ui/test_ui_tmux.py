"""`kiosk demo` in a real terminal (tmux): keys in, screen out, and the QR scanned off the screen.

The one end-to-end test of the real program: import → review → identity → export → done, by
``send-keys``; the Done screen is captured with ``capture-pane``, the half-block QR rebuilt into
an image (the capture has U+00A0 for spaces) and decoded by zbarimg, and the decoded link must
be the one printed beside it and must verify with this kiosk's key.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.links.test_qr import image_from_terminal, zbar

#: Wide enough for the QR of the sample disc's two-study link (77×39) with the text beside it.
COLUMNS, ROWS = 130, 45

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
    pytest.mark.skipif(shutil.which("zbarimg") is None,
                       reason="zbarimg (zbar-tools) is not installed"),
]


class Terminal:
    """A detached tmux session of a private server running one command."""

    def __init__(self, command: str, env: dict[str, str]) -> None:
        self.tmux = ["tmux", "-u", "-L", f"kiosk-ui-test-{os.getpid()}", "-f", "/dev/null"]
        subprocess.run([*self.tmux, "new-session", "-d", "-x", str(COLUMNS), "-y", str(ROWS),
                        "-s", "ui", command], check=True, env=env, timeout=30)

    def capture(self) -> str:
        """The visible screen as text."""
        return subprocess.run([*self.tmux, "capture-pane", "-p", "-t", "ui"], check=True,
                              capture_output=True, text=True, timeout=30).stdout

    def keys(self, *keys: str) -> None:
        """Type ``keys`` (tmux key names: ``Enter``, ``F2``, ``d``)."""
        subprocess.run([*self.tmux, "send-keys", "-t", "ui", *keys], check=True, timeout=30)

    def wait_for(self, text: str, timeout: float = 60.0) -> str:
        """Capture until ``text`` is on screen and the screen stopped changing; return it."""
        deadline, screen, last = time.monotonic() + timeout, "", None
        while time.monotonic() < deadline:
            screen = self.capture()
            if text in screen.replace("\xa0", " "):
                if screen == last:
                    return screen
                last = screen  # once more: the app may be half-way through a redraw
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared; the screen was:\n{screen}")

    def close(self) -> None:
        """End the tmux server (and the demo in it)."""
        subprocess.run([*self.tmux, "kill-server"], capture_output=True, timeout=30)


def qr_block(screen: str) -> tuple[list[str], int, int]:
    """The QR's rows cut out of a capture, and its first and last column.

    The top quiet zone is a full row of light modules: a run of █ as wide as the code.
    """
    lines = [line.replace("\xa0", " ") for line in screen.splitlines()]
    for top, line in enumerate(lines):
        match = re.search("\u2588{21,}", line)
        if match:
            left, right = match.start(), match.end()
            rows = [row[left:right].ljust(right - left) for row in
                    lines[top:top + (right - left + 1) // 2]]
            return rows, left, right
    raise AssertionError(f"no QR code on screen:\n{screen}")


def link_beside(screen: str, right: int) -> str:
    """The link printed to the right of the QR, wrapped over several lines, joined."""
    lines = [line.replace("\xa0", " ")[right:].strip() for line in screen.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("https://"))
    parts = []
    for line in lines[start:]:
        if not line or line.startswith("Link valid"):
            break
        parts.append(line)
    return "".join(parts)


def test_kiosk_demo_walks_to_a_qr_that_scans_off_the_real_terminal(tmp_path: Path) -> None:
    data = tmp_path / "kiosk-data"
    env = {**os.environ, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TERM": "xterm-256color"}
    env.pop("KIOSK_DATA_DIR", None)
    kiosk = f"{sys.executable} -m kiosk.cli.main --data-dir {data}"
    term = Terminal(f"{kiosk} demo; sleep 60", env)  # Textual draws on stderr: no redirect
    try:
        term.wait_for("Insert the hospital disc or USB stick")
        term.keys("d")  # the demo's sample hospital CD goes into the drive
        term.wait_for("All 22 images copied and verified")
        term.keys("Enter")
        term.wait_for("Identity not confirmed")
        term.keys("c")
        term.wait_for("Name as in the passport")
        term.keys("Enter")
        term.wait_for("Confirmed: LI HUA, born 1985-03-14")
        term.keys("e")
        term.wait_for("Insert the patient's own USB stick")
        term.keys("s")  # the demo's patient stick goes in
        term.wait_for("Press Enter to write.")
        term.keys("Enter")
        term.wait_for("USB passphrase")
        screen = term.wait_for("Link valid until")  # minted: the QR is drawn with it
        (tmp_path / "done.txt").write_text(screen, encoding="utf-8")
        rows, _left, right = qr_block(screen)
        image_from_terminal(rows).save(tmp_path / "screen.png")
        decoded = zbar(tmp_path / "screen.png")
        assert decoded == link_beside(screen, right)
        assert decoded.startswith("https://link.medpass.example/s/")
        passphrase = re.search(r"\b[2-9A-Z]{4}(?:-[2-9A-Z]{4}){4}\b", screen)
        assert passphrase, "the passphrase is on the Done screen"
        term.keys("F2")
        term.wait_for("U盘密码")  # the same screen in Chinese, one key later
        term.keys("Enter")
        home = term.wait_for("请插入医院光盘或U盘")
        assert passphrase.group(0) not in home and "李华" not in home
    finally:
        term.close()
    # The QR holds the short link; its token is the one this kiosk keeps for the gateway.
    from kiosk.bootstrap import build_service

    share = build_service(data_dir=data, env={}).catalog.db.get("links",
                                                                share_id=decoded[-26:])
    assert share is not None
    token = share["token"]
    verified = subprocess.run([sys.executable, "-m", "kiosk.cli.main", "--data-dir", str(data),
                               "link", "verify", token], capture_output=True, text=True,
                              timeout=60, env=env)
    assert verified.returncode == 0, verified.stderr
