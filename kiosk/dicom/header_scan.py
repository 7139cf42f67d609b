"""Fast path for the instance header: a struct walk over the common case.

``dcmread(stop_before_pixels=True)`` costs about a millisecond per file, nearly all of it
building Python objects for elements nobody looks at, and it holds the GIL throughout. Almost
every file on hospital media is a Part 10 file whose data set is Explicit VR Little Endian,
either natively or under an encapsulated (compressed) transfer syntax. Its header is a run of
elements that can be walked with :mod:`struct` in tens of microseconds.

:func:`scan` handles exactly that case and returns, for the few elements the kiosk reads, the
values pydicom 3 would give (``Dataset.get(keyword)``; the raw bytes of Patient's Name), so
:mod:`kiosk.dicom.instance` builds the same :class:`~kiosk.dicom.instance.InstanceHeader` from
either.
Everything else gives a :class:`Fallback` and pydicom reads the file: another transfer syntax,
an unknown VR, elements out of order or repeated, a value running past the bytes given, a
value that does not decode, an element with another VR than the dictionary's, a pydicom
configuration other than the default... The scan never guesses and never raises;
``tests/dicom/test_header_scan.py`` checks both paths agree, on pydicom's own test files and on
mutated and truncated ones.

References: PS3.10 7.1 (File Meta Information), PS3.5 7.1.2 (explicit VR element layout),
PS3.5 7.5 (nesting of data sets: sequences and items).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass

import pydicom.config
import pydicom.hooks
import pydicom.uid
from pydicom.charset import convert_encodings, decode_bytes, default_encoding
from pydicom.values import TEXT_VR_DELIMS

from kiosk.dicom.deflate import DEFLATED_SYNTAXES

__all__ = ["FIELDS", "META_FIELDS", "Elements", "Fallback", "Scan", "deflated_data_set", "scan",
           "scan_elements"]

# --- what the kiosk reads ----------------------------------------------------------------------

#: Top-level elements read by the kiosk: keyword -> (tag, VR). The VR in the file must be this
#: one (the dictionary VR), otherwise pydicom's conversion could differ and the scan falls back.
FIELDS: dict[str, tuple[int, bytes]] = {
    "SpecificCharacterSet": (0x00080005, b"CS"),
    "SOPClassUID": (0x00080016, b"UI"),
    "SOPInstanceUID": (0x00080018, b"UI"),
    "StudyDate": (0x00080020, b"DA"),
    "Modality": (0x00080060, b"CS"),
    "InstitutionName": (0x00080080, b"LO"),
    "StudyDescription": (0x00081030, b"LO"),
    "SeriesDescription": (0x0008103E, b"LO"),
    "PatientName": (0x00100010, b"PN"),
    "PatientID": (0x00100020, b"LO"),
    "PatientBirthDate": (0x00100030, b"DA"),
    "PatientSex": (0x00100040, b"CS"),
    "StudyInstanceUID": (0x0020000D, b"UI"),
    "SeriesInstanceUID": (0x0020000E, b"UI"),
    "SeriesNumber": (0x00200011, b"IS"),
    "InstanceNumber": (0x00200013, b"IS"),
    "SamplesPerPixel": (0x00280002, b"US"),
    "PhotometricInterpretation": (0x00280004, b"CS"),
    "NumberOfFrames": (0x00280008, b"IS"),
    "Rows": (0x00280010, b"US"),
    "Columns": (0x00280011, b"US"),
    "BitsAllocated": (0x00280100, b"US"),
}
#: File Meta Information elements read by the kiosk (all UI).
META_FIELDS: dict[str, int] = {
    "MediaStorageSOPClassUID": 0x00020002,
    "MediaStorageSOPInstanceUID": 0x00020003,
    "TransferSyntaxUID": 0x00020010,
}
_WANTED = {tag: (keyword, vr) for keyword, (tag, vr) in FIELDS.items()}
_META_WANTED = {tag: keyword for keyword, tag in META_FIELDS.items()}
_CHARSET = 0x00080005
_PATIENT_NAME = 0x00100010

# --- transfer syntaxes -------------------------------------------------------------------------

_EXPLICIT_LE = "1.2.840.10008.1.2.1"
# Every other transfer syntax pydicom knows that encodes the data set in explicit VR little
# endian: the encapsulated ones (JPEG, JPEG-LS, JPEG 2000, HTJ2K, RLE, MPEG...). pydicom reads
# *any* syntax it does not single out as explicit VR LE, so a few current ones it does not list
# yet are added. Deflated data sets (1.2.840.10008.1.2.1.99 and the JPIP "Referenced Deflate"
# syntaxes) are scanned only once inflated (``inflated=True``); implicit VR and big endian never.
_TRANSFER_SYNTAXES = frozenset(
    {str(ts) for ts in pydicom.uid.AllTransferSyntaxes
     if not ts.is_implicit_VR and ts.is_little_endian and not ts.is_deflated}
    | {
        "1.2.840.10008.1.2.1.98",  # Encapsulated Uncompressed Explicit VR Little Endian
        "1.2.840.10008.1.2.4.110",  # JPEG XL Lossless
        "1.2.840.10008.1.2.4.111",  # JPEG XL JPEG Recompression
        "1.2.840.10008.1.2.4.112",  # JPEG XL
        "1.2.840.10008.1.2.8.1",  # Deflated Image Frame Compression (frames only)
    }
) - DEFLATED_SYNTAXES

# --- element layout (PS3.5 7.1.2) --------------------------------------------------------------

# Explicit VR: tag (group, element), VR, then either a 16-bit length, or for the VRs below two
# reserved bytes and a 32-bit length (PS3.5 Table 7.1-1 and 7.1-2).
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN",
                       b"UR", b"UT", b"UV"})
_SHORT_VRS = frozenset({b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS",
                        b"LO", b"LT", b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL",
                        b"US"})
_HEADER = struct.Struct("<HH2sH").unpack_from  # tag group, tag element, VR, 16-bit length
_LENGTH32 = struct.Struct("<L").unpack_from
_ITEM_HEADER = struct.Struct("<HHL").unpack_from  # PS3.5 7.5: item tag, 32-bit item length

_UNDEFINED = 0xFFFFFFFF
_ITEM = 0xFFFEE000  # PS3.5 7.5: Item
_ITEM_END = 0xFFFEE00D  # Item Delimitation Item
_SEQ_END = 0xFFFEE0DD  # Sequence Delimitation Item
_PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})  # where dcmread stops
_MAX_DEPTH = 16  # nested sequences deeper than this go to pydicom

# An IS value pydicom turns into an int exactly: digits with an optional sign, leading spaces
# (trailing ones are padding, already removed). At most 15 digits, so that IS's float check is
# exact. Anything else (decimals, multiple values, odd whitespace) goes to pydicom.
_IS_VALUE = re.compile(r" *[+-]?[0-9]{1,15}")


# --- results -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Scan:
    """What :func:`scan` read from a header: the common case."""

    #: Keyword -> value exactly as ``Dataset.get(keyword)`` returns it after
    #: ``dcmread(stop_before_pixels=True)``: ``str`` (``list[str]`` when multi-valued) for text,
    #: ``int``, ``""`` or ``None`` for IS, ``int`` or ``None`` for US. Absent elements are
    #: absent. Patient's Name is not here (see `patient_name_raw`).
    values: dict[str, object]
    #: File Meta Information UIDs by keyword (``str(file_meta.get(keyword))``).
    meta: dict[str, str]
    #: The undecoded Patient's Name value, padding included (``b""`` when absent).
    patient_name_raw: bytes
    #: Offset, from the start of the bytes scanned, of the first top-level pixel data element
    #: (its tag) or, without one, of the end of the file: where ``dcmread`` leaves the file.
    pixel_offset: int


@dataclass(frozen=True, slots=True)
class Elements:
    """What :func:`scan_elements` read: raw values, as the file holds them."""

    #: Tag -> the value bytes, padding included (absent elements are absent).
    values: dict[int, bytes]
    #: File Meta Information UIDs by keyword, as in :attr:`Scan.meta`.
    meta: dict[str, str]
    #: As :attr:`Scan.pixel_offset`.
    pixel_offset: int


@dataclass(frozen=True, slots=True)
class Fallback:
    """The scan declined: pydicom must read this header."""

    reason: str
    #: True when the header may simply continue past the bytes given: scanning more of the
    #: file could succeed.
    need_more: bool = False


class _Decline(Exception):
    """Internal: stop scanning and return ``fallback``."""

    def __init__(self, reason: str, need_more: bool = False) -> None:
        super().__init__(reason)
        self.fallback = Fallback(reason, need_more)


def _past_end(complete: bool, what: str) -> _Decline:
    # Past the end of the bytes given: the header may continue in the rest of the file; if the
    # bytes are the whole file it is truncated, which pydicom handles (and reports) its own way.
    if complete:
        return _Decline(f"file ends inside {what}")
    return _Decline(f"header continues past the bytes scanned ({what})", need_more=True)


# --- the scan ----------------------------------------------------------------------------------

def scan(data: bytes | bytearray | memoryview, *, complete: bool,
         inflated: bool = False) -> Scan | Fallback:
    """Scan a Part 10 header in explicit VR little endian, stopping at the pixel data.

    Parameters
    ----------
    data : bytes-like
        The start of the file (or all of it).
    complete : bool
        True if `data` is the whole file: a header without pixel data may then end at its end.
    inflated : bool
        `data` is a deflated file's preamble and File Meta Information followed by its data
        set already inflated (see :func:`deflated_data_set`); offsets count in those bytes.

    Returns
    -------
    Scan
        The header, identical to what pydicom reads.
    Fallback
        Not the common case, or something unexpected: read the file with pydicom.

    Never raises.
    """
    if not _pydicom_is_default():
        return Fallback("pydicom configuration is not the default")
    try:
        with memoryview(data) as buf:
            found, meta, pixel_offset = _scan(buf, complete, _WANTED, inflated)
            return _values(buf, found, meta, pixel_offset)
    except _Decline as stop:
        return stop.fallback


def scan_elements(data: bytes | bytearray | memoryview, wanted: Mapping[int, tuple[str, bytes]],
                  *, complete: bool, inflated: bool = False) -> Elements | Fallback:
    """Like :func:`scan`, but return the undecoded values of the ``wanted`` elements.

    Parameters
    ----------
    data : bytes-like
        The start of the file (or all of it).
    wanted : mapping
        Tag -> (keyword, VR) of top-level elements to return; an element found with another
        VR makes the scan decline (pydicom would convert it differently).
    complete : bool
        True if `data` is the whole file.
    inflated : bool
        As for :func:`scan`.

    Returns
    -------
    Elements
        The raw values (padding included) of the wanted elements that are present.
    Fallback
        Not the common case: read the file with pydicom.

    Never raises.
    """
    if not _pydicom_is_default():
        return Fallback("pydicom configuration is not the default")
    try:
        with memoryview(data) as buf:
            found, meta, pixel_offset = _scan(buf, complete, wanted, inflated)
            return Elements({tag: bytes(buf[start:end]) for tag, (start, end) in found.items()},
                            meta, pixel_offset)
    except _Decline as stop:
        return stop.fallback


def deflated_data_set(data: bytes | bytearray | memoryview, *, complete: bool) -> int | None:
    """Where a deflated file's deflate stream starts: the end of its File Meta Information.

    Parameters
    ----------
    data : bytes-like
        The start of the file: a Part 10 file, or File Meta Information without a preamble.
    complete : bool
        True if `data` is the whole file.

    Returns
    -------
    int
        The offset, when the transfer syntax is one of
        :data:`~kiosk.dicom.deflate.DEFLATED_SYNTAXES`.
    None
        Another transfer syntax, or File Meta Information this scan does not read (pydicom's
        read then finds out).

    Never raises.
    """
    try:
        with memoryview(data) as buf:
            start = 132 if len(buf) >= 132 and buf[128:132] == b"DICM" else 0
            meta, end, _last = _scan_meta(buf, start, complete)
    except _Decline:
        return None
    return end if meta.get("TransferSyntaxUID") in DEFLATED_SYNTAXES else None


def _pydicom_is_default() -> bool:
    """Whether pydicom converts values the way this module reproduces (its default settings)."""
    config = pydicom.config
    hooks = pydicom.hooks.hooks
    return (config.settings.reading_validation_mode != config.RAISE
            and not config.use_none_as_empty_text_VR_value
            and not config.datetime_conversion
            and not config.use_IS_numpy
            and config.data_element_callback is None
            and hooks.raw_element_vr is pydicom.hooks.raw_element_vr
            and hooks.raw_element_value is pydicom.hooks.raw_element_value)


def _scan(buf: memoryview, complete: bool, wanted: Mapping[int, tuple[str, bytes]],
          inflated: bool = False) -> tuple[dict[int, tuple[int, int]], dict[str, str], int]:
    """Walk the header: (wanted tag -> value span, file meta UIDs, pixel data offset)."""
    n = len(buf)
    if n < 132:
        raise _past_end(complete, "the preamble")
    if buf[128:132] != b"DICM":
        raise _Decline("no DICM prefix (not a Part 10 file)")
    meta, pos, previous = _scan_meta(buf, 132, complete)
    ts = meta.get("TransferSyntaxUID")
    if inflated:
        if ts not in DEFLATED_SYNTAXES:
            raise _Decline(f"transfer syntax {ts or 'missing'} is not a deflated one")
    elif ts not in _TRANSFER_SYNTAXES or ts in pydicom.uid.PrivateTransferSyntaxes:
        raise _Decline(f"transfer syntax {ts or 'missing'} is not explicit VR little endian")
    found, pixel_offset = _scan_data_set(buf, pos, previous, complete, wanted)
    return found, meta, pixel_offset


def _scan_meta(buf: memoryview, pos: int, complete: bool) -> tuple[dict[str, str], int, int]:
    """The File Meta Information from ``pos``: (its UIDs by keyword, its end, its last tag)."""
    # File Meta Information (PS3.10 7.1): group 0002, always explicit VR little endian. Like
    # pydicom, it ends at the first element of another group; the group length is not used.
    n = len(buf)
    meta: dict[str, str] = {}
    previous = -1
    while True:
        if pos + 8 > n:
            raise _past_end(complete, "the file meta information")
        group, element, vr, length = _HEADER(buf, pos)
        if group != 0x0002:
            break
        tag = group << 16 | element
        if vr in _LONG_VRS:
            if pos + 12 > n:
                raise _past_end(complete, "the file meta information")
            length = _LENGTH32(buf, pos + 8)[0]
            start = pos + 12
        elif vr in _SHORT_VRS:
            start = pos + 8
        else:
            raise _Decline(f"unknown VR in the file meta information at byte {pos}")
        if tag <= previous:
            raise _Decline(f"file meta element out of order at byte {pos}")
        if length == _UNDEFINED:
            raise _Decline("undefined length in the file meta information")
        end = start + length
        if end > n:
            raise _past_end(complete, "the file meta information")
        if previous == -1 and not (tag == 0x00020000 or vr in (b"OB", b"UI")):
            # pydicom converts the first meta element to check the meta is explicit VR.
            raise _Decline("unusual first file meta element")
        if tag == 0x00020000 and (vr != b"UL" or length != 4):
            raise _Decline("malformed File Meta Information Group Length")
        keyword = _META_WANTED.get(tag)
        if keyword is not None:
            if vr != b"UI":
                raise _Decline(f"{keyword} is not UI")
            meta[keyword] = _uid(bytes(buf[start:end]))
        previous, pos = tag, end
    if previous == -1:
        raise _Decline("no file meta information")
    return meta, pos, previous


def _scan_data_set(buf: memoryview, pos: int, previous: int, complete: bool,
                   wanted: Mapping[int, tuple[str, bytes]]
                   ) -> tuple[dict[int, tuple[int, int]], int]:
    """The data set from ``pos``, top level only (PS3.5 7.1.2), up to the first pixel data.

    Returns the value span of each wanted tag and the offset of the pixel data (or the end).
    """
    n = len(buf)
    found: dict[int, tuple[int, int]] = {}
    header = _HEADER
    long_vrs, short_vrs, pixel_tags = _LONG_VRS, _SHORT_VRS, _PIXEL_TAGS
    first = True
    while True:
        if pos + 8 > n:
            if pos == n and complete and not first:
                break  # no pixel data: dcmread stops at the end of the file
            raise _past_end(complete, "the data set")
        group, element, vr, length = header(buf, pos)
        tag = group << 16 | element
        if vr in long_vrs:
            if pos + 12 > n:
                raise _past_end(complete, "the data set")
            length = _LENGTH32(buf, pos + 8)[0]
            start = pos + 12
        elif vr in short_vrs:
            start = pos + 8
        else:
            raise _Decline(f"unknown VR at byte {pos}")
        if tag <= previous:
            raise _Decline(f"element ({group:04X},{element:04X}) out of order at byte {pos}")
        previous, first = tag, False
        if tag in pixel_tags:
            break  # dcmread(stop_before_pixels=True) rewinds to this tag
        if group == 0xFFFE:
            raise _Decline(f"item or delimiter tag at the top level at byte {pos}")
        if length == _UNDEFINED:
            if vr != b"SQ":
                raise _Decline(f"undefined length {vr.decode('latin-1')} element at byte {pos}")
            pos = _skip_sequence(buf, start, complete, 1)
            continue
        end = start + length
        if end > n:
            raise _past_end(complete, f"element ({group:04X},{element:04X})")
        want = wanted.get(tag)
        if want is not None:
            if vr != want[1]:
                raise _Decline(f"{want[0]} has VR {vr.decode('latin-1')}, not {want[1].decode()}")
            found[tag] = (start, end)
        pos = end
    return found, pos


def _skip_sequence(buf: memoryview, pos: int, complete: bool, depth: int) -> int:
    """Skip an undefined length sequence whose first item starts at `pos`; return its end.

    PS3.5 7.5.1/7.5.2: items ``(FFFE,E000)`` of defined or undefined length, then a Sequence
    Delimitation Item ``(FFFE,E0DD)``. pydicom parses these at read time (a defined length
    sequence it keeps as raw bytes), so every item is walked to check it would parse the same.
    """
    n = len(buf)
    if depth > _MAX_DEPTH:
        raise _Decline("sequences nested too deeply")
    while True:
        if pos + 8 > n:
            raise _past_end(complete, "a sequence")
        group, element, length = _ITEM_HEADER(buf, pos)
        tag = group << 16 | element
        if tag == _SEQ_END:
            if length != 0:
                raise _Decline(f"sequence delimiter with length {length} at byte {pos}")
            return pos + 8
        if tag != _ITEM:
            raise _Decline(f"expected an item at byte {pos}")
        if length == _UNDEFINED:
            pos = _walk_item(buf, pos + 8, None, complete, depth)
        else:
            end = pos + 8 + length
            if end > n:
                raise _past_end(complete, "a sequence item")
            pos = _walk_item(buf, pos + 8, end, complete, depth)


def _walk_item(buf: memoryview, pos: int, end: int | None, complete: bool, depth: int) -> int:
    """Walk the elements of one item; return the position after it.

    `end` is the end of a defined length item (the elements must fill it exactly), or None for
    an undefined length item, which ends with an Item Delimitation Item (PS3.5 7.5.2).
    """
    n = len(buf)
    limit = n if end is None else end
    first = True
    while True:
        if pos == end:
            return pos
        if pos + 8 > limit:
            if limit < n:
                raise _Decline(f"item element runs past its item at byte {pos}")
            raise _past_end(complete, "a sequence item")
        group, element, vr, length = _HEADER(buf, pos)
        tag = group << 16 | element
        if tag == _ITEM_END:
            if end is not None or vr != b"\0\0" or length != 0:
                raise _Decline(f"unexpected item delimiter at byte {pos}")
            return pos + 8
        if group == 0xFFFE:
            raise _Decline(f"item or delimiter tag inside an item at byte {pos}")
        if vr in _LONG_VRS:
            if pos + 12 > limit:
                if limit < n:
                    raise _Decline(f"item element runs past its item at byte {pos}")
                raise _past_end(complete, "a sequence item")
            length = _LENGTH32(buf, pos + 8)[0]
            start = pos + 12
        elif vr in _SHORT_VRS:
            start = pos + 8
        else:
            # pydicom would read an item starting like this as implicit VR (PS3.5 6.2.2 allows
            # it for sequences of undefined length); not the common case.
            raise _Decline(f"{'implicit or ' if first else ''}unknown VR in an item at byte {pos}")
        first = False
        if tag == _CHARSET and vr != b"CS":
            raise _Decline("Specific Character Set in an item is not CS")  # pydicom converts it
        if length == _UNDEFINED:
            if vr != b"SQ":
                raise _Decline(f"undefined length {vr.decode('latin-1')} element at byte {pos}")
            pos = _skip_sequence(buf, start, complete, depth + 1)
            if pos > limit:
                raise _Decline(f"nested sequence runs past its item at byte {pos}")
            continue
        value_end = start + length
        if value_end > limit:
            if limit < n:
                raise _Decline(f"item element runs past its item at byte {pos}")
            raise _past_end(complete, "a sequence item")
        pos = value_end


# --- values, as pydicom 3 converts them --------------------------------------------------------

def _values(buf: memoryview, found: dict[int, tuple[int, int]], meta: dict[str, str],
            pixel_offset: int) -> Scan:
    values: dict[str, object] = {}
    name = b""
    encodings: list[str] = [default_encoding]
    if _CHARSET in found:
        start, end = found[_CHARSET]
        charset = _strings(bytes(buf[start:end]))
        values["SpecificCharacterSet"] = charset
        try:
            encodings = convert_encodings(charset if isinstance(charset, str) else list(charset))
        except (LookupError, ValueError) as exc:
            raise _Decline("Specific Character Set not usable") from exc
    for tag, (start, end) in found.items():
        keyword, vr = _WANTED[tag]
        raw = bytes(buf[start:end])
        if vr == b"PN":
            name = raw  # undecoded, as RawDataElement.value: kiosk.dicom.names decodes it
        elif vr == b"UI":
            values[keyword] = _uid(raw)
        elif vr == b"LO":
            values[keyword] = _text(raw, encodings)
        elif vr == b"IS":
            values[keyword] = _integer_string(raw, keyword)
        elif vr == b"US":
            values[keyword] = _unsigned_short(raw, keyword)
        elif tag != _CHARSET:  # CS, DA
            values[keyword] = _strings(raw)
    return Scan(values=values, meta=meta, patient_name_raw=name, pixel_offset=pixel_offset)


def _strings(raw: bytes) -> str | list[str]:
    """CS, DA (``convert_string`` / ``multi_string``): Latin-1, trailing padding removed."""
    parts = raw.decode("latin-1").rstrip(" \0").split("\\")
    return parts[0] if len(parts) == 1 else parts


def _uid(raw: bytes) -> str:
    """UI (``convert_UI``, then ``UID()``, which strips whitespace)."""
    text = raw.decode("latin-1").rstrip("\0 ")
    if "\\" in text:
        raise _Decline("multi-valued UID")
    return text.strip()


def _text(raw: bytes, encodings: list[str]) -> str | list[str]:
    """LO (``convert_text``): decoded with the data set's character set, each value right-stripped.
    """
    if not raw:
        return ""
    try:
        if b"\x1b" not in raw:
            # What decode_bytes does first; an error here would make it substitute U+FFFD.
            text = raw.decode(encodings[0])
        else:
            text = decode_bytes(raw, encodings, TEXT_VR_DELIMS)  # ISO 2022 code extensions
            if "\ufffd" in text:
                raise _Decline("text does not decode with its character set")
    except (UnicodeError, LookupError) as exc:
        raise _Decline("text does not decode with its character set") from exc
    parts = [part.rstrip("\0 ") for part in text.split("\\")]
    return parts[0] if len(parts) == 1 else parts


def _integer_string(raw: bytes, keyword: str) -> int | str | None:
    """IS (``convert_IS_string``): an int; None for a zero length value, "" for padding only."""
    if not raw:
        return None
    text = raw.decode("latin-1").rstrip(" \0")
    if not text:
        return ""
    if _IS_VALUE.fullmatch(text) is None:
        raise _Decline(f"{keyword} is not a plain integer string")
    return int(text)


def _unsigned_short(raw: bytes, keyword: str) -> int | None:
    """US (``convert_numbers``): one little endian uint16, None when empty."""
    if len(raw) == 2:
        return raw[0] | raw[1] << 8
    if not raw:
        return None
    raise _Decline(f"{keyword} does not hold exactly one US value")
