"""Where imported files come from: the ``Source`` interface and the directory implementation.

A source is a read-only view of one medium: a mounted disc or stick (a directory), an ISO image
file, or a block device holding ISO9660 (those two live in :mod:`kiosk.iso`). The scanner and the
ingester only ever talk to this interface, so the same import code runs on all of them.

Paths are relative POSIX strings exactly as the medium names them (case preserved), never with
a leading ``/`` or a ``..`` component.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from kiosk.errors import MediumRemovedError, SourceError, SourceReadError

if TYPE_CHECKING:
    from kiosk.scan_limits import ScanLimits

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


class Source(Protocol):
    """A read-only medium to import from."""

    #: What the coordinator gave us (a path), for reports.
    description: str
    #: Volume label when the medium has one.
    label: str | None

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


def open_source(spec: str | os.PathLike[str], limits: ScanLimits | None = None) -> Source:
    """Return the right :class:`Source` for a directory, ``.iso`` file or block device.

    ``limits`` bound the directory tree an ISO image may hold before it is indexed (default:
    the default limits); a directory is listed lazily and needs none here.

    Raises
    ------
    SourceError
        If ``spec`` does not exist or is none of those, or (``DiscTreeLimitError``) an ISO
        image's tree is past ``limits``.
    """
    path = Path(spec)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise SourceError(f"{path} does not exist. Check the path or insert the medium.") from None
    except OSError as exc:
        raise SourceError(f"{path} cannot be opened: {exc.strerror}.") from None
    if stat.S_ISDIR(st.st_mode):
        return DirectorySource(path)
    if stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode):
        from kiosk.iso import IsoSource  # pycdlib is only loaded when an image is read

        return IsoSource(path, limits)
    raise SourceError(f"{path} is not a directory, an ISO image or a block device.")


class DirectorySource:
    """A medium mounted (read-only) as a directory tree."""

    def __init__(self, root: Path, label: str | None = None) -> None:
        self.root = root.absolute()
        self.description = str(root)
        self.label = label if label is not None else self.root.name or None
        self._root_dev = self.root.stat().st_dev

    def entries(self, max_depth: int = MAX_DEPTH) -> Iterator[Entry]:
        """Yield entries depth first; see :meth:`Source.entries`."""
        yield from self._walk(self.root, "", min(max_depth, MAX_DEPTH))

    def _walk(self, directory: Path, prefix: str, depth_left: int) -> Iterator[Entry]:
        try:
            with os.scandir(directory) as it:
                children = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            if not self.is_present():
                raise MediumRemovedError(
                    "The medium was removed while it was being listed. Insert it again and "
                    "repeat the import; nothing already stored is lost."
                ) from exc
            # An unreadable directory on a damaged disc: report it as one unreadable entry.
            yield Entry(prefix.rstrip("/") or ".", -1, EntryKind.SPECIAL)
            return
        for child in children:
            rel = prefix + child.name
            try:
                if child.is_symlink():
                    yield Entry(rel, 0, EntryKind.SYMLINK)
                elif child.is_dir(follow_symlinks=False):
                    if depth_left <= 0:
                        yield Entry(rel, 0, EntryKind.TOO_DEEP)
                    # Never cross into another filesystem mounted below the medium.
                    elif child.stat(follow_symlinks=False).st_dev == self._root_dev:
                        yield from self._walk(Path(child.path), rel + "/", depth_left - 1)
                elif child.is_file(follow_symlinks=False):
                    yield Entry(rel, child.stat(follow_symlinks=False).st_size, EntryKind.FILE)
                else:
                    yield Entry(rel, 0, EntryKind.SPECIAL)
            except OSError:
                if not self.is_present():
                    raise MediumRemovedError(
                        "The medium was removed while it was being listed."
                    ) from None
                yield Entry(rel, -1, EntryKind.SPECIAL)

    def open(self, path: str) -> BinaryIO:
        """Open the regular file ``path``, following no symlink in any of its components."""
        parts = path.split("/")
        if path.startswith("/") or any(part in ("", ".", "..") for part in parts):
            raise SourceReadError(f"{path}: not a path on this medium.", errno=errno.EINVAL)
        dir_fd: int | None = None
        try:
            # Walk down with O_NOFOLLOW so a symlinked directory on the medium (a DICOMDIR path
            # through it, say) can never lead off the medium.
            dir_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            for part in parts[:-1]:
                flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
                next_fd = os.open(part, flags, dir_fd=dir_fd)
                os.close(dir_fd)
                dir_fd = next_fd
            # O_NONBLOCK: opening a FIFO must not hang the import (it is refused below).
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
            try:
                fd = os.open(parts[-1], flags | getattr(os, "O_NOATIME", 0), dir_fd=dir_fd)
            except PermissionError:
                # O_NOATIME is refused on files we do not own; retry without it.
                fd = os.open(parts[-1], flags, dir_fd=dir_fd)
        except OSError as exc:
            raise self._read_error(path, exc) from exc
        finally:
            if dir_fd is not None:
                os.close(dir_fd)
        try:
            is_file = stat.S_ISREG(os.fstat(fd).st_mode)
        except OSError as exc:
            os.close(fd)
            raise self._read_error(path, exc) from exc
        if not is_file:
            os.close(fd)
            raise SourceReadError(f"{path}: not a regular file.")
        return os.fdopen(fd, "rb", buffering=0)

    def _read_error(self, path: str, exc: OSError) -> Exception:
        if exc.errno in GONE_ERRNOS or not self.is_present():
            return MediumRemovedError(
                "The medium was removed during the import. Insert it again and repeat the "
                "import; files already stored are kept."
            )
        return SourceReadError(f"{path}: {exc.strerror or exc}", errno=exc.errno)

    def is_present(self) -> bool:
        """The root still exists on the same device."""
        try:
            return self.root.stat().st_dev == self._root_dev
        except OSError:
            return False

    def close(self) -> None:
        """Nothing to release for a directory."""
