"""Where imported files come from: the ``Source`` interface and the entries it lists.

A source is a read-only view of one medium: a mounted disc or stick (a directory), an ISO image
file, or a block device holding ISO9660 or UDF (:mod:`kiosk.sources.directory`,
:mod:`kiosk.sources.iso`, :mod:`kiosk.sources.udf`; :func:`kiosk.sources.opener.open_source`
picks one). The scanner and the
ingester only ever talk to this interface, so the same import code runs on all of them.

Paths are relative POSIX strings exactly as the medium names them (case preserved), never with
a leading ``/`` or a ``..`` component.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, BinaryIO, Protocol

if TYPE_CHECKING:
    pass

#: errno values that mean "the medium is gone", not "this one file is damaged".
GONE_ERRNOS = frozenset({errno.ENODEV, errno.ENXIO, errno.ENOMEDIUM, errno.ESTALE})

#: The deepest folder nesting any listing enters (``import.max_depth`` is at most this): a walk
#: of a hostile tree must end, and its paths stop fitting in PATH_MAX long before.
MAX_DEPTH = 128


class EntryKind(StrEnum):
    """What a directory entry on the medium is."""

    FILE = "file"
    SYMLINK = "symlink"  # never followed: may point off the medium
    SPECIAL = "special"  # device nodes, FIFOs, sockets: never opened
    TOO_DEEP = "too_deep"  # a folder nested deeper than the listing's max_depth: not entered


@dataclass(frozen=True, slots=True)
class Entry:
    """One non-directory entry on a medium."""

    path: str
    size: int
    kind: EntryKind
    #: Where the file's data starts on the device (bytes), when the medium says: the extent of an
    #: ISO9660/UDF file, or the physical offset a mounted file system reports (FIEMAP). Files
    #: are read in ascending ``location`` (a CD seeks in ~100 ms); None when unknown.
    location: int | None = None


class Source(Protocol):
    """A read-only medium to import from."""

    #: What the coordinator gave us (a path), for reports.
    description: str
    #: Volume label when the medium has one.
    label: str | None
    #: How the medium is read: ``directory`` (a mounted file system), ``iso9660`` or ``udf``.
    filesystem: str

    def entries(self, max_depth: int = MAX_DEPTH) -> Iterator[Entry]:
        """Yield every non-directory entry, depth first, sorted by name within a directory.

        Symlinks are yielded as ``EntryKind.SYMLINK`` and never followed. A folder that would
        put its files more than ``max_depth`` folders deep is not entered: it is yielded once,
        as ``EntryKind.TOO_DEEP``.

        Raises
        ------
        MediumRemovedError
            If the medium disappears while it is being listed.
        """
        ...

    def open(self, path: str) -> BinaryIO:
        """Open a regular file for reading.

        Raises
        ------
        SourceReadError
            The file cannot be opened (EIO, permission, ...).
        MediumRemovedError
            The medium is gone.
        """
        ...

    def is_present(self) -> bool:
        """Return whether the medium is still there (used to tell EIO from a pulled medium)."""
        ...

    def close(self) -> None:
        """Release the medium (file handles, ISO reader)."""
        ...


def display_path(path: str) -> str:
    """A medium path as text that is safe to show and to store as JSON.

    Names that are not UTF-8 arrive with surrogate escapes (Python's ``os.fsdecode``). Chinese
    authoring tools often write GBK names, so those bytes are tried as GB18030 before giving up
    and showing the bytes that decode as neither as ``\\x..`` escapes: unlike replacement
    characters they keep two such names apart in the report (found by tests/test_fuzz.py). The
    original ``path`` stays what opens the file.
    """
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        raw = path.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("gb18030")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace")


def files_named(source: Source, suffix: str, *, max_size: int, limit: int,
                max_entries: int = 100_000) -> list[str]:
    """Paths of up to ``limit`` non-empty files whose name ends in ``suffix`` (any case).

    Files larger than ``max_size`` are passed over, and the listing stops after
    ``max_entries`` entries: on a medium with millions of files what is wanted (a hospital's
    report PDF) is near the top.
    """
    found: list[str] = []
    for seen, entry in enumerate(source.entries()):
        if seen >= max_entries or len(found) >= limit:
            break
        if (entry.kind is EntryKind.FILE and entry.path.lower().endswith(suffix)
                and 0 < entry.size <= max_size):
            found.append(entry.path)
    return found
