"""Read an ISO9660 image file or a block device holding ISO9660, without mounting it.

The CI machines have no iso9660 in the kernel, and a kiosk should not need root to look at an
``.iso`` file, so discs can also be read in user space. This is the only module that imports
:mod:`pycdlib`, and it only uses it to *parse the directory tree*: when an :class:`IsoSource` is
built, the whole tree is turned into an index of entries and their byte extents (each file's
:attr:`~kiosk.sources.source.Entry.location` is where its first extent starts, so the importer
can read in disc order), and pycdlib is closed again. File contents are then read straight from
the image or device with ``pread`` on a file descriptor of their own, because pycdlib's
``open_file_from_iso`` shares one seek position between all open files and so cannot serve the
importer's parallel reader threads.

Names follow what a Linux mount would show, in this order of preference: Rock Ridge names when
the disc has Rock Ridge, else Joliet names, else the plain ISO9660 names without their ``;1``
version suffix and trailing ``.`` (kept in upper case, as the disc's DICOMDIR spells them).
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pycdlib
from pycdlib import dr
from pycdlib.pycdlibexception import PyCdlibException

from kiosk.errors import DiscTreeLimitError, SourceError
from kiosk.sources.disc_image import DiscImageSource, Indexed
from kiosk.sources.extents import DeadlineFile
from kiosk.sources.iso_census import census, time_limit_error
from kiosk.sources.scan_limits import ScanLimits
from kiosk.sources.source import Entry, EntryKind

__all__ = ["IsoSource"]

#: Byte offset and length of the Primary Volume Descriptor (sector 16 of 2048 bytes). Its bytes
#: include the volume creation time to 1/100 s, so comparing them tells "the same disc" from
#: "another disc in the same drive / another image on the same loop device".
_PVD_OFFSET = 16 * 2048
_PVD_LENGTH = 2048

#: A trailing ISO9660 version number (``;1``), which Linux also strips from Joliet names.
_VERSION_SUFFIX = re.compile(r";\d*$")

#: Directory nesting beyond this is treated as a malformed (or hostile) disc. ISO9660 allows 8
#: levels; Rock Ridge relocation can legitimately go deeper, but not by this much.
_MAX_DEPTH = 128

#: Entries indexed between two clock readings: indexing is linear, but a disc the census let
#: through may still hold hundreds of thousands of entries, and the open has one deadline.
_INDEX_CHECK_EVERY = 512

Naming = Literal["rockridge", "joliet", "iso9660"]


class _Iso9660Trees(pycdlib.PyCdlib):
    """pycdlib, reading the ISO9660, Joliet and Rock Ridge trees but not a UDF bridge's UDF tree.

    The index is built from the ISO9660 side only (UDF-only discs are
    :mod:`kiosk.sources.udf`'s), and the census counts only the trees used here. Left alone,
    pycdlib would also read and parse every UDF descriptor and file entry of a bridge disc,
    which no limit covers: a UDF side listing far more than the ISO9660 side (5,000 files:
    11 MB; a million would not fit) went straight past the census. These two methods are
    pycdlib's internals; ``tests/sources/test_iso_census.py`` fails if they stop being called.
    """

    def _parse_udf_descriptors(self) -> None:
        """Leave the UDF anchors and volume descriptors unread."""

    def _walk_udf_directories(self, extent_to_inode: Any) -> None:
        """Leave the UDF file tree unread."""


class IsoSource(DiscImageSource):
    """A :class:`~kiosk.sources.source.Source` over an ISO9660 image file or block device.

    Parameters
    ----------
    path : Path
        An ``.iso`` file or a block device (``/dev/sr0``, ``/dev/loop3``) holding ISO9660.
    limits : ScanLimits, optional
        The ``[import]`` limits: the directory tree is counted against ``max_files`` and
        ``max_seconds`` (:mod:`kiosk.sources.iso_census`) before pycdlib indexes it, and
        counting, parsing and indexing share one ``max_seconds`` deadline. Default: the
        default limits.

    Raises
    ------
    DiscTreeLimitError
        The tree is past the limits, loops, or its listings are far larger than their records;
        or opening it took longer than ``max_seconds``.
    SourceError
        If ``path`` cannot be opened, is empty (no disc in the drive, detached loop device) or
        does not hold a readable ISO9660 file system.

    Attributes
    ----------
    description : str
        ``str(path)``, for reports.
    label : str or None
        The volume identifier, stripped; None when it is blank.
    naming : {"rockridge", "joliet", "iso9660"}
        Which of the disc's name spaces the entry paths come from.
    """

    #: How the medium is read (see :class:`~kiosk.sources.source.Source`).
    filesystem = "iso9660"

    def __init__(self, path: Path | str, limits: ScanLimits | None = None) -> None:
        #: Which of the disc's name spaces the entry paths come from (set while parsing).
        self.naming: Naming = "iso9660"
        super().__init__(path, limits)

    def _read(self, fd: int, size: int) -> None:
        """Count the tree (the census), then let pycdlib parse it and index it."""
        self._pvd = os.pread(fd, _PVD_LENGTH, _PVD_OFFSET)
        self._signature = (_PVD_OFFSET, self._pvd)
        # One deadline for counting and indexing: together they may take max_seconds.
        deadline = self._limits.deadline()
        if self._pvd[1:6] == b"CD001":
            census(fd, self._limits, deadline=deadline)
        self._index, self._order = self._parse(fd, deadline)

    # ----------------------------------------------------------------------------- opening

    def _not_iso(self, detail: object) -> SourceError:
        return SourceError(
            f"{self.path} is not an ISO9660 disc image (or the disc is damaged), so it cannot be "
            f"imported as a CD/DVD: {detail}. If this is a USB stick or a hard disk image, mount "
            "it and import the directory instead."
        )

    def _parse(self, fd: int, deadline: float) -> tuple[dict[str, Indexed], list[Entry | str]]:
        """Parse the directory tree with pycdlib and index it; pycdlib is closed afterwards."""
        if len(self._pvd) < 6 or self._pvd[1:6] != b"CD001":
            # Checked here so that a random file gets a plain message instead of whatever
            # pycdlib says about the first bytes it could not make sense of.
            raise self._not_iso("no ISO9660 volume descriptor at sector 16")
        iso = _Iso9660Trees()
        # pycdlib gets a duplicate so that closing it leaves the caller's descriptor alone.
        fp = DeadlineFile(os.dup(fd), self._limits, deadline)
        try:
            try:
                iso.open_fp(fp)
            except (OSError, DiscTreeLimitError):
                raise  # a real read error (EIO, medium gone): reported by the caller
            except Exception as exc:
                # pycdlib raises its own PyCdlibInvalidISO/InvalidInput, but on hostile or
                # damaged media also struct.error, IndexError, UnicodeDecodeError, ...
                raise self._not_iso(exc) from exc
            try:
                return self._index_tree(iso, fd, deadline)
            except (OSError, SourceError):
                raise
            except Exception as exc:  # same reason as above
                raise self._not_iso(exc) from exc
        finally:
            # Only releasing memory here: a failure must not hide the real outcome.
            with contextlib.suppress(Exception):
                iso.close()
            fp.close()

    def _index_tree(self, iso: Any, fd: int,
                    deadline: float) -> tuple[dict[str, Indexed], list[Entry | str]]:
        pvd = iso.pvd
        self.label = _decode_label(pvd.volume_identifier)
        if iso.has_rock_ridge():
            self.naming = "rockridge"
            root = pvd.root_dir_record
        elif iso.has_joliet():
            self.naming = "joliet"
            root = iso.joliet_vd.root_dir_record
        else:
            self.naming = "iso9660"
            root = pvd.root_dir_record
        self._block = int(pvd.logical_block_size())
        self._image_size = os.lseek(fd, 0, os.SEEK_END)
        # Only while indexing: it holds the descriptor, closed when the open ends.
        recorded = _RecordedLengths(fd, self._block, self._image_size)
        clock = self._limits.clock

        def timed() -> Iterator[Indexed | str]:
            for n, item in enumerate(self._walk(root, "", 0, set(), recorded), 1):
                if n % _INDEX_CHECK_EVERY == 0 and clock() > deadline:
                    raise time_limit_error(self._limits)
                yield item

        return self._indexed(timed())

    def _walk(
        self, directory: dr.DirectoryRecord, prefix: str, depth: int, seen: set[int],
        recorded: _RecordedLengths,
    ) -> Iterator[Indexed | str]:
        """Yield indexed entries below ``directory``, depth first, sorted by name.

        Each folder's path (``"a/b"``) comes just before what is in it.
        """
        # A directory extent met twice means a loop in a crafted image; never walk it again.
        location = directory.extent_location()
        if location in seen or depth > _MAX_DEPTH:
            yield Indexed(Entry(prefix.rstrip("/") or ".", -1, EntryKind.SPECIAL), ())
            return
        seen.add(location)

        named: dict[str, dr.DirectoryRecord] = {}
        last_ident: bytes | None = None
        for child in directory.children:
            if child.is_dot() or child.is_dotdot():
                continue
            ident = child.file_identifier()
            # The 2nd, 3rd, ... records of a multi-extent file repeat its name; the first one
            # links to them through data_continuation.
            if ident == last_ident:
                continue
            last_ident = ident
            # Associated files (old Mac resource forks) are hidden by Linux mounts as well.
            if child.is_associated_file():
                continue
            rr = child.rock_ridge if self.naming == "rockridge" else None
            # A relocated deep directory (under rr_moved) is shown where its CL record is.
            if rr is not None and rr.relocated_record():
                continue
            name = self._name_of(child, ident)
            if name in named:
                # Two records map to one name (FOO;1 and FOO;2, or hostile RR names). Keep
                # both, so nothing on the disc is silently dropped.
                raw = _safe_name(ident.decode("utf-8", "surrogateescape"))
                name = raw if raw not in named else name
                n = 2
                while name in named:
                    name = f"{name}~{n}"
                    n += 1
            named[name] = child

        for name in sorted(named):
            rec = named[name]
            rel = prefix + name
            rr = rec.rock_ridge if self.naming == "rockridge" else None
            if rr is not None and rr.child_link_record_exists() and rr.cl_to_moved_dr is not None:
                yield rel
                yield from self._walk(rr.cl_to_moved_dr, rel + "/", depth + 1, seen, recorded)
            elif rec.is_dir():
                yield rel
                yield from self._walk(rec, rel + "/", depth + 1, seen, recorded)
            elif rec.is_symlink():
                yield Indexed(Entry(rel, 0, EntryKind.SYMLINK), ())
            elif rr is not None and _is_special_mode(rr):
                yield Indexed(Entry(rel, 0, EntryKind.SPECIAL), ())
            elif rec.file_unit_size or rec.interleave_gap_size:
                # Interleaved files cannot be read as one run (Linux refuses them too).
                yield Indexed(Entry(rel, -1, EntryKind.SPECIAL), ())
            else:
                extents = self._extents(rec, recorded)
                size = sum(length for _, length in extents)
                # Where its data starts, so files can be read in disc order (an empty file has
                # no run: its record still says where it would be).
                location = (extents[0][0] if extents
                            else (rec.extent_location() + rec.xattr_len) * self._block)
                yield Indexed(Entry(rel, size, EntryKind.FILE, location), extents)

    def _name_of(self, rec: dr.DirectoryRecord, ident: bytes) -> str:
        """The name a Linux mount would show, made safe to use as one path component."""
        name = ""
        if self.naming == "rockridge" and rec.rock_ridge is not None:
            # Rock Ridge names are raw bytes like any POSIX name; decode them the way
            # os.scandir() decodes names on a mounted disc so both sources agree.
            name = rec.rock_ridge.name().decode("utf-8", "surrogateescape")
        elif self.naming == "joliet":
            name = _strip_version(ident.decode("utf-16-be", "replace"))
        if not _is_valid_name(name):
            name = _strip_version(ident.decode("utf-8", "surrogateescape"))
        return _safe_name(name)

    def _extents(self, rec: dr.DirectoryRecord,
                 recorded: _RecordedLengths) -> tuple[tuple[int, int], ...]:
        runs: list[tuple[int, int]] = []
        part: dr.DirectoryRecord | None = rec
        while part is not None:
            # Data starts after the extended attribute record, which is counted in logical
            # blocks (ECMA-119 9.1.2; Linux adds it the same way).
            start = (part.extent_location() + part.xattr_len) * self._block
            length = int(part.data_length)
            if start + length >= self._image_size:
                # pycdlib silently shortens a file that runs past the end of the image to
                # what is there (even to a negative length). Use the length the disc
                # records, so a truncated image reads as an error, not as a shorter file.
                length = recorded.length(part)
            if length > 0:
                runs.append((start, length))
            part = part.data_continuation
        return tuple(runs)

    def __repr__(self) -> str:
        return f"IsoSource({self.description!r}, naming={self.naming!r}, label={self.label!r})"


class _RecordedLengths:
    """The data lengths folder listings record for files that reach the end of the image.

    Each folder's listing is read and scanned once, for its first such file, and only those
    files are remembered: rescanning it for every file made a crafted folder of thousands of
    them quadratic (8,000 files: 32 s). The census bounded the listings' sizes.
    """

    def __init__(self, fd: int, block: int, image_size: int) -> None:
        self._fd = fd
        self._block = block
        self._image_size = image_size
        #: Folder extent -> {(file extent, identifier): recorded data length}.
        self._folders: dict[int, dict[tuple[int, bytes], int]] = {}

    def length(self, rec: dr.DirectoryRecord) -> int:
        """The data length of ``rec`` as its raw directory record on the disc says."""
        shortened = max(0, int(rec.data_length))
        parent = rec.parent
        if parent is None:
            return shortened
        folder = parent.extent_location()
        lengths = self._folders.get(folder)
        if lengths is None:
            lengths = self._folders[folder] = self._scan(parent)
        return lengths.get((rec.extent_location(), rec.file_ident), shortened)

    def _scan(self, folder: dr.DirectoryRecord) -> dict[tuple[int, bytes], int]:
        listing = os.pread(self._fd, int(folder.data_length),
                           folder.extent_location() * self._block)
        found: dict[tuple[int, bytes], int] = {}
        offset = 0
        while offset + 33 <= len(listing):
            size = listing[offset]
            if size == 0:  # padding up to the next logical block
                offset = (offset // self._block + 1) * self._block
                continue
            # ECMA-119 9.1: extended attribute length at byte 1, extent at 2, data length at
            # 10 (little-endian halves), identifier length at 32, identifier from 33.
            xattr = listing[offset + 1]
            extent = int.from_bytes(listing[offset + 2 : offset + 6], "little")
            length = int.from_bytes(listing[offset + 10 : offset + 14], "little")
            if (extent + xattr) * self._block + length >= self._image_size:
                ident = listing[offset + 33 : offset + 33 + listing[offset + 32]]
                found.setdefault((extent, ident), length)
            offset += size
        return found


def _strip_version(name: str) -> str:
    """Drop the ``;1`` version and then trailing dots, as Linux does (``README.;1``)."""
    name = _VERSION_SUFFIX.sub("", name)
    stripped = name.rstrip(".")
    return stripped or name


def _is_valid_name(name: str) -> bool:
    return name not in ("", ".", "..") and "/" not in name and "\x00" not in name


def _safe_name(name: str) -> str:
    """Make a name from the disc usable as one path component (hostile media)."""
    name = name.replace("/", "_").replace("\x00", "_")
    return name if name not in ("", ".", "..") else name.replace(".", "_") or "_"


def _is_special_mode(rr: Any) -> bool:
    """Whether a Rock Ridge PX mode marks a device node, FIFO or socket."""
    try:
        mode = int(rr.get_file_mode())
    except PyCdlibException:  # no PX record: an ordinary file
        return False
    return bool(
        stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)
    )


def _decode_label(raw: bytes) -> str | None:
    label = raw.decode("utf-8", "replace").strip(" \x00")
    return label or None
