"""Count an untrusted disc's directory tree, within the scan limits, before it is indexed.

:class:`kiosk.sources.iso.IsoSource` lets pycdlib parse the whole ISO9660 (and Joliet) directory
tree when a disc is opened, before any :class:`~kiosk.sources.scan_limits.ScanLimits` can apply, and
pycdlib
has no lazy mode: every record becomes a few kilobytes of Python objects (50,000 entries took
19 s and 190 MB). A hostile image with millions of records, or directory extents claiming
gigabytes, would exhaust the kiosk before the import ever started. So the tree is counted first
by this walk, which reads only directory extents (a few kilobytes per folder, read again from
the page cache by pycdlib afterwards) and keeps only a set of folder locations:

* more than :func:`max_records` (twice ``max_files``, plus some) records in one tree:
  :class:`~kiosk.errors.DiscTreeLimitError`. A disc only a little over ``max_files`` still
  opens, and its scan stops at ``max_files`` with the usual incomplete report (the scan
  counts files; the tree also holds folders);
* a folder extent met twice (a loop in a crafted image): the same error, naming the loop;
* directory extents far larger than the records in them (gigabytes of "padding"), or path
  tables larger than the folders they list: the same error. Every byte of every directory
  extent is either parsed into counted records, exactly where pycdlib will find them (records
  crossing blocks and reads included), or charged to this budget unread. Rock Ridge
  continuation areas, which pycdlib reads and parses again for every record that points at
  them, are charged to a budget of their own the same way;
* past the deadline (``max_seconds``): the same error. The clock is read every
  :data:`CHECK_EVERY` reads only, so a normal disc's open costs one reading (the deadline).

Depth is only measured here: folders deeper than ``max_depth`` are reported by the import as
``too_deep``, as on any other medium. This module only parses bytes (ECMA-119 9.1, 8.4, 8.5);
pycdlib stays in :mod:`kiosk.sources.iso`.
"""

from __future__ import annotations

import bisect
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from kiosk.errors import DiscTreeLimitError
from kiosk.sources.scan_limits import MAX_FILES, MAX_SECONDS, ScanLimits

__all__ = ["CHECK_EVERY", "TreeCensus", "census", "max_records", "time_limit_error"]

_SECTOR = 2048
#: Volume descriptors start at sector 16; real discs have a handful before the terminator.
_FIRST_DESCRIPTOR, _MAX_DESCRIPTORS = 16, 64
#: Joliet escape sequences (UCS-2 levels 1-3), as pycdlib recognises them.
_JOLIET_ESCAPES = (b"%/@", b"%/C", b"%/E")
#: Bytes read from a directory extent at once: clock and budget are checked between reads.
_CHUNK = 64 * 1024
#: A directory record is at most 255 bytes, and a folder's extent is whole blocks: a real tree
#: needs at most ~255 bytes per record plus a block per folder. Twice that, and some slack for
#: small discs, tells a real tree from extents claiming gigabytes of empty "padding".
_BYTES_PER_RECORD, _BYTES_PER_FOLDER, _SLACK_BYTES = 512, 2 * _SECTOR, 64 * 1024
#: The shortest record pycdlib parses (the fixed part, ECMA-119 9.1) and the longest there is.
_MIN_RECORD, _MAX_RECORD = 33, 255
#: Reads between two clock readings (here and in :class:`kiosk.sources.extents.DeadlineFile`).
CHECK_EVERY = 16
#: Records every tree may hold whatever ``max_files`` is (folders, viewers, a small limit).
_RECORD_SLACK = 1024
#: A path table record is 8 bytes plus an identifier of at most 255, one per folder.
_PATH_TABLE_BYTES_PER_FOLDER = 8 + 256
#: How a SUSP continuation entry starts (IEEE P1281 5.1: "CE", 28 bytes, version 1): pycdlib
#: follows no other, so looking for these bytes anywhere finds every area it will read.
_CE_START, _CE_LENGTH = b"CE\x1c\x01", 28
#: Continuation bytes per record: what does not fit a record (a long Rock Ridge name, a
#: symlink) goes on in an area of a few hundred bytes; four times that, and the slack, tells a
#: real disc from a chain of areas that pycdlib follows again for every record pointing at it.
_CONTINUATION_BYTES_PER_RECORD = 1024
#: What following one area costs at least, however short (a read and a parse).
_CONTINUATION_LINK_BYTES = 64

#: Steps pycdlib may take to keep folders sorted while it parses them, per record and in all.
#: Written in order (ECMA-119 9.3, as every authoring tool does) a listing costs none; each
#: record out of order makes pycdlib renumber, in Python, every child it goes before (~0.1 us
#: each), so a listing written backwards is quadratic: 200,000 records, a 9 MB image, ran for
#: more than 15 minutes, with nothing read meanwhile for the deadline to stop.
_SORT_STEPS_PER_RECORD, _SORT_STEP_SLACK = 64, 1 << 20

Area = tuple[int, int, int]  # a continuation area: (logical block, offset, length)


@dataclass(frozen=True, slots=True)
class TreeCensus:
    """What the walk found in the largest of the disc's trees (ISO9660 or Joliet).

    Attributes
    ----------
    entries : int
        Directory records other than ``.`` and ``..`` (files and folders).
    folders : int
        Folders, the root included.
    depth : int
        Deepest folder nesting (the root's children are at depth 1).
    directory_bytes : int
        Bytes of directory extents read, over all trees.
    """

    entries: int = 0
    folders: int = 0
    depth: int = 0
    directory_bytes: int = 0


@dataclass(slots=True)
class _Budget:
    """Shared across trees: the clock and what has been read."""

    limits: ScanLimits
    deadline: float
    directory_bytes: int = 0
    reads: int = 0
    #: Records and folders of every tree walked so far: what the bytes read may be spent on.
    records: int = 0
    folders: int = 0
    #: Rock Ridge continuation bytes pycdlib will parse, counted once per record that goes on.
    continuation_bytes: int = 0
    #: The continuation entries found in each area read (each area is read once).
    areas: dict[Area, tuple[Area, ...]] = field(default_factory=dict)
    #: Children pycdlib will renumber to keep its folders sorted.
    sort_steps: int = 0

    def sort(self, steps: int) -> None:
        """Pay for ``steps`` renumbered children: refused when far more than the records."""
        self.sort_steps += steps
        if self.sort_steps > _SORT_STEPS_PER_RECORD * self.records + _SORT_STEP_SLACK:
            raise DiscTreeLimitError(_ORDER_MESSAGE, limit="directory_bytes")

    def spend(self, size: int) -> None:
        """Pay for ``size`` bytes of listing: refused when they are far more than the records."""
        allowed = (_BYTES_PER_RECORD * self.records + _BYTES_PER_FOLDER * self.folders
                   + _SLACK_BYTES)
        if self.directory_bytes + size > allowed:
            raise DiscTreeLimitError(_SIZE_MESSAGE, limit="directory_bytes")
        self.directory_bytes += size

    def follow_continuations(self, fd: int, record: bytes, block: int) -> None:
        """Pay for the continuation areas pycdlib will read and parse for ``record``.

        pycdlib follows a record's chain of areas for every record, even when many records
        point at the same chain (only a loop within one chain is refused), so each visit is
        paid for; the areas themselves are read once.
        """
        pending = list(_continuation_entries(record[33:]))
        visited: set[Area] = set()
        while pending:
            area = pending.pop()
            if area in visited:
                continue  # pycdlib refuses a chain that loops
            visited.add(area)
            start, offset, length = area
            self.continuation_bytes += max(length, _CONTINUATION_LINK_BYTES)
            allowed = _CONTINUATION_BYTES_PER_RECORD * self.records + _SLACK_BYTES
            if self.continuation_bytes > allowed:
                raise DiscTreeLimitError(_SIZE_MESSAGE, limit="directory_bytes")
            found = self.areas.get(area)
            if found is None:
                found = ()
                # An area larger than its block is parsed once by pycdlib, then refused: it
                # goes on nowhere, so it needs paying for, not reading.
                if offset + length <= block:
                    self.count_read()
                    found = tuple(_continuation_entries(
                        os.pread(fd, length, start * block + offset)))
                self.areas[area] = found
            pending.extend(found)

    def count_read(self) -> None:
        """Count one read; every :data:`CHECK_EVERY` reads, check the deadline."""
        self.reads += 1
        if self.reads % CHECK_EVERY == 0 and self.limits.clock() > self.deadline:
            raise time_limit_error(self.limits)


def max_records(limits: ScanLimits) -> int:
    """Records (files and folders) one tree of a disc may hold to be opened at all."""
    return 2 * limits.max_files + _RECORD_SLACK


def census(fd: int, limits: ScanLimits, *, deadline: float | None = None) -> TreeCensus:
    """Walk the ISO9660 and Joliet directory trees on ``fd`` within ``limits``.

    Parameters
    ----------
    fd : int
        An open descriptor on the image file or device; only ``pread`` is used.
    limits : ScanLimits
        ``max_files`` bounds the records of each tree, ``max_seconds`` the time.
    deadline : float, optional
        Clock reading (``limits.clock``) by which the walk must end; default: ``max_seconds``
        from now.

    Returns
    -------
    TreeCensus
        Counts of the largest tree. A disc whose descriptors this walk cannot make sense of
        gets an empty census: pycdlib, which checks far more, then says what is wrong.

    Raises
    ------
    DiscTreeLimitError
        Too many records, a folder loop, oversized directory extents or path tables, or the
        deadline passed.
    OSError
        Reading the image or device failed (the caller maps it).
    """
    budget = _Budget(limits, limits.deadline() if deadline is None else deadline)
    best = TreeCensus()
    for descriptor in _tree_descriptors(fd):
        found = _walk(fd, descriptor, budget)
        if found.entries >= best.entries:
            best = found
    return TreeCensus(best.entries, best.folders, best.depth, budget.directory_bytes)


def _tree_descriptors(fd: int) -> list[bytes]:
    """The primary volume descriptor and a Joliet one, the trees pycdlib parses."""
    found: list[bytes] = []
    for n in range(_FIRST_DESCRIPTOR, _FIRST_DESCRIPTOR + _MAX_DESCRIPTORS):
        vd = os.pread(fd, _SECTOR, n * _SECTOR)
        if len(vd) < _SECTOR or vd[1:6] != b"CD001" or vd[0] == 255:
            break
        joliet = vd[0] == 2 and not vd[7] & 1 and vd[88:91] in _JOLIET_ESCAPES
        if vd[0] == 1 or joliet:
            found.append(vd)
    return found


def _walk(fd: int, vd: bytes, budget: _Budget) -> TreeCensus:
    """Breadth first over one tree, reading only its directory extents."""
    block = int.from_bytes(vd[128:130], "little")
    if block not in (512, 1024, 2048):
        return TreeCensus()  # not a volume pycdlib would open: it says why
    most = max_records(budget.limits)
    path_table_bytes = int.from_bytes(vd[132:136], "little")
    root = vd[156:190]
    root_extent = int.from_bytes(root[2:6], "little")
    seen = {root_extent}
    queue: deque[tuple[int, int, int]] = deque(
        [(root_extent, int.from_bytes(root[10:14], "little"), 0)])
    entries = folders = depth = 0
    while queue:
        extent, length, level = queue.popleft()
        folders += 1
        budget.folders += 1
        depth = max(depth, level)
        names = _SortedNames()
        for record in _records(fd, extent * block, length, block, budget):
            budget.follow_continuations(fd, record, block)
            ident = record[33 : 33 + record[32]]
            budget.sort(names.insert(ident))
            if ident in (b"\x00", b"\x01"):
                continue  # "." and ".."
            entries += 1
            if entries > most:
                raise DiscTreeLimitError(
                    _files_message(budget.limits), limit=MAX_FILES,
                    values={"n": f"{max_records(budget.limits):,}",
                            "limit": f"{budget.limits.max_files:,}"})
            if record[25] & 0x02:  # a folder
                child = int.from_bytes(record[2:6], "little")
                if child in seen:
                    raise DiscTreeLimitError(_LOOP_MESSAGE, limit="loop")
                seen.add(child)
                queue.append((child, int.from_bytes(record[10:14], "little"), level + 1))
    if path_table_bytes > _PATH_TABLE_BYTES_PER_FOLDER * folders + _SECTOR:
        # pycdlib reads and parses the whole path table (twice: both byte orders).
        raise DiscTreeLimitError(_SIZE_MESSAGE, limit="directory_bytes")
    return TreeCensus(entries, folders, depth)


def _records(fd: int, start: int, length: int, block: int, budget: _Budget) -> Iterator[bytes]:
    """Yield the directory records of one folder's extent, as pycdlib will parse them.

    pycdlib reads a folder's whole extent at once and takes a record wherever the previous one
    ended, skipping only zero bytes as padding to the next logical block: its records may cross
    blocks and so this walk's reads (ECMA-119 forbids it, crafted discs do it). A record cut by a
    read is therefore completed from the next one. Every read is paid for before it is made;
    where the walk stops before the extent's end (a record too short to be one, the image
    ending), the unread rest is paid for as well, so no listing can hide bytes from the budget.
    """
    window = b""  # bytes [window_start, read_to) of the extent
    window_start = read_to = offset = 0
    image_ended = False
    while offset < length:
        if offset + _MAX_RECORD > read_to and read_to < length and not image_ended:
            budget.count_read()
            size = min(_CHUNK, length - read_to)
            budget.spend(size)
            chunk = os.pread(fd, size, start + read_to)
            keep = offset - window_start  # what lies before offset is parsed: drop it
            window = window[keep:] + chunk
            window_start = offset
            read_to += len(chunk)
            image_ended = len(chunk) < size  # pycdlib is given the same short listing
            continue
        at = offset - window_start
        if at >= len(window):
            break  # the image ended: pycdlib reports the listing as invalid here
        size_byte = window[at]
        if size_byte == 0:  # padding to the end of the logical block (pycdlib checks it)
            offset = min((offset // block + 1) * block, length)
            continue
        record = window[at : at + size_byte]  # cut short at the extent's (or image's) end
        if len(record) < _MIN_RECORD:
            break  # pycdlib cannot unpack it and refuses the disc here
        budget.records += 1
        yield record
        offset += size_byte
    # Paid for even though not read: it never reaches pycdlib either, but the rule is simple.
    budget.spend(max(0, length - max(read_to, offset)))


class _SortedNames:
    """A folder's names in pycdlib's order, to count what it renumbers as it inserts each.

    pycdlib keeps a folder's children sorted (``.`` and ``..`` first, then by identifier) and,
    after inserting one, renumbers every child from there to the end. Names arriving in order
    are appended (nothing to renumber); one out of order is inserted where pycdlib will put it
    and costs the names after it. Holds one folder's names, as the listing itself does.
    """

    def __init__(self) -> None:
        self._names: list[bytes] = []
        self._dots = 0

    def insert(self, ident: bytes) -> int:
        """Take ``ident``; return how many children pycdlib renumbers for it."""
        if ident in (b"\x00", b"\x01"):
            self._dots += 1
            return len(self._names) + self._dots - 1  # they sort before every name
        names = self._names
        if not names or ident >= names[-1]:
            names.append(ident)  # in order (a multi-extent file repeats its name)
            return 0
        at = bisect.bisect_right(names, ident)
        names.insert(at, ident)
        return len(names) - 1 - at


def _continuation_entries(data: bytes) -> Iterator[Area]:
    """The areas named by every SUSP continuation entry in ``data`` (wherever it starts)."""
    at = data.find(_CE_START)
    while 0 <= at <= len(data) - _CE_LENGTH:
        # Block, offset and length, each both-endian: the little-endian halves.
        yield (int.from_bytes(data[at + 4 : at + 8], "little"),
               int.from_bytes(data[at + 12 : at + 16], "little"),
               int.from_bytes(data[at + 20 : at + 24], "little"))
        at = data.find(_CE_START, at + 1)


def _files_message(limits: ScanLimits) -> str:
    return (f"The disc's folders list more than {max_records(limits):,} entries, over twice "
            f"the limit of {limits.max_files:,} files (import.max_files), so it was not read: "
            "indexing it could exhaust the kiosk's memory. Raise the limit if the disc is "
            "genuine, or import its files from a copy.")


def time_limit_error(limits: ScanLimits) -> DiscTreeLimitError:
    """The error for a disc whose folders were not read within ``max_seconds``."""
    return DiscTreeLimitError(
        f"Reading the disc's folders took longer than {limits.max_seconds / 60:g} minutes, "
        "the limit (import.max_seconds), so it was not imported. Clean the disc and try "
        "again, or raise the limit.", limit=MAX_SECONDS)


_LOOP_MESSAGE = ("The disc's folders form a loop (a folder contains itself): the disc is damaged "
                 "or crafted, so it was not read. Ask the hospital for a new disc.")
_ORDER_MESSAGE = ("The disc's folder listings are out of order, far from the sorted order discs "
                  "are written in: the disc is damaged or crafted, so it was not read. Ask the "
                  "hospital for a new disc.")
_SIZE_MESSAGE = ("The disc's folder listings are far larger than the files in them: the disc is "
                 "damaged or crafted, so it was not read. Ask the hospital for a new disc.")
