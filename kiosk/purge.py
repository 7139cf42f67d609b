"""Purge a case from the kiosk: its records and every blob no other case still needs.

Blobs are content-addressed, so two cases imported from the same disc share them; a blob is
deleted only when nothing outside the purged case references it. Import reports (they name
the patient), upload job lists and the case's link go too. A case whose upload has not
finished is refused unless the caller passes ``force`` after the coordinator confirmed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kiosk.blobstore import BlobStore
from kiosk.case_links import LINKS
from kiosk.catalog import CASES, JOBS, REPORTS, STUDIES, Catalog
from kiosk.errors import UsageError
from kiosk.outbox import OUTBOX


@dataclass(frozen=True)
class PurgeResult:
    """What a purge removed."""

    case_id: str
    studies: int
    blobs_deleted: int
    blobs_kept_shared: int
    uploaded: bool


def _refs(catalog: Catalog, store: BlobStore, docs: dict[str, list[dict[str, Any]]]) -> set[str]:
    """Every blob hash the given documents reference."""
    refs: set[str] = set()
    for study in docs[STUDIES]:
        refs.add(study["manifest"])
        refs |= {row.sha256 for row in catalog.manifest(study)}
    for report in docs[REPORTS]:
        refs |= {str(report[k]) for k in ("pdf_sha256", "dicom_sha256") if report.get(k)}
    for job in docs[JOBS]:
        if job.get("report"):
            refs.add(job["report"])
    for job in docs[OUTBOX]:
        if job.get("items"):
            refs.add(job["items"])
            if store.has(job["items"]):
                refs |= {sha for _sop, sha in json.loads(store.read_bytes(job["items"]))}
    return refs


def purge_case(catalog: Catalog, store: BlobStore, case_id: str, *,
               force: bool = False) -> PurgeResult:
    """Remove ``case_id`` and its unshared blobs.

    Raises
    ------
    UsageError
        No such case, or it is not uploaded yet and ``force`` is false.
    """
    db = catalog.db
    with db.transaction():
        if catalog.case(case_id) is None:
            raise UsageError(f"There is no case {case_id}.")
        tables = (STUDIES, REPORTS, JOBS, OUTBOX)
        mine = {t: db.find(t, case_id=case_id) for t in tables}
        uploads = mine[OUTBOX]
        uploaded = bool(uploads) and all(j.get("state") == "done" for j in uploads)
        if not uploaded and not force:
            raise UsageError(
                f"Case {case_id} is not uploaded to the office yet: purging it now deletes the "
                "only copy on this kiosk. Confirm the purge explicitly to go ahead.")
        others = {t: [d for d in db.find(t) if d.get("case_id") != case_id] for t in tables}
        candidates = _refs(catalog, store, mine)
        shared = candidates & _refs(catalog, store, others)
        for table in (*tables, LINKS, CASES):
            db.remove(table, case_id=case_id)
    deleted = 0
    for sha in candidates - shared:
        path = store.path_for(sha)
        if path.exists():
            path.unlink()
            deleted += 1
    return PurgeResult(case_id, len(mine[STUDIES]), deleted, len(shared), uploaded)
