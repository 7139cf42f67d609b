"""Streaming writer and verifier of AES-256 encrypted ZIP archives (WinZip AE-2): the public API.

The archive the patient takes home (DESIGN.md §3 "Patient USB"): the format 7-Zip, WinZip,
WinRAR, Keka and The Unarchiver open with a passphrase. The rest of the kiosk imports it from
here; the code lives in the modules below, the only ones in the kiosk that know the ZIP format.

Format, per entry
-----------------
* compression method 99 and the AES extra field 0x9901 (vendor version 2 = AE-2, vendor id "AE",
  strength 3 = AES-256, actual method 0 = stored: DICOM pixel data does not compress well and
  stored is fastest);
* CRC field 0 (AE-2); data = 16-byte salt | 2-byte password verifier | ciphertext | 10-byte MAC;
* keys from PBKDF2-HMAC-SHA1 (1000 iterations, 66 bytes: AES key, HMAC key, verifier);
* AES-256-CTR with WinZip's *little-endian* counter starting at 1, computed as AES-ECB over
  counter blocks built in numpy and XORed in numpy (``cryptography``'s CTR mode counts big-endian);
* HMAC-SHA1 of the ciphertext, truncated to 10 bytes;
* ZIP64 records where sizes, offsets or the entry count need them; the UTF-8 flag (bit 11) on
  non-ASCII names.

Because AE-2 stores no CRC and "stored" makes the packed size ``size + 28``, every local header
is final before the data is read: the archive is written strictly front to back, never seeks,
and needs no data descriptor (except for sources of unknown length, e.g. a pipe). A plain
byte-split into ``name.zip.001``, ``.002``, ... (what 7-Zip opens) therefore costs nothing.

Where it lives
--------------
:mod:`~kiosk.package.aeszip.format`
    ZIP structures: constants, local and central headers, extra fields, ZIP64, end records.
:mod:`~kiosk.package.aeszip.winzip_aes`
    Key derivation (:func:`derive_keys`, :class:`KeySupply`), the little-endian CTR keystream
    and its counter table, the HMAC.
:mod:`~kiosk.package.aeszip.writer`
    :class:`AesZipWriter`, the streaming writer, and its :class:`ArchiveResult`.
:mod:`~kiosk.package.aeszip.pipeline`
    The writer's output blocks and threads (keys, mac, io, read-back): where the CPU goes.
:mod:`~kiosk.package.aeszip.readback`
    The read-back from the device while writing, and :func:`read_back_sha256`.
:mod:`~kiosk.package.aeszip.volumes`
    Split volumes below 4 GiB (:func:`default_split_size`), ``O_DIRECT`` volume files, reading
    volumes as one byte range.
:mod:`~kiosk.package.aeszip.reader`
    :func:`check_archive` / :func:`verify_archive`: reading an archive back and checking every
    entry.
:mod:`~kiosk.package.aeszip.errors`
    The errors they raise.

References
----------
APPNOTE
    PKWARE ".ZIP File Format Specification" 6.3.x: 4.3.7 local file header, 4.3.9 data
    descriptor, 4.3.12 central directory header, 4.3.14-4.3.16 ZIP64 end records and end of
    central directory, 4.4.x field meanings, 4.5.3 ZIP64 extended information extra field.
AE
    WinZip "AES Encryption Information: Encryption Specification AE-1 and AE-2", version 1.04:
    II.2 method and flag, II.3 CRC, II.4 extra field, III.1-III.5 storage format, V.1 empty
    files, V.3 key generation.
"""

from __future__ import annotations

from kiosk.package.aeszip.errors import (
    ArchiveCorruptError,
    ReadBackError,
    SourceChangedError,
    WrongPassphraseError,
)
from kiosk.package.aeszip.format import ZIP64_LIMIT
from kiosk.package.aeszip.readback import read_back_sha256
from kiosk.package.aeszip.reader import EntryCheck, check_archive, verify_archive
from kiosk.package.aeszip.volumes import default_split_size
from kiosk.package.aeszip.winzip_aes import KeySupply
from kiosk.package.aeszip.writer import AesZipWriter, ArchiveResult

__all__ = [
    "ZIP64_LIMIT",
    "AesZipWriter",
    "ArchiveCorruptError",
    "ArchiveResult",
    "EntryCheck",
    "KeySupply",
    "ReadBackError",
    "SourceChangedError",
    "WrongPassphraseError",
    "check_archive",
    "default_split_size",
    "read_back_sha256",
    "verify_archive",
]
