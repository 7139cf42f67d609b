"""Retention: which cases have been on the kiosk long enough after they were done with.

A case is due for purging ``retention.days`` days after it was **both** delivered to the
patient (a verified export, :meth:`kiosk.store.catalog.Catalog.record_export`) **and** uploaded
(every instance and report in a finished upload job, :func:`kiosk.retention.purge.upload_state`),
counted from whichever happened last. A case that was never uploaded is never due, whatever its
age; nor is one never delivered. ``days = 0`` turns automatic purging off.

This module only decides (pure, clock passed in); :class:`kiosk.retention.purger.Purger` purges
and audits.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass
from typing import Any

from kiosk.store.blobstore import BlobStore
from kiosk.store.catalog import Catalog

DAY = 86400


def _epoch(iso: str | None) -> float | None:
    """Seconds since the epoch of a ``now_iso()`` timestamp, or None."""
    if not iso:
        return None
    try:
        return float(calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


@dataclass(frozen=True)
class CaseRetention:
    """The retention verdict for one case."""

    case_id: str
    #: When the last verified export was written, or None.
    delivered: str | None
    #: When the last upload job finished, when everything is uploaded; else None (also for a
    #: case not delivered: its uploads are not looked at).
    uploaded: str | None
    #: When the case becomes due (None: never, as things stand).
    due: str | None
    #: Whether it is due now.
    purge: bool
    #: Why (not): "due", "not delivered", "not uploaded", "too recent", "retention off".
    reason: str

    def to_json(self) -> dict[str, Any]:
        """The verdict as a JSON-ready dict (``kiosk retention --json``)."""
        return {"case_id": self.case_id, "delivered": self.delivered,
                "uploaded": self.uploaded, "due": self.due, "reason": self.reason}


def review_cases(catalog: Catalog, store: BlobStore, days: int,
                 now: float) -> list[CaseRetention]:
    """The retention verdict of every case at time ``now`` (epoch seconds), oldest first.

    Read from the case index (each row carries its case's upload state, kept up to date as
    the case changes), so a sweep opens no case file; the purge checks again before it deletes.
    """
    del store  # the rows carry what was read from the blobs
    return _verdicts(catalog, catalog.index_rows(), days, now)


def _verdicts(catalog: Catalog, rows: list[dict[str, Any]], days: int,
              now: float) -> list[CaseRetention]:
    del catalog
    verdicts = []
    for case in sorted(rows, key=lambda c: c.get("created") or ""):
        case_id = case["case_id"]
        delivered = _epoch(case.get("delivered"))
        uploaded = None
        if delivered is not None and days > 0:
            state = case.get("x", {}).get("upload", {})
            # A finished job always has a time; one without counts as not uploaded (kept).
            uploaded = _epoch(state.get("finished")) if state.get("uploaded") else None
        due = None
        if delivered is not None and uploaded is not None:
            due = max(delivered, uploaded) + days * DAY
        if days <= 0:
            reason = "retention off"
        elif delivered is None:
            reason = "not delivered"
        elif uploaded is None:
            reason = "not uploaded"
        elif due is not None and now < due:
            reason = "too recent"
        else:
            reason = "due"
        verdicts.append(CaseRetention(
            case_id=case_id, delivered=case.get("delivered"),
            uploaded=_iso(uploaded) if uploaded is not None else None,
            due=_iso(due) if due is not None and days > 0 else None,
            purge=reason == "due", reason=reason))
    return verdicts


def due_cases(catalog: Catalog, days: int, now: float) -> list[CaseRetention]:
    """Only the cases due at ``now``, oldest first: what the retention sweep purges.

    The case index keeps cases ordered by when they were both delivered and uploaded, so the
    sweep looks at the due ones only, however many cases the kiosk holds.
    """
    if days <= 0:
        return []
    rows = [catalog.db.index_row(case_id) for case_id in catalog.settled_before(now - days * DAY)]
    return [v for v in _verdicts(catalog, [r for r in rows if r is not None], days, now)
            if v.purge]
