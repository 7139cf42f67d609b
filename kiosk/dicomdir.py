"""Reading a medium's DICOMDIR: which files it references, safely.

Why not ``pydicom.fileset.FileSet.load``: it needs the DICOMDIR as a path on a mounted
filesystem (our ISO images and devices are read without mounting), silently drops records whose
file is missing (we must report them), and aborts the whole load on one record with a ``..``
path (we must keep the others). So the records are read here with ``dcmread`` and each Referenced
File ID is checked on its own; pydicom's FileSet is used where we *write* DICOMDIRs.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

from pydicom import dcmread
from pydicom.dataset import Dataset

#: A DICOMDIR larger than this is not a directory, it is an attack or a mistake.
MAX_DICOMDIR_BYTES = 64 * 1024 * 1024

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


def read_dicomdir(data: bytes, path: str) -> DicomdirIndex:
    """Parse DICOMDIR bytes read from the medium at ``path``.

    Never raises for bad content: an unreadable DICOMDIR gives ``readable=False`` and a problem
    line, and each unsafe or incomplete record gives its own problem line.
    """
    index = DicomdirIndex(path=path)
    if not data:
        index.readable = False
        index.problems.append(f"{path} is empty; the whole medium was searched instead")
        return index
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
    base = path.rpartition("/")[0]
    for i, record in enumerate(records):
        try:
            index.records.extend(_record(record, base, i, index.problems))
        except Exception as exc:  # noqa: BLE001
            index.problems.append(f"{path}: record {i} is damaged ({type(exc).__name__})")
    return index


def _record(record: Dataset, base: str, i: int, problems: list[str]) -> list[DicomdirRecord]:
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
