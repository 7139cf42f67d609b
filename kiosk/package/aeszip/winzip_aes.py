"""WinZip AES (AE-2) cryptography: PBKDF2 keys ahead of time, the little-endian CTR keystream, HMAC.

* keys from PBKDF2-HMAC-SHA1 (1000 iterations, 66 bytes: AES key, HMAC key, verifier), from a
  fresh random salt per entry (:func:`derive_keys`); a :class:`KeySupply` derives them before
  the writer needs them, in a child process (:mod:`kiosk.package.aeszip.key_process`) since
  ``cryptography``'s PBKDF2 holds the GIL;
* AES-256-CTR with WinZip's *little-endian* counter starting at 1, computed as AES-ECB over
  counter blocks built in numpy and XORed in numpy (``cryptography``'s CTR mode counts
  big-endian) (:class:`_WinZipCtr`);
* HMAC-SHA1 of the ciphertext, truncated to 10 bytes (:func:`_new_mac`).

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

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes
from cryptography.hazmat.primitives.hmac import HMAC
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from kiosk.package.aeszip.format import AES_256, PV_LEN, SALT_LEN
from kiosk.package.aeszip.key_process import KeyProcess

__all__ = ["KeySupply", "derive_keys"]

log = logging.getLogger(__name__)

KEY_LEN = {1: 16, 2: 24, 3: 32}  # strength -> AES and HMAC key length (AE V.3)
PBKDF2_ITERATIONS = 1000  # AE V.3
_KEYS_AHEAD = 8  # key derivations prepared ahead of the entries that use them
_KEY_THREADS = 2
_CHILD_WAIT = 0.5  # seconds to wait for a key the child owes before deriving one ourselves


def derive_keys(
    passphrase: bytes, salt: bytes, strength: int = AES_256
) -> tuple[bytes, bytes, bytes]:
    """Derive the AES key, HMAC key and password verifier (AE V.3).

    Parameters
    ----------
    passphrase : bytes
        The passphrase as bytes.
    salt : bytes
        The entry's salt (16 bytes for AES-256).
    strength : int
        AE strength code (1, 2 or 3).

    Returns
    -------
    tuple of bytes
        ``(aes_key, hmac_key, verifier)``.
    """
    n = KEY_LEN[strength]
    kdf = PBKDF2HMAC(hashes.SHA1(), 2 * n + PV_LEN, salt, PBKDF2_ITERATIONS)
    dk = kdf.derive(passphrase)
    return dk[:n], dk[n : 2 * n], dk[2 * n :]


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


def _new_mac(key: bytes) -> HMAC:
    """HMAC-SHA1 of an entry's ciphertext (AE III.5).

    cryptography's, not hashlib's: its own OpenSSL uses the CPU's SHA instructions where the
    system's did not here (0.82 against 0.98 s of CPU a GB); both release the GIL.
    """
    return HMAC(key, hashes.SHA1())


class _WinZipCtr:
    """AES-CTR with WinZip's counter (AE III.4), on pieces of at most ``max_len`` bytes.

    The counter block is a 64-bit little-endian integer in bytes 0-7 (bytes 8-15 stay zero),
    first used with value 1, as in Dr Gladman's ``fileenc.c`` that WinZip and 7-Zip follow.
    The keystream is AES-ECB over a preallocated table of counter blocks; the XOR is numpy's.
    Pieces may start anywhere: the position in the entry picks the counter and the offset.

    Every entry counts from 1 again, so the table is filled for counters 1, 2, ... once and
    reused: an entry shorter than ``max_len`` (a CT or MR slice) never rewrites it. Only pieces
    beyond the table's window move it (a strided add over the whole table, which cost as much
    as the XOR when it ran for every piece).
    """

    def __init__(self, max_len: int) -> None:
        blocks = max_len // 16 + 2  # a piece not starting on a block border spans one more
        self._base = np.arange(1, blocks + 1, dtype="<u8")
        self._counters = np.zeros((blocks, 2), dtype="<u8")
        self._counters[:, 0] = self._base
        self._window = 0  # the table holds counters for blocks [window, window + blocks)
        self._counter_bytes = self._counters.reshape(-1).view(np.uint8).data
        self._keystream = bytearray(blocks * 16 + 16)  # update_into wants len + 15
        self._keystream_mv = memoryview(self._keystream)
        self._keystream_np = np.frombuffer(self._keystream, dtype=np.uint8)
        self._ecb: CipherContext | None = None

    def reset(self, key: bytes) -> None:
        """Start a new entry encrypted with ``key``."""
        self._ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()

    def apply(self, data: np.ndarray, pos: int) -> None:
        """XOR ``data`` (uint8, writable) in place with the keystream at entry offset ``pos``."""
        n = len(data)
        if n == 0:
            return
        first, skip = divmod(pos, 16)
        blocks = (skip + n + 15) // 16
        at = first - self._window
        if at < 0 or at + blocks > len(self._base):
            np.add(self._base, first, out=self._counters[:, 0])
            self._window, at = first, 0
        assert self._ecb is not None, "reset() first"
        counters = self._counter_bytes[at * 16 : (at + blocks) * 16]
        self._ecb.update_into(counters, self._keystream_mv[: blocks * 16 + 15])
        np.bitwise_xor(data, self._keystream_np[skip : skip + n], out=data)
