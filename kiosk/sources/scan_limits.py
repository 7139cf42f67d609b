"""Limits on what one scan of an untrusted medium may cost: files, depth, file size, time.

Hospital discs and sticks are untrusted (DESIGN.md §5): a medium with millions of files, folders
nested thousands deep, a file of hundreds of gigabytes or a disc that takes hours to read must
give the coordinator a clear message, never a kiosk that hangs. Two kinds of limit:

* **stop** limits (``max_files``, ``max_seconds``): the scan stops, what was read is stored and
  verified, and the import is reported as not complete (``complete: false``, ``error`` says
  why, exit code 4 like a medium pulled mid-import). The case is usable; importing the medium
  again (after raising the limit) adds the rest and copies nothing twice.
* **skip** limits (``max_depth``, ``max_file_bytes``): the item is left out, listed under
  ``rejected`` with the reason, and the scan goes on.

The defaults and why they are what they are: :class:`kiosk.config.ImportSettings`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kiosk.config import ImportSettings

#: Names of the limits as they appear in reports (``limits.stopped``) and in the config.
MAX_FILES, MAX_DEPTH, MAX_FILE_BYTES, MAX_SECONDS = (
    "max_files", "max_depth", "max_file_bytes", "max_seconds")


@dataclass(frozen=True)
class ScanLimits:
    """The limits in force for one import.

    Attributes
    ----------
    max_files : int
        Entries (files, symlinks, special files, folders too deep to enter) read from one
        medium; the scan stops before the next one.
    max_depth : int
        Folders a file may be nested in; deeper folders are not entered.
    max_file_bytes : int
        Size of one file; a larger DICOM file is not copied.
    max_seconds : float
        Time for one scan (listing and copying); when it is up, no further file is started.
    max_archive_members : int
        Members of one zip archive on the medium; an archive with more is not opened.
    max_archive_bytes : int
        Uncompressed bytes the members of one archive add up to; past it, it is not opened.
    max_archive_ratio : int
        Uncompressed over compressed size of one member (above 1 MiB); past it, the member
        is refused as a zip bomb.
    clock : callable
        Monotonic seconds; tests inject a fake one.
    """

    max_files: int = ImportSettings.max_files
    max_depth: int = ImportSettings.max_depth
    max_file_bytes: int = ImportSettings.max_file_bytes
    max_seconds: float = ImportSettings.max_seconds
    max_archive_members: int = ImportSettings.archive_max_members
    max_archive_bytes: int = ImportSettings.archive_max_bytes
    max_archive_ratio: int = ImportSettings.archive_max_ratio
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)

    @classmethod
    def from_settings(cls, settings: ImportSettings) -> ScanLimits:
        """The limits of the ``[import]`` configuration section."""
        return cls(max_files=settings.max_files, max_depth=settings.max_depth,
                   max_file_bytes=settings.max_file_bytes, max_seconds=settings.max_seconds,
                   max_archive_members=settings.archive_max_members,
                   max_archive_bytes=settings.archive_max_bytes,
                   max_archive_ratio=settings.archive_max_ratio)

    def deadline(self) -> float:
        """The clock reading at which a scan starting now must stop."""
        return self.clock() + self.max_seconds

    def stop_message(self, limit: str) -> str:
        """The report's ``error`` when the scan stopped at ``limit`` (a stop limit)."""
        if limit == MAX_FILES:
            return (f"Scan stopped: the medium holds more than {self.max_files:,} files, the "
                    f"limit (import.max_files). The first {self.max_files:,} were read and "
                    "verified; the others were not imported. Raise the limit and import the "
                    "medium again to add them (nothing is copied twice).")
        minutes = self.max_seconds / 60
        return (f"Scan stopped: reading the medium took longer than {minutes:g} minutes, the "
                "limit (import.max_seconds). What was read is stored and verified; the rest "
                "was not imported. Raise the limit and import the medium again to add it "
                "(nothing is copied twice).")

    def too_deep_reason(self) -> str:
        """The ``rejected`` reason of a folder that was not entered."""
        return (f"folder nested more than {self.max_depth} levels deep: not searched "
                "(limit import.max_depth)")

    def too_large_reason(self, size: int) -> str:
        """The ``rejected`` reason of a DICOM file larger than ``max_file_bytes``."""
        return (f"{format_bytes(size)} is more than the limit for one file, "
                f"{format_bytes(self.max_file_bytes)} (import.max_file_bytes): not copied")

    def grew_reason(self) -> str:
        """The ``rejected`` reason of a file that turned out larger than its listed size."""
        return (f"kept growing past the limit for one file, {format_bytes(self.max_file_bytes)} "
                "(import.max_file_bytes), while it was read: not copied")

    def report(self, *, stopped: str | None, too_deep: int, too_large: int) -> dict[str, Any]:
        """The import report's ``limits``: the limits in force and what they caught."""
        return {"stopped": stopped, "max_files": self.max_files, "max_depth": self.max_depth,
                "max_file_bytes": self.max_file_bytes, "max_seconds": self.max_seconds,
                "too_deep": too_deep, "too_large": too_large}


def format_bytes(n: int) -> str:
    """``n`` bytes in binary units, as a coordinator reads them ("4 GiB", "1.5 MiB")."""
    if n < 1024:
        return f"{n} bytes"
    value, units = n / 1024, ["KiB", "MiB", "GiB"]
    while value >= 1024 and len(units) > 1:
        value /= 1024
        units.pop(0)
    return f"{value:.1f}".rstrip("0").rstrip(".") + f" {units[0]}"
