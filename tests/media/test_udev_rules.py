"""The udev rules in ``udev/`` (and the test-only rule) are linted with ``udevadm test``.

``udevadm test`` exits 0 even when a rule is broken, so its output is searched for lines that
name our file and say Invalid/Unknown/error/failed. Then the rules are checked for what they are
for: a disc or a USB stick is marked for the kiosk and hidden from desktop automounters; any
other block device is left alone.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.media_fixtures import RULES_DIR, TEST_RULE, Loop, fat_image, iso_image

REPO = Path(__file__).resolve().parents[2]
APPLIANCE_RULES = sorted((REPO / "udev").glob("*.rules"))
PROBLEM = re.compile(r"invalid|unknown|error|fail", re.IGNORECASE)

pytestmark = pytest.mark.root


def test_the_appliance_ships_udev_rules() -> None:
    assert [p.name for p in APPLIANCE_RULES] == ["65-medpass-kiosk.rules",
                                                "66-medpass-printer.rules"]


def udevadm_test(device: str) -> str:
    result = subprocess.run(["udevadm", "test", "--action=add",
                             f"/sys/class/block/{Path(device).name}"],
                            capture_output=True, text=True, timeout=60, check=False)
    return result.stdout + result.stderr


def problems(output: str, installed: Path) -> list[str]:
    return [line for line in output.splitlines()
            if installed.name in line and PROBLEM.search(line)]


@pytest.fixture
def installed(udevd: None) -> Iterator[list[Path]]:
    """The appliance rules installed (under a private name) for udevadm test to read."""
    copies = []
    try:
        for rule in APPLIANCE_RULES:
            copy = RULES_DIR / f"{rule.stem}-lint-{os.getpid()}.rules"
            copy.write_text(rule.read_text())
            copies.append(copy)
        yield copies
    finally:
        for copy in copies:
            copy.unlink(missing_ok=True)


def test_the_rules_parse_without_a_complaint(installed: list[Path], tmp_path: Path) -> None:
    tree = tmp_path / "t"
    tree.mkdir()
    with Loop(iso_image(tree, tmp_path / "fakecd.iso", "LINT"), read_only=True,
              settle=True) as loop:
        output = udevadm_test(loop.device)
    test_rule = RULES_DIR / f"61-medpass-test-fake-media-{os.getpid()}.rules"
    for rule in [*installed, test_rule]:
        assert f"Reading rules file: {rule}" in output, output[-2000:]
        assert problems(output, rule) == [], f"{rule.name} has problems"


def test_the_lint_does_catch_a_broken_rule(udevd: None, tmp_path: Path) -> None:
    broken = RULES_DIR / f"66-medpass-broken-{os.getpid()}.rules"
    broken.write_text('SUBSYSTEM=="block", ENV{X}="1", BOGUS="x"\nKERNEL=="sd*", '
                      'GROUP="no-such-group-here"\n')
    try:
        output = udevadm_test("/dev/loop0")
    finally:
        broken.unlink()
    assert len(problems(output, broken)) == 2


def test_discs_and_sticks_are_marked_for_the_kiosk_and_hidden_from_automounters(
        installed: list[Path], tmp_path: Path) -> None:
    tree = tmp_path / "t"
    tree.mkdir()
    cd = iso_image(tree, tmp_path / "fakecd.iso", "CD")
    usb = fat_image(tmp_path / "fakeusb.img", {}, "STICK")
    # The same stick under a name the test rule does not know: an ordinary loop device.
    plain = fat_image(tmp_path / "fakeusb-plain.img", {}, "PLAIN").rename(
        tmp_path / "internal.img")
    with Loop(cd, read_only=True, settle=True) as a, Loop(usb, settle=True) as b, \
            Loop(plain, settle=True) as c:
        disc_out, stick_out, other_out = (udevadm_test(x.device) for x in (a, b, c))
    for output in (disc_out, stick_out):
        assert "MEDPASS_MEDIA=1" in output
        assert "UDISKS_IGNORE=1" in output and "UDISKS_AUTO=0" in output
        assert re.search(r"MODE 0640", output)
    assert re.search(r"65-medpass-kiosk-lint-\d+\.rules:\d+ GROUP \d+", stick_out)
    assert "MEDPASS_MEDIA" not in other_out and "UDISKS_IGNORE" not in other_out


def test_the_test_only_rule_stays_under_tests() -> None:
    assert TEST_RULE.parent == REPO / "tests" / "udev"
    assert not any("fakeusb" in p.read_text() for p in APPLIANCE_RULES)
