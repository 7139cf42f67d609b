"""What every disc read in user space shares: an image file or a block device, indexed once.

:class:`~kiosk.sources.iso.IsoSource` (ISO9660, through pycdlib) and
:class:`~kiosk.sources.udf.UdfSource` (UDF, read by the kiosk itself) parse a disc's tree when
they are opened and keep an index of entries and their byte extents. Everything after that is
the same for both and lives here: listing from the index, reading a file with its own
descriptor (:class:`~kiosk.sources.extents.ExtentReader`), telling a pulled or swapped disc
from a damaged file, and the errors the coordinator reads.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self, cast

from kiosk.errors import MediumRemovedError, SourceError, SourceReadError
from kiosk.sources.extents import ExtentReader
from kiosk.sources.scan_limits import ScanLimits
from kiosk.sources.source import GONE_ERRNOS, MAX_DEPTH, Entry, EntryKind


@dataclass(frozen=True, slots=True)
class Indexed:
    """One entry of the index built at open time: what to report and where its bytes are."""

    entry: Entry
    #: ``(byte offset on the image, length)`` runs, concatenated in order.
    extents: tuple[tuple[int, int], ...]


class DiscImageSource:
    """A :class:`~kiosk.sources.source.Source` over a disc image or device, indexed at open.

    Subclasses implement :meth:`_read`, which parses the tree from the open descriptor and
    sets ``label``, ``_index``, ``_order`` and ``_signature``.

    Raises
    ------
    SourceError
        ``path`` does not exist, cannot be opened or read, or is empty (no disc in the drive,
        a detached loop device); or whatever :meth:`_read` refuses.
    """

    filesystem: str

    def __init__(self, path: Path | str, limits: ScanLimits | None = None) -> None:
        self.path = Path(path)
        self._limits = limits or ScanLimits()
        self.description = str(path)
        self.label: str | None = None
        self._closed = False
        self._index: dict[str, Indexed] = {}
        #: Entries, and folder paths just before their contents, depth first.
        self._order: list[Entry | str] = []
        #: Where the disc's volume descriptor lies and its bytes: a swapped disc differs.
        self._signature: tuple[int, bytes] = (0, b"")
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise SourceError(
                f"{self.path} does not exist. Check the path or insert the medium.") from None
        except OSError as exc:
            raise self._open_failed(exc) from exc
        try:
            st = os.fstat(fd)
            self._is_block = stat.S_ISBLK(st.st_mode)
            # Identity used by is_present(): the device number for a device node (the node
            # itself survives a detach), the inode for an image file.
            self._identity = (st.st_rdev,) if self._is_block else (st.st_dev, st.st_ino)
            size = os.lseek(fd, 0, os.SEEK_END)
            if size == 0:
                raise SourceError(
                    f"{self.path} is empty: there is no disc in the drive, or the image holds "
                    "nothing. Insert the disc and try again.")
            self._read(fd, size)
        except OSError as exc:
            raise self._open_failed(exc) from exc
        finally:
            # No descriptor is kept between reads: an open descriptor would defer a loop
            # device's detach (and lock a drive's tray) for as long as the source exists.
            os.close(fd)

    def _read(self, fd: int, size: int) -> None:
        """Parse the disc's tree from ``fd`` (``size`` bytes) into the index."""
        raise NotImplementedError

    @staticmethod
    def _indexed(walk: Iterable[Indexed | str]) -> tuple[dict[str, Indexed], list[Entry | str]]:
        """The index and the depth-first order from a walk of entries and folder paths."""
        index: dict[str, Indexed] = {}
        # Entries, and folder paths just before their contents (for entries(max_depth)).
        order: list[Entry | str] = []
        for item in walk:
            if isinstance(item, str):
                order.append(item)
                continue
            index[item.entry.path] = item
            order.append(item.entry)
        return index, order

    # --------------------------------------------------------------------------- the Source

    def entries(self, max_depth: int = MAX_DEPTH) -> Iterator[Entry]:
        """Yield every non-directory entry, depth first, sorted by name within a directory.

        The tree was read when the source was opened, so listing never touches the medium.

        Parameters
        ----------
        max_depth : int
            Folders a file may be nested in. A deeper folder is yielded once, as
            ``EntryKind.TOO_DEEP``, instead of what is below it.

        Yields
        ------
        Entry
            Files, symlinks (``EntryKind.SYMLINK``, never followed), device nodes or
            unreadable entries (``EntryKind.SPECIAL``) and folders too deep to enter.
        """
        self._check_open()
        pruned: str | None = None
        for item in self._order:
            path = item if isinstance(item, str) else item.path
            # The index is depth first, so everything below one pruned folder is contiguous.
            if pruned is not None and path.startswith(pruned):
                continue
            if isinstance(item, Entry):
                yield item
            elif item.count("/") >= max_depth:  # its files would be max_depth + 1 deep
                pruned = item + "/"
                yield Entry(item, 0, EntryKind.TOO_DEEP)

    def open(self, path: str) -> BinaryIO:
        """Open the regular file ``path`` for reading.

        Parameters
        ----------
        path : str
            A path exactly as :meth:`entries` yielded it.

        Returns
        -------
        BinaryIO
            An unbuffered, seekable reader with its own file descriptor, safe to use in
            parallel with readers of other files from other threads.

        Raises
        ------
        SourceReadError
            No such file, or it is a symlink, a special entry or a directory.
        MediumRemovedError
            The image or device is gone.
        """
        self._check_open()
        item = self._index.get(path)
        if item is None or item.entry.kind is not EntryKind.FILE:
            if not self.is_present():
                raise self._removed()
            if item is None:
                raise SourceReadError(
                    f"{path}: no such file on {self.description}.", errno=errno.ENOENT)
            # Symlinks are never followed, special entries never opened.
            raise SourceReadError(f"{path}: not a regular file ({item.entry.kind.value}).")
        # A descriptor per reader: pread never shares a seek position, so threads cannot
        # disturb each other, and a reader outlives nothing but itself.
        fd = self._open_same_disc(path)
        return cast(BinaryIO, ExtentReader(self, path, fd, item.extents, item.entry.size))

    def _open_same_disc(self, path: str) -> int:
        """Open the image or device again and check it still holds the disc we indexed."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise self._removed() from None
        except OSError as exc:
            if exc.errno == errno.ENOMEDIUM:
                raise self._removed() from exc
            raise self.read_error(path, exc) from exc
        try:
            if self._same_disc(fd):
                return fd
        except OSError as exc:
            os.close(fd)
            raise self.read_error(path, exc) from exc
        os.close(fd)
        raise self._removed()

    def _same_disc(self, fd: int) -> bool:
        """Whether ``fd`` is the same file or device, not empty, with the same volume."""
        st = os.fstat(fd)
        if self._is_block:
            if not stat.S_ISBLK(st.st_mode) or (st.st_rdev,) != self._identity:
                return False
        elif (st.st_dev, st.st_ino) != self._identity:
            return False
        # A detached loop device reads as 0 bytes; a swapped disc has another descriptor.
        if os.lseek(fd, 0, os.SEEK_END) == 0:
            return False
        at, signature = self._signature
        return os.pread(fd, len(signature), at) == signature

    def is_present(self) -> bool:
        """Return whether the image or device is still there and still holds the same disc.

        A detached loop device keeps its ``/dev`` node but reads as 0 bytes; a drive whose disc
        was swapped keeps its device number but shows another volume descriptor.
        """
        try:
            # O_NONBLOCK: opening a CD drive with its tray open must not close the tray.
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError:
            return False
        try:
            return self._same_disc(fd)
        except OSError:
            return False
        finally:
            os.close(fd)

    def close(self) -> None:
        """Forget the medium; readers already opened keep working until they are closed.

        No descriptor is held between reads, so there is nothing else to release.
        """
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ------------------------------------------------------------------------------ errors

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"{self.description}: the source is closed.")

    def _open_failed(self, exc: OSError) -> SourceError:
        if exc.errno == errno.ENOMEDIUM:
            return SourceError(f"There is no disc in {self.path}. Insert the disc and try again.")
        return SourceError(f"{self.path} cannot be read: {exc.strerror or exc}.")

    def _removed(self) -> MediumRemovedError:
        return MediumRemovedError(
            "The disc was removed during the import. Insert it again and repeat the import; "
            "files already stored are kept.")

    def read_error(self, path: str, exc: OSError) -> Exception:
        """The error to raise for a failed read of ``path``: the medium gone, or one bad file."""
        if exc.errno in GONE_ERRNOS or not self.is_present():
            return self._removed()
        return SourceReadError(f"{path}: {exc.strerror or exc}", errno=exc.errno)

    def short_read(self, path: str) -> Exception:
        """The error to raise when the image ends before ``path`` does (pulled or truncated)."""
        if not self.is_present():
            return self._removed()
        return SourceReadError(
            f"{path}: the disc ends before this file does (truncated image or damaged disc).",
            errno=errno.EIO)
