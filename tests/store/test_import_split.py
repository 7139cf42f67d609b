"""Dividing a stored import report between a case and the case split off it."""

from __future__ import annotations

from typing import Any

from kiosk.store.import_split import divide_report, folders


def _report() -> dict[str, Any]:
    return {
        "case_id": "C1", "instances": {"found": 3, "imported": 3},
        "patients": [{"patient_id": "A", "name": "KEEP^ME"}, {"patient_id": "B",
                                                             "name": "MOVE^ME"}],
        "studies": [{"study_uid": "1.1", "patient_id": "A", "instances": 2},
                    {"study_uid": "2.2", "patient_id": "B", "instances": 1}],
        "rejected": [{"path": "MOVE_ME/BROKEN", "reason": "truncated"},
                     {"path": "README.DCM", "reason": "truncated"}],
        "ignored": [{"path": "KEEP_ME/NOTES.TXT", "reason": "not DICOM"},
                    {"path": "SHARED/X.TXT", "reason": "not DICOM"}],
        "warnings": ["MOVE_ME/IM2: same SOP Instance UID as another image", "a medium note",
                     "XMOVE_ME/IM9 is not a moved folder"],
        "verification": {"problems": [{"path": "MOVE_ME/IM1", "problem": "bad pixels"}]},
        "dicomdir": {"missing": ["MOVE_ME/IM7"], "unlisted": ["KEEP_ME/IM1"],
                     "problems": ["record MOVE_ME\\IM8 points nowhere"]},
    }


def _divide(report: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    return divide_report(report, moved_patient_ids={"B"}, moved_study_uids={"2.2"},
                         moved_paths=["MOVE_ME/IM1", "SHARED/IM5"],
                         kept_paths=["KEEP_ME/IM1", "KEEP_ME/IM2", "SHARED/IM4"],
                         new_case_id="C2")


def test_folder_prefixes_of_medium_paths() -> None:
    assert folders(["A/B/IM1", "C\\D"]) == {"A", "A/B", "C"}
    assert folders(["IM1"]) == set()


def test_each_part_names_only_its_own_patients_and_the_paths_in_their_folders() -> None:
    kept, moved = _divide(_report())
    assert moved is not None
    assert [p["name"] for p in kept["patients"]] == ["KEEP^ME"]
    assert [p["name"] for p in moved["patients"]] == ["MOVE^ME"]
    assert "MOVE^ME" not in str(kept) and "'MOVE_ME/" not in str(kept)
    assert moved["case_id"] == "C2" and kept["case_id"] == "C1"
    assert (kept["instances"]["found"], moved["instances"]["found"]) == (2, 1)
    # Paths in a folder of moved images only go; the medium's root and shared folders stay.
    assert [e["path"] for e in moved["rejected"]] == ["MOVE_ME/BROKEN"]
    assert [e["path"] for e in kept["rejected"]] == ["README.DCM"]
    assert [e["path"] for e in kept["ignored"]] == ["KEEP_ME/NOTES.TXT", "SHARED/X.TXT"]
    assert moved["warnings"] == ["MOVE_ME/IM2: same SOP Instance UID as another image"]
    assert kept["warnings"] == ["a medium note", "XMOVE_ME/IM9 is not a moved folder"]
    assert moved["verification"]["problems"] and not kept["verification"]["problems"]
    assert moved["dicomdir"]["missing"] == ["MOVE_ME/IM7"]
    assert kept["dicomdir"]["unlisted"] == ["KEEP_ME/IM1"]
    assert moved["dicomdir"]["problems"] == ["record MOVE_ME\\IM8 points nowhere"]


def test_a_report_with_nothing_of_the_moved_patients_is_left_as_it_is() -> None:
    report = _report()
    report["patients"] = report["patients"][:1]
    report["studies"] = report["studies"][:1]
    kept, moved = _divide(report)
    assert moved is None and kept is report


def test_a_report_without_the_optional_sections_still_divides() -> None:
    kept, moved = _divide({"patients": [{"patient_id": "B"}], "studies": []})
    assert moved is not None and moved["patients"] == [{"patient_id": "B"}]
    assert kept["patients"] == [] and kept["warnings"] == []
