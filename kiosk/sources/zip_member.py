"""Stream one member out of a zip archive: decrypt, inflate, check, never past what it claims.

A :class:`MemberReader` is the file object :meth:`ArchiveSource.open` hands the importer for a
member: it reads the member's compressed bytes from the archive in pieces, decrypts them
(ZipCrypto or WinZip AES), inflates them (stored, deflate, bzip2) into at most a piece at a
time, and checks them at the end (CRC-32; the HMAC for WinZip AES). Nothing is written
anywhere: the importer hashes and stores the bytes as they come.

Zip bombs: the reader stops the moment a member gives more bytes than its header claims
(``size``), whatever the compressed data would still give; the archive's reader has already
refused claims past the limits (:mod:`kiosk.sources.archive`).

ZipCrypto is decrypted by the C decrypter of ``fast-zip-decryption`` (the only module that
imports it): Python's own zipfile does it byte by byte in Python, 1.3 MB/s here (38 s for
50 MB), against 82 MB/s. WinZip AES uses the kiosk's own keystream and HMAC
(:mod:`kiosk.security.winzip_aes`), loaded only when an AES member is read.
"""

from __future__ import annotations

import bz2
import hmac
import io
import zlib
from typing import Any, Protocol

from _zipdecrypter import StandardZipDecrypter

from kiosk.errors import ArchiveReadError
from kiosk.sources.zip_format import (
    AES,
    BZIP2,
    DEFLATED,
    FLAG_DESCRIPTOR,
    FLAG_STRONG,
    METHOD_NAMES,
    STORED,
    RandomAccess,
    ZipMember,
)

#: Compressed bytes read from the archive at a time; also the most one inflate step gives.
PIECE = 256 * 1024
_ZIPCRYPTO_HEADER = 12  # APPNOTE 6.1.3: the encryption header before the data


def unsupported_reason(member: ZipMember) -> str | None:
    """Why the kiosk cannot read ``member`` at all, or None when it can."""
    if member.flags & FLAG_STRONG or (member.method == AES and member.aes is None):
        return ("it uses an encryption the kiosk does not read (PKWARE strong encryption or an "
                "unknown AES field): extract the archive with 7-Zip and import the folder")
    method = member.data_method
    if method not in (STORED, DEFLATED, BZIP2):
        name = METHOD_NAMES.get(method, f"method {method}")
        return (f"it is compressed with {name}, which the kiosk does not read: extract the "
                "archive with 7-Zip and import the folder")
    return None


def wrong_password(name: str) -> ArchiveReadError:
    """The error of a member the given password does not open."""
    return ArchiveReadError(f"The password does not open {name!r}. Check the password the "
                            "hospital gave (often the patient's birth date) and try again.",
                            code="password_wrong")


def password_needed(name: str) -> ArchiveReadError:
    """The error of an encrypted member opened without a password."""
    return ArchiveReadError(f"{name!r} is encrypted: the password is needed (kiosk import "
                            "--archive-password, or Password on the Review screen).",
                            code="password_needed")


def _zipcrypto_check_byte(member: ZipMember) -> int:
    # APPNOTE 6.1.6: the last header byte is the CRC's high byte, or with a data descriptor
    # (whose CRC is not known when the header is written) the high byte of the DOS time.
    if member.flags & FLAG_DESCRIPTOR:
        return (member.dos_time >> 8) & 0xFF
    return member.crc >> 24


def password_opens(archive: RandomAccess, member: ZipMember, start: int,
                   password: bytes) -> bool:
    """Whether ``password`` passes ``member``'s password check (ZipCrypto or WinZip AES).

    A check, not a proof: ZipCrypto's is one byte (1 in 256 wrong passwords pass), AES's two
    (1 in 65,536); the CRC or HMAC at the end of the member tells for sure.
    """
    if member.aes is not None:
        from kiosk.security.winzip_aes import PV_LEN, SALT_LEN, derive_keys

        salt_len = SALT_LEN[member.aes.strength]
        head = archive.read_at(start, salt_len + PV_LEN)
        if len(head) < salt_len + PV_LEN:
            return False
        verifier = derive_keys(password, head[:salt_len], member.aes.strength)[2]
        return hmac.compare_digest(verifier, head[salt_len:])
    head = archive.read_at(start, _ZIPCRYPTO_HEADER)
    if len(head) < _ZIPCRYPTO_HEADER:
        return False
    return StandardZipDecrypter(password)(head)[-1] == _zipcrypto_check_byte(member)


class _Inflater(Protocol):
    def feed(self, data: bytes) -> None: ...
    def pull(self, n: int) -> bytes: ...
    @property
    def needs_input(self) -> bool: ...
    @property
    def eof(self) -> bool: ...


class _Stored:
    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> None:
        self._buf += data

    def pull(self, n: int) -> bytes:
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    @property
    def needs_input(self) -> bool:
        return not self._buf

    @property
    def eof(self) -> bool:
        return False  # ends with its input


class _Deflate:
    def __init__(self) -> None:
        self._d = zlib.decompressobj(-15)
        self._tail = b""

    def feed(self, data: bytes) -> None:
        self._tail += data

    def pull(self, n: int) -> bytes:
        out = self._d.decompress(self._tail, n)  # at most n bytes: memory stays bounded
        self._tail = self._d.unconsumed_tail
        return out

    @property
    def needs_input(self) -> bool:
        return not self._tail

    @property
    def eof(self) -> bool:
        return self._d.eof


class _Bzip2:
    def __init__(self) -> None:
        self._d = bz2.BZ2Decompressor()
        self._pending = b""

    def feed(self, data: bytes) -> None:
        self._pending += data

    def pull(self, n: int) -> bytes:
        if self._d.eof:
            return b""
        out = self._d.decompress(self._pending, n)
        self._pending = b""
        return out

    @property
    def needs_input(self) -> bool:
        return not self._pending and self._d.needs_input

    @property
    def eof(self) -> bool:
        return self._d.eof


class MemberReader(io.RawIOBase):
    """The bytes of one member, decrypted and inflated as they are read.

    Parameters
    ----------
    archive : RandomAccess
        The archive's bytes (shared with other readers; reads carry their offset).
    member : ZipMember
        The member, as the central directory describes it.
    start : int
        Where its data starts (:func:`kiosk.sources.zip_format.data_offset`).
    password : bytes, optional
        For an encrypted member.

    Raises
    ------
    ArchiveReadError
        From the constructor or any read: ``password_needed``, ``password_wrong``,
        ``unsupported``, ``bomb`` (more bytes than the header claims) or ``damaged`` (a CRC or
        HMAC that does not match, inflate errors, data cut off).
    SourceReadError, MediumRemovedError
        Reading the archive itself failed; the reader's state is unchanged, so the read can
        be retried.
    """

    def __init__(self, archive: RandomAccess, member: ZipMember, start: int,
                 password: bytes | None) -> None:
        super().__init__()
        self.name = member.name
        self._archive, self._m = archive, member
        reason = unsupported_reason(member)
        if reason is not None:
            raise ArchiveReadError(f"{member.name!r}: {reason}.", code="unsupported")
        self._zipcrypto: Any = None
        self._ctr: Any = None
        self._mac: Any = None
        self._mac_at = self._mac_len = 0
        pos, packed = start, member.packed
        if member.encrypted:
            if password is None:
                raise password_needed(member.name)
            if member.aes is not None:
                pos, packed = self._start_aes(pos, packed, password)
            else:
                header = self._read(pos, _ZIPCRYPTO_HEADER)
                self._zipcrypto = StandardZipDecrypter(password)
                if self._zipcrypto(header)[-1] != _zipcrypto_check_byte(member):
                    raise wrong_password(member.name)
                pos, packed = pos + _ZIPCRYPTO_HEADER, packed - _ZIPCRYPTO_HEADER
        if packed < 0:
            raise ArchiveReadError(f"{member.name!r} is damaged (too short for its encryption)."
                                   , code="damaged")
        self._pos, self._end = pos, pos + packed
        self._ct_pos = 0  # offset of the next ciphertext byte in the entry (AES keystream)
        method = member.data_method
        self._inflater: _Inflater = (_Stored() if method == STORED else
                                     _Deflate() if method == DEFLATED else _Bzip2())
        self._out = b""
        self._given = 0  # uncompressed bytes produced
        self._crc = 0
        self._done = False

    def _start_aes(self, pos: int, packed: int, password: bytes) -> tuple[int, int]:
        from kiosk.security.winzip_aes import (
            MAC_LEN,
            PV_LEN,
            SALT_LEN,
            WinZipCtr,
            derive_keys,
            new_mac,
        )

        assert self._m.aes is not None
        salt_len = SALT_LEN[self._m.aes.strength]
        head = self._read(pos, salt_len + PV_LEN)
        aes_key, mac_key, verifier = derive_keys(password, head[:salt_len], self._m.aes.strength)
        if not hmac.compare_digest(verifier, head[salt_len:]):
            raise wrong_password(self._m.name)
        self._ctr = WinZipCtr(PIECE)
        self._ctr.reset(aes_key)
        self._mac = new_mac(mac_key)
        data_len = packed - salt_len - PV_LEN - MAC_LEN
        self._mac_at, self._mac_len = pos + salt_len + PV_LEN + data_len, MAC_LEN
        return pos + salt_len + PV_LEN, data_len

    def _read(self, offset: int, n: int) -> bytes:
        data = self._archive.read_at(offset, n)
        if len(data) != n:
            raise ArchiveReadError(f"{self._m.name!r} is cut off: the archive ends inside it.",
                                   code="damaged")
        return data

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` with the next uncompressed bytes; 0 at the end of the member."""
        if self.closed:
            raise ValueError("I/O operation on closed file.")
        view = memoryview(buffer).cast("B")
        while not self._out and not self._done:
            self._step(len(view))
        n = min(len(view), len(self._out))
        view[:n] = self._out[:n]
        self._out = self._out[n:]
        return n

    def _step(self, want: int) -> None:
        """Inflate some more; read (and decrypt) the next piece when the inflater wants it."""
        inflater = self._inflater
        if inflater.needs_input and self._pos < self._end:
            n = min(PIECE, self._end - self._pos)
            piece = self._read(self._pos, n)  # may raise a read error: nothing changed yet
            self._pos += n
            inflater.feed(self._decrypt(piece))
        try:
            out = inflater.pull(max(want, PIECE))
        except (zlib.error, OSError, EOFError, ValueError) as exc:
            raise self._damaged(f"it does not inflate ({exc})") from None
        if out:
            self._given += len(out)
            if self._given > self._m.size:
                raise ArchiveReadError(
                    f"{self._m.name!r} holds more data than its header says ({self._m.size:,} "
                    "bytes): a zip bomb or a damaged archive. Reading stopped.", code="bomb")
            self._crc = zlib.crc32(out, self._crc)
            self._out = out
            return
        if inflater.eof or (self._pos >= self._end and inflater.needs_input):
            self._finish()

    def _decrypt(self, piece: bytes) -> bytes:
        if self._zipcrypto is not None:
            return bytes(self._zipcrypto(piece))
        if self._ctr is not None:
            import numpy as np

            self._mac.update(piece)
            buf = bytearray(piece)
            self._ctr.apply(np.frombuffer(buf, dtype=np.uint8), self._ct_pos)
            self._ct_pos += len(piece)
            return bytes(buf)
        return piece

    def _finish(self) -> None:
        self._done = True
        if self._given != self._m.size:
            raise self._damaged(f"it gave {self._given:,} bytes, its header says "
                                f"{self._m.size:,}")
        if self._mac is not None:
            tag = self._read(self._mac_at, self._mac_len)
            if not hmac.compare_digest(self._mac.finalize()[: self._mac_len], tag):
                raise self._damaged("its integrity check (HMAC) fails: damaged, or the "
                                    "password is not the right one")
        # AE-2 stores CRC 0 and relies on the HMAC; everything else carries a real CRC-32.
        aes = self._m.aes
        if (aes is None or aes.vendor_version == 1) and self._crc != self._m.crc:
            wrong = " or the password is not the right one" if self._m.encrypted else ""
            raise self._damaged(f"its CRC does not match: damaged{wrong}")

    def _damaged(self, why: str) -> ArchiveReadError:
        return ArchiveReadError(f"{self._m.name!r} cannot be read: {why}.", code="damaged")
