"""Key derivation in a child process (kiosk/package/aeszip/key_process.py) and KeySupply's use."""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

import pytest

from kiosk.package.aeszip.key_process import KeyProcess
from kiosk.package.aeszip.winzip_aes import KeySupply, derive_keys

PW = b"Correct Horse 42"


def test_records_are_pbkdf2_of_fresh_salts() -> None:
    proc = KeyProcess(PW, 30)
    try:
        records = [proc.take(5.0) for _ in range(30)]
        assert all(r is not None for r in records)
        salts = {r[0] for r in records if r is not None}
        assert len(salts) == 30  # a fresh random salt per entry (AE III.2)
        for salt, dk in (r for r in records if r is not None):
            assert len(salt) == 16
            assert dk == hashlib.pbkdf2_hmac("sha1", PW, salt, 1000, 66)
        assert proc.take(0.05) is None  # nothing more owed: no wait
    finally:
        proc.close()


def test_passphrase_not_in_argv_or_environment() -> None:
    proc = KeyProcess(PW, 1)
    try:
        assert proc.take(5.0) is not None
        pid = proc._proc.pid
        assert PW not in Path(f"/proc/{pid}/cmdline").read_bytes()
        assert PW not in Path(f"/proc/{pid}/environ").read_bytes()
    finally:
        proc.close()


def test_more_requested_later_and_lowered_target() -> None:
    proc = KeyProcess(PW, 2)
    try:
        assert proc.take(5.0) is not None and proc.take(5.0) is not None
        assert proc.owed == 0
        proc.request(5)
        assert [proc.take(5.0) is not None for _ in range(3)] == [True] * 3
        proc.request(1)  # below what was received: nothing more owed
        assert proc.owed == 0
        assert proc.take(0.05) is None
    finally:
        proc.close()


def test_dead_child_yields_none_and_supply_falls_back() -> None:
    supply = KeySupply(PW.decode(), prepare=4)
    assert supply._child is not None
    supply._child._proc.kill()
    supply._child._proc.wait()
    supply.expect(10)
    taken = [supply.take() for _ in range(10)]
    # Records already in the pipe may still arrive; after that, None (the writer derives).
    assert taken[-1] is None
    assert supply._child.alive is False
    for material in (m for m in taken if m is not None):
        assert derive_keys(PW, material.salt) == (
            material.aes_key, material.mac_key, material.verifier)
    supply.close()


def test_supply_keys_match_and_close_ends_child() -> None:
    supply = KeySupply(PW.decode(), prepare=3)
    supply.expect(6)  # more than prepared: the child derives them all
    materials = [supply.take() for _ in range(6)]
    assert all(m is not None for m in materials)
    m = materials[2]
    assert m is not None
    assert derive_keys(PW, m.salt) == (m.aes_key, m.mac_key, m.verifier)
    assert supply.take() is None
    child = supply._child
    assert child is not None
    supply.close()
    assert child._proc.returncode == 0


def test_slow_child_yields_none_within_the_timeout() -> None:
    proc = KeyProcess(PW, 5)  # the interpreter takes tens of ms to start: nothing yet
    try:
        assert proc.take(0.0) is None
        assert proc.owed == 5 and proc.alive  # still owed: a later take gets it
        assert proc.take(5.0) is not None
    finally:
        proc.close()


def test_child_that_cannot_start_falls_back_to_a_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "executable", "/nonexistent/python3")
    supply = KeySupply(PW.decode(), prepare=3)
    assert supply._child is None and supply._thread is not None
    deadline = time.monotonic() + 30
    while len(supply._ready) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    material = supply.take()
    supply.close()
    assert material is not None  # derived in-process by the fallback thread
    assert derive_keys(PW, material.salt) == (
        material.aes_key, material.mac_key, material.verifier)
