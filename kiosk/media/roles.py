"""Is this medium a source (it holds DICOM) or a target candidate (an empty or other stick)?

Decided by looking, cheaply and within a time budget, because it runs on every insert before the
coordinator sees the medium:

1. list up to ``max_listed`` file names (stop early at the deadline);
2. sniff the first bytes of at most ``max_sniffed`` of them with :func:`kiosk.dicom.instance.sniff`,
   most likely first: a ``DICOMDIR`` at the root, then names DICOM media use (no extension,
   ``.dcm``), then the rest, and known non-DICOM types (viewer programs, PDFs, pictures) last;
3. the first DICOM hit makes it a source. No hit: a stick is a target candidate, a disc is
   ``unknown`` (the kiosk never writes discs).

A zip archive (known by its first bytes; cloud-film downloads, studies sent by e-mail) makes it
a source when its central directory names DICOM-like files (a ``DICOMDIR``, ``.dcm``, no
extension) or encrypted ones: one more read of the archive's end, no member is inflated. Where
the view cannot list an archive (mtools), a zip alone says source.

It can be wrong (DICOM buried under thousands of other files); the coordinator can override the
role, and an import reports exactly what it found either way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from kiosk.dicom.instance import sniff
from kiosk.errors import KioskError
from kiosk.media.medium import MediumKind, MediumView, Role
from kiosk.sources.archive import ArchiveSource
from kiosk.sources.contents import classify, describe
from kiosk.sources.scan_limits import ScanLimits
from kiosk.sources.source import Entry, EntryKind, Source
from kiosk.sources.zip_format import looks_like_zip

#: Bytes read from a file to sniff it: the 128-byte preamble and ``DICM``.
SNIFF_BYTES = 132

#: Extensions of files that are never DICOM instances: viewers, documents, pictures.
_NOT_DICOM = frozenset({
    "exe", "dll", "ocx", "sys", "inf", "ini", "cfg", "bat", "cmd", "com", "msi", "cab", "js",
    "css", "htm", "html", "xml", "txt", "pdf", "doc", "docx", "rtf", "jpg", "jpeg", "png", "gif",
    "bmp", "ico", "avi", "mp4", "rar", "7z", "lnk", "chm", "hlp", "dat", "lic", "manifest",
})
_LIKELY_DICOM = frozenset({"", "dcm", "dicom", "dic", "ima"})


#: An archive the role check lists: a central directory this long is read in well under a second.
_PROBE_ARCHIVE = ScanLimits(max_archive_members=20_000)


@dataclass(frozen=True)
class ProbeLimits:
    """How much looking a role decision may cost."""

    #: File names listed at most.
    max_listed: int = 2000
    #: Files whose first bytes are read at most.
    max_sniffed: int = 32
    #: Wall-clock budget for listing and sniffing.
    seconds: float = 1.5


class SourceView:
    """A :class:`MediumView` over any :class:`~kiosk.sources.source.Source` (folder, ISO
    image/device)."""

    def __init__(self, source: Source) -> None:
        self.source = source

    def files(self) -> Iterator[str]:
        """Regular files of the source, in its walk order."""
        for entry in self.source.entries():
            if entry.kind is EntryKind.FILE:
                yield entry.path

    def head(self, path: str, size: int) -> bytes:
        """Read the first ``size`` bytes through :meth:`Source.open`."""
        with self.source.open(path) as fh:
            return fh.read(size)

    def archive_holds_dicom(self, path: str) -> bool:
        """Whether the zip at ``path`` names DICOM-like or encrypted files (its directory only)."""
        archive = ArchiveSource(self.source, limits=_PROBE_ARCHIVE)
        try:
            listing = archive.expand(Entry(path, 0, EntryKind.FILE))
        finally:
            archive.close()
        names = [e.path.rpartition("!/")[2] for e in listing.members]
        return bool(listing.record["locked"]) or any(
            _extension(n) in _LIKELY_DICOM or n.rpartition("/")[2].upper() == "DICOMDIR"
            for n in names)


def decide_role(view: MediumView, kind: MediumKind, limits: ProbeLimits = ProbeLimits(),
                clock: Callable[[], float] = time.monotonic) -> tuple[Role, str]:
    """Decide the role of a medium by looking at it within ``limits``.

    Parameters
    ----------
    view : MediumView
        How to list and read the medium.
    kind : MediumKind
        Discs are never targets.
    limits : ProbeLimits
        The budget.
    clock : callable
        Monotonic seconds (tests pass a fake one).

    Returns
    -------
    (Role, str)
        The role and a short reason for the coordinator ("DICOMDIR at the root", "empty").
    """
    deadline = clock() + limits.seconds
    names: list[str] = []
    complete = True
    files: Iterator[str] | None = None
    try:
        files = view.files()
        for path in files:
            names.append(path)
            if len(names) >= limits.max_listed or clock() > deadline:
                complete = False
                break
    except (KioskError, OSError) as exc:
        if not names:
            return Role.UNKNOWN, f"cannot be read: {_why(exc)}"
        complete = False
    finally:
        # Stop a lister that still runs (mtools' mdir on a huge stick) now, not at GC.
        close = getattr(files, "close", None)
        if close is not None:
            close()
    if not names:
        if kind is MediumKind.OPTICAL:
            return Role.UNKNOWN, "the disc holds no files"
        return Role.TARGET, "empty"
    sniffed = 0
    for path in sorted(names, key=_likelihood)[:limits.max_sniffed]:
        if clock() > deadline:
            complete = False
            break
        try:
            head = view.head(path, SNIFF_BYTES)
        except (KioskError, OSError):
            continue  # one unreadable file says nothing about the rest
        sniffed += 1
        verdict = sniff(head)
        if verdict == "dicom":
            if _is_root_dicomdir(path):
                return Role.SOURCE, "DICOMDIR at the root"
            return Role.SOURCE, "DICOM images found"
        if verdict == "maybe" and _extension(path) in _LIKELY_DICOM:
            return Role.SOURCE, "DICOM images found (files without a DICOM preamble)"
        if verdict == "no" and looks_like_zip(head) and _archive_holds_dicom(view, path):
            return Role.SOURCE, "a zip archive of DICOM images (imported with what is in it)"
    looked = f"{sniffed} of {len(names)}{'' if complete else '+'} files looked at"
    if kind is MediumKind.OPTICAL:
        instead = describe(classify(names))
        return Role.UNKNOWN, (f"no DICOM images found on the disc ({looked}"
                              f"{': ' + instead if instead else ''})")
    return Role.TARGET, f"no DICOM images found ({looked})"


def _archive_holds_dicom(view: MediumView, path: str) -> bool:
    lister = getattr(view, "archive_holds_dicom", None)
    if lister is None:
        return True  # this view cannot list it: a zip on a medium is most likely a study
    try:
        return bool(lister(path))
    except (KioskError, OSError):
        return False


def _likelihood(path: str) -> int:
    if _is_root_dicomdir(path):
        return 0
    ext = _extension(path)
    if ext in _LIKELY_DICOM:
        return 1
    if ext in _NOT_DICOM:
        return 3
    return 2


def _is_root_dicomdir(path: str) -> bool:
    return "/" not in path and path.upper() in ("DICOMDIR", "DICOMDIR.")


def _extension(path: str) -> str:
    name = path.rpartition("/")[2]
    stem, dot, ext = name.rpartition(".")
    return ext.lower() if dot and stem else ""


def _why(exc: BaseException) -> str:
    return exc.text if isinstance(exc, KioskError) else (getattr(exc, "strerror", None)
                                                          or str(exc))
