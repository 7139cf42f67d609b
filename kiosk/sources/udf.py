"""Read a UDF-only disc image or block device (what Windows and many PACS burn), without mounting.

pycdlib, which :class:`kiosk.sources.iso.IsoSource` uses, opens only discs with an ISO9660
volume descriptor, so a DVD burnt as UDF alone (no ISO9660 bridge) is read here instead: the
UDF structures are parsed by :mod:`kiosk.sources.udf_volume` straight from the image or device,
and the whole directory tree is indexed when the source is opened, within the scan limits:

* entries (files and folders) beyond :func:`~kiosk.sources.iso_census.max_records`, folder
  listings far larger than the records in them, more allocation descriptors or longer paths
  than such a tree needs, a folder that contains itself, or a tree not read within
  ``max_seconds``: :class:`~kiosk.errors.DiscTreeLimitError`, with the same ``limit`` names
  (and so the same English and Chinese explanations at the desk) as an ISO9660 disc's census;
* folders deeper than :data:`~kiosk.sources.source.MAX_DEPTH` are not read;
* a file entry that cannot be parsed is listed as an unreadable entry (``SPECIAL``, size -1),
  so the import reports it and goes on with the rest.

File contents are read with ``pread`` on a descriptor of their own
(:class:`~kiosk.sources.extents.ExtentReader`), as for ISO9660. Names are the disc's own (OSTA
CS0: 8-bit names are code points U+0000-U+00FF, 16-bit ones UCS-2), case preserved; hidden
files are listed (a Linux mount hides them unless ``unhide``, Windows and 7-Zip show them),
deleted ones are not; symlinks are reported and never followed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from kiosk.errors import DiscTreeLimitError, SourceError
from kiosk.sources.disc_image import DiscImageSource, Indexed
from kiosk.sources.iso_census import CHECK_EVERY, max_records, time_limit_error
from kiosk.sources.scan_limits import MAX_FILES, ScanLimits
from kiosk.sources.source import MAX_DEPTH, Entry, EntryKind
from kiosk.sources.udf_descriptors import (
    FID_DIRECTORY,
    FID_HIDDEN,
    FT_DIRECTORY,
    FT_FILE,
    FT_REALTIME,
    FT_SYMLINK,
    HOLE,
    Fid,
    FileEntry,
    UdfDamaged,
    UdfUnsupported,
    has_udf_vrs,
    parse_fids,
)
from kiosk.sources.udf_volume import Volume

__all__ = ["UdfSource", "UdfUnsupportedError", "is_udf"]

#: Bytes of a folder listing read at once: the budget and the clock are checked between reads.
_CHUNK = 64 * 1024
#: A FID is 38 bytes plus a name of at most 255 and some implementation use; a folder's
#: listing is whole blocks. Twice that, and slack for small discs, tells a real listing from
#: one claiming gigabytes (as :mod:`kiosk.sources.iso_census` does for ISO9660).
_BYTES_PER_RECORD, _BYTES_PER_FOLDER, _SLACK_BYTES = 512, 2 * 4096, 64 * 1024
#: Allocation descriptors per record: a file is one extent per GiB, a few more if fragmented.
_EXTENTS_PER_RECORD, _EXTENT_SLACK = 8, 4096
#: Path characters per record (what the index keeps in memory): real paths are far shorter.
_PATH_BYTES_PER_RECORD, _PATH_SLACK = 256, 1 << 20


#: The hidden root entry that lists a rewritable disc's unusable blocks (mkudffs, Windows).
_NAS = "Non-Allocatable Space"


class UdfUnsupportedError(SourceError):
    """A valid UDF disc using a feature this reader lacks (a mount may still read it)."""


def is_udf(fd: int) -> bool:
    """Whether the image or device on ``fd`` has a UDF volume recognition sequence.

    True for UDF-only and for bridge (ISO9660 + UDF) discs alike; the caller checks for the
    ISO9660 descriptor first when it prefers that. Read errors count as "no".
    """
    try:
        return has_udf_vrs(lambda length, offset: os.pread(fd, length, offset))
    except OSError:
        return False


@dataclass(slots=True)
class _Budget:
    """What reading the tree may still spend, and the clock."""

    limits: ScanLimits
    deadline: float
    reads: int = 0
    records: int = 0  # live entries (files and folders) found
    fids: int = 0  # every FID parsed, parents and deleted ones too (what bytes pay for)
    folders: int = 0
    directory_bytes: int = 0
    extents: int = 0
    path_bytes: int = 0
    most_records: int = field(init=False)

    def __post_init__(self) -> None:
        self.most_records = max_records(self.limits)

    def count_read(self) -> None:
        self.reads += 1
        if self.reads % CHECK_EVERY == 0 and self.limits.clock() > self.deadline:
            raise time_limit_error(self.limits)

    def extents_left(self) -> int:
        return _EXTENTS_PER_RECORD * self.most_records + _EXTENT_SLACK - self.extents

    def charge_listing(self, size: int) -> None:
        allowed = (_BYTES_PER_RECORD * self.fids + _BYTES_PER_FOLDER * self.folders
                   + _SLACK_BYTES)
        if self.directory_bytes + size > allowed:
            raise DiscTreeLimitError(_SIZE_MESSAGE, limit="directory_bytes")
        self.directory_bytes += size

    def check_records(self, more: int) -> None:
        """Refuse the tree once it holds more than ``most_records`` entries."""
        if self.records + more > self.most_records:
            raise DiscTreeLimitError(
                _files_message(self.limits), limit=MAX_FILES,
                values={"n": f"{self.most_records:,}", "limit": f"{self.limits.max_files:,}"})

    def charge_entries(self, count: int, path_bytes: int) -> None:
        """Count one folder's entries and the paths the index keeps for them."""
        self.check_records(count)
        self.records += count
        self.path_bytes += path_bytes
        if self.path_bytes > _PATH_BYTES_PER_RECORD * self.most_records + _PATH_SLACK:
            raise DiscTreeLimitError(_SIZE_MESSAGE, limit="directory_bytes")


class UdfSource(DiscImageSource):
    """A :class:`~kiosk.sources.source.Source` over a UDF image file or block device.

    Parameters
    ----------
    path : Path
        A disc image or a block device (``/dev/sr0``, ``/dev/loop3``) holding UDF.
    limits : ScanLimits, optional
        The ``[import]`` limits the directory tree is read within (``max_files`` and
        ``max_seconds``). Default: the default limits.

    Raises
    ------
    DiscTreeLimitError
        The tree is past the limits, loops, or its listings are far larger than their records.
    UdfUnsupportedError
        The disc uses a UDF feature this reader lacks (a virtual partition: a CD-R never
        finalised).
    SourceError
        ``path`` cannot be opened or read, is empty, or holds no readable UDF file system.

    Attributes
    ----------
    description : str
        ``str(path)``, for reports.
    label : str or None
        The logical volume identifier (else the primary volume identifier); None when blank.
    """

    #: How the medium is read (see :class:`~kiosk.sources.source.Source`).
    filesystem = "udf"

    def _read(self, fd: int, size: int) -> None:
        """Find the volume and read its tree, within the limits."""
        budget = _Budget(self._limits, self._limits.deadline())

        def pread(length: int, offset: int) -> bytes:
            budget.count_read()
            return os.pread(fd, length, offset)

        try:
            self._volume = Volume(pread, size, budget.extents_left())
            self.label = self._volume.label
            self._index, self._order = self._read_tree(budget)
        except UdfUnsupported as exc:
            raise UdfUnsupportedError(
                f"{self.path} is a UDF disc that uses {exc}, which the kiosk cannot read "
                "without mounting it. 此光盘使用了本机无法直接读取的 UDF 功能。"
                "Ask the hospital for a finalised disc (or an ISO9660/UDF bridge disc)."
            ) from None
        except UdfDamaged as exc:
            raise self._damaged(exc) from None
        self._signature = (self._volume.primary_at, self._volume.primary)

    # ------------------------------------------------------------------------- the tree

    def _read_tree(self, budget: _Budget) -> tuple[dict[str, Indexed], list[Entry | str]]:
        volume = self._volume
        partition, block = volume.root
        root = volume.file_entry(partition, block, budget.extents_left())
        if root.file_type != FT_DIRECTORY:
            raise UdfDamaged("the root folder's file entry is not a folder")
        seen = {volume.offset_of(partition, block)}
        return self._indexed(self._walk(root, "", 0, seen, budget))

    def _walk(self, folder: FileEntry, prefix: str, depth: int, seen: set[int],
              budget: _Budget) -> Iterator[Indexed | str]:
        """Yield indexed entries below ``folder``, depth first, sorted by name.

        Each folder's path comes just before what is in it.
        """
        budget.folders += 1
        named: dict[str, Fid] = {}
        for fid in self._listing(folder, budget):
            if depth == 0 and fid.characteristics & FID_HIDDEN and fid.name == _NAS:
                continue  # UDF's own record of unusable blocks (UDF 2.01 3.3.7.2), not a file
            name = _safe_name(fid.name)
            n = 2
            unique = name
            while unique in named:  # two FIDs with one name (crafted or damaged): keep both
                unique = f"{name}~{n}"
                n += 1
            named[unique] = fid
        budget.charge_entries(len(named), sum(len(prefix) + len(n) + 1 for n in named))
        for name in sorted(named):
            fid = named[name]
            rel = prefix + name
            try:
                fe = self._volume.file_entry(fid.partition, fid.block, budget.extents_left())
            except UdfDamaged:
                yield Indexed(Entry(rel, -1, EntryKind.SPECIAL), ())
                continue
            budget.extents += len(fe.extents)
            if fe.file_type == FT_DIRECTORY:
                yield rel
                where = self._volume.offset_of(fid.partition, fid.block)
                if where in seen:
                    raise DiscTreeLimitError(_LOOP_MESSAGE, limit="loop")
                seen.add(where)
                if depth + 1 <= MAX_DEPTH:  # deeper folders are pruned by entries() anyway
                    yield from self._walk(fe, rel + "/", depth + 1, seen, budget)
            elif fe.file_type in (FT_FILE, FT_REALTIME):
                try:
                    runs = self._volume.data_runs(fe)
                except UdfDamaged:
                    yield Indexed(Entry(rel, -1, EntryKind.SPECIAL), ())
                    continue
                location = next((start for start, _ in runs if start != HOLE), None)
                yield Indexed(Entry(rel, fe.size, EntryKind.FILE, location), runs)
            elif fe.file_type == FT_SYMLINK:
                yield Indexed(Entry(rel, 0, EntryKind.SYMLINK), ())
            elif fid.characteristics & FID_DIRECTORY:
                yield Indexed(Entry(rel, -1, EntryKind.SPECIAL), ())  # says folder, is not
            else:
                yield Indexed(Entry(rel, 0, EntryKind.SPECIAL), ())

    def _listing(self, folder: FileEntry, budget: _Budget) -> list[Fid]:
        """The FIDs of one folder, read in chunks within the budget."""
        fids: list[Fid] = []
        pending = b""
        for offset, length in self._volume.data_runs(folder):
            done = 0
            while done < length:
                size = min(_CHUNK, length - done)
                budget.charge_listing(size)
                data = bytes(size) if offset == HOLE else self._volume.read(offset + done, size)
                done += size
                found, used, parsed = parse_fids(pending + data)
                pending = (pending + data)[used:]
                budget.fids += parsed
                fids.extend(found)
                budget.check_records(len(fids))
        if pending:
            # The last descriptor's padding may lie past the listing's recorded length.
            found, used, parsed = parse_fids(pending + bytes(-len(pending) % 4))
            budget.fids += parsed
            fids.extend(found)
            if pending[used:].strip(b"\x00"):
                raise UdfDamaged("a folder listing ends inside a file identifier")
            budget.check_records(len(fids))
        return fids

    def __repr__(self) -> str:
        return f"UdfSource({self.description!r}, label={self.label!r})"

    def _damaged(self, exc: UdfDamaged) -> SourceError:
        return SourceError(
            f"{self.path} is not a readable UDF disc (it is damaged, truncated or crafted): "
            f"{exc}. 光盘的 UDF 文件系统已损坏或不完整，无法读取。Ask the hospital for a new "
            "disc. 请医院重新刻录光盘。")


def _safe_name(name: str) -> str:
    """Make a name from the disc usable as one path component (hostile media)."""
    name = name.replace("/", "_").replace("\x00", "_")
    return name if name not in ("", ".", "..") else name.replace(".", "_") or "_"


def _files_message(limits: ScanLimits) -> str:
    return (f"The disc's folders list more than {max_records(limits):,} entries, over twice "
            f"the limit of {limits.max_files:,} files (import.max_files), so it was not read: "
            "indexing it could exhaust the kiosk's memory. Raise the limit if the disc is "
            "genuine, or import its files from a copy.")


_LOOP_MESSAGE = ("The disc's folders form a loop (a folder contains itself): the disc is damaged "
                 "or crafted, so it was not read. Ask the hospital for a new disc.")
_SIZE_MESSAGE = ("The disc's folder listings are far larger than the files in them: the disc is "
                 "damaged or crafted, so it was not read. Ask the hospital for a new disc.")
