"""The desk's log file: bounded in size, pruned with retention, and free of patient data.

A purge does not scrub ``logs/``, so what goes into it must never identify a patient: log
lines hold case and job ids, device nodes, error kinds and short hashes (:func:`digest`), never
names, birth dates, medium labels, paths or file names from a medium, passphrases or tokens.
Exception *messages* often quote such a path (``SourceReadError: ZHANG_SAN/REPORT.PDF cannot be
read``), so the file's formatter writes a traceback's frames and exception types only
(:class:`WithheldMessageFormatter`); callers log :func:`error_kind` instead of ``str(exc)``.

Size: the file rotates at :data:`MAX_BYTES` keeping :data:`BACKUPS` old files, so the log never
takes more than about 5 MiB of the data partition. Age: :func:`prune_logs` (run with retention)
deletes rotated files last written more than ``retention.days`` ago.
"""

from __future__ import annotations

import hashlib
import logging
import logging.handlers
import time
import traceback
from pathlib import Path
from types import TracebackType

#: The live log file's name under ``logs/``; rotated copies are ``kiosk.log.1`` … ``.N``.
LOG_NAME = "kiosk.log"
#: Size at which the live file rotates.
MAX_BYTES = 1024 * 1024
#: Rotated files kept: with MAX_BYTES, at most 5 MiB of log in all.
BACKUPS = 4
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def digest(text: str | None) -> str:
    """A short SHA-256 prefix standing for ``text`` in a log line ("-" for nothing).

    The same label or path always gives the same 12 characters, so a technician can still
    tell "the same file failed twice" apart from "two files failed" without reading a name.
    """
    if not text:
        return "-"
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:12]


def error_kind(exc: BaseException) -> str:
    """What went wrong, without the message: the exception class, and errno for OS errors.

    ``OSError.strerror`` ("No space left on device") is the C library's text and never holds a
    path; the message of anything else may quote one.
    """
    kind = type(exc).__name__
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{kind} [errno {exc.errno}: {exc.strerror}]"
    return kind


class WithheldMessageFormatter(logging.Formatter):
    """Formats like :class:`logging.Formatter`, but tracebacks without exception messages.

    Frames (file, line, function, our source line) and each exception's type stay, chained
    causes included: enough to find the bug, nothing from the medium or the patient.
    """

    def formatException(self, ei: _ExcInfo | tuple[None, None, None]) -> str:
        """The traceback of ``ei`` with every exception message replaced by a placeholder."""
        _etype, value, _tb = ei
        if value is None:
            return ""
        chain: list[tuple[BaseException, str]] = []
        seen: set[int] = set()
        current: BaseException | None = value
        link = ""
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            chain.append((current, link))
            if current.__cause__ is not None:
                current, link = current.__cause__, "direct cause of"
            elif current.__context__ is not None and not current.__suppress_context__:
                current, link = current.__context__, "raised while handling"
            else:
                current = None
        parts: list[str] = []
        for exc, link in reversed(chain):
            frames = traceback.format_list(traceback.extract_tb(exc.__traceback__))
            kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
            parts.append("Traceback (most recent call last):\n" + "".join(frames)
                         + f"{kind} (message withheld from the log)")
            if link:
                parts.append(f"\nThe above exception was the {link} the following:\n")
        return "\n".join(parts)

    def format(self, record: logging.LogRecord) -> str:
        """Format ``record``, never reusing a traceback another handler cached on it."""
        cached = record.exc_text
        record.exc_text = None
        try:
            return super().format(record)
        finally:
            record.exc_text = cached


def open_log(logs_dir: Path) -> logging.Handler:
    """A size-bounded handler writing ``logs_dir/kiosk.log`` (the folder is created)."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        logs_dir / LOG_NAME, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8")
    handler.setFormatter(WithheldMessageFormatter(_FORMAT))
    return handler


def prune_logs(logs_dir: Path, days: int, now: float | None = None) -> int:
    """Delete rotated log files last written more than ``days`` days before ``now``.

    The live file is left alone (the handler holds it open; rotation bounds it). ``days <= 0``
    (retention off) deletes nothing: the size bound still holds. Returns the files deleted.
    """
    if days <= 0 or not logs_dir.is_dir():
        return 0
    cutoff = (time.time() if now is None else now) - days * 86400
    removed = 0
    for path in logs_dir.glob(f"{LOG_NAME}.*"):
        try:
            if path.is_file() and not path.is_symlink() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except OSError:
            continue  # vanished meanwhile (a rotation): nothing to prune
    return removed
