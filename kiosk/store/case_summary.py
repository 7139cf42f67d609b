"""A case's index row: its summary (``kiosk cases --json``), what finds it, what others ask of it.

The row is made from the case's own file whenever it changes
(:attr:`kiosk.store.database.Database.summarise`), so listing, finding, retention and sync
planning read one compact row per case instead of every case's records. The public part is
exactly the summary ``kiosk cases --json`` has always printed (:data:`SUMMARY_KEYS`); the rest
sits under ``x``:

``search``       lower-case text a coordinator may type: case number, patient ids and names
                 (Latin and Chinese, ``^`` read as a space), passport name, dates
                 (``2026-12-07`` and ``20261207``)
``study_uids``   the case's studies (purge: which other cases may share images)
``pdfs``         report PDF hashes (purge: shared reports); ``origins``: where reports came from
``upload``       ``uploaded``, ``finished``, ``missing``: the retention question, answered
``settled``      epoch of the later of delivery and upload (None until both happened)
``done``         finished upload jobs per destination
``upload_sig``   changes whenever what the outbox would send changes (sync planning)
``planned``      the ``upload_sig`` the outbox last planned, per destination
"""

from __future__ import annotations

import bisect
import calendar
import hashlib
import json
import re
import time
from collections import OrderedDict
from typing import Any

from kiosk.store.blobstore import BlobStore
from kiosk.store.case_index import SUMMARY_KEYS, CaseDocs, public

__all__ = ["SUMMARY_KEYS", "CaseView", "matches", "newest_first", "public", "summary_row"]


def _dates(value: Any) -> list[str]:
    text = str(value or "")
    digits = text[:10].replace("-", "")
    if len(digits) == 8 and digits.isdigit():
        return [digits, f"{digits[:4]}-{digits[4:6]}-{digits[6:]}"]
    return []


def search_text(case: dict[str, Any], studies: list[dict[str, Any]]) -> str:
    """Everything a coordinator may type to find the case, lower case, one item a line."""
    items = [str(case.get("case_id", ""))]
    for p in case.get("patients", []):
        items += [str(p.get(k) or "") for k in ("patient_id", "name", "name_display")]
    identity = case.get("identity") or {}
    items += [str(identity.get("passport_name") or ""), str(identity.get("birth_date") or "")]
    for s in studies:
        items += [str(s.get(k) or "") for k in ("patient_name", "patient_name_display")]
        items += _dates(s.get("study_date"))
    items += _dates(case.get("created"))
    text = "\n".join(i for i in items if i).lower()
    return text + "\n" + text.replace("^", " ").replace("=", " ")


def _words(find: str) -> list[str]:
    return find.lower().replace("/", "-").replace(".", "-").split()


def matches(row: dict[str, Any], find: str) -> bool:
    """Whether every word of ``find`` occurs in the row's search text (case-insensitive)."""
    text = row.get("x", {}).get("search", "")
    return all(w in text for w in _words(find))


def epoch(iso: str | None) -> float | None:
    """Seconds since the epoch of a ``now_iso()`` timestamp, or None."""
    if not iso:
        return None
    try:
        return float(calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None


def newest_first(row: dict[str, Any]) -> tuple[str, float, str]:
    """The sort key of index rows, newest last (sort with ``reverse=True``).

    Within one second, the order they were made in (cases of layout 1: by number).
    """
    return (row.get("created") or "", row.get("x", {}).get("created_ts") or 0.0,
            row["case_id"])


class CaseView:
    """The index rows newest first, searchable as you type.

    Built once per version of the index (:meth:`kiosk.store.database.Database.index_snapshot`)
    and kept while nothing changes, so a keystroke or a page costs a search in one string, not
    a pass over Python objects per case.
    """

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = sorted(rows, reverse=True, key=newest_first)
        texts = [r.get("x", {}).get("search", "").replace("\0", " ") for r in self.rows]
        self._corpus = "\0".join(texts)
        self._starts = []
        at = 0
        for text in texts:
            self._starts.append(at)
            at += len(text) + 1

    def created_before(self, since: str) -> int:
        """The first position (newest first) of a row created before ``since``."""
        lo, hi = 0, len(self.rows)
        while lo < hi:
            mid = (lo + hi) // 2
            if (self.rows[mid].get("created") or "") >= since:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def found(self, find: str | None) -> list[int]:
        """Positions (newest first) of the rows holding every word of ``find``."""
        words = _words(find or "")
        if not words:
            return list(range(len(self.rows)))
        hits: set[int] | None = None
        for word in sorted(words, key=len, reverse=True):
            rows = {bisect.bisect_right(self._starts, m.start()) - 1
                    for m in re.finditer(re.escape(word), self._corpus)}
            hits = rows if hits is None else hits & rows
            if not hits:
                return []
        return sorted(hits or ())


class _Parsed:
    """The last few small JSON blobs parsed into sets, by hash.

    A blob never changes under its hash, so an upload's item list or a study's manifest is
    parsed once, not again on every write to its case (claiming a job, a progress save): the
    index row's upload state would otherwise cost more the more jobs a case has run.
    """

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._sets: OrderedDict[tuple[str, str], frozenset[str]] = OrderedDict()

    def get(self, store: BlobStore, sha256: str, kind: str) -> frozenset[str]:
        """``sent`` (the SOP UIDs of an item list) or ``verified`` (a manifest's) of a blob."""
        key = (str(store.blobs_dir), f"{kind}:{sha256}")
        found = self._sets.get(key)
        if found is None:
            rows = json.loads(store.read_bytes(sha256))
            found = frozenset(sop for sop, _sha in rows) if kind == "sent" else frozenset(
                r["sop_instance_uid"] for r in rows if r.get("verified"))
            self._sets[key] = found
            if len(self._sets) > self.size:
                self._sets.popitem(last=False)
        else:
            self._sets.move_to_end(key)
        return found


_PARSED = _Parsed()


def _upload_items(outbox: list[dict[str, Any]], store: BlobStore) -> set[str]:
    sent: set[str] = set()
    for job in outbox:
        if job.get("items") and store.has(job["items"]):
            sent |= _PARSED.get(store, job["items"], "sent")
    return sent


def upload_summary(studies: list[dict[str, Any]], reports: list[dict[str, Any]],
                   outbox: list[dict[str, Any]], store: BlobStore) -> dict[str, Any]:
    """Whether the office's server has everything of a case the kiosk would send.

    ``uploaded``: there is a finished job and every verified instance and every report to
    upload is in a finished job's items; ``finished``: when the last one ended; ``missing``:
    how many are not (None when nothing was uploaded: the manifests are not read then).
    """
    # Uploads only: a short link's registration at the gateway sends no image.
    done = [j for j in outbox if j.get("state") == "done"
            and j.get("kind", "upload_study") == "upload_study"]
    finished = max((str(j.get("finished") or j.get("updated") or "") for j in done),
                   default="") or None
    if not done:
        return {"uploaded": False, "finished": None, "missing": None}
    sent = _upload_items(done, store)
    wanted: set[str] = set()
    for study in studies:
        wanted |= _PARSED.get(store, study["manifest"], "verified")
    wanted |= {str(r["sop_instance_uid"]) for r in reports
               if r.get("upload") and r.get("dicom_sha256") and r.get("study_uid")
               and r.get("sop_instance_uid")}
    missing = len(wanted - sent)
    return {"uploaded": missing == 0, "finished": finished, "missing": missing}


def upload_signature(studies: list[dict[str, Any]], reports: list[dict[str, Any]]) -> str:
    """Changes whenever the studies' manifests or the reports to upload change."""
    parts = sorted(f"{s['study_uid']}|{s.get('manifest')}" for s in studies)
    parts += sorted(f"{r.get('study_uid')}|{r.get('sop_instance_uid')}|{r.get('dicom_sha256')}"
                    for r in reports if r.get("upload") and r.get("dicom_sha256"))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def summary_row(docs: CaseDocs, store: BlobStore) -> dict[str, Any] | None:
    """The index row of one case (None when the case document is gone)."""
    case = docs.first("cases")
    if case is None:
        return None
    studies = sorted(docs.docs("studies"), key=lambda s: s["study_uid"])
    reports = docs.docs("reports")
    outbox = docs.docs("outbox")
    upload = upload_summary(studies, reports, outbox, store)
    delivered = epoch(case.get("delivered"))
    finished = epoch(upload["finished"]) if upload["uploaded"] else None
    settled = max(delivered, finished) if delivered is not None and finished is not None \
        else None
    done: dict[str, int] = {}
    for job in outbox:
        if job.get("state") == "done":
            done[job.get("destination", "")] = done.get(job.get("destination", ""), 0) + 1
    return {
        "case_id": case["case_id"],
        "status": case.get("status", "incomplete"),
        "delivered": case.get("delivered"),
        "created": case.get("created"),
        "updated": case.get("updated"),
        "patients": case.get("patients", []),
        "studies": len(studies),
        "instances": sum(s["instances"] for s in studies),
        "bytes": sum(s["bytes"] for s in studies),
        "modalities": sorted({m for s in studies for m in s.get("modalities", [])}),
        "x": {
            "search": search_text(case, studies),
            "created_ts": case.get("created_ts"),
            "study_uids": [s["study_uid"] for s in studies],
            "pdfs": sorted({str(r["pdf_sha256"]) for r in reports if r.get("pdf_sha256")}),
            "origins": sorted({str(r["origin"]) for r in reports if r.get("origin")}),
            "report_sops": sorted({str(r["sop_instance_uid"]) for r in reports
                                   if r.get("sop_instance_uid")}),
            "upload": upload,
            # Delivered and uploaded: when the later of the two happened (retention's clock).
            "settled": settled,
            "done": done,
            "upload_sig": upload_signature(studies, reports),
            "planned": case.get("planned") or {},
        },
    }
