"""PBKDF2 key derivation for zip entries in a child process, so it never holds our GIL.

Each AES zip entry needs its own random salt and a PBKDF2-HMAC-SHA1 derivation (about a
millisecond of CPU; see :mod:`kiosk.package.aeszip.winzip_aes`). ``cryptography``'s PBKDF2 is
the fastest here but holds the GIL, so in a thread it competes with the writer's threads. A
fresh interpreter (not ``fork``: the parent may already run threads) derives them instead and
streams fixed-size records back over a pipe.

The passphrase reaches the child through its stdin pipe, never argv or the environment (both are
readable in ``/proc``). The child makes the salts itself (``os.urandom``). After the passphrase,
the parent writes decimal *targets* (total number of records wanted, one per line); the child
derives until it has produced that many, checking between derivations for a new target (which
may be lower, so a shrinking archive wastes at most one derivation). It exits when stdin closes
or its stdout pipe breaks, so it never outlives the parent.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import time

__all__ = ["KeyProcess"]

_SALT = 16
_DERIVED = 66  # AES-256 key, HMAC key, 2-byte verifier (AE V.3)
RECORD = _SALT + _DERIVED

# The child imports nothing of ours (start-up stays ~50 ms) and prefers cryptography's PBKDF2
# (~0.8 ms against hashlib's ~1.4 ms here); the GIL is its own.
_CHILD = r"""
import os, select, sys
try:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
    def derive(pw, salt):
        return PBKDF2HMAC(hashes.SHA1(), 66, salt, 1000).derive(pw)
except ImportError:
    import hashlib
    def derive(pw, salt):
        return hashlib.pbkdf2_hmac("sha1", pw, salt, 1000, 66)
inp, out = sys.stdin.buffer.raw, sys.stdout.buffer.raw
buf = b""
def lines(block):
    global buf
    data = os.read(inp.fileno(), 4096) if block or select.select([inp], [], [], 0)[0] else None
    if data is None:
        return None
    if not data:
        raise SystemExit(0)
    buf += data
    *done, buf = buf.split(b"\n")
    return done
got = []
while not got:
    got = lines(True)
pw, target, made = got[0], 0, 0
got = got[1:]
while True:
    if got:
        target = int(got[-1])
    if made >= target:
        got = lines(True)
        continue
    salt = os.urandom(16)
    rec = salt + derive(pw, salt)
    view = memoryview(rec)
    while view:
        view = view[os.write(out.fileno(), view):]
    made += 1
    got = lines(False)
"""


class KeyProcess:
    """A child interpreter deriving ``(salt, key material)`` records on demand.

    Parameters
    ----------
    passphrase : bytes
        Printable ASCII passphrase; sent over the child's stdin.
    target : int
        Records to derive right away.

    Raises
    ------
    OSError
        The child could not be started.
    """

    def __init__(self, passphrase: bytes, target: int) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _CHILD],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            close_fds=True, bufsize=0,
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._in = self._proc.stdin.fileno()
        self._out = self._proc.stdout.fileno()
        self._buf = bytearray()
        self._target = 0
        self._received = 0
        self.alive = True
        self._send(passphrase + b"\n")
        self.request(target)

    @property
    def owed(self) -> int:
        """Records requested and not yet received (0 once the child has failed)."""
        return max(0, self._target - self._received) if self.alive else 0

    def request(self, target: int) -> None:
        """Derive ``target`` records in all (more or fewer than asked so far)."""
        target = max(target, self._received)
        if self.alive and target != self._target:
            self._target = target
            self._send(b"%d\n" % target)

    def take(self, timeout: float) -> tuple[bytes, bytes] | None:
        """The next ``(salt, derived 66 bytes)``, waiting at most ``timeout`` seconds.

        None when nothing is owed, the child has failed, or it was too slow.
        """
        deadline = time.monotonic() + timeout
        while len(self._buf) < RECORD:
            if not self.owed:
                return None
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._out], [], [], left)[0]:
                return None
            data = os.read(self._out, 64 * RECORD)
            if not data:
                self._fail()
                return None
            self._buf += data
        rec = bytes(self._buf[:RECORD])
        del self._buf[:RECORD]
        self._received += 1
        return rec[:_SALT], rec[_SALT:]

    def close(self) -> None:
        """End the child (closing its stdin ends it; kill it if it lingers)."""
        self.alive = False
        for stream in (self._proc.stdin, self._proc.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        try:
            self._proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._buf.clear()

    def _send(self, data: bytes) -> None:
        try:
            os.write(self._in, data)  # a few bytes: never fills the pipe
        except OSError:
            self._fail()

    def _fail(self) -> None:
        self.alive = False
