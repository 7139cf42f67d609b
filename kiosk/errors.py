"""One error hierarchy for the whole core.

Every error carries a short ``title`` and a ``text`` that says what happened and what to do next,
so the CLI and the UI can show it to a coordinator without translating tracebacks.
"""

from __future__ import annotations


class KioskError(Exception):
    """Base of every error the core raises on purpose.

    Parameters
    ----------
    text : str
        What happened and what to do next, in one or two sentences.
    title : str, optional
        A short heading; defaults to the class's ``default_title``.
    """

    default_title = "Something went wrong"
    exit_code = 1

    def __init__(self, text: str, *, title: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.title = title or self.default_title


class ConfigError(KioskError):
    """The configuration file or a command-line value is invalid."""

    default_title = "Configuration error"
    exit_code = 2


class UsageError(KioskError):
    """A command was called wrongly (unknown case, missing source, ...)."""

    default_title = "Usage error"
    exit_code = 2


class SourceError(KioskError):
    """The source medium cannot be opened at all (not a directory, ISO or ISO9660 device)."""

    default_title = "Cannot read the medium"
    exit_code = 2


class DiscTreeLimitError(SourceError):
    """A disc's directory tree is past the scan limits (or loops), so it is not indexed.

    ``limit`` names what was hit: ``max_files``, ``max_seconds``, ``loop`` or
    ``directory_bytes`` (listings far larger than their records). ``values`` holds the figures
    the message quotes, so the UI can say the same in Chinese.
    """

    default_title = "Disc not read: past the limits"

    def __init__(self, text: str, *, limit: str, values: dict[str, str] | None = None) -> None:
        super().__init__(text)
        self.limit = limit
        self.values = values or {}


class MediumRemovedError(KioskError):
    """The medium disappeared while it was being read."""

    default_title = "Medium removed"
    exit_code = 4


class SourceReadError(KioskError):
    """One file on the medium could not be read (EIO on a scratched disc, ...)."""

    default_title = "Read error"

    def __init__(self, text: str, *, errno: int | None = None) -> None:
        super().__init__(text)
        self.errno = errno


class ArchiveReadError(SourceReadError):
    """A zip archive on the medium, or one file in it, cannot be read.

    Damaged, encrypted with a password not given (or another one), past a limit on untrusted
    archives, or of a kind the kiosk does not open. Unlike a scratched disc's EIO, reading again
    cannot help, so it is never retried. ``code`` is a stable word for reports and the desk
    (which says it in Chinese too): ``damaged``, ``password_needed``, ``password_wrong``,
    ``unsupported``, ``limit`` or ``bomb``.
    """

    default_title = "Archive not read"

    def __init__(self, text: str, *, code: str) -> None:
        super().__init__(text)
        self.code = code


class NothingImportableError(KioskError):
    """The medium holds no DICOM instance the kiosk could read."""

    default_title = "No images found"
    exit_code = 3


class VerificationError(KioskError):
    """Stored data does not match what was read; nothing is reported as done."""

    default_title = "Verification failed"
    exit_code = 4


class StoreError(KioskError):
    """The kiosk's own store or database is damaged or full."""

    default_title = "Kiosk storage problem"
    exit_code = 1


class LinkTokenError(KioskError):
    """A link token is not valid: bad signature, expired, revoked, wrong study, malformed.

    ``reason`` is a short machine-readable word (``expired``, ``signature``, ``malformed``,
    ``revoked``, ``study``, ``key``) so a gateway can log it without parsing the text.
    """

    default_title = "Link not valid"
    exit_code = 4

    def __init__(self, text: str, *, reason: str) -> None:
        super().__init__(text)
        self.reason = reason


class PrinterError(KioskError):
    """The receipt printer could not print the slip; the kiosk carries on without it."""

    default_title = "Receipt printer"
    exit_code = 1


class PrinterUnavailableError(PrinterError):
    """No receipt printer is attached, or it cannot be opened."""

    default_title = "No receipt printer"


class PrinterOfflineError(PrinterError):
    """The printer is attached but does not take data (off, lid open, jammed, unplugged)."""

    default_title = "Receipt printer offline"


class PrinterOutOfPaperError(PrinterError):
    """The printer reports that its paper roll is empty."""

    default_title = "Receipt printer out of paper"


class MediaError(KioskError):
    """A disc or stick cannot be watched, mounted, unmounted or ejected."""

    default_title = "Media problem"
    exit_code = 1


class PinError(KioskError):
    """A coordinator PIN that cannot be used (wrong format, too easy to guess, or unset).

    ``reason`` is a short code (``digits``, ``same``, ``sequence``, ``unset``) the desk UI
    shows in its own words in both languages.
    """

    default_title = "Coordinator PIN"
    exit_code = 2

    def __init__(self, text: str, *, reason: str = "") -> None:
        super().__init__(text)
        self.reason = reason
