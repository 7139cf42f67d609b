"""A medium mounted (read-only) as a directory tree: the :class:`DirectorySource`."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from kiosk.errors import MediumRemovedError, SourceReadError
from kiosk.sources.source import GONE_ERRNOS, MAX_DEPTH, Entry, EntryKind
from kiosk.system.fiemap import UNSUPPORTED, first_block_offset


class DirectorySource:
    """A medium mounted (read-only) as a directory tree."""

    #: How the medium is read (see :class:`~kiosk.sources.source.Source`).
    filesystem = "directory"

    def __init__(self, root: Path, label: str | None = None) -> None:
        self.root = root.absolute()
        self.description = str(root)
        self.label = label if label is not None else self.root.name or None
        self._root_dev = self.root.stat().st_dev
        #: Whether the file system tells where files lie (FIEMAP); off after its first refusal.
        self._locates = True

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
                    yield Entry(rel, child.stat(follow_symlinks=False).st_size, EntryKind.FILE,
                                self._location(child.path))
                else:
                    yield Entry(rel, 0, EntryKind.SPECIAL)
            except OSError:
                if not self.is_present():
                    raise MediumRemovedError(
                        "The medium was removed while it was being listed."
                    ) from None
                yield Entry(rel, -1, EntryKind.SPECIAL)

    def _location(self, path: str) -> int | None:
        """Where the file's data starts on the device, when the file system says (FIEMAP)."""
        if not self._locates:
            return None
        try:
            # O_NONBLOCK: should the file have become a FIFO since it was listed, never wait.
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return None  # the read will say what is wrong with it
        try:
            return first_block_offset(fd)
        except OSError as exc:
            if exc.errno in UNSUPPORTED:
                self._locates = False  # tmpfs, FUSE, a network share: read as listed
            return None
        finally:
            os.close(fd)

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
