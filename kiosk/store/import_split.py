"""Divide a stored import report between a case and the case split off it.

An import report (DESIGN.md §4) describes one medium: every patient on it, every study, and the
medium paths it rejected, ignored or warned about. When a coordinator splits the patients of a
case (:meth:`kiosk.store.catalog.Catalog.split_case`), each case must keep only what is its own, or
purging one case would leave its patient's name in the other's report.

What belongs to whom:

- patients by patient id, studies by study UID;
- an entry naming a medium path (rejected, ignored, verification problem, DICOMDIR lists, a
  warning quoting a path) goes with the moved patients when one of its folders holds images of
  moved studies and none of the kept ones (``ZHANG_SAN/NOTES.TXT`` beside ``ZHANG_SAN/IM1``);
  anything else stays with the case being split (the coordinator's patient), since it
  describes the medium rather than a patient.

Pure functions: the caller reads and writes the blobs.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import Any


def folders(paths: Iterable[str]) -> set[str]:
    """Every folder prefix of the medium paths (``A/B/IM1`` gives ``A`` and ``A/B``)."""
    out: set[str] = set()
    for path in paths:
        parts = [p for p in path.replace("\\", "/").split("/") if p]
        out |= {"/".join(parts[:i]) for i in range(1, len(parts))}
    return out


class _Attribution:
    """Decides whether a path or a sentence belongs to the moved patients."""

    def __init__(self, moved_paths: Iterable[str], kept_paths: Iterable[str]) -> None:
        only = folders(moved_paths) - folders(kept_paths)
        self.moved_folders = only
        # A folder quoted in a sentence: at a path-component boundary, followed by a separator.
        self._pattern = re.compile(
            r"(?:^|(?<=[\s/\\'\"(]))(?:" + "|".join(
                re.escape(f).replace("/", r"[/\\]") for f in sorted(only, key=len, reverse=True))
            + r")(?=[/\\])") if only else None

    def path(self, path: str) -> bool:
        """Whether the medium ``path`` lies in a folder of the moved patients only."""
        return bool(folders([path]) & self.moved_folders)

    def text(self, sentence: str) -> bool:
        """Whether ``sentence`` quotes a path in a folder of the moved patients only."""
        return self._pattern is not None and self._pattern.search(sentence) is not None


def divide_report(report: dict[str, Any], *, moved_patient_ids: set[str],
                  moved_study_uids: set[str], moved_paths: Iterable[str],
                  kept_paths: Iterable[str], new_case_id: str) -> tuple[dict[str, Any],
                                                                       dict[str, Any] | None]:
    """Split ``report`` into the part the case keeps and the part the new case takes.

    Parameters
    ----------
    report
        The stored import report of a job of the case being split.
    moved_patient_ids, moved_study_uids
        What moves to the new case.
    moved_paths, kept_paths
        Medium paths of the images in the moved and in the kept studies (from the manifests).
    new_case_id
        The case split off.

    Returns
    -------
    (kept, moved)
        ``kept`` is ``report`` itself when nothing of it moves; ``moved`` is None then.
        Totals other than ``instances.found`` (imported, duplicates, verified, bytes, DICOMDIR
        records) still describe the whole medium (``split`` in both reports says so).
    """
    attribution = _Attribution(moved_paths, kept_paths)

    def moves_patient(p: dict[str, Any]) -> bool:
        return str(p.get("patient_id")) in moved_patient_ids

    def moves_study(s: dict[str, Any]) -> bool:
        return str(s.get("study_uid")) in moved_study_uids

    if not any(moves_patient(p) for p in report.get("patients", [])) and \
            not any(moves_study(s) for s in report.get("studies", [])):
        return report, None

    def part(moved: bool) -> dict[str, Any]:
        out = copy.deepcopy(report)

        def mine_path(entry: Any) -> bool:
            path = entry.get("path", "") if isinstance(entry, dict) else str(entry)
            return attribution.path(str(path)) == moved

        def mine_text(sentence: Any) -> bool:
            return attribution.text(str(sentence)) == moved

        out["patients"] = [p for p in out.get("patients", []) if moves_patient(p) == moved]
        out["studies"] = [s for s in out.get("studies", []) if moves_study(s) == moved]
        for key in ("rejected", "ignored"):
            out[key] = [e for e in out.get(key, []) if mine_path(e)]
        out["warnings"] = [w for w in out.get("warnings", []) if mine_text(w)]
        verification = out.get("verification")
        if isinstance(verification, dict):
            verification["problems"] = [e for e in verification.get("problems", [])
                                        if mine_path(e)]
        dicomdir = out.get("dicomdir")
        if isinstance(dicomdir, dict):
            for key in ("missing", "unlisted"):
                dicomdir[key] = [e for e in dicomdir.get(key, []) if mine_path(e)]
            dicomdir["problems"] = [w for w in dicomdir.get("problems", []) if mine_text(w)]
        instances = out.get("instances")
        if isinstance(instances, dict):
            instances["found"] = sum(int(s.get("instances", 0)) for s in out["studies"])
        if moved:
            out["case_id"] = new_case_id
        out["split"] = {"case_id": out.get("case_id"), "moved": moved,
                        "new_case_id": new_case_id,
                        "note": "counts other than instances.found describe the whole medium"}
        return out

    return part(False), part(True)
