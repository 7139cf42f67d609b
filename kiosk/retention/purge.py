"""Purge a case from the kiosk: its records, every blob no other case still needs, and its copies.

Blobs are content-addressed, so two cases imported from the same disc share them; a blob is
deleted only when nothing outside the purged case references it. Import reports (they name
the patient), upload job lists and the case's link go too. A case whose upload has not
finished is refused unless the caller passes ``force`` after the coordinator confirmed.

"No copies left behind" means, under the data directory: the import staging folders of the
case's jobs (``tmp/<job>/``, left by a crash), report PDFs staged from a medium
(``tmp/report-<tag>-*``), interrupted atomic writes of its blobs (``blobs/ab/.<sha>.*.tmp``)
and of the database (``.kiosk.json.*.tmp``: an older copy of every record), and the office
inbox files that were merged into the case or are named after it. What the filesystem keeps of
deleted blocks is beyond a program: that is what an encrypted data partition is for.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.cloud.outbox import OUTBOX
from kiosk.errors import UsageError
from kiosk.links.case_links import LINKS
from kiosk.reports.merger import MAX_PDF_BYTES
from kiosk.store.blobstore import SMALL_STAGING, BlobStore
from kiosk.store.case_summary import upload_summary
from kiosk.store.catalog import CASES, JOBS, REPORTS, STUDIES, Catalog
from kiosk.store.locations import Locations


@dataclass(frozen=True)
class PurgeResult:
    """What a purge removed."""

    case_id: str
    studies: int
    blobs_deleted: int
    blobs_kept_shared: int
    uploaded: bool
    #: Staging folders and interrupted-write temps removed (crash leftovers).
    temps_removed: int = 0
    #: Office inbox files of the case removed.
    inbox_removed: int = 0


@dataclass(frozen=True)
class UploadState:
    """Whether the office's server has everything of a case the kiosk would send."""

    uploaded: bool
    #: When the last finished upload job of the case ended (ISO UTC), or None.
    finished: str | None
    #: Instances (verified images and reports to upload) not in any finished upload job.
    missing: int


def upload_state(catalog: Catalog, store: BlobStore, case_id: str) -> UploadState:
    """Compare what the case holds with what finished upload jobs sent.

    "All of its jobs are done" is not enough: a second disc imported after the upload finished
    has no job until the next sync round plans one. So every verified instance and every report
    the outbox would send must be in the item list of a ``done`` job. Instances that failed
    verification are never sent (see :meth:`kiosk.cloud.sync.Syncer.plan`) and do not hold a case.
    """
    docs = catalog.case_docs(case_id)
    studies = docs.docs(STUDIES)
    state = upload_summary(studies, docs.docs(REPORTS), docs.docs(OUTBOX), store)
    missing = state["missing"]
    if missing is None:  # nothing finished uploading: every instance to send is missing
        missing = sum(1 for study in studies for row in catalog.manifest(study)
                      if row.verified)
        missing += sum(1 for r in docs.docs(REPORTS)
                       if r.get("upload") and r.get("dicom_sha256") and r.get("study_uid")
                       and r.get("sop_instance_uid"))
    return UploadState(uploaded=bool(state["uploaded"]), finished=state["finished"],
                       missing=missing)


def report_staging_prefix(case_id: str) -> str:
    """Folder prefix under ``tmp/`` for report PDFs of ``case_id`` staged from a medium.

    A hash, not the case id itself: case ids come from the command line and may hold any
    character; the tag still lets a purge find the case's leftovers after a crash.
    """
    return f"report-{hashlib.sha256(case_id.encode()).hexdigest()[:16]}-"


def _sharing(catalog: Catalog, case_id: str,
             mine: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The records of the other cases that may share a blob with ``case_id``.

    Images (and so manifests and upload item lists) can only be shared by a case holding the
    same study, and a report PDF by a case holding the same PDF: the case index says which,
    so only those cases are opened, not every case on the kiosk.
    """
    studies = {s["study_uid"] for s in mine[STUDIES]}
    pdfs = {str(r["pdf_sha256"]) for r in mine[REPORTS] if r.get("pdf_sha256")}
    others: dict[str, list[dict[str, Any]]] = {t: [] for t in mine}
    for row in catalog.db.index_rows():
        extra = row.get("x", {})
        if row["case_id"] == case_id or not (studies & set(extra.get("study_uids", []))
                                             or pdfs & set(extra.get("pdfs", []))):
            continue
        docs = catalog.case_docs(row["case_id"])
        for table in others:
            others[table] += docs.docs(table)
    return others


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


def _remove(path: Path) -> int:
    """Delete a file or folder tree; 1 if something was there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
        return 1
    try:
        path.unlink()
    except FileNotFoundError:
        return 0
    return 1


#: Office inbox names (see :mod:`kiosk.cloud.translations`): ``<case or study
# uid>.<lang>[.draft].pdf``.
_INBOX_KEY = re.compile(r"^(?P<key>.+?)\.(?:en|zh)(?:\.draft)?\.pdf$", re.IGNORECASE)


def _inbox_files(inbox: Path, case_id: str, pdf_hashes: set[str],
                 study_uids: set[str]) -> list[Path]:
    """Inbox files merged into the case (same bytes) or named after it or its own studies."""
    if not inbox.is_dir():
        return []
    found = []
    for path in inbox.iterdir():
        if not path.is_file() or path.is_symlink():
            continue
        named = _INBOX_KEY.match(path.name)
        if named is not None and (named["key"] == case_id or named["key"] in study_uids):
            found.append(path)
            continue
        try:
            if path.stat().st_size <= MAX_PDF_BYTES and \
                    hashlib.sha256(path.read_bytes()).hexdigest() in pdf_hashes:
                found.append(path)
        except OSError:
            continue  # vanished or unreadable: not ours to judge
    return found


def purge_case(catalog: Catalog, store: BlobStore, case_id: str, *,
               force: bool = False, locations: Locations | None = None) -> PurgeResult:
    """Remove ``case_id``, its unshared blobs and (with ``locations``) its leftover copies.

    Raises
    ------
    UsageError
        No such case, an import into it is still running, or it is not uploaded yet and
        ``force`` is false.
    """
    db = catalog.db
    with db.transaction():
        if catalog.case(case_id) is None:
            raise UsageError(f"There is no case {case_id}.")
        tables = (STUDIES, REPORTS, JOBS, OUTBOX)
        docs = catalog.case_docs(case_id)
        mine = {t: docs.docs(t) for t in tables}
        running = catalog.running_job_ids() & {j["job_id"] for j in mine[JOBS]}
        if running:
            raise UsageError(f"An import into case {case_id} is still running. Let it finish "
                             "(or cancel it), then purge the case.")
        state = upload_state(catalog, store, case_id)
        if not state.uploaded and not force:
            raise UsageError(
                f"Case {case_id} is not uploaded to the office yet: purging it now deletes the "
                "only copy on this kiosk. Confirm the purge explicitly to go ahead.")
        others = _sharing(catalog, case_id, mine)
        candidates = _refs(catalog, store, mine)
        # The manifests of its packages, kept for its short links (one case's own).
        candidates |= {str(e["manifest_blob"]) for e in
                       (catalog.case(case_id) or {}).get("exports", [])
                       if e.get("manifest_blob")}
        shared = candidates & _refs(catalog, store, others)
        other_pdfs = {str(r.get("pdf_sha256")) for r in others[REPORTS]}
        my_pdfs = {str(r["pdf_sha256"]) for r in mine[REPORTS] if r.get("pdf_sha256")}
        other_studies = {s["study_uid"] for s in others[STUDIES]}
        my_studies = {s["study_uid"] for s in mine[STUDIES]} - other_studies
        for table in (*tables, LINKS, CASES):
            db.remove(table, case_id=case_id)
        catalog.forget_jobs(mine[JOBS])
        temps = 0
        if locations is not None:
            # Every database write holds this lock, so no write is half-way: any temp left is
            # an interrupted write's, holding an older copy of the case's (or, in layout 1,
            # the whole database's) records.
            temps += sum(_remove(p) for p in locations.data_dir.glob(
                f".{locations.db_file.name}.*.tmp"))
            case_file = db.paths.case_file(case_id)
            temps += sum(_remove(p) for p in case_file.parent.glob(f".{case_file.name}.*.tmp"))
    deleted = 0
    staging = store.tmp_dir / SMALL_STAGING
    for sha in candidates - shared:
        path = store.path_for(sha)
        if path.exists():
            path.unlink()
            deleted += 1
        if path.parent.is_dir():  # an interrupted write_atomic of this blob (old releases)
            temps += sum(_remove(p) for p in path.parent.glob(f".{sha}.*.tmp"))
        if staging.is_dir():  # ... staged under tmp/.small
            temps += sum(_remove(p) for p in staging.glob(f".{sha}.*.tmp"))
    inbox = 0
    if locations is not None:
        for job in mine[JOBS]:
            temps += _remove(locations.tmp_dir / job["job_id"])
        if locations.tmp_dir.is_dir():
            temps += sum(_remove(p) for p in locations.tmp_dir.glob(
                report_staging_prefix(case_id) + "*"))
        for path in _inbox_files(locations.inbox_dir, case_id, my_pdfs - other_pdfs,
                                 my_studies):
            inbox += _remove(path)
    return PurgeResult(case_id, len(mine[STUDIES]), deleted, len(shared), state.uploaded,
                       temps_removed=temps, inbox_removed=inbox)
