"""WinZip AES (AE-2) keys for the writer: PBKDF2 keys derived ahead of time, in a child process.

* keys from PBKDF2-HMAC-SHA1 (1000 iterations, 66 bytes: AES key, HMAC key, verifier), from a
  fresh random salt per entry (:func:`derive_keys`); a :class:`KeySupply` derives them before
  the writer needs them, in a child process (:mod:`kiosk.package.aeszip.key_process`) since
  ``cryptography``'s PBKDF2 holds the GIL;
* the little-endian CTR keystream (:class:`_WinZipCtr`) and the HMAC (:func:`_new_mac`) are
  the shared primitives of :mod:`kiosk.security.winzip_aes`, which the sources room also reads
  encrypted zips on hospital media with; they are re-exported here under their old names.

Reference: WinZip "AES Encryption Information: Encryption Specification AE-1 and AE-2", version
1.04: III.2 salt, III.3 password verifier, III.4 encryption, III.5 authentication code, V.3 key
generation.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections import deque
from dataclasses import dataclass

from kiosk.package.aeszip.format import AES_256, SALT_LEN
from kiosk.package.aeszip.key_process import KeyProcess
from kiosk.security.winzip_aes import KEY_LEN, derive_keys
from kiosk.security.winzip_aes import WinZipCtr as _WinZipCtr
from kiosk.security.winzip_aes import new_mac as _new_mac

__all__ = ["KEY_LEN", "KeySupply", "_WinZipCtr", "_new_mac", "derive_keys"]

log = logging.getLogger(__name__)

_KEYS_AHEAD = 8  # key derivations prepared ahead of the entries that use them
_KEY_THREADS = 2
_CHILD_WAIT = 0.5  # seconds to wait for a key the child owes before deriving one ourselves


@dataclass(frozen=True)
class _KeyMaterial:
    salt: bytes
    aes_key: bytes
    mac_key: bytes
    verifier: bytes


def _new_key_material(passphrase: bytes) -> _KeyMaterial:
    """A fresh random salt (AE III.2: unique per entry) and the keys derived from it."""
    salt = secrets.token_bytes(SALT_LEN[AES_256])
    return _KeyMaterial(salt, *derive_keys(passphrase, salt))


def _check_passphrase(passphrase: str) -> bytes:
    if not passphrase or not all(0x20 <= ord(c) < 0x7F for c in passphrase):
        raise ValueError("the passphrase must be non-empty printable ASCII")
    return passphrase.encode("ascii")


class KeySupply:
    """Key material for one archive's entries, derived before the writer needs it.

    Every entry gets a fresh random salt and the keys PBKDF2 derives from it (AE III.2, V.3):
    about a millisecond of CPU each, for 2,000 CT slices the largest single cost of writing the
    archive. None of it depends on the data, so it can start as soon as the passphrase exists:
    an exporter makes the supply first, and a child process (:class:`KeyProcess`: its own GIL,
    so it never stalls the writer's threads) derives ``prepare`` keys while the program finishes
    starting and plans the package, then those of every entry (:meth:`expect`). If the child
    cannot start, one background thread derives ``prepare`` keys instead.
    :class:`~kiosk.package.aeszip.writer.AesZipWriter` takes prepared keys first, then derives its
    own.

    Parameters
    ----------
    passphrase : str
        Printable ASCII (tools disagree on how to encode anything else).
    prepare : int
        Keys to derive in the background now; :meth:`expect` lowers it once the number of
        entries is known. 0 prepares nothing.
    """

    def __init__(self, passphrase: str, *, prepare: int = 0) -> None:
        self._pw = _check_passphrase(passphrase)
        self.passphrase = passphrase
        self._ready: deque[_KeyMaterial] = deque()
        self._lock = threading.Lock()
        self._target = max(0, prepare)
        self._started = 0
        self._thread: threading.Thread | None = None
        self._child: KeyProcess | None = None
        if self._target:
            try:
                self._child = KeyProcess(self._pw, self._target)
                return
            except OSError as exc:  # no child: derive in a thread of ours instead
                log.warning("key derivation process failed to start: %s", exc)
            self._thread = threading.Thread(target=self._prepare, name="zipcrypt-prepare-keys",
                                            daemon=True)
            self._thread.start()

    def expect(self, entries: int) -> None:
        """The archive has ``entries`` entries: prepare no more keys than that.

        A child process (``prepare`` > 0) is asked for exactly that many: it costs our
        threads nothing, so it derives the keys of every entry.
        """
        with self._lock:
            self._target = min(self._target, entries)
            if self._child is not None:
                self._child.request(entries)

    def take(self) -> _KeyMaterial | None:
        """A prepared key material, or None when none is ready yet.

        Keys owed by the child process are waited for (they come at ~1 per ms, faster than
        entries are written) up to ``_CHILD_WAIT`` seconds; None then, or when the child
        failed, and the writer derives its own.
        """
        with self._lock:
            if self._child is not None:
                record = self._child.take(_CHILD_WAIT)
                if record is None:
                    return None
                salt, dk = record
                n = KEY_LEN[AES_256]
                return _KeyMaterial(salt, dk[:n], dk[n : 2 * n], dk[2 * n :])
            return self._ready.popleft() if self._ready else None

    def close(self) -> None:
        """Stop preparing; wait for the derivation in progress (a millisecond)."""
        self.expect(0)
        if self._thread is not None:
            self._thread.join()
        if self._child is not None:
            self._child.close()
        self._ready.clear()

    def _prepare(self) -> None:
        while True:
            with self._lock:
                if self._started >= self._target:
                    return
                self._started += 1
            material = _new_key_material(self._pw)
            with self._lock:
                self._ready.append(material)
