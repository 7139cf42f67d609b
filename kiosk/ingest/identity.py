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
