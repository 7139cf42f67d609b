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
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import BinaryIO, Literal, cast

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import UID

from kiosk.dicom import header_scan

# pydicom warns about every oddity on real-world media; the import report carries what matters.
# A module-level filter (not catch_warnings, which is not thread-safe) keeps stderr readable.
warnings.filterwarnings("ignore", module=r"pydicom(\..*)?")
logging.getLogger("pydicom").setLevel(logging.ERROR)

#: Media Storage Directory Storage: the DICOMDIR itself, not an instance to import.
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"

#: Bytes of a file kept in memory for the header parse. Larger files are parsed from the stored
#: copy instead, so the source is still read only once.
HEAD_BYTES = 4 * 1024 * 1024

_UNDEFINED = 0xFFFFFFFF
_ITEM = 0xFFFEE000
_SEQ_DELIM = 0xFFFEE0DD
_PIXEL_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009}
# Explicit VRs whose length field is 4 bytes after 2 reserved bytes (PS3.5 7.1.2).
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT",
             b"UV"}


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
    #: Byte offset of the pixel data element (or end of header) in the file.
    pixel_offset: int
    #: Who made the instance (the issuing hospital, for the quirks report); "" when absent.
    institution_name: str = ""
    #: False for a file without the 128-byte preamble and ``DICM`` (read with ``force``).
    has_preamble: bool = True


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
                  pixel_offset: int) -> InstanceHeader:
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
    )


def parse_header(fp: BinaryIO, *, force: bool) -> InstanceHeader:
    """Parse an instance header, stopping before the pixel data.

    The common case (a Part 10 file in explicit VR little endian, natively or encapsulated) is
    scanned by :mod:`kiosk.dicom.header_scan`; everything else is read by pydicom. Both give the
    same header (``tests/dicom/test_header_scan.py``).

    Parameters
    ----------
    fp : file-like
        Positioned at the start of the file.
    force : bool
        True for files without the ``DICM`` preamble (``sniff`` said "maybe").

    Raises
    ------
    NotReadable
        The header cannot be parsed, or it lacks the identifiers an instance must have.
    """
    header = None if force else scan_header(fp)
    if header is None:
        header = read_header(fp, force=force)
        if force:
            header = replace(header, has_preamble=False)
    if header.sop_class_uid == DICOMDIR_SOP_CLASS:
        return header  # the caller treats DICOMDIR separately
    for label, value in (("SOP Instance UID", header.sop_instance_uid),
                         ("SOP Class UID", header.sop_class_uid),
                         ("Study Instance UID", header.study_uid),
                         ("Series Instance UID", header.series_uid)):
        if not value:
            fp.seek(header.pixel_offset)
            if not fp.read(1):  # the header stopped at end of file, not at pixel data
                raise NotReadable(f"truncated header: the file ends before its {label}")
            raise NotReadable(f"no {label} in the header")
    return header


#: Bytes read for the fast header scan. A header running past them is scanned again with
#: SCAN_MAX_BYTES (a few vendors write large private sequences), then left to pydicom.
SCAN_BYTES = 64 * 1024
SCAN_MAX_BYTES = 1024 * 1024


def scan_header(fp: BinaryIO) -> InstanceHeader | None:
    """The header by the fast path, or None if pydicom must read it (see :mod:`header_scan`).

    ``fp`` is left where :func:`read_header` would leave it (at the pixel data) when a header
    is returned, and where it was otherwise. Never raises.
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
                header = _build_header(
                    result.values.get, result.meta.get,
                    patient_name_raw=result.patient_name_raw,
                    charset=cast(str | list[str] | None,
                                 result.values.get("SpecificCharacterSet")),
                    transfer_syntax=result.meta["TransferSyntaxUID"],
                    pixel_offset=start + result.pixel_offset,
                )
                fp.seek(header.pixel_offset)
                return header
            if not result.need_more or limit >= SCAN_MAX_BYTES:
                break
            data += fp.read(SCAN_MAX_BYTES - limit)
            limit = SCAN_MAX_BYTES
    except Exception:  # noqa: BLE001 - the fast path only ever declines; pydicom decides
        pass
    try:
        if start >= 0:
            fp.seek(start)
    except Exception:  # noqa: BLE001 - pydicom reports an unusable file object itself
        pass
    return None


#: Reads pydicom may make for one header (one to three per element). dcmread keeps every
#: element of a header in memory, ~400 bytes each: a hostile file of tiny elements (8 MB holds
#: a million) cost 16 s and 420 MB here, one of 4 GiB would exhaust the memory long before it
#: ended. At this budget the worst case is ~10 s and ~600 MB here. The largest real headers
#: (per-frame functional groups of enhanced multi-frame objects: thousands of frames, tens of
#: elements each) need a few hundred thousand reads.
MAX_HEADER_READS = 1_500_000


class HeaderTooLarge(Exception):
    """The header needs more reads than :data:`MAX_HEADER_READS` allows."""


class _ReadBudget:
    """``fp`` for pydicom, failing once it has been read more than ``budget`` times."""

    def __init__(self, fp: BinaryIO, budget: int) -> None:
        self._fp, self._left = fp, budget

    def read(self, size: int = -1) -> bytes:
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

    At most ``max_reads`` reads of ``fp`` are made (see :data:`MAX_HEADER_READS`).

    Raises
    ------
    NotReadable
        pydicom cannot parse the header, or it holds too many elements.
    """
    try:
        budget = cast(BinaryIO, _ReadBudget(fp, max_reads))
        ds = dcmread(budget, stop_before_pixels=True, force=force, defer_size="1 MB")
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
        return _build_header(ds.get, meta.get, patient_name_raw=raw_name, charset=charset,
                             transfer_syntax=ts,
                             pixel_offset=fp.tell())  # dcmread rewinds to the pixel data tag
    except HeaderTooLarge as exc:
        raise NotReadable(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - untrusted input: any pydicom failure is "unreadable"
        raise NotReadable(_reason(exc)) from None


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

_ENCAPSULATED_PREFIXES = ("1.2.840.10008.1.2.4.", "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.8.")


def expected_pixel_bytes(h: InstanceHeader) -> int | None:
    """Native (uncompressed) pixel data length implied by the header, or None if unknown."""
    if not (h.rows and h.columns and h.bits_allocated):
        return None
    samples = h.samples_per_pixel or 1
    frames = h.number_of_frames or 1
    if h.photometric in ("YBR_FULL_422", "YBR_PARTIAL_422"):
        samples = 2  # two bytes-per-pixel worth of chroma subsampled data (PS3.3 C.7.6.3.1.2)
    bits = h.rows * h.columns * samples * frames * h.bits_allocated
    return (bits + 7) // 8


def check_pixel_data(fp: BinaryIO, size: int, header: InstanceHeader) -> str | None:
    """Check that the pixel data in a file is whole; return a problem or None.

    ``fp`` holds the same bytes the header was parsed from (``header.pixel_offset`` is used,
    so the header is not parsed twice).

    Native data: the element length must match Rows × Columns × Samples × Bits × Frames (plus at
    most one padding byte) and fit in the file. Encapsulated data: every fragment item must lie
    inside the file and the sequence delimiter must be present. pydicom's
    ``encaps.parse_fragments`` stops quietly at end of data, so a truncated last fragment would
    pass it; the bounds are checked here instead.
    """
    if header.rows is None:
        return None  # not an image (SR, PDF, presentation state...)
    try:
        start = header.pixel_offset
        fp.seek(start)
        implicit = header.transfer_syntax == "1.2.840.10008.1.2"
        endian = ">" if header.transfer_syntax == "1.2.840.10008.1.2.2" else "<"
        first = fp.read(12)
        if len(first) < 8:
            return "image has no pixel data (file ends after the header)"
        group, elem = struct.unpack_from(f"{endian}HH", first)
        if (group << 16 | elem) not in _PIXEL_TAGS:
            return "image has no pixel data element"
        if implicit:
            length = struct.unpack_from(f"{endian}L", first, 4)[0]
            value_start = start + 8
        elif first[4:6] in _LONG_VRS:
            length = struct.unpack_from(f"{endian}L", first, 8)[0]
            value_start = start + 12
        else:
            length = struct.unpack_from(f"{endian}H", first, 6)[0]
            value_start = start + 8
        if length == _UNDEFINED:
            return _check_fragments(fp, value_start, size, endian)
        available = size - value_start
        if length > available:
            return (f"truncated pixel data: {length} bytes declared, {max(available, 0)} "
                    "present in the file")
        if header.transfer_syntax.startswith(_ENCAPSULATED_PREFIXES):
            return "encapsulated transfer syntax but pixel data has a defined length"
        expected = expected_pixel_bytes(header)
        if expected is not None and length not in (expected, expected + 1):
            return (f"pixel data is {length} bytes; Rows × Columns × Samples × Bits × Frames "
                    f"gives {expected}")
        return None
    except Exception as exc:  # noqa: BLE001 - a damaged file must give a reason, not a crash
        return f"pixel data unreadable ({type(exc).__name__})"


def _check_fragments(fp: BinaryIO, pos: int, size: int, endian: str) -> str | None:
    fragments = 0
    first_item = True
    while True:
        fp.seek(pos)
        raw = fp.read(8)
        if len(raw) < 8:
            return "truncated encapsulated pixel data: no sequence delimiter"
        group, elem, length = struct.unpack(f"{endian}HHL", raw)
        tag = group << 16 | elem
        if tag == _SEQ_DELIM:
            break
        if tag != _ITEM or length == _UNDEFINED:
            return f"damaged encapsulated pixel data: unexpected item at byte {pos}"
        if pos + 8 + length > size:
            return (f"truncated encapsulated pixel data: fragment at byte {pos} needs "
                    f"{length} bytes, {size - pos - 8} present")
        if not first_item:
            fragments += 1
        first_item = False  # the first item is the Basic Offset Table
        pos += 8 + length
    if fragments == 0:
        return "encapsulated pixel data has no fragments"
    return None


def uid_name(uid: str) -> str:
    """Human name of a UID (transfer syntax, SOP class) when pydicom knows it."""
    try:
        return UID(uid).name
    except Exception:  # noqa: BLE001 - a malformed UID still has to print
        return uid
