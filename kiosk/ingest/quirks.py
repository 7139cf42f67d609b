"""Quirks: what a hospital's medium does that the standard does not ask for, as stable codes.

Every import report carries ``quirks``, a list of ``{"code", "count"}``; ``kiosk hospitals``
adds them up per issuing institution, the quality card an office can send back to a hospital.
The codes are a contract (scripts and the office's reports rely on them): add new ones, never
rename. No code, count or issuer carries patient data.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from typing import Any

#: Every code, and what it means (the README lists the same).
CODES: dict[str, str] = {
    "charset_mislabelled": "patient names whose declared character set was wrong or missing "
                           "(GBK bytes labelled ISO_IR 100 or unlabelled), decoded by guess",
    "lowercase_names": "DICOM files with lowercase names (no Rock Ridge, or not PS3.10 IDs)",
    "no_preamble": "DICOM files without the 128-byte preamble and 'DICM'",
    "dicomdir_missing": "no DICOMDIR on the medium",
    "dicomdir_unreadable": "a DICOMDIR that could not be read",
    "dicomdir_stale": "DICOMDIR records without their file, or DICOM files it does not list",
    "dicomdir_unsafe_path": "DICOMDIR records pointing outside the medium",
    "archive_on_medium": "zip archives holding the images",
    "udf_only": "a UDF-only disc (no ISO9660 file system)",
    "viewer_present": "a viewer program on the medium",
    "autorun_present": "an autorun.inf on the medium",
    "symlinks": "symbolic links on the medium (never followed)",
    "rejected_files": "files that looked like DICOM but could not be read",
    "pixel_data_damaged": "instances whose pixel data is truncated or damaged",
    "same_uid_different_bytes": "one SOP Instance UID with different bytes (re-encoded copies)",
    "no_dicom": "a medium without any DICOM image (pictures, a viewer, a PDF)",
}


def count_quirks(report: dict[str, Any], *, filesystem: str,
                 per_instance: Counter[str]) -> list[dict[str, Any]]:
    """The ``quirks`` of an import report: stable codes with counts, sorted by code.

    Parameters
    ----------
    report : dict
        The import report (``dicomdir``, ``contents``, ``rejected``, ``verification``, ...).
    filesystem : str
        How the medium was read (``Source.filesystem``).
    per_instance : Counter
        Counts the importer took while reading files (``charset_mislabelled``,
        ``no_preamble``, ``lowercase_names``, ``symlinks``).
    """
    found: Counter[str] = Counter({k: v for k, v in per_instance.items() if v})
    dicomdir = report.get("dicomdir") or {}
    if report["instances"]["found"]:
        if not dicomdir.get("present"):
            found["dicomdir_missing"] = 1
        elif not dicomdir.get("readable", True):
            found["dicomdir_unreadable"] = 1
        stale = len(dicomdir.get("missing", [])) + len(dicomdir.get("unlisted", []))
        if stale:
            found["dicomdir_stale"] = stale
    unsafe = sum("points outside the medium" in p for p in dicomdir.get("problems", []))
    if unsafe:
        found["dicomdir_unsafe_path"] = unsafe
    contents = report.get("contents") or {}
    if contents.get("viewer"):
        found["viewer_present"] = int(contents["viewer"])
    if contents.get("autorun"):
        found["autorun_present"] = 1
    archives = report.get("archives") or []
    if archives:
        found["archive_on_medium"] = len(archives)
    if filesystem == "udf":
        found["udf_only"] = 1
    if report.get("rejected"):
        found["rejected_files"] = len(report["rejected"])
    damaged = [p for p in report["verification"]["problems"] if "path" in p]
    if damaged:
        found["pixel_data_damaged"] = len(damaged)
    same_uid = sum("different bytes" in w for w in report.get("warnings", []))
    if same_uid:
        found["same_uid_different_bytes"] = same_uid
    if report.get("no_dicom"):
        found["no_dicom"] = 1
    unknown = set(found) - set(CODES)
    assert not unknown, f"quirk codes must be listed in CODES: {unknown}"
    return [{"code": code, "count": found[code]} for code in sorted(found)]


def has_lowercase(path: str) -> bool:
    """Whether a DICOM file's name (not its folders') has lowercase letters (PS3.10 IDs don't)."""
    name = path.rpartition("!/")[2].rpartition("/")[2]
    return any("a" <= c <= "z" for c in name)


def issuer(institutions: Counter[str], fileset_ids: Iterable[str], label: str | None,
           patient_words: Iterable[str]) -> dict[str, str]:
    """Who issued the medium: Institution Name, else the DICOMDIR's File-set ID, else the label.

    A volume label that holds any of ``patient_words`` (the patients' name parts, ids, birth
    dates: hospitals sometimes label a disc with the patient) is not used as it is: the issuer
    is then the label's hash, so the quality card never names a patient.
    """
    named = [(n, c) for n, c in institutions.most_common() if n.strip()]
    if named:
        return {"issuer": " ".join(named[0][0].split()), "from": "institution"}
    for fileset in fileset_ids:
        if fileset.strip():
            return {"issuer": fileset.strip(), "from": "fileset_id"}
    if label and label.strip():
        text = label.strip()
        words = {w.upper() for w in patient_words if len(w) >= 2}
        if any(w in text.upper() for w in words):
            return {"issuer": "label " + hashlib.sha256(text.encode()).hexdigest()[:12],
                    "from": "label_hashed"}
        return {"issuer": text, "from": "label"}
    return {"issuer": "(unknown)", "from": "none"}
