"""WinZip AES (AE-1/AE-2) primitives: PBKDF2 keys, the little-endian CTR keystream, the HMAC.

Shared by the two rooms that handle WinZip AES archives, which sit on layers that may not import
each other: the patient package writes and verifies them (:mod:`kiosk.package.aeszip`), the
sources room reads encrypted zips found on hospital media (:mod:`kiosk.sources.zip_member`).

* keys from PBKDF2-HMAC-SHA1 (1000 iterations): AES key, HMAC key and a 2-byte password
  verifier (:func:`derive_keys`);
* AES-CTR with WinZip's *little-endian* counter starting at 1, computed as AES-ECB over counter
  blocks built in numpy and XORed in numpy (``cryptography``'s CTR mode counts big-endian)
  (:class:`WinZipCtr`);
* HMAC-SHA1 of the ciphertext, truncated to 10 bytes (:func:`new_mac`).

Reference: WinZip "AES Encryption Information: Encryption Specification AE-1 and AE-2", version
1.04: III.2 salt, III.3 password verifier, III.4 encryption, III.5 authentication code, V.3 key
generation.
"""

from __future__ import annotations

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes
from cryptography.hazmat.primitives.hmac import HMAC
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

__all__ = ["KEY_LEN", "MAC_LEN", "PBKDF2_ITERATIONS", "PV_LEN", "SALT_LEN", "WinZipCtr",
           "derive_keys", "new_mac"]

KEY_LEN = {1: 16, 2: 24, 3: 32}  # strength -> AES and HMAC key length (AE V.3)
SALT_LEN = {1: 8, 2: 12, 3: 16}  # strength -> salt length (AE III.2)
PV_LEN = 2  # password verification value (AE III.3)
MAC_LEN = 10  # HMAC-SHA1-80 authentication code (AE III.5)
PBKDF2_ITERATIONS = 1000  # AE V.3


def derive_keys(passphrase: bytes, salt: bytes, strength: int = 3) -> tuple[bytes, bytes, bytes]:
    """Derive the AES key, HMAC key and password verifier (AE V.3).

    Parameters
    ----------
    passphrase : bytes
        The passphrase as bytes.
    salt : bytes
        The entry's salt (16 bytes for AES-256).
    strength : int
        AE strength code (1, 2 or 3: AES-128, -192, -256).

    Returns
    -------
    tuple of bytes
        ``(aes_key, hmac_key, verifier)``.

    Raises
    ------
    KeyError
        ``strength`` is not 1, 2 or 3.
    """
    n = KEY_LEN[strength]
    kdf = PBKDF2HMAC(hashes.SHA1(), 2 * n + PV_LEN, salt, PBKDF2_ITERATIONS)
    dk = kdf.derive(passphrase)
    return dk[:n], dk[n : 2 * n], dk[2 * n :]


def new_mac(key: bytes) -> HMAC:
    """HMAC-SHA1 of an entry's ciphertext (AE III.5); the first :data:`MAC_LEN` bytes count.

    cryptography's, not hashlib's: its own OpenSSL uses the CPU's SHA instructions where the
    system's did not here (0.82 against 0.98 s of CPU a GB); both release the GIL.
    """
    return HMAC(key, hashes.SHA1())


class WinZipCtr:
    """AES-CTR with WinZip's counter (AE III.4), on pieces of at most ``max_len`` bytes.

    The counter block is a 64-bit little-endian integer in bytes 0-7 (bytes 8-15 stay zero),
    first used with value 1, as in Dr Gladman's ``fileenc.c`` that WinZip and 7-Zip follow.
    The keystream is AES-ECB over a preallocated table of counter blocks; the XOR is numpy's.
    Pieces may start anywhere: the position in the entry picks the counter and the offset.
    Encryption and decryption are the same operation.

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
