"""The errors of the AES zip: wrong passphrase, damaged archive, failed read-back, changed source.

They live apart from the code that raises them because the writer, the reader and the volume
files all raise some of them; :mod:`kiosk.package.aeszip` exports them all.
"""

from __future__ import annotations

from kiosk.errors import KioskError, VerificationError

__all__ = [
    "ArchiveCorruptError",
    "ReadBackError",
    "SourceChangedError",
    "WrongPassphraseError",
]


class WrongPassphraseError(VerificationError):
    """The passphrase does not open the archive (password verifier mismatch)."""

    default_title = "Wrong passphrase"


class ArchiveCorruptError(VerificationError):
    """The archive is damaged or was tampered with (bad structure, MAC or CRC)."""

    default_title = "Archive damaged"


class ReadBackError(VerificationError):
    """What the device returned differs from what was written to it."""

    default_title = "Read-back failed"


class SourceChangedError(KioskError):
    """A source file changed size while it was being archived; the archive is unusable."""

    default_title = "File changed during export"
    exit_code = 4
