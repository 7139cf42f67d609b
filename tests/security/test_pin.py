"""The coordinator PIN: a scrypt hash on disk, constant-time checks, a lockout that grows and
survives a restart, the old plain ``ui.admin_pin`` migrated, and ``kiosk pin``."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kiosk.bootstrap import build_service
from kiosk.errors import PinError, StoreError, UsageError
from kiosk.security.pin import LOCK_MAX_SECONDS, PinStore, pin_problem
from kiosk.service import KioskService
from tests.conftest import json_report

Run = Callable[..., tuple[int, str, str]]


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> PinStore:
    pins = PinStore(tmp_path / "keys" / "coordinator-pin.json", clock=clock)
    pins.set("482913")
    return pins


# --- format ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("pin", "problem"), [
    ("", "digits"), ("123", "digits"), ("1234567890123", "digits"), ("12a4", "digits"),
    (" 4829", "digits"), ("4829 ", "digits"), ("١٢٣٤٥", "digits"),  # Arabic-Indic digits
    ("0000", "same"), ("99999999", "same"),
    ("1234", "sequence"), ("7890", "sequence"), ("9876", "sequence"), ("3210", "sequence"),
    ("2468", None), ("482913", None), ("135790", None), ("5820391", None),
])
def test_pins_that_are_not_4_to_12_digits_or_too_easy_are_refused(
        pin: str, problem: str | None) -> None:
    assert pin_problem(pin) == problem


def test_a_weak_pin_is_refused_unless_allowed_but_a_malformed_one_never(tmp_path: Path) -> None:
    pins = PinStore(tmp_path / "pin.json")
    with pytest.raises(PinError, match="consecutive") as err:
        pins.set("1234")
    assert err.value.reason == "sequence" and not pins.is_set()
    pins.set("0000", allow_weak=True)  # the demo's PIN
    assert pins.matches("0000")
    with pytest.raises(PinError, match="4 to 12 digits"):
        pins.set("12ab", allow_weak=True)
    assert pins.matches("0000")  # unchanged


# --- the file ---------------------------------------------------------------------------------


def test_the_pin_is_stored_as_a_salted_scrypt_hash_in_a_private_file(
        store: PinStore, tmp_path: Path) -> None:
    text = store.path.read_text("utf-8")
    doc = json.loads(text)
    assert "482913" not in text
    assert (doc["kdf"], doc["n"], doc["r"], doc["p"]) == ("scrypt", 2**14, 8, 1)
    assert len(bytes.fromhex(doc["salt"])) == 16 and len(bytes.fromhex(doc["hash"])) == 32
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    salt = doc["salt"]
    store.set("482913")  # the same PIN again: a new salt, so a new hash
    again = json.loads(store.path.read_text("utf-8"))
    assert again["salt"] != salt and again["hash"] != doc["hash"]
    assert [p.name for p in store.path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_right_and_wrong_pins(store: PinStore) -> None:
    assert store.check("482913").ok
    wrong = store.check("482914")
    assert not wrong.ok and wrong.tries_left == 2 and wrong.locked_seconds == 0
    assert not store.check("48291").ok  # a prefix is not the PIN
    assert store.check("482913").ok and store.status().failures == 0  # success resets
    assert store.check("4829130").tries_left == 2  # nor is a longer one; counted afresh


@pytest.mark.parametrize("content", [
    "not json", "[]", '{"kdf": "md5"}',
    '{"kdf": "scrypt", "n": 1073741824, "r": 8, "p": 1, "salt": "00", "hash": "00", '
    '"failures": 0, "locked_until": 0}',  # would make every check allocate 8 GiB
    '{"kdf": "scrypt", "n": 16384, "r": 8, "p": 1, "salt": "zz", "hash": "00", '
    '"failures": 0, "locked_until": 0}',
])
def test_a_damaged_pin_file_is_reported_not_trusted_or_replaced(
        store: PinStore, content: str) -> None:
    store.path.write_text(content, "utf-8")
    assert store.is_set()  # never silently treated as "no PIN yet" (that would let anyone in)
    with pytest.raises(StoreError, match="kiosk pin set"):
        store.check("482913")
    with pytest.raises(StoreError):
        store.status()
    store.set("482913")  # `kiosk pin set` repairs it
    assert store.check("482913").ok


def test_checking_without_a_pin_says_to_set_one(tmp_path: Path) -> None:
    with pytest.raises(PinError) as err:
        PinStore(tmp_path / "pin.json").check("482913")
    assert err.value.reason == "unset"


# --- lockout ----------------------------------------------------------------------------------


def test_the_lockout_starts_at_the_third_miss_and_doubles_up_to_15_minutes(
        store: PinStore, clock: Clock) -> None:
    assert store.check("1").tries_left == 2
    assert store.check("2").tries_left == 1
    third = store.check("3")
    assert (third.ok, third.locked_seconds, third.tries_left) == (False, 30, 0)
    clock.now += 10
    locked = store.check("482913")  # even the right PIN is refused, unchecked, while locked
    assert not locked.ok and locked.locked_seconds == 20
    assert store.status().failures == 3  # refused attempts are not counted
    delays = []
    for _ in range(7):
        clock.now += store.status().locked_seconds
        delays.append(store.check("0").locked_seconds)
    assert delays == [60, 120, 240, 480, 900, 900, 900]
    clock.now += LOCK_MAX_SECONDS
    assert store.check("482913").ok
    status = store.status()
    assert (status.failures, status.locked_seconds) == (0, 0)
    assert store.check("5").tries_left == 2  # a fresh start after the right PIN


def test_a_restart_does_not_reset_the_lockout(store: PinStore, clock: Clock) -> None:
    for pin in ("1", "2", "3"):
        store.check(pin)
    restarted = PinStore(store.path, clock=clock)  # a new process, same file
    assert restarted.status().locked_seconds == 30
    assert not restarted.check("482913").ok
    clock.now += 30
    assert restarted.check("4").locked_seconds == 60  # the count carried over too


def test_a_clock_set_back_cannot_stretch_the_lockout(store: PinStore, clock: Clock) -> None:
    for pin in ("1", "2", "3"):
        store.check(pin)
    clock.now -= 86400 * 365  # NTP not there yet: the Pi thinks it is last year
    assert store.check("482913").locked_seconds == LOCK_MAX_SECONDS
    clock.now += LOCK_MAX_SECONDS
    assert store.check("482913").ok


def test_setting_a_new_pin_clears_the_lockout(store: PinStore) -> None:
    for pin in ("1", "2", "3"):
        store.check(pin)
    store.set("573920")
    assert store.check("573920").ok and not store.matches("482913")


# --- through the facade: audited ------------------------------------------------------------


def test_every_pin_attempt_is_audited_with_its_purpose_and_never_the_pin(
        service: KioskService) -> None:
    service.pins.clock = Clock()
    service.set_pin("482913", source="ui")
    assert service.check_pin("482913", "admin").ok
    assert not service.check_pin("111111", "force_purge", case_id="C1").ok
    for _ in range(2):
        service.check_pin("222222", "admin")
    with pytest.raises(UsageError, match="purpose"):
        service.check_pin("482913", "open_sesame")
    entries = [e for e in service.audit.entries()
               if e["action"] in ("admin_login", "pin_set")]
    assert [e["details"] for e in entries] == [
        {"source": "ui", "replaced": False},
        {"ok": True, "purpose": "admin"},
        {"ok": False, "purpose": "force_purge", "case_id": "C1"},
        {"ok": False, "purpose": "admin"},
        {"ok": False, "purpose": "admin", "locked_seconds": 30},
    ]
    assert "482913" not in service.locations.audit_file.read_text("utf-8")


# --- the old plain ui.admin_pin ---------------------------------------------------------------


def test_a_plain_admin_pin_in_the_config_is_hashed_once_and_then_ignored(
        tmp_path: Path, data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = tmp_path / "kiosk.toml"
    config.write_text('[ui]\nadmin_pin = "1111"\n', "utf-8")  # weak, but it was in use
    service = build_service(config, data_dir, env={})
    assert service.pin_matches("1111")
    assert "Remove ui.admin_pin" in caplog.text
    [entry] = [e for e in service.audit.entries() if e["action"] == "pin_set"]
    assert entry["details"] == {"source": "config", "replaced": False}
    service.set_pin("582039", source="cli")
    config.write_text('[ui]\nadmin_pin = "2222"\n', "utf-8")
    again = build_service(config, data_dir, env={})
    assert again.pin_matches("582039") and not again.pin_matches("2222")


@pytest.mark.parametrize("value", ['"12"', '"abcd"', "1234"])
def test_a_malformed_admin_pin_in_the_config_is_a_config_error(
        run_cli: Run, tmp_path: Path, value: str) -> None:
    config = tmp_path / "kiosk.toml"
    config.write_text(f"[ui]\nadmin_pin = {value}\n", "utf-8")
    code, _out, err = run_cli("--config", str(config), "pin", "status")
    assert code == 2 and "ui.admin_pin" in err


# --- kiosk pin ------------------------------------------------------------------------------


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))


def test_kiosk_pin_set_reads_the_pin_from_stdin_for_first_boot_scripts(
        run_cli: Run, monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    code, out, _ = run_cli("pin", "status", "--json")
    assert code == 0 and json_report(out)["set"] is False
    _stdin(monkeypatch, "582039\n582039\n")
    code, out, err = run_cli("pin", "set", "--json")
    status = json_report(out)
    assert code == 0 and status["set"] is True and status["failures"] == 0, err
    assert status["config_pin"] is False and status["file"].endswith("coordinator-pin.json")
    _stdin(monkeypatch, "738291\n")  # one line is enough for a script
    assert run_cli("pin", "set")[0] == 0
    assert build_service(data_dir=data_dir, env={}).pin_matches("738291")


@pytest.mark.parametrize(("text", "message"), [
    ("", "No PIN on standard input"),
    ("582039\n582093\n", "differ"),
    ("1234\n1234\n", "consecutive"),
    ("12ab\n", "4 to 12 digits"),
])
def test_kiosk_pin_set_refuses_bad_input_and_changes_nothing(
        run_cli: Run, monkeypatch: pytest.MonkeyPatch, data_dir: Path, text: str,
        message: str) -> None:
    _stdin(monkeypatch, "582039\n")
    assert run_cli("pin", "set")[0] == 0
    _stdin(monkeypatch, text)
    code, _out, err = run_cli("pin", "set")
    assert code == 2 and message in err
    assert build_service(data_dir=data_dir, env={}).pin_matches("582039")


def test_kiosk_pin_set_asks_twice_on_a_terminal_without_echo(data_dir: Path) -> None:
    kiosk = Path(sys.executable).with_name("kiosk")
    pid, fd = pty.fork()
    if pid == 0:  # the child: `kiosk pin set` with a real terminal as its controlling tty
        os.execv(str(kiosk), [str(kiosk), "--data-dir", str(data_dir), "pin", "set"])
    seen = b""

    def expect(text: bytes) -> None:
        nonlocal seen
        deadline = time.monotonic() + 30
        while text not in seen:
            assert time.monotonic() < deadline, seen
            if select.select([fd], [], [], 1.0)[0]:
                try:
                    seen += os.read(fd, 1024)
                except OSError:  # the child closed the terminal
                    break

    expect(b"New coordinator PIN")
    os.write(fd, b"582039\n")
    expect(b"same PIN again")
    os.write(fd, b"582039\n")
    expect(b"PIN set")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, seen
    assert b"582039" not in seen  # never echoed
    assert build_service(data_dir=data_dir, env={}).pin_matches("582039")
