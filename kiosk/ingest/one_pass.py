"""Ingest one file from a medium: one pass over its bytes.

The source is read exactly once: each chunk is hashed and written to a staging blob as it
arrives, and the header is parsed from the same bytes (kept in memory for files up to
``HEAD_BYTES``; larger files are parsed from the staged copy, never from the medium again).
Non-DICOM files stop after the first chunk, so a stick full of holiday photos costs little.
"""

from __future__ import annotations

import contextlib
import errno as errno_mod
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from kiosk.dicom.instance import (
    DICOMDIR_SOP_CLASS,
    HEAD_BYTES,
    InstanceHeader,
    NotReadable,
    TimeLimitReached,
    check_pixel_data,
    parse_header,
    sniff,
)
from kiosk.errors import ArchiveReadError, MediumRemovedError, SourceReadError
from kiosk.sources.scan_limits import MAX_FILE_BYTES, MAX_SECONDS, ScanLimits
from kiosk.sources.source import GONE_ERRNOS, Entry, Source
from kiosk.sources.zip_format import looks_like_zip
from kiosk.store.blobstore import BlobStore, PendingBlob

CHUNK = 1024 * 1024
#: Limits when the caller gives none: the configuration's defaults.
_DEFAULT_LIMITS = ScanLimits()


@dataclass(frozen=True)
class Ignored:
    """Not DICOM: listed in the report's ``ignored`` (a zip archive: its members are read)."""

    path: str
    reason: str
    #: The file is a zip archive (by its first bytes): the importer reads its members instead.
    archive: bool = False


@dataclass(frozen=True)
class Rejected:
    """Looked like DICOM (or could not be read at all) but could not be imported."""

    path: str
    reason: str
    #: The scan limit that left it out (``"max_file_bytes"``), None for a damaged file.
    limit: str | None = None


@dataclass(frozen=True)
class Stored:
    """A DICOM instance whose bytes are staged (``blob``) and whose header is parsed."""

    path: str
    header: InstanceHeader
    blob: PendingBlob
    #: Problem found in the pixel data (a truncated image), or None when it is whole.
    pixel_problem: str | None


Outcome = Ignored | Rejected | Stored


class _Reader:
    """Reads a source file in chunks, retrying EIO, telling a pulled medium from a bad block."""

    def __init__(self, source: Source, path: str, fh: BinaryIO, retries: int) -> None:
        self.source, self.path, self.fh, self.retries = source, path, fh, retries
        self.offset = 0

    def read(self, n: int) -> bytes:
        attempt = 0
        while True:
            try:
                data = self.fh.read(n)
                self.offset += len(data)
                return data
            except ArchiveReadError:
                raise  # a damaged member or a wrong password: reading again cannot help
            except (OSError, SourceReadError) as exc:
                # Sources that map errors themselves (IsoSource) raise SourceReadError for a
                # bad block; it is retried like a raw EIO. MediumRemovedError passes through.
                if exc.errno in GONE_ERRNOS or not self.source.is_present():
                    raise MediumRemovedError(
                        "The medium was removed during the import. Insert it again and repeat "
                        "the import; files already stored are kept."
                    ) from exc
                if attempt >= self.retries:
                    name = errno_mod.errorcode.get(exc.errno or 0, "error")
                    raise SourceReadError(
                        f"read error ({name}) at byte {self.offset} after "
                        f"{self.retries} retries; the disc may be scratched",
                        errno=exc.errno,
                    ) from exc
                attempt += 1
                time.sleep(0.05 * attempt)  # let the drive re-seek before the next try
                with contextlib.suppress(OSError):
                    self.fh.seek(self.offset)


def ingest_file(
    source: Source, entry: Entry, store: BlobStore, staging: Path, retries: int,
    limits: ScanLimits | None = None, *, deadline: float | None = None,
) -> Outcome:
    """Read ``entry`` once, stage its bytes and parse its header.

    A DICOM file larger than ``limits.max_file_bytes`` (by its listed size, or by what it
    turns out to hold while it is read) is not copied: :class:`Rejected` with ``limit`` set.
    ``deadline`` is the import's (on ``limits.clock``): a check of one file that runs past it
    (millions of fragments, a data set inflating to gigabytes) stops, and the file is
    :class:`Rejected` with ``limit`` ``"max_seconds"``, its staged copy dropped.

    Raises
    ------
    MediumRemovedError
        The medium disappeared; the caller stops the import.
    """
    limits = limits or _DEFAULT_LIMITS
    max_bytes = limits.max_file_bytes
    try:
        fh = source.open(entry.path)
    except SourceReadError as exc:
        return Rejected(entry.path, f"cannot be opened: {exc.text}")
    with fh:
        reader = _Reader(source, entry.path, fh, retries)
        try:
            # Most files on a stick are small: don't allocate a 1 MiB buffer for 20 bytes.
            head = reader.read(min(CHUNK, entry.size + 1) if entry.size >= 0 else CHUNK)
        except SourceReadError as exc:
            return Rejected(entry.path, exc.text)
        if not head:
            return Ignored(entry.path, "empty file")
        kind = sniff(head[:132])
        if kind == "no":
            if looks_like_zip(head):
                return Ignored(entry.path, "zip archive", archive=True)
            return Ignored(entry.path, "not DICOM (no DICM marker or DICOM header)")
        if entry.size > max_bytes:
            return Rejected(entry.path, limits.too_large_reason(entry.size), MAX_FILE_BYTES)
        writer = store.writer(staging)
        keep: list[bytes] | None = [head] if entry.size <= HEAD_BYTES else None
        try:
            writer.write(head)
            while chunk := reader.read(CHUNK):
                writer.write(chunk)
                # The listed size is only a claim: a file that keeps giving bytes (a damaged
                # or hostile file system) must neither fill the store nor the memory.
                if reader.offset > max_bytes:
                    writer.abort()
                    return Rejected(entry.path, limits.grew_reason(), MAX_FILE_BYTES)
                if keep is not None:
                    keep.append(chunk)
                    if reader.offset > HEAD_BYTES:
                        keep = None  # parsed from the staged copy instead
        except SourceReadError as exc:
            writer.abort()
            return Rejected(entry.path, exc.text)
        except BaseException:
            writer.abort()
            raise
        blob = writer.finish()
    if blob.size < entry.size and not source.is_present():
        store.discard([blob])
        raise MediumRemovedError("The medium was removed during the import.")
    try:
        return _parse(entry.path, blob, keep, force=kind == "maybe", store=store,
                      deadline=deadline, clock=limits.clock)
    except TimeLimitReached:
        store.discard([blob])
        return Rejected(entry.path, _TIME_UP, MAX_SECONDS)


#: The ``rejected`` reason of a file whose check the import's time limit cut short.
_TIME_UP = ("not imported: the import's time limit (import.max_seconds) ran out while this "
            "file was being checked. Raise the limit and import the medium again to add it.")


def _parse(path: str, blob: PendingBlob, keep: list[bytes] | None, *, force: bool,
           store: BlobStore, deadline: float | None, clock: Callable[[], float]) -> Outcome:
    try:
        fp: BinaryIO = io.BytesIO(b"".join(keep)) if keep is not None else open(  # noqa: SIM115
            blob.tmp_path, "rb"
        )
    except OSError as exc:
        store.discard([blob])
        return Rejected(path, f"staged copy unreadable: {exc}")
    with fp:
        try:
            header = parse_header(fp, force=force, deadline=deadline, clock=clock)
        except NotReadable as exc:
            store.discard([blob])
            if force:
                # No preamble and no parseable header: most likely just not DICOM.
                return Ignored(path, f"not DICOM ({exc})")
            return Rejected(path, str(exc))
        if header.sop_class_uid == DICOMDIR_SOP_CLASS:
            store.discard([blob])
            return Ignored(path, "a DICOMDIR index under another name (not an image)")
        problem = check_pixel_data(fp, blob.size, header, deadline=deadline, clock=clock)
    return Stored(path, header, blob, problem)
