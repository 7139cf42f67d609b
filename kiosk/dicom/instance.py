"""Reading one DICOM instance: is it DICOM, what is in its header, is its pixel data whole.

Files on hospital media are untrusted: pydicom can raise almost anything on garbage
(``struct.error``, ``ValueError``, ``InvalidDicomError``, ``EOFError``, ``KeyError``,
``RecursionError``...). Everything here turns those into :class:`NotReadable` with a short
reason, so one bad file never stops an import.
"""

from __future__ import annotations

import io
import logging
import struct
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import BinaryIO, Literal, cast

from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filereader import read_dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag, Tag
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

from kiosk.dicom import header_scan, pixel_data
from kiosk.dicom.deadline import Deadline, TimeLimitReached
from kiosk.dicom.deflate import InflatedFile, InflateError

# pydicom warns about every oddity on real-world media; the import report carries what matters.
# A module-level filter (not catch_warnings, which is not thread-safe) keeps stderr readable.
warnings.filterwarnings("ignore", module=r"pydicom(\..*)?")
logging.getLogger("pydicom").setLevel(logging.ERROR)

#: Media Storage Directory Storage: the DICOMDIR itself, not an instance to import.
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"

#: Bytes of a file kept in memory for the header parse. Larger files are parsed from the stored
#: copy instead, so the source is still read only once.
HEAD_BYTES = 4 * 1024 * 1024

_PIXEL_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009}

__all__ = ["DICOMDIR_SOP_CLASS", "HEAD_BYTES", "InstanceHeader", "NotReadable", "TimeLimitReached",
           "check_pixel_data", "expected_pixel_bytes", "parse_header", "parse_header_bytes",
           "read_header", "read_header_dataset", "scan_header", "sniff", "uid_name"]


class NotReadable(Exception):
    """The file looks like DICOM but its header cannot be read; ``str()`` is the reason."""


Sniff = Literal["dicom", "maybe", "no"]


def sniff(head: bytes) -> Sniff:
    """Classify a file by its first bytes, never by its name.

    Returns
    -------
    "dicom"
        A Part 10 file: 128-byte preamble then ``DICM``.
    "maybe"
        No preamble, but it starts with a plausible group 0002 or 0008 element (old
        "raw" datasets written by some modalities); confirmed only by a header parse.
    "no"
        Anything else.
    """
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if len(head) < 8:
        return "no"
    group_le, elem_le = struct.unpack_from("<HH", head)
    group_be = struct.unpack_from(">H", head)[0]
    if group_le in (0x0002, 0x0008) and elem_le < 0x0100:
        return "maybe"
    if group_be in (0x0002, 0x0008) and head[4:6].isalpha():
        return "maybe"
    return "no"


@dataclass(frozen=True, slots=True)
class InstanceHeader:
    """What the kiosk needs from one instance's header."""

    sop_class_uid: str
    sop_instance_uid: str
    study_uid: str
    series_uid: str
    transfer_syntax: str
    patient_id: str
    patient_name_raw: bytes
    specific_character_set: str | list[str] | None
    patient_birth_date: str
    patient_sex: str
    modality: str
    study_date: str
    study_description: str
    series_number: int | None
    series_description: str
    instance_number: int | None
    rows: int | None
    columns: int | None
    samples_per_pixel: int | None
    bits_allocated: int | None
    number_of_frames: int | None
    photometric: str
    #: Byte offset of the pixel data element (or end of header) in the file; for a deflated
    #: data set, in the inflated data set.
    pixel_offset: int
    #: Who made the instance (the issuing hospital, for the quirks report); "" when absent.
    institution_name: str = ""
    #: False for a file without the 128-byte preamble and ``DICM`` (read with ``force``).
    has_preamble: bool = True
    #: Deflated transfer syntaxes (PS3.5 A.5): the file offset of the deflate stream, which
    #: holds the whole data set; None for every other syntax.
    deflated_at: int | None = None


def _text(value: object) -> str:
    """A text value as ``Dataset.get`` returns it, for the header."""
    if value is None:
        return ""
    if isinstance(value, MultiValue | list | tuple):  # multi-valued CS/LO: keep them all
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def _int(value: object) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _build_header(get: Callable[[str], object], meta_get: Callable[[str, str], object], *,
                  patient_name_raw: bytes, charset: str | list[str] | None, transfer_syntax: str,
                  pixel_offset: int, deflated_at: int | None = None) -> InstanceHeader:
    """The header from ``get(keyword)`` values; shared by the pydicom and the fast path."""
    return InstanceHeader(
        sop_class_uid=_text(get("SOPClassUID")) or str(meta_get("MediaStorageSOPClassUID", "")),
        sop_instance_uid=(_text(get("SOPInstanceUID"))
                          or str(meta_get("MediaStorageSOPInstanceUID", ""))),
        study_uid=_text(get("StudyInstanceUID")),
        series_uid=_text(get("SeriesInstanceUID")),
        transfer_syntax=transfer_syntax,
        patient_id=_text(get("PatientID")),
        patient_name_raw=patient_name_raw,
        specific_character_set=charset,
        patient_birth_date=_text(get("PatientBirthDate")),
        patient_sex=_text(get("PatientSex")),
        modality=_text(get("Modality")),
        study_date=_text(get("StudyDate")),
        study_description=_text(get("StudyDescription")),
        series_number=_int(get("SeriesNumber")),
        series_description=_text(get("SeriesDescription")),
        instance_number=_int(get("InstanceNumber")),
        rows=_int(get("Rows")),
        columns=_int(get("Columns")),
        samples_per_pixel=_int(get("SamplesPerPixel")),
        bits_allocated=_int(get("BitsAllocated")),
        number_of_frames=_int(get("NumberOfFrames")),
        photometric=_text(get("PhotometricInterpretation")),
        pixel_offset=pixel_offset,
        institution_name=_text(get("InstitutionName")),
        deflated_at=deflated_at,
    )


def parse_header(fp: BinaryIO, *, force: bool, deadline: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> InstanceHeader:
    """Parse an instance header, stopping before the pixel data.

    The common case (a Part 10 file in explicit VR little endian, natively, encapsulated or
    deflated) is scanned by :mod:`kiosk.dicom.header_scan`; everything else is read by pydicom.
    Both give the same header (``tests/dicom/test_header_scan.py``). A deflated data set is
    inflated as it is read, never whole (:mod:`kiosk.dicom.deflate`).

    Parameters
    ----------
    fp : file-like
        Positioned at the start of the file.
    force : bool
        True for files without the ``DICM`` preamble (``sniff`` said "maybe").
    deadline, clock : float or None, callable
        The import's deadline on ``clock``, for inflating a deflated header.

    Raises
    ------
    NotReadable
        The header cannot be parsed, or it lacks the identifiers an instance must have.
    TimeLimitReached
        The deadline passed while a deflated header was inflated.
    """
    budget = Deadline(deadline, clock)
    header = None if force else scan_header(fp, deadline=budget)
    if header is None:
        header = _read_header(fp, force=force, max_reads=MAX_HEADER_READS, deadline=budget)
        if force:
            header = replace(header, has_preamble=False)
    if header.sop_class_uid == DICOMDIR_SOP_CLASS:
        return header  # the caller treats DICOMDIR separately
    for label, value in (("SOP Instance UID", header.sop_instance_uid),
                         ("SOP Class UID", header.sop_class_uid),
                         ("Study Instance UID", header.study_uid),
                         ("Series Instance UID", header.series_uid)):
        if not value:
            if _ends_at_pixel_offset(fp, header):  # stopped at end of file, not at pixel data
                raise NotReadable(f"truncated header: the file ends before its {label}")
            raise NotReadable(f"no {label} in the header")
    return header


def _ends_at_pixel_offset(fp: BinaryIO, header: InstanceHeader) -> bool:
    try:
        if header.deflated_at is None:
            fp.seek(header.pixel_offset)
            return not fp.read(1)
        inflated = InflatedFile(fp, header.deflated_at)
        return inflated.reach(header.pixel_offset + 1) <= header.pixel_offset
    except (OSError, InflateError):
        return False


#: Bytes read for the fast header scan. A header running past them is scanned again with
#: SCAN_MAX_BYTES (a few vendors write large private sequences), then left to pydicom.
SCAN_BYTES = 64 * 1024
SCAN_MAX_BYTES = 1024 * 1024


def scan_header(fp: BinaryIO, *, deadline: Deadline | None = None) -> InstanceHeader | None:
    """The header by the fast path, or None if pydicom must read it (see :mod:`header_scan`).

    ``fp`` is left where :func:`read_header` would leave it (at the pixel data) when a header
    is returned, and where it was otherwise.

    Raises
    ------
    TimeLimitReached
        ``deadline`` passed while a deflated header was inflated; nothing else is raised.
    """
    start = -1
    try:
        start = fp.tell()
        limit = SCAN_BYTES
        data = fp.read(limit)
        while True:
            # A short read is the whole file (BytesIO, buffered files); make sure of it.
            complete = len(data) < limit
            if complete and fp.read(1):
                break  # not a regular file object: let pydicom deal with it
            result = header_scan.scan(data, complete=complete)
            if isinstance(result, header_scan.Scan):
                header = _from_scan(result, pixel_offset=start + result.pixel_offset)
                fp.seek(header.pixel_offset)
                return header
            # Declined; a deflated data set is scanned once inflated (only then: the common
            # case pays nothing for it).
            deflated = header_scan.deflated_data_set(data, complete=complete)
            if deflated is not None:
                inflated = _scan_deflated(fp, start, data[:deflated], deadline)
                if inflated is not None:
                    return inflated
                break  # pydicom reads it (through the same bounded inflation)
            if not result.need_more or limit >= SCAN_MAX_BYTES:
                break
            data += fp.read(SCAN_MAX_BYTES - limit)
            limit = SCAN_MAX_BYTES
    except TimeLimitReached:
        raise
    except Exception:  # noqa: BLE001 - the fast path only ever declines; pydicom decides
        pass
    try:
        if start >= 0:
            fp.seek(start)
    except Exception:  # noqa: BLE001 - pydicom reports an unusable file object itself
        pass
    return None


def _from_scan(result: header_scan.Scan, *, pixel_offset: int,
               deflated_at: int | None = None) -> InstanceHeader:
    return _build_header(
        result.values.get, result.meta.get, patient_name_raw=result.patient_name_raw,
        charset=cast(str | list[str] | None, result.values.get("SpecificCharacterSet")),
        transfer_syntax=result.meta["TransferSyntaxUID"], pixel_offset=pixel_offset,
        deflated_at=deflated_at)


def _scan_deflated(fp: BinaryIO, start: int, meta: bytes, deadline: Deadline | None
                   ) -> InstanceHeader | None:
    """The fast path for a deflated file: scan the first inflated bytes of its data set."""
    inflated = InflatedFile(fp, start + len(meta), deadline=deadline)
    try:
        limit = SCAN_BYTES
        data = inflated.read(limit)
        while True:
            result = header_scan.scan(meta + data, complete=len(data) < limit, inflated=True)
            if isinstance(result, header_scan.Scan):
                return _from_scan(result, pixel_offset=result.pixel_offset - len(meta),
                                  deflated_at=start + len(meta))
            if not result.need_more or limit >= SCAN_MAX_BYTES:
                return None
            data += inflated.read(SCAN_MAX_BYTES - limit)
            limit = SCAN_MAX_BYTES
    except InflateError:
        return None  # pydicom's path says what is wrong with it


#: Reads pydicom may make for one header (one to three per element). dcmread keeps every
#: element of a header in memory, ~400 bytes each: a hostile file of tiny elements (8 MB holds
#: a million) cost 16 s and 420 MB here, one of 4 GiB would exhaust the memory long before it
#: ended. At this budget the worst case is ~10 s and ~600 MB here. The largest real headers
#: (per-frame functional groups of enhanced multi-frame objects: thousands of frames, tens of
#: elements each) need a few hundred thousand reads.
MAX_HEADER_READS = 1_500_000


class HeaderTooLarge(Exception):
    """The header needs more reads than :data:`MAX_HEADER_READS` allows."""


class _DeflatedAt(Exception):
    """pydicom is about to inflate the rest of the file, from ``offset``: it must not."""

    def __init__(self, offset: int) -> None:
        super().__init__(offset)
        self.offset = offset


class _ReadBudget:
    """``fp`` for pydicom, failing once it has been read more than ``budget`` times."""

    def __init__(self, fp: BinaryIO, budget: int) -> None:
        self._fp, self._left = fp, budget

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            # Only a deflated data set makes dcmread read "everything" (to inflate it whole,
            # however large): stop it and inflate it here instead, within bounds.
            raise _DeflatedAt(self._fp.tell())
        self._left -= 1
        if self._left < 0:
            # Not an EOFError: dcmread would take that for a truncated file and carry on.
            raise HeaderTooLarge("the header holds too many elements to read (over "
                                 f"{MAX_HEADER_READS:,} reads): a damaged or hostile file")
        return self._fp.read(size)

    def __getattr__(self, name: str) -> object:
        return getattr(self._fp, name)  # seek, tell, name...: the file's own


def read_header(fp: BinaryIO, *, force: bool, max_reads: int = MAX_HEADER_READS
                ) -> InstanceHeader:
    """The header as pydicom reads it (``dcmread(stop_before_pixels=True)``), unchecked.

    At most ``max_reads`` reads of ``fp`` are made (see :data:`MAX_HEADER_READS`); a deflated
    data set is inflated as it is read (pydicom would inflate all of it first).

    Raises
    ------
    NotReadable
        pydicom cannot parse the header, it holds too many elements, or its deflated data
        set does not inflate.
    """
    return _read_header(fp, force=force, max_reads=max_reads, deadline=Deadline())


def read_header_dataset(fp: BinaryIO, *, force: bool = True) -> Dataset:
    """The header as a pydicom data set with its ``file_meta``, for records built from it.

    Like ``dcmread(fp, stop_before_pixels=True)``, but a deflated data set is inflated as it is
    read, so a small file that inflates to gigabytes costs no memory. Values over 1 MB are
    deferred and cannot be read from the result.

    Raises
    ------
    NotReadable
        As :func:`read_header`.
    """
    try:
        return _read_dataset(fp, force, MAX_HEADER_READS, Deadline())[0]
    except HeaderTooLarge as exc:
        raise NotReadable(str(exc)) from None
    except InflateError as exc:
        raise NotReadable(f"damaged deflated data set: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - untrusted input: any pydicom failure is "unreadable"
        raise NotReadable(_reason(exc)) from None


def _read_header(fp: BinaryIO, *, force: bool, max_reads: int, deadline: Deadline
                 ) -> InstanceHeader:
    try:
        ds, pixel_offset, deflated_at = _read_dataset(fp, force, max_reads, deadline)
        meta = ds.get("file_meta") or Dataset()
        charset = ds.get("SpecificCharacterSet")
        if charset is not None and not isinstance(charset, str):
            charset = [str(c) for c in charset]
        name_elem = ds.get_item(0x00100010)  # raw bytes: decoded by kiosk.dicom.names, not here
        raw_name = b""
        if name_elem is not None and isinstance(name_elem.value, bytes):
            raw_name = name_elem.value
        elif name_elem is not None and name_elem.value is not None:
            # Already decoded by pydicom: hand it on as UTF-8 and say so.
            raw_name, charset = str(name_elem.value).encode("utf-8"), "ISO_IR 192"
        ts = str(meta.get("TransferSyntaxUID", ""))
        if not ts:
            implicit, little = ds.original_encoding
            ts = {(True, True): "1.2.840.10008.1.2", (False, True): "1.2.840.10008.1.2.1",
                  (False, False): "1.2.840.10008.1.2.2"}.get((bool(implicit), bool(little)), "")
        return _build_header(_undeferred(ds), meta.get, patient_name_raw=raw_name, charset=charset,
                             transfer_syntax=ts, pixel_offset=pixel_offset,
                             deflated_at=deflated_at)
    except TimeLimitReached:
        raise
    except HeaderTooLarge as exc:
        raise NotReadable(str(exc)) from None
    except InflateError as exc:
        raise NotReadable(f"damaged deflated data set: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - untrusted input: any pydicom failure is "unreadable"
        raise NotReadable(_reason(exc)) from None


def _undeferred(ds: Dataset) -> Callable[..., object]:
    """``ds.get`` for the header's fields, a value pydicom deferred counting as absent.

    A value over the 1 MB ``defer_size`` is never a real header value (a damaged length), and
    reading it back differs by source: a plain file is read again at its offset, an inflated
    stream cannot be. As absent, the fields fall back the same way for both (a SOP Class UID to
    the File Meta's).
    """

    def get(keyword: str, default: object = None) -> object:
        elem = ds.get_item(Tag(keyword), keep_deferred=True)
        if elem is None or (isinstance(elem, RawDataElement) and elem.value is None
                            and elem.length):
            return default
        return ds.get(keyword, default)

    return get


def _read_dataset(fp: BinaryIO, force: bool, max_reads: int, deadline: Deadline
                  ) -> tuple[Dataset, int, int | None]:
    """pydicom's header: (data set, pixel data offset, deflate stream offset or None)."""
    start = fp.tell()
    head = fp.read(SCAN_BYTES)
    fp.seek(start)
    meta_end = header_scan.deflated_data_set(head, complete=len(head) < SCAN_BYTES)
    ds: Dataset
    if meta_end is None:
        try:
            ds = dcmread(cast(BinaryIO, _ReadBudget(fp, max_reads)), stop_before_pixels=True,
                         force=force, defer_size="1 MB")
            return ds, fp.tell(), None  # dcmread rewinds to the pixel data tag
        except _DeflatedAt as at:  # a File Meta group header_scan does not read
            meta_end = at.offset - start
    fp.seek(start)
    meta_bytes = fp.read(meta_end)
    skip = 132 if meta_bytes[128:132] == b"DICM" else 0
    file_meta = FileMetaDataset(read_dataset(io.BytesIO(meta_bytes[skip:]), False, True))
    if file_meta.get("TransferSyntaxUID") != DeflatedExplicitVRLittleEndian:
        # pydicom neither writes nor reads the JPIP Referenced Deflate syntaxes deflated, so
        # files it wrote hold a plain data set: read those as pydicom does.
        try:
            InflatedFile(fp, start + meta_end).read(SCAN_BYTES)
        except InflateError:
            fp.seek(start)
            ds = dcmread(cast(BinaryIO, _ReadBudget(fp, max_reads)), stop_before_pixels=True,
                         force=force, defer_size="1 MB")
            return ds, fp.tell(), None
    inflated = InflatedFile(fp, start + meta_end, deadline=deadline)
    # What dcmread does after inflating (PS3.5 A.5: the data set is explicit VR little endian).
    ds = read_dataset(cast(BinaryIO, _ReadBudget(cast(BinaryIO, inflated), max_reads)),
                      is_implicit_VR=False, is_little_endian=True, stop_when=_at_pixel_data,
                      defer_size="1 MB")
    ds.file_meta = file_meta
    return ds, inflated.tell(), start + meta_end


def _at_pixel_data(tag: BaseTag, _vr: str | None, _length: int) -> bool:
    return tag in _PIXEL_TAGS


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    if isinstance(exc, EOFError | struct.error) or "end of file" in text.lower():
        return f"truncated or damaged header ({name}{': ' + text[:120] if text else ''})"
    return f"unreadable header ({name}{': ' + text[:120] if text else ''})"


def parse_header_bytes(data: bytes, *, force: bool) -> InstanceHeader:
    """:func:`parse_header` on bytes already in memory."""
    return parse_header(io.BytesIO(data), force=force)


# --- pixel data ------------------------------------------------------------------------------

def expected_pixel_bytes(h: InstanceHeader) -> int | None:
    """Native (uncompressed) pixel data length implied by the header, or None if unknown."""
    return pixel_data.expected_bytes(h.rows, h.columns, h.bits_allocated, h.samples_per_pixel,
                                     h.number_of_frames, h.photometric)


def check_pixel_data(fp: BinaryIO, size: int, header: InstanceHeader, *,
                     deadline: float | None = None,
                     clock: Callable[[], float] = time.monotonic) -> str | None:
    """Check that the pixel data in a file is whole; return a problem or None.

    ``fp`` holds the same bytes the header was parsed from (``header.pixel_offset`` is used,
    so the header is not parsed twice). What counts as damage is in :mod:`kiosk.dicom.pixel_data`:
    native data shorter than Rows × Columns × Samples × Bits × Frames or past the end of the
    file, encapsulated data without whole fragments and a sequence delimiter (pydicom's
    ``encaps.parse_fragments`` stops quietly at end of data, so the bounds are checked here), a
    deflated data set that does not inflate. Every transfer syntax pydicom reads is understood.

    Parameters
    ----------
    deadline, clock : float or None, callable
        The import's deadline on ``clock``; a long check (millions of fragments, a data set
        inflating to gigabytes) stops when it passes.

    Raises
    ------
    TimeLimitReached
        The deadline passed before the check was done (the file is neither whole nor damaged).
    """
    if header.rows is None:
        return None  # not an image (SR, PDF, presentation state...)
    try:
        return pixel_data.check(fp, size, transfer_syntax=header.transfer_syntax,
                                pixel_offset=header.pixel_offset,
                                deflated_at=header.deflated_at,
                                expected=expected_pixel_bytes(header),
                                deadline=Deadline(deadline, clock))
    except TimeLimitReached:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file must give a reason, not a crash
        return f"pixel data unreadable ({type(exc).__name__})"


def uid_name(uid: str) -> str:
    """Human name of a UID (transfer syntax, SOP class) when pydicom knows it."""
    try:
        return UID(uid).name
    except Exception:  # noqa: BLE001 - a malformed UID still has to print
        return uid
