"""Whose images these are: the coordinator's confirmation of a case's patient, checked.

The coordinator types the passport name and the date of birth; the case then records them with
the patient ids they confirm (ids only ever reach the audit trail).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from kiosk.errors import UsageError


def confirmed_identity(passport_name: str, birth_date: str, patient_ids: Iterable[str],
                       when: str) -> dict[str, Any]:
    """The identity document for a case: name as in the passport, birth date, patient ids.

    Parameters
    ----------
    passport_name : str
        As typed; runs of white space become one space.
    birth_date : str
        ``YYYY-MM-DD``, not before 1900 and not in the future.
    patient_ids : iterable of str
        The patient ids of the case that this confirms as one person.
    when : str
        The time of the confirmation (ISO 8601).

    Raises
    ------
    UsageError
        An empty name, or a birth date that is not ``YYYY-MM-DD`` or not possible.
    """
    name = " ".join(passport_name.split())
    if not name:
        raise UsageError("Type the name exactly as it is in the passport.")
    try:
        born = dt.date.fromisoformat(birth_date.strip())
    except ValueError:
        raise UsageError("Type the date of birth as YYYY-MM-DD, e.g. 1985-03-14.") from None
    if not dt.date(1900, 1, 1) <= born <= dt.date.today():
        raise UsageError("That date of birth is not possible; check the passport.")
    return {"passport_name": name, "birth_date": born.isoformat(),
            "patient_ids": sorted(set(patient_ids)), "confirmed": when}


def patient_ids(case: dict[str, Any]) -> list[str]:
    """The distinct patient ids of a case, in the order they were first imported."""
    return list(dict.fromkeys(p["patient_id"] for p in case.get("patients", [])))


def one_person_problem(case: dict[str, Any]) -> str | None:
    """Why ``case`` may not go onto one stick or behind one link, or None when it may.

    A case, its stick and its link are for one person (DESIGN.md §1 step 2). A case with
    several patient ids passes only when the coordinator confirmed they are one person: the
    passport identity on the desk (which covers every id it was confirmed for) or
    ``kiosk import --case ID --same-person``.
    """
    ids = patient_ids(case)
    if len(ids) <= 1:
        return None
    confirmed: set[str] = set()
    for key in ("identity", "same_person"):
        confirmed |= set((case.get(key) or {}).get("patient_ids", []))
    if set(ids) <= confirmed:
        return None
    return (f"Case {case['case_id']} holds {len(ids)} patients (IDs {', '.join(ids)}); a case, "
            "its stick and its link are for one person. Move the others to cases of their own "
            "on the desk's Case screen (importing without --case files each patient in its own "
            "case), or, if they are the same person, confirm it on the desk or with "
            f"`kiosk import SOURCE --case {case['case_id']} --same-person`.")


def filing(found: list[str], prior: list[str], *, same_person: bool) -> list[list[str]]:
    """Which patient ids share a case after a command-line import: one group per case.

    ``found`` are the ids of the import (in the order found), ``prior`` those the case held
    before it (empty for a new case). The first group stays in the import's case: its prior
    patients, or else the first patient found. Every other id gets a case of its own, unless
    ``same_person`` (the coordinator confirmed they are one person), which keeps all together.
    """
    everyone = list(dict.fromkeys([*prior, *found]))
    if same_person or len(everyone) <= 1:
        return [everyone]
    stay = list(prior) if prior else everyone[:1]
    return [stay] + [[pid] for pid in everyone if pid not in stay]
