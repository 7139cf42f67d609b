"""Zip archives on a medium, read as if their files were on it: the :class:`ArchiveSource`.

Cloud-film downloads and studies sent by e-mail reach the desk as ``.zip`` files on a stick or a
disc. An :class:`ArchiveSource` wraps any other source (a directory, an ISO image or device, a
UDF image) and reads the members of the zip archives on it as files of the medium: a member's
path is ``<archive path>!/<member path>`` (``STUDY.ZIP!/DICOM/IM0001``), and :meth:`open`
streams it out of the archive, decrypted and inflated as it is read
(:mod:`kiosk.sources.zip_member`), so the importer sniffs, hashes, stores and verifies it
exactly like a file (nothing is extracted to disk). Archives in archives are opened one level deep.

An archive is recognised by its content (the zip signatures), not its name: the importer reads
the first bytes of every file anyway and asks :meth:`expand` for the members when they are a
zip's. So :meth:`entries` lists the medium's own entries only, and listing a medium costs no
extra read (a disc is read in the order of its files, and every extra read is a seek).

Hospital media are untrusted (DESIGN.md §5), so is every archive on them. Refused, each with a
reason in the import report: an archive with more members than ``max_archive_members`` or whose
members add up to more than ``max_archive_bytes`` (not opened at all); a member larger than
``max_file_bytes``, claiming a compression ratio above ``max_archive_ratio``, overlapping
another member's data, named with ``..``, an absolute path or a drive, or named twice; and while
it is read, a member that gives more bytes than its header claims (zip bombs). Symbolic links
are listed as such and never followed.

Encrypted members (ZipCrypto, WinZip AES) need the password: without one, or with one that does
not pass the members' password checks, they are listed as locked (the report's ``archives``
says how many, and why) and nothing else is affected; importing again with the right password
adds them.
"""

from __future__ import annotations

import errno
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

from kiosk.errors import ArchiveReadError, SourceReadError
from kiosk.sources.scan_limits import ScanLimits, format_bytes
from kiosk.sources.source import MAX_DEPTH, Entry, EntryKind, Source, display_path
from kiosk.sources.zip_format import (
    LOCAL_HEADER_SIZE,
    STORED,
    RandomAccess,
    ZipMember,
    data_offset,
    looks_like_zip,
    member_path,
    read_central_directory,
)
from kiosk.sources.zip_member import (
    MemberReader,
    password_needed,
    password_opens,
    unsupported_reason,
    wrong_password,
)

__all__ = ["SEPARATOR", "ArchiveListing", "ArchiveSource", "looks_like_zip"]

#: Between an archive's path and a member's path.
SEPARATOR = "!/"
#: Archives found in archives are opened; archives in those are not.
MAX_NESTING = 1
#: Members up to this size are never refused for their compression ratio: a small, mostly
#: black image deflates a thousandfold, and a bomb needs size to do harm.
RATIO_GRACE = 1 << 20
#: Encrypted members whose password check must pass before the password is taken for the
#: archive: ZipCrypto's check is one byte (1 in 256 wrong passwords pass it), AES's two.
_PASSWORD_CHECKS = 3
_OPEN_ARCHIVES = 4  # archives kept open at once (least recently used is let go)
_SPOOL_IN_MEMORY = 16 << 20  # a nested archive that must be inflated first: in memory up to this
_COPY = 1 << 20


@dataclass
class ArchiveListing:
    """What :meth:`ArchiveSource.expand` found in one archive.

    Attributes
    ----------
    path : str
        The archive's path (a file on the medium, or a member of another archive).
    members : list of Entry
        The members to read, in the order their data lies in the archive: regular files
        (``<path>!/<member>``) and symbolic links (listed, never followed).
    refused : list of dict
        ``{"path", "reason"}`` of members not read (a limit, a bad name, a duplicate, locked by
        a password), or of the archive itself when it could not be opened: the report's
        ``rejected``.
    record : dict
        The import report's ``archives`` item: ``path``, ``members`` (files in it),
        ``imported`` (filled in by the importer), ``encrypted``, ``locked`` (encrypted members
        not read: no password or the wrong one), ``problem`` (None, or what went wrong) and
        ``code`` (None, ``password_needed``, ``password_wrong``, ``damaged``, ``limit`` or
        ``unsupported``).
    """

    path: str
    members: list[Entry] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)
    record: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Archive:
    """An archive that was expanded: the members it may open, with the password that fits."""

    members: dict[str, ZipMember]
    password: bytes | None
    location: int | None


class _SharedFile:
    """:class:`RandomAccess` over a seekable file object: one seek and read at a time."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self._lock = threading.Lock()
        self.size = fh.seek(0, 2)

    def read_at(self, offset: int, n: int) -> bytes:
        with self._lock:
            self._fh.seek(offset)
            parts: list[bytes] = []
            while n > 0:
                part = self._fh.read(n)
                if not part:
                    break
                parts.append(part)
                n -= len(part)
            return b"".join(parts)

    def close(self) -> None:
        self._fh.close()

    def __del__(self) -> None:
        # Let go of the descriptor (or the spooled copy) when the last reader is done, even
        # after the archive left the cache while a member was still being read.
        self._fh.close()


class _Slice:
    """:class:`RandomAccess` over a byte range of another: a stored archive in an archive."""

    def __init__(self, base: RandomAccess, start: int, size: int) -> None:
        self._base, self._start, self.size = base, start, size

    def read_at(self, offset: int, n: int) -> bytes:
        n = max(0, min(n, self.size - offset))
        return self._base.read_at(self._start + offset, n) if n else b""


class ArchiveSource:
    """A source that also reads the zip archives on another source.

    Parameters
    ----------
    inner : Source
        The medium. It stays open: its owner closes it (:meth:`close` only lets go of the
        archives).
    password : str, optional
        For encrypted archives (tried as UTF-8 and, when different, as GB18030, which Chinese
        Windows tools use).
    limits : ScanLimits, optional
        ``max_archive_members``, ``max_archive_bytes``, ``max_archive_ratio`` and
        ``max_file_bytes`` (for one member).
    spool_dir : Path, optional
        Where a compressed or encrypted archive found inside another is inflated before it is
        read (past 16 MiB; below that, in memory): the kiosk's own temporary space, never the
        medium.
    """

    def __init__(self, inner: Source, *, password: str | None = None,
                 limits: ScanLimits | None = None, spool_dir: Path | None = None) -> None:
        self.inner = inner
        self.description = inner.description
        self.label = inner.label
        self.filesystem = inner.filesystem
        self.limits = limits or ScanLimits()
        self.spool_dir = spool_dir
        self._passwords: list[bytes] = []
        if password:
            self._passwords.append(password.encode("utf-8"))
            other = password.encode("gb18030", "replace")
            if other not in self._passwords:
                self._passwords.append(other)
        self._archives: dict[str, _Archive] = {}
        self._open: OrderedDict[str, RandomAccess] = OrderedDict()
        self._lock = threading.RLock()

    # --- the Source interface ------------------------------------------------------------------

    def entries(self, max_depth: int = MAX_DEPTH) -> Iterator[Entry]:
        """The medium's own entries (:meth:`Source.entries`); archives open in :meth:`expand`."""
        return self.inner.entries(max_depth=max_depth)

    def open(self, path: str) -> BinaryIO:
        """Open a file of the medium, or stream a member of an expanded archive.

        Raises
        ------
        ArchiveReadError
            The member cannot be read (see :class:`~kiosk.sources.zip_member.MemberReader`).
        SourceReadError
            No such member, or the medium's file cannot be opened.
        MediumRemovedError
            The medium is gone.
        """
        archive_path, sep, name = path.rpartition(SEPARATOR)
        with self._lock:
            archive = self._archives.get(archive_path) if sep else None
        if archive is None:
            return self.inner.open(path)
        member = archive.members.get(name)
        if member is None:
            raise SourceReadError(f"{display_path(path)}: no such file in the archive.",
                                  errno=errno.ENOENT)
        data = self._data(archive_path)
        reader = MemberReader(data, member, data_offset(data, member), archive.password)
        return cast(BinaryIO, reader)

    def is_present(self) -> bool:
        """Whether the medium is still there."""
        return self.inner.is_present()

    def close(self) -> None:
        """Let go of every archive (open files, inflated copies); the medium stays open."""
        with self._lock:
            opened = list(self._open.values())
            self._open.clear()
            self._archives.clear()
        for data in opened:
            if isinstance(data, _SharedFile):
                data.close()

    # --- archives ------------------------------------------------------------------------------

    def expand(self, entry: Entry) -> ArchiveListing:
        """List the members of the zip archive ``entry`` (a file of this source).

        Never raises for what is in the archive: an archive that cannot be opened is one
        ``refused`` item with the reason, and so is each member that is not read.

        Raises
        ------
        MediumRemovedError
            The medium is gone.
        """
        shown = display_path(entry.path)
        listing = ArchiveListing(entry.path, record={
            "path": shown, "members": 0, "imported": 0, "encrypted": 0, "locked": 0,
            "problem": None, "code": None})
        if entry.path.count(SEPARATOR) > MAX_NESTING:
            return _failed(listing, ArchiveReadError(
                "An archive inside an archive inside an archive: not opened (archives are "
                "opened one level deep). Extract it with 7-Zip and import the folder.",
                code="unsupported"))
        location = entry.location
        parent = entry.path.rpartition(SEPARATOR)[0] if SEPARATOR in entry.path else None
        if parent is not None:
            with self._lock:
                outer = self._archives.get(parent)
            location = outer.location if outer is not None else None
        try:
            data = self._data(entry.path)
            members = read_central_directory(data, self.limits.max_archive_members)
        except ArchiveReadError as exc:
            return _failed(listing, exc)
        except SourceReadError as exc:
            if not self.inner.is_present():
                raise
            return _failed(listing, ArchiveReadError(f"The archive cannot be read: {exc.text}",
                                                     code="damaged"))
        files = [m for m in members if not m.is_dir]
        listing.record["members"] = len(files)
        claimed = sum(m.size for m in files if not m.is_symlink)
        if claimed > self.limits.max_archive_bytes:
            return _failed(listing, ArchiveReadError(
                f"The archive's files add up to {format_bytes(claimed)} uncompressed, more than "
                f"the limit for one archive, {format_bytes(self.limits.max_archive_bytes)} "
                "(import.archive_max_bytes): it was not opened.", code="limit"))
        files.sort(key=lambda m: m.offset)  # read in the order the data lies
        encrypted = [m for m in files if m.encrypted and not m.is_symlink]
        listing.record["encrypted"] = len(encrypted)
        password = self._password_for(data, encrypted) if encrypted else None
        opened: dict[str, ZipMember] = {}
        seen: set[str] = set()
        data_end = -1
        for m in files:
            overlaps = m.offset < data_end
            data_end = max(data_end, m.offset + LOCAL_HEADER_SIZE + m.packed)
            clean, why = member_path(m.name)
            path = f"{entry.path}{SEPARATOR}{clean if clean is not None else m.name}"
            reason = why if clean is None else self._refusal(m, clean in seen, overlaps)
            if clean is not None:
                seen.add(clean)
            if reason is None and m.encrypted and password is None:
                listing.record["locked"] += 1
                reason = (wrong_password if self._passwords else password_needed)(m.name).text
            if reason is not None:
                listing.refused.append({"path": display_path(path), "reason": reason})
            elif m.is_symlink:
                listing.members.append(Entry(path, 0, EntryKind.SYMLINK, location))
            else:
                assert clean is not None
                opened[clean] = m
                listing.members.append(Entry(path, m.size, EntryKind.FILE, location))
        if listing.record["locked"]:
            code = "password_wrong" if self._passwords else "password_needed"
            n = listing.record["locked"]
            listing.record["code"] = code
            listing.record["problem"] = (
                f"the password given does not open its {n} encrypted file(s)"
                if self._passwords else
                f"{n} file(s) in it are encrypted: the password is needed "
                "(kiosk import --archive-password, or Password on the Review screen)")
        with self._lock:
            self._archives[entry.path] = _Archive(opened, password, location)
        return listing

    def _refusal(self, m: ZipMember, duplicate: bool, overlaps: bool) -> str | None:
        """Why member ``m`` is not read (limits, duplicates, overlaps), or None."""
        limits = self.limits
        if duplicate:
            return "a second file with the same name in the archive: not read (the first is)"
        if m.is_symlink:
            return None
        if overlaps:
            return ("its data overlaps another file's in the archive (a zip bomb does this): "
                    "not read")
        unsupported = unsupported_reason(m)
        if unsupported is not None:
            return unsupported
        if m.size > limits.max_file_bytes:
            return limits.too_large_reason(m.size)
        if m.size > RATIO_GRACE and m.size > limits.max_archive_ratio * max(m.packed, 1):
            ratio = m.size // max(m.packed, 1)
            return (f"it claims to inflate {ratio:,} times ({format_bytes(m.size)}), more than "
                    f"the limit of {limits.max_archive_ratio} (import.archive_max_ratio): a "
                    "zip bomb, not read")
        return None

    def _password_for(self, data: RandomAccess, encrypted: list[ZipMember]) -> bytes | None:
        """The encoding of the password that passes the first encrypted members' checks."""
        candidates = list(self._passwords)
        checked = 0
        for m in encrypted:
            if not candidates or checked >= _PASSWORD_CHECKS:
                break
            if unsupported_reason(m) is not None:
                continue
            try:
                start = data_offset(data, m)
            except ArchiveReadError:
                continue  # refused as damaged when it is read
            checked += 1
            candidates = [c for c in candidates if password_opens(data, m, start, c)]
        return candidates[0] if candidates else None

    def _data(self, path: str) -> RandomAccess:
        """The bytes of the archive at ``path``, opened once and kept while it is in use."""
        with self._lock:
            data = self._open.get(path)
            if data is not None:
                self._open.move_to_end(path)
                return data
            data = self._open_data(path)
            self._open[path] = data
            while len(self._open) > _OPEN_ARCHIVES:
                self._open.popitem(last=False)  # closed when its last reader is done
            return data

    def _open_data(self, path: str) -> RandomAccess:
        outer_path, sep, name = path.rpartition(SEPARATOR)
        if not sep:
            fh = self.inner.open(path)
            if fh.seekable():
                return _SharedFile(fh)
            with fh:  # a source that can only stream: copy the archive to our own space
                return self._spool(fh, self.limits.max_archive_bytes)
        outer = self._archives.get(outer_path)
        member = outer.members.get(name) if outer is not None else None
        if outer is None or member is None:
            raise SourceReadError(f"{display_path(path)}: no such file in the archive.",
                                  errno=errno.ENOENT)
        base = self._data(outer_path)
        start = data_offset(base, member)
        if member.method == STORED and not member.encrypted:
            return _Slice(base, start, member.packed)  # its bytes are the outer archive's
        reader = MemberReader(base, member, start, outer.password)
        with reader:
            return self._spool(cast(BinaryIO, reader), member.size)

    def _spool(self, fh: BinaryIO, limit: int) -> _SharedFile:
        """Copy a stream into a temporary file of ours (memory first), at most ``limit`` bytes."""
        # Closed by the _SharedFile it becomes, or here on failure.
        spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115
            max_size=_SPOOL_IN_MEMORY, dir=None if self.spool_dir is None else str(self.spool_dir))
        try:
            copied = 0
            while chunk := fh.read(_COPY):
                copied += len(chunk)
                if copied > limit:
                    raise ArchiveReadError(
                        f"The archive is larger than {format_bytes(limit)}: not opened.",
                        code="limit")
                spool.write(chunk)
        except BaseException:
            spool.close()
            raise
        return _SharedFile(cast(BinaryIO, spool))


def _failed(listing: ArchiveListing, exc: ArchiveReadError) -> ArchiveListing:
    listing.record["problem"], listing.record["code"] = exc.text, exc.code
    listing.refused.append({"path": listing.record["path"], "reason": exc.text})
    return listing

