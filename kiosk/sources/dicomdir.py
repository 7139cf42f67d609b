"""Reading a medium's DICOMDIR: which files it references, safely.

Why not ``pydicom.fileset.FileSet.load``: it needs the DICOMDIR as a path on a mounted
filesystem (our ISO images and devices are read without mounting), silently drops records whose
file is missing (we must report them), and aborts the whole load on one record with a ``..``
path (we must keep the others). pydicom's FileSet is used where we *write* DICOMDIRs.

The records are taken from the Directory Record Sequence as a flat list, in file order. The
offsets that link records into a tree (next record, lower level) are never followed, so a
hostile DICOMDIR whose offsets loop or nest without end cannot make reading it run forever.

Two readers give the same records (``tests/sources/test_dicomdir.py`` checks they agree):

* a struct walk over the standard encoding (Explicit VR Little Endian, PS3.10 8.6 / PS3.3 F.2),
  which keeps only the three values needed per record. ``dcmread`` builds a Python object for
  every element of every record: about 0.1 ms and 2 kB per record, so 10 s and 280 MB for a
  DVD of 100,000 images and, for a hostile 40 MB DICOMDIR of tiny records, two minutes and
  2.4 GB. The walk costs a few microseconds per record and stops at ``max_records``.
* ``dcmread`` for anything else (implicit VR, odd elements, damage), only up to
  :data:`PYDICOM_MAX_BYTES`; a larger non-standard DICOMDIR is not used (the whole medium is
  searched anyway, which is what an unreadable DICOMDIR means).
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydicom import dcmread

#: A DICOMDIR larger than this is not a directory, it is an attack or a mistake.
MAX_DICOMDIR_BYTES = 64 * 1024 * 1024
#: Largest DICOMDIR handed to ``dcmread`` when the fast reader declines (about 100,000 tiny
#: records at worst: 10 s and 300 MB on this class of machine).
PYDICOM_MAX_BYTES = 4 * 1024 * 1024

_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class DicomdirRecord:
    """One directory record that references a file."""

    file_id: str  # relative POSIX path, as written in the DICOMDIR
    record_type: str
    sop_instance_uid: str


@dataclass
class DicomdirIndex:
    """What one DICOMDIR says is on the medium."""

    path: str
    records: list[DicomdirRecord] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    readable: bool = True
    #: Which reader read it: "fast" (the standard encoding) or "pydicom".
    reader: str = ""
    #: The File-set ID (0004,1130), "" when absent: names the issuer when instances do not.
    fileset_id: str = ""


def safe_file_id(value: object) -> str | None:
    """Join a Referenced File ID into a relative path, or None when it could leave the medium.

    Components must be plain names: no ``..``/``.``, no empty parts, no separators or drive
    letters inside a component, no absolute path.
    """
    parts = [value] if isinstance(value, str) else list(value)  # type: ignore[call-overload]
    if not parts:
        return None
    clean: list[str] = []
    for part in parts:
        text = str(part).strip()
        if not text or text in (".", "..") or "/" in text or "\\" in text or _DRIVE.match(text):
            return None
        if "\x00" in text:
            return None
        clean.append(text)
    return "/".join(clean)


def read_dicomdir(data: bytes, path: str, *, max_records: int | None = None,
                  use_pydicom: bool = False) -> DicomdirIndex:
    """Parse DICOMDIR bytes read from the medium at ``path``.

    Never raises for bad content: an unreadable DICOMDIR gives ``readable=False`` and a problem
    line, and each unsafe or incomplete record gives its own problem line.

    Parameters
    ----------
    data : bytes
        The whole DICOMDIR file.
    path : str
        Where it is on the medium (its folder is the base of the File IDs), for messages.
    max_records : int, optional
        A DICOMDIR referencing more files than this (the scan's ``max_files``) is not used:
        the scan would stop before reaching them, and holding them all costs memory.
    use_pydicom : bool
        Read with ``dcmread`` even when the fast reader could (tests compare the two).
    """
    index = DicomdirIndex(path=path)
    if not data:
        index.readable = False
        index.problems.append(f"{path} is empty; the whole medium was searched instead")
        return index
    base = path.rpartition("/")[0]
    index.fileset_id = fileset_id(data)
    if not use_pydicom:
        try:
            _collect(_scan_records(data), base, index, max_records)
            index.reader = "fast"
            return index
        except Exception as stop:  # noqa: BLE001 - _Decline; anything else is a bug, but
            # the fast path may only ever decline (tests/test_fuzz.py looks for such bugs).
            # Not the standard encoding, or damaged: dcmread decides, if it is small enough.
            index.records.clear()
            index.problems.clear()
            if len(data) > PYDICOM_MAX_BYTES:
                index.readable = False
                index.problems.append(
                    f"{path} is not a standard DICOMDIR ({stop}) and too large to read safely "
                    f"({len(data):,} bytes); the whole medium was searched instead")
                return index
    index.reader = "pydicom"
    try:
        ds = dcmread(io.BytesIO(data), force=True)
        if "DirectoryRecordSequence" not in ds:
            raise ValueError("no Directory Record Sequence")
        records = list(ds.DirectoryRecordSequence)
    except Exception as exc:  # noqa: BLE001 - untrusted bytes: any failure means "broken"
        index.readable = False
        index.problems.append(
            f"{path} is damaged ({type(exc).__name__}: {str(exc)[:80]}); the whole medium was "
            "searched instead"
        )
        return index
    _collect(records, base, index, max_records)
    return index


def fileset_id(data: bytes) -> str:
    """The DICOMDIR's File-set ID (0004,1130), read from its first elements; "" when absent.

    It is a short top-level CS element just after the file meta group, so at most the first
    few elements of an explicit VR little endian DICOMDIR are looked at (never the records).
    """
    if len(data) < 132 or data[128:132] != b"DICM":
        return ""
    pos, end = 132, min(len(data), 132 + 16384)
    for _ in range(64):
        if pos + 8 > end:
            return ""
        group, element, vr, length = _HEADER(data, pos)
        tag = group << 16 | element
        if vr in _LONG_VRS:
            if pos + 12 > end:
                return ""
            (length,) = _LENGTH32(data, pos + 8)
            start = pos + 12
        else:
            start = pos + 8
        if tag == 0x00041130:
            value = data[start:start + min(length, 64)]
            return value.decode("ascii", "replace").strip(" \x00")
        if tag > 0x00041130 or length == _UNDEFINED:
            return ""
        pos = start + length
    return ""


def _collect(records: Iterable[Any], base: str, index: DicomdirIndex,
             max_records: int | None) -> None:
    """Add the file-referencing ``records`` (anything with ``.get(keyword)``) to ``index``."""
    for i, record in enumerate(records):
        try:
            index.records.extend(_record(record, base, i, index.problems))
        except Exception as exc:  # noqa: BLE001
            index.problems.append(f"{index.path}: record {i} is damaged ({type(exc).__name__})")
        if max_records is not None and len(index.records) > max_records:
            index.records.clear()
            index.readable = False
            index.problems.append(
                f"{index.path} lists more than {max_records:,} files, more than one scan reads "
                "(import.max_files); it was not used and the whole medium was searched instead")
            return


def _record(record: Any, base: str, i: int, problems: list[str]) -> list[DicomdirRecord]:
    raw = record.get("ReferencedFileID")
    if raw is None or raw == "":
        return []  # PATIENT/STUDY/SERIES records reference no file
    file_id = safe_file_id(raw)
    if file_id is None:
        shown = "\\".join(raw) if not isinstance(raw, str) else raw
        problems.append(
            f"DICOMDIR record {i} points outside the medium ({shown!s:.80}); ignored"
        )
        return []
    full = f"{base}/{file_id}" if base else file_id
    return [DicomdirRecord(
        file_id=full,
        record_type=str(record.get("DirectoryRecordType", "")).strip(),
        sop_instance_uid=str(record.get("ReferencedSOPInstanceUIDInFile", "")).strip(),
    )]


# --- the fast reader: a struct walk over Explicit VR Little Endian (PS3.5 7.1.2, 7.5) ---------

_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_RECORD_SEQUENCE = 0x00041220
#: Record elements read, with the VR they must have (pydicom converts others differently).
_WANTED = {
    0x00041430: ("DirectoryRecordType", b"CS"),
    0x00041500: ("ReferencedFileID", b"CS"),
    0x00041511: ("ReferencedSOPInstanceUIDInFile", b"UI"),
}
_TRANSFER_SYNTAX = 0x00020010
_CHARSET = 0x00080005
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN",
                       b"UR", b"UT", b"UV"})
_SHORT_VRS = frozenset({b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS",
                        b"LO", b"LT", b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL",
                        b"US"})
_HEADER = struct.Struct("<HH2sH").unpack_from  # group, element, VR, 16-bit length
_LENGTH32 = struct.Struct("<L").unpack_from
_ITEM_HEADER = struct.Struct("<HHL").unpack_from
_UNDEFINED = 0xFFFFFFFF
_ITEM, _SEQ_END = 0xFFFEE000, 0xFFFEE0DD
#: Sequences nested deeper than this inside a record are left to dcmread.
_MAX_NESTING = 16


class _Decline(Exception):
    """The fast reader cannot vouch for this DICOMDIR; ``str()`` says why."""


def _scan_records(data: bytes) -> Iterator[dict[str, object]]:
    """Yield each directory record's wanted values as ``Dataset.get`` would return them.

    Every step moves forward through ``data``, so the walk ends after at most
    ``len(data) / 8`` steps whatever the bytes are.

    Raises
    ------
    _Decline
        Anything but a well-formed DICOMDIR in Explicit VR Little Endian (possibly after some
        records were yielded: the caller starts again with dcmread).
    """
    buf = memoryview(data)
    n = len(buf)
    if n < 132 or buf[128:132] != b"DICM":
        raise _Decline("no DICM prefix")
    pos = _skip_meta(buf)
    previous, found = -1, False
    while pos < n:
        tag, vr, start, length = _element(buf, pos, n)
        if tag <= previous or tag >> 16 == 0xFFFE:
            raise _Decline(f"unexpected element at byte {pos}")
        _check_charset(tag, vr)
        previous = tag
        if tag == _RECORD_SEQUENCE:
            if vr != b"SQ":
                raise _Decline("the Directory Record Sequence is not SQ")
            found = True
            pos = yield from _records(buf, start, length)
        elif length == _UNDEFINED:
            pos = _skip_sequence(buf, start, n, vr, 1)
        else:
            pos = start + length
            if pos > n:
                raise _Decline(f"element at byte {start} runs past the end")
    if not found:
        raise _Decline("no Directory Record Sequence")


def _skip_meta(buf: memoryview) -> int:
    """Walk the File Meta Information; return where the data set starts."""
    n, pos, previous, syntax = len(buf), 132, -1, ""
    while pos + 8 <= n:
        if _HEADER(buf, pos)[0] != 0x0002:
            break
        tag, vr, start, length = _element(buf, pos, n)
        if tag <= previous or length == _UNDEFINED or start + length > n:
            raise _Decline("unusual file meta information")
        if previous == -1 and not (tag == 0x00020000 or vr in (b"OB", b"UI")):
            raise _Decline("unusual first file meta element")  # pydicom checks it, see there
        if tag == _TRANSFER_SYNTAX:
            syntax = bytes(buf[start:start + length]).decode("latin-1").rstrip("\0 ").strip()
        previous, pos = tag, start + length
    if previous == -1 or syntax != _EXPLICIT_LE:
        raise _Decline(f"transfer syntax {syntax or 'missing'} is not Explicit VR Little Endian")
    return pos


def _element(buf: memoryview, pos: int, limit: int) -> tuple[int, bytes, int, int]:
    """The explicit VR element header at ``pos``: (tag, VR, value start, value length)."""
    if pos + 8 > limit:
        raise _Decline(f"element header at byte {pos} runs past its end")
    group, element, vr, length = _HEADER(buf, pos)
    if vr in _LONG_VRS:
        if pos + 12 > limit:
            raise _Decline(f"element header at byte {pos} runs past its end")
        return group << 16 | element, vr, pos + 12, _LENGTH32(buf, pos + 8)[0]
    if vr in _SHORT_VRS:
        return group << 16 | element, vr, pos + 8, length
    raise _Decline(f"unknown VR at byte {pos}")


def _records(buf: memoryview, pos: int, length: int
             ) -> Generator[dict[str, object], None, int]:
    """Yield the records of the Directory Record Sequence at ``pos``; return its end."""
    end = None if length == _UNDEFINED else pos + length
    limit = len(buf) if end is None else end
    if limit > len(buf):
        raise _Decline("the Directory Record Sequence runs past the end")
    while pos != end:
        if pos + 8 > limit:
            raise _Decline(f"item header at byte {pos} runs past its end")
        group, element, item_length = _ITEM_HEADER(buf, pos)
        tag = group << 16 | element
        if tag == _SEQ_END and end is None and item_length == 0:
            return pos + 8
        if tag != _ITEM:
            raise _Decline(f"expected a record at byte {pos}")
        values: dict[str, object] = {}
        if item_length == _UNDEFINED:
            pos = _walk_item(buf, pos + 8, None, limit, 1, values)
        else:
            item_end = pos + 8 + item_length
            if item_end > limit:
                raise _Decline(f"record at byte {pos} runs past its sequence")
            pos = _walk_item(buf, pos + 8, item_end, limit, 1, values)
        yield values
    return pos


def _walk_item(buf: memoryview, pos: int, end: int | None, limit: int, depth: int,
               values: dict[str, object] | None) -> int:
    """Walk one item's elements (collecting the wanted ones into ``values``); return its end.

    ``end`` ends a defined length item; None means it ends with an Item Delimitation Item.
    """
    if end is not None:
        limit = end
    previous = -1
    while pos != end:
        if pos + 8 > limit:
            raise _Decline(f"element header at byte {pos} runs past its item")
        if _ITEM_HEADER(buf, pos)[:2] == (0xFFFE, 0xE00D):  # Item Delimitation Item
            if end is not None or _ITEM_HEADER(buf, pos)[2] != 0:
                raise _Decline(f"unexpected item delimiter at byte {pos}")
            return pos + 8
        tag, vr, start, length = _element(buf, pos, limit)
        if tag <= previous or tag >> 16 == 0xFFFE:
            raise _Decline(f"unexpected element in an item at byte {pos}")
        _check_charset(tag, vr)
        previous = tag
        if length == _UNDEFINED:
            pos = _skip_sequence(buf, start, limit, vr, depth + 1)
            continue
        pos = start + length
        if pos > limit:
            raise _Decline(f"element at byte {start} runs past its item")
        want = _WANTED.get(tag) if values is not None else None
        if want is not None:
            keyword, wanted_vr = want
            if vr != wanted_vr:
                raise _Decline(f"{keyword} has VR {vr.decode('latin-1')}")
            values[keyword] = _value(bytes(buf[start:pos]), vr)  # type: ignore[index]
    return pos


def _check_charset(tag: int, vr: bytes) -> None:
    """dcmread converts each data set's Specific Character Set as it reads it, and fails on one
    that is not CS; it must then fail here too (found by tests/test_fuzz.py)."""
    if tag == _CHARSET and vr != b"CS":
        raise _Decline("Specific Character Set is not CS")


def _skip_sequence(buf: memoryview, pos: int, limit: int, vr: bytes, depth: int) -> int:
    """Skip a sequence of undefined length whose first item is at ``pos``; return its end."""
    if vr != b"SQ":
        raise _Decline(f"undefined length {vr.decode('latin-1')} element at byte {pos}")
    if depth > _MAX_NESTING:
        raise _Decline("sequences nested too deeply")
    while True:
        if pos + 8 > limit:
            raise _Decline(f"sequence at byte {pos} runs past its end")
        group, element, length = _ITEM_HEADER(buf, pos)
        tag = group << 16 | element
        if tag == _SEQ_END:
            if length != 0:
                raise _Decline(f"sequence delimiter with a length at byte {pos}")
            return pos + 8
        if tag != _ITEM:
            raise _Decline(f"expected an item at byte {pos}")
        if length == _UNDEFINED:
            pos = _walk_item(buf, pos + 8, None, limit, depth, None)
        else:
            if pos + 8 + length > limit:
                raise _Decline(f"item at byte {pos} runs past its end")
            pos = _walk_item(buf, pos + 8, pos + 8 + length, limit, depth, None)


def _value(raw: bytes, vr: bytes) -> object:
    """A CS or UI value as pydicom 3 converts it (``convert_string`` / ``convert_UI``)."""
    text = raw.decode("latin-1")  # pydicom's default_encoding for these VRs
    if vr == b"UI":
        text = text.rstrip("\0 ")
        if "\\" in text:
            raise _Decline("multi-valued UID")  # a MultiValue of UIDs: leave it to pydicom
        return text.strip()
    parts = text.rstrip(" \0").split("\\")
    return parts[0] if len(parts) == 1 else parts
