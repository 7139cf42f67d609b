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

from kiosk.cloud.outbox import DONE, OUTBOX
from kiosk.errors import UsageError
from kiosk.links.case_links import LINKS
from kiosk.reports.merger import MAX_PDF_BYTES
from kiosk.store.blobstore import BlobStore
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
    done = [j for j in catalog.db.find(OUTBOX, case_id=case_id) if j.get("state") == DONE]
    sent: set[str] = set()
    for job in done:
        if job.get("items") and store.has(job["items"]):
            sent |= {sop for sop, _sha in json.loads(store.read_bytes(job["items"]))}
    wanted = {row.sop_instance_uid for study in catalog.studies(case_id)
              for row in catalog.manifest(study) if row.verified}
    wanted |= {str(r["sop_instance_uid"]) for r in catalog.reports(case_id)
               if r.get("upload") and r.get("dicom_sha256") and r.get("study_uid")
               and r.get("sop_instance_uid")}
    missing = len(wanted - sent)
    finished = max((str(j.get("finished") or j.get("updated") or "") for j in done),
                   default="") or None
    return UploadState(uploaded=bool(done) and missing == 0, finished=finished,
                       missing=missing)


def report_staging_prefix(case_id: str) -> str:
    """Folder prefix under ``tmp/`` for report PDFs of ``case_id`` staged from a medium.

    A hash, not the case id itself: case ids come from the command line and may hold any
    character; the tag still lets a purge find the case's leftovers after a crash.
    """
    return f"report-{hashlib.sha256(case_id.encode()).hexdigest()[:16]}-"


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
        mine = {t: db.find(t, case_id=case_id) for t in tables}
        running = catalog.running_job_ids() & {j["job_id"] for j in mine[JOBS]}
        if running:
            raise UsageError(f"An import into case {case_id} is still running. Let it finish "
                             "(or cancel it), then purge the case.")
        state = upload_state(catalog, store, case_id)
        if not state.uploaded and not force:
            raise UsageError(
                f"Case {case_id} is not uploaded to the office yet: purging it now deletes the "
                "only copy on this kiosk. Confirm the purge explicitly to go ahead.")
        others = {t: [d for d in db.find(t) if d.get("case_id") != case_id] for t in tables}
        candidates = _refs(catalog, store, mine)
        shared = candidates & _refs(catalog, store, others)
        other_pdfs = {str(r.get("pdf_sha256")) for r in others[REPORTS]}
        my_pdfs = {str(r["pdf_sha256"]) for r in mine[REPORTS] if r.get("pdf_sha256")}
        other_studies = {s["study_uid"] for s in others[STUDIES]}
        my_studies = {s["study_uid"] for s in mine[STUDIES]} - other_studies
        for table in (*tables, LINKS, CASES):
            db.remove(table, case_id=case_id)
        temps = 0
        if locations is not None:
            # Every database write holds this lock, so no write is half-way: any temp left is
            # an interrupted write's, holding an older copy of the whole database.
            temps += sum(_remove(p) for p in locations.data_dir.glob(
                f".{locations.db_file.name}.*.tmp"))
    deleted = 0
    for sha in candidates - shared:
        path = store.path_for(sha)
        if path.exists():
            path.unlink()
            deleted += 1
        if path.parent.is_dir():  # an interrupted write_atomic of this blob
            temps += sum(_remove(p) for p in path.parent.glob(f".{sha}.*.tmp"))
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
