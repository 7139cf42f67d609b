"""The coordinator PIN: a slow salted hash on disk, constant-time checks, a lockout that grows.

The PIN guards Admin and the overrides of safety checks (unencrypted export, purging a case
that is not uploaded, keeping several patients in one case). It lives in one small JSON file
(``keys/coordinator-pin.json``, mode 0600, written atomically) that also holds the lockout
state, so restarting the kiosk does not give a guesser fresh tries.

Hash: scrypt (``hashlib.scrypt``, stdlib) with a random 16-byte salt and n=2**14, r=8, p=1,
32-byte key: 16 MiB of memory and about 50-100 ms per check on a Raspberry Pi 4 (66 ms on the
CI VM), slow enough that reading the file does not reveal the PIN at a glance, fast enough for a
key press. The parameters are stored with the hash, so they can be raised later without
invalidating PINs already set. A 4-12 digit PIN cannot resist an offline search by someone who
copied the file (10**6 PINs x 66 ms is half a day on one core): the lockout protects the desk,
disk encryption protects a stolen disk.

Lockout: the :data:`FREE_TRIES`-th wrong PIN in a row (the third) locks checking for
:data:`LOCK_BASE_SECONDS`; each further wrong PIN after a lock has passed doubles it, up to
:data:`LOCK_MAX_SECONDS` (30 s, 60 s, 2 min, 4 min, 8 min, then 15 min each). PINs typed while
locked are refused unchecked and not counted. The right PIN resets the count; so does setting a
new PIN. With a 6-digit PIN, guessing at the desk runs at under 100 PINs a day.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import itertools
import json
import math
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.errors import PinError, StoreError
from kiosk.store.durable import write_atomic

#: scrypt cost parameters for new PINs (see the module docstring for why).
SCRYPT_N, SCRYPT_R, SCRYPT_P, KEY_BYTES, SALT_BYTES = 2**14, 8, 1, 32, 16
#: Stored parameters above these are refused: a tampered file must not make a check eat the RAM.
_MAX_N, _MAX_R, _MAX_P = 2**18, 16, 4
MIN_DIGITS, MAX_DIGITS = 4, 12
FREE_TRIES = 3
LOCK_BASE_SECONDS = 30
LOCK_MAX_SECONDS = 15 * 60

#: Why a PIN is refused, by reason code (the UI shows its own translations of the same codes).
PIN_RULES = {
    "digits": f"A PIN is {MIN_DIGITS} to {MAX_DIGITS} digits (0-9), nothing else.",
    "same": "A PIN of one digit repeated (like 0000) is the first thing anyone tries.",
    "sequence": "A PIN of consecutive digits (like 1234 or 9876) is too easy to guess.",
}


def pin_problem(pin: str) -> str | None:
    """The reason code (a :data:`PIN_RULES` key) ``pin`` may not be used, or None if it may.

    Refused: anything but 4-12 ASCII digits; one digit repeated (0000); a run of consecutive
    digits up or down, wrapping after 9 (1234, 7890, 4321). Everything else is allowed: longer
    PINs are the real protection and the lockout does the rest.
    """
    if not (MIN_DIGITS <= len(pin) <= MAX_DIGITS and pin.isascii() and pin.isdigit()):
        return "digits"
    if len(set(pin)) == 1:
        return "same"
    steps = {(int(b) - int(a)) % 10 for a, b in itertools.pairwise(pin)}
    if steps in ({1}, {9}):
        return "sequence"
    return None


def _derive(pin: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    # maxmem: scrypt needs 128 * n * r * p bytes; OpenSSL's default cap (32 MiB) is too tight
    # for parameters raised later.
    return hashlib.scrypt(pin.encode("ascii", "replace"), salt=salt, n=n, r=r, p=p,
                          dklen=length, maxmem=128 * n * r * (p + 1) + (1 << 20))


@dataclass(frozen=True)
class PinCheck:
    """The answer to one typed PIN."""

    ok: bool
    #: Seconds until PINs are checked again (0: not locked).
    locked_seconds: int = 0
    #: Wrong PINs still allowed before the lockout starts (0 once it has).
    tries_left: int = FREE_TRIES


@dataclass(frozen=True)
class PinStatus:
    """Whether a PIN is set and the lockout state (never the PIN or its hash)."""

    set: bool
    set_at: str | None = None
    failures: int = 0
    locked_seconds: int = 0


class PinStore:
    """The PIN file: set, check, lockout.

    Parameters
    ----------
    path : Path
        The file (``Locations.pin_file``); its folder is made private (0700) on first write.
    clock : callable, optional
        Seconds since the epoch; wall-clock time, so a lockout survives a restart (tests pass
        a fake clock).
    """

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self._lock = threading.Lock()

    # --- the file ---------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One read-modify-write at a time, across threads and processes (app and CLI)."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self._lock, open(self.path.with_name(self.path.name + ".lock"), "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            yield

    def _read(self) -> dict[str, Any] | None:
        try:
            doc = json.loads(self.path.read_text("utf-8"))
            if doc.get("kdf") != "scrypt":
                raise ValueError("unknown kdf")
            salt, key = bytes.fromhex(doc["salt"]), bytes.fromhex(doc["hash"])
            n, r, p = int(doc["n"]), int(doc["r"]), int(doc["p"])
            if not salt or len(key) < 16:
                raise ValueError("salt or hash missing")
            if not (1 < n <= _MAX_N and n & (n - 1) == 0 and 0 < r <= _MAX_R
                    and 0 < p <= _MAX_P):
                raise ValueError("scrypt parameters out of range")
            doc["failures"], doc["locked_until"] = int(doc["failures"]), float(doc["locked_until"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise StoreError(f"The coordinator PIN file {self.path} is damaged ({exc}). Set a "
                             "new PIN with `kiosk pin set`.", title="Coordinator PIN") from None
        return dict(doc)

    def _write(self, doc: dict[str, Any]) -> None:
        data = json.dumps(doc, sort_keys=True, indent=1).encode()
        write_atomic(self.path, data, mode=0o600)

    # --- what callers use -------------------------------------------------------------------

    def is_set(self) -> bool:
        """Whether a PIN file exists (a damaged one counts: it is not silently replaced)."""
        return self.path.exists()

    def status(self) -> PinStatus:
        """Whether a PIN is set, since when, and the lockout.

        Raises
        ------
        StoreError
            The file is damaged.
        """
        doc = self._read()
        if doc is None:
            return PinStatus(set=False)
        return PinStatus(set=True, set_at=doc.get("set_at"), failures=int(doc["failures"]),
                         locked_seconds=self._remaining(doc))

    def set(self, pin: str, *, allow_weak: bool = False) -> None:
        """Store ``pin`` (a new salt each time) and clear the lockout.

        ``allow_weak`` skips the guessability rules, not the format (the demo's 0000, a PIN
        migrated from the old plain ``ui.admin_pin``).

        Raises
        ------
        PinError
            Not 4-12 digits, or (unless ``allow_weak``) too easy to guess.
        """
        problem = pin_problem(pin)
        if problem is not None and (problem == "digits" or not allow_weak):
            raise PinError(PIN_RULES[problem], reason=problem)
        salt = secrets.token_bytes(SALT_BYTES)
        key = _derive(pin, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, KEY_BYTES)
        with self._locked():
            self._write({"version": 1, "kdf": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R,
                         "p": SCRYPT_P, "salt": salt.hex(), "hash": key.hex(),
                         "set_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                 time.gmtime(self.clock())),
                         "failures": 0, "locked_until": 0.0})

    def check(self, pin: str) -> PinCheck:
        """Compare ``pin`` with the stored hash (constant time) and keep the lockout.

        Raises
        ------
        PinError
            No PIN is set.
        StoreError
            The file is damaged.
        """
        with self._locked():
            doc = self._read()
            if doc is None:
                raise PinError("No coordinator PIN is set yet. Set one first (the desk asks "
                               "for it, or run `kiosk pin set`).", reason="unset")
            if float(doc["locked_until"]) - self.clock() > LOCK_MAX_SECONDS:
                # The clock was set back (a Pi has no RTC until NTP answers): a lock must not
                # last longer than the longest delay.
                doc["locked_until"] = self.clock() + LOCK_MAX_SECONDS
                self._write(doc)
            locked = self._remaining(doc)
            if locked:
                return PinCheck(ok=False, locked_seconds=locked, tries_left=0)
            if self._matches(doc, pin):
                if doc["failures"] or doc["locked_until"]:
                    self._write(doc | {"failures": 0, "locked_until": 0.0})
                return PinCheck(ok=True)
            failures = int(doc["failures"]) + 1
            until = 0.0
            if failures >= FREE_TRIES:
                delay = min(LOCK_MAX_SECONDS, LOCK_BASE_SECONDS * 2 ** (failures - FREE_TRIES))
                until = self.clock() + delay
            self._write(doc | {"failures": failures, "locked_until": until})
            return PinCheck(ok=False, locked_seconds=self._remaining({"locked_until": until}),
                            tries_left=max(0, FREE_TRIES - failures))

    def matches(self, pin: str) -> bool:
        """Whether ``pin`` is the stored PIN, without counting a failure or honouring the lock.

        Only for code that already has the data directory (the demo shows its own PIN as a
        hint when it is still the one in force); never for anything a person types.
        """
        doc = self._read()
        return doc is not None and self._matches(doc, pin)

    # --- helpers ----------------------------------------------------------------------------

    @staticmethod
    def _matches(doc: dict[str, Any], pin: str) -> bool:
        stored = bytes.fromhex(doc["hash"])
        key = _derive(pin, bytes.fromhex(doc["salt"]), int(doc["n"]), int(doc["r"]),
                      int(doc["p"]), len(stored))
        return hmac.compare_digest(key, stored)

    def _remaining(self, doc: dict[str, Any]) -> int:
        """Whole seconds left of the lockout (rounded up), never more than the longest delay."""
        left = float(doc["locked_until"]) - self.clock()
        return min(LOCK_MAX_SECONDS, math.ceil(left)) if left > 0 else 0
