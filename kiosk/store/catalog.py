"""Cases, studies and jobs in the database, with per-instance manifests kept as blobs.

A study is one tinydb document (summary + series table + the hash of its manifest). The manifest
itself, one row per instance, is a JSON blob in the content store: writing a 10,000-instance
study then costs one blob and one small document, not 10,000 documents rewritten each time.
"""

from __future__ import annotations

import bisect
import json
import os
import secrets
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from kiosk.store.blobstore import BlobStore
from kiosk.store.case_index import CaseDocs
from kiosk.store.case_summary import CaseView, public, summary_row
from kiosk.store.database import Database
from kiosk.store.import_split import divide_report
from kiosk.store.summary_listing import newest_first_lines
from kiosk.system.liveness import boot_id, claim_alive

CASES, STUDIES, JOBS = "cases", "studies", "jobs"
#: One document per merged report (original or translation): few per case, so coarse enough.
REPORTS = "reports"
#: One document per issuing hospital: media seen, instances, quirks, rejections (no patient data).
HOSPITALS = "hospitals"
#: How many recent import jobs of one medium are remembered (to resume an interrupted one).
_SOURCE_JOBS = 8


@dataclass(frozen=True, slots=True)
class InstanceRow:
    """One instance in a study manifest."""

    sop_instance_uid: str
    sop_class_uid: str
    study_uid: str
    series_uid: str
    sha256: str
    size: int
    source_path: str
    transfer_syntax: str
    modality: str
    series_number: int | None
    series_description: str
    instance_number: int | None
    verified: bool
    problem: str | None


@dataclass
class MergeResult:
    """What merging one import into a case changed."""

    imported: int = 0
    duplicates: int = 0
    warnings: list[str] | None = None


def now_iso() -> str:
    """Current UTC time, ISO 8601, second precision."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Catalog:
    """Reads and writes cases, studies and jobs."""

    def __init__(self, db: Database, store: BlobStore) -> None:
        self.db = db
        self.store = store
        db.summarise = self._summary_row
        self._view: tuple[Any, CaseView] | None = None
        #: Per index bucket, its settled cases in order; and the index version they are of.
        self._settled: dict[int, list[tuple[float, str]]] = {}
        self._settled_seen: tuple[Any, ...] | None = None

    def _summary_row(self, docs: CaseDocs) -> dict[str, Any] | None:
        return summary_row(docs, self.store)

    # --- cases -----------------------------------------------------------------------------

    @staticmethod
    def new_case_id() -> str:
        """A new case id: date plus 4 unambiguous random characters (``C20261127-7KQM``)."""
        alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
        suffix = "".join(secrets.choice(alphabet) for _ in range(4))
        return f"C{time.strftime('%Y%m%d')}-{suffix}"

    def case(self, case_id: str) -> dict[str, Any] | None:
        """The case document, or None."""
        return self.db.get(CASES, case_id=case_id)

    def cases(self) -> list[dict[str, Any]]:
        """Every case document, newest first (reads every case file: maintenance and tests)."""
        docs = [self.case(row["case_id"]) for row in self.index_rows()]
        return [d for d in docs if d is not None]

    def studies(self, case_id: str) -> list[dict[str, Any]]:
        """The study documents of a case."""
        return sorted(self.db.find(STUDIES, case_id=case_id), key=lambda s: s["study_uid"])

    def case_docs(self, case_id: str) -> CaseDocs:
        """Every record of one case, with one read of its file."""
        return self.db.case_docs(case_id)

    def view(self) -> CaseView:
        """The case index newest first, searchable (:class:`CaseView`), kept while unchanged."""
        return self._view_of(*self.db.index_snapshot())

    def _view_of(self, version: tuple[Any, ...], rows: list[dict[str, Any]]) -> CaseView:
        if self._view is None or self._view[0] != version:
            self._view = (version, CaseView(rows))
        return self._view[1]

    def settled_before(self, cutoff: float) -> list[str]:
        """Cases delivered and uploaded, the later of the two before ``cutoff``, oldest first.

        Each index bucket's cases are kept in that order, and moved when this process changes
        one (:meth:`Database.settled_orders`), so a retention sweep costs a bisection per
        bucket, however many cases the kiosk holds.
        """
        version, changed = self.db.settled_orders(self._settled_seen)
        self._settled.update(changed)
        self._settled_seen = version
        found: list[tuple[float, str]] = []
        for order in self._settled.values():
            if order and order[0][0] <= cutoff:
                found += order[:bisect.bisect_right(order, (cutoff, "\uffff"))]
        return [case_id for _t, case_id in sorted(found)]

    def index_rows(self) -> list[dict[str, Any]]:
        """Every case's index row (:mod:`kiosk.store.case_summary`), newest first."""
        return self.view().rows

    def case_summaries(self, *, limit: int | None = None, since: str | None = None,
                       find: str | None = None, offset: int = 0) -> list[dict[str, Any]]:
        """Case summaries, newest first: patients, counts, bytes and modalities.

        Made from the compact case index, never from the cases' own records.

        Parameters
        ----------
        limit : int, optional
            At most this many (after ``offset``).
        since : str, optional
            Only cases created on or after this date (``YYYY-MM-DD``) or time (ISO 8601).
        find : str, optional
            Only cases whose number, patient id or name (Latin or Chinese), passport name or
            dates contain every word typed (case-insensitive).
        offset : int
            Skip this many of the matching cases first (paging).
        """
        return self.case_page(limit=limit, since=since, find=find, offset=offset)[0]

    def case_page(self, *, limit: int | None = None, since: str | None = None,
                  find: str | None = None, offset: int = 0
                  ) -> tuple[list[dict[str, Any]], int]:
        """``(summaries, total)``: :meth:`case_summaries` and how many match in all.

        One look at the index for both (the desk's Home asks for a page and its count at
        once; each look checks the index buckets' signatures).
        """
        if not find and not since and limit is not None:
            # The newest page (Home): merged from the index buckets' orders, not a sort of
            # every case and a search corpus nobody asked for yet.
            rows, total = self.db.newest_page(offset, limit)
            return [public(row) for row in rows], total
        view = self.view()
        hits = view.found(find)
        if since:
            # Newest first: the rows created on or after ``since`` are a prefix of the view.
            hits = hits[:bisect.bisect_left(hits, view.created_before(since))]
        end = len(hits) if limit is None else min(len(hits), offset + limit)
        return [public(view.rows[i]) for i in hits[offset:end]], len(hits)

    def summary_lines(self, *, since: str | None = None) -> Iterator[bytes]:
        """Every case summary (on or after ``since``), newest first, each one line of JSON
        (UTF-8), for a listing of every case (``kiosk cases --json``).

        The lines are kept in the index as they are printed, so no case is decoded or
        encoded here, and they are spooled, not held (:mod:`kiosk.store.summary_listing`).
        """
        return newest_first_lines(self.db, self.store.tmp_dir, since=since)

    def count_cases(self, *, since: str | None = None, find: str | None = None) -> int:
        """How many cases :meth:`case_summaries` would list without a limit."""
        if not since and not find:
            return len(self.db.index_snapshot()[1])
        return self.case_page(limit=0, since=since, find=find)[1]

    def manifest(self, study: dict[str, Any]) -> list[InstanceRow]:
        """The instance rows of a study document."""
        rows = json.loads(self.store.read_bytes(study["manifest"]))
        return [InstanceRow(**row) for row in rows]

    def merge(
        self,
        case_id: str,
        rows: Iterable[InstanceRow],
        *,
        patients: list[dict[str, str]],
        study_info: dict[str, dict[str, Any]],
        source: dict[str, Any],
        job_id: str,
        complete: bool,
    ) -> MergeResult:
        """Add imported instances to a case, de-duplicating by SOP Instance UID and bytes.

        Same UID and same bytes is a duplicate (counted, kept once). Same UID with different
        bytes keeps both and warns: a hospital re-issued an image and both may matter.
        """
        result = MergeResult(warnings=[])
        by_study: dict[str, list[InstanceRow]] = defaultdict(list)
        for row in rows:
            by_study[row.study_uid].append(row)
        with self.db.transaction():
            case = self.case(case_id) or {
                "case_id": case_id, "created": now_iso(), "created_ts": time.time(),
                "patients": [], "imports": [],
                "sources": [], "status": "incomplete",
            }
            for study_uid, new_rows in by_study.items():
                self._merge_study(case_id, study_uid, new_rows, study_info.get(study_uid, {}),
                                  result)
            known = {(p["patient_id"], p["name"]) for p in case["patients"]}
            case["patients"] += [p for p in patients if (p["patient_id"], p["name"]) not in known]
            case["imports"] = [*case["imports"], job_id]
            case["sources"] = [*case["sources"], source]
            case["updated"] = now_iso()
            studies = self.studies(case_id)
            clean = complete and all(s["verified"] for s in studies)
            case["status"] = "complete" if clean and studies else "incomplete"
            self.db.upsert(CASES, case, case_id=case_id)
        return result

    def _merge_study(self, case_id: str, study_uid: str, new_rows: list[InstanceRow],
                     info: dict[str, Any], result: MergeResult) -> None:
        doc = self.db.get(STUDIES, case_id=case_id, study_uid=study_uid)
        rows = self.manifest(doc) if doc else []
        have = {(r.sop_instance_uid, r.sha256) for r in rows}
        uids = {r.sop_instance_uid for r in rows}
        for row in new_rows:
            if (row.sop_instance_uid, row.sha256) in have:
                result.duplicates += 1
                continue
            if row.sop_instance_uid in uids:
                assert result.warnings is not None
                result.warnings.append(
                    f"{row.source_path}: same SOP Instance UID as another image but different "
                    "bytes; both kept"
                )
            rows.append(row)
            have.add((row.sop_instance_uid, row.sha256))
            uids.add(row.sop_instance_uid)
            result.imported += 1
        manifest = json.dumps([asdict(r) for r in rows], ensure_ascii=False).encode("utf-8")
        series: dict[str, dict[str, Any]] = {}
        for r in rows:
            s = series.setdefault(r.series_uid, {
                "series_uid": r.series_uid, "modality": r.modality, "number": r.series_number,
                "description": r.series_description, "instances": 0, "problems": 0,
            })
            s["instances"] += 1
            s["problems"] += 0 if r.verified else 1
        # Header fields of the first import win: later discs of the same study add images only.
        summary = info | (doc or {}) | {
            "case_id": case_id,
            "study_uid": study_uid,
            "manifest": self.store.put_bytes(manifest),
            "instances": len(rows),
            "bytes": sum(r.size for r in rows),
            "modalities": sorted({r.modality for r in rows if r.modality}),
            "series": sorted(series.values(), key=lambda s: (s["number"] is None, s["number"] or 0,
                                                             s["series_uid"])),
            "verified": all(r.verified for r in rows),
            "updated": now_iso(),
        }
        self.db.upsert(STUDIES, summary, case_id=case_id, study_uid=study_uid)

    def record_export(self, case_id: str, export: dict[str, Any]) -> None:
        """Note a verified export on the case (no passphrase: it is never stored)."""
        with self.db.transaction():
            case = self.case(case_id)
            if case is None:
                return
            exports = [*case.get("exports", []), export]
            self.db.update(CASES, {"exports": exports, "delivered": export["time"]},
                           case_id=case_id)

    def set_identity(self, case_id: str, identity: dict[str, Any]) -> None:
        """Record whom the coordinator confirmed the case belongs to (passport name, birth date)."""
        self.db.update(CASES, {"identity": identity, "updated": now_iso()}, case_id=case_id)

    def record_issuer(self, issuer: dict[str, str], report: dict[str, Any]) -> None:
        """Add one import's counts to its issuer's quality card (``kiosk hospitals``).

        One small document per hospital, updated in place: the cost of an import does not grow
        with the number of hospitals or cases seen.
        """
        name = issuer["issuer"]
        with self.db.transaction():
            card = self.db.get(HOSPITALS, issuer=name) or {
                "issuer": name, "from": issuer["from"], "media": 0, "instances": 0,
                "rejected": 0, "quirks": {}, "first_seen": now_iso()}
            quirks = dict(card["quirks"])
            for quirk in report.get("quirks", []):
                quirks[quirk["code"]] = quirks.get(quirk["code"], 0) + quirk["count"]
            card |= {"media": card["media"] + 1,
                     "instances": card["instances"] + report["instances"]["found"],
                     "rejected": card["rejected"] + len(report.get("rejected", [])),
                     "quirks": quirks, "last_seen": now_iso()}
            self.db.upsert(HOSPITALS, card, issuer=name)

    def hospitals(self) -> list[dict[str, Any]]:
        """Every issuer's quality card, the most media first."""
        return sorted(self.db.find(HOSPITALS), key=lambda h: (-h["media"], h["issuer"]))

    def set_same_person(self, case_id: str, patient_ids: list[str]) -> None:
        """Record the coordinator's confirmation that ``patient_ids`` are one person."""
        self.db.update(CASES, {"same_person": {"patient_ids": sorted(patient_ids),
                                               "confirmed": now_iso()},
                               "updated": now_iso()}, case_id=case_id)

    def split_case(self, case_id: str, patient_ids: Iterable[str]) -> str | None:
        """Move the studies (and their reports) of ``patient_ids`` into a new case.

        For a medium holding several patients: the coordinator keeps the patient in front of
        them in ``case_id`` and the others go to a case of their own, so nobody's images end up
        on somebody else's stick. Returns the new case id, or None when nothing matched.

        The stored import reports are divided too (:mod:`kiosk.store.import_split`): each case's
        names only its own patients, and the new case's parts sit in jobs of its own (kind
        ``split``), so purging either case leaves no name of its patients in the other's.
        """
        moving_ids = set(patient_ids)
        replaced: set[str] = set()
        with self.db.transaction():
            case = self.case(case_id)
            if case is None:
                return None
            moving = [s for s in self.studies(case_id) if s.get("patient_id") in moving_ids]
            if not moving:
                return None
            new_id = self.new_case_id()
            while self.case(new_id) is not None:
                new_id = self.new_case_id()
            now = now_iso()
            uids = {s["study_uid"] for s in moving}
            kept = [s for s in self.studies(case_id) if s["study_uid"] not in uids]
            job_map, replaced = self._split_job_reports(case_id, new_id, moving_ids, moving,
                                                        kept)
            self.db.insert(CASES, {
                "case_id": new_id, "created": now, "created_ts": time.time(), "updated": now,
                "split_from": case_id,
                "patients": [p for p in case["patients"] if p["patient_id"] in moving_ids],
                "imports": list(job_map.values()),
                "sources": [s | {"job_id": job_map[s["job_id"]]}
                            for s in case.get("sources", []) if s.get("job_id") in job_map],
                "status": case.get("status", "incomplete")})
            for uid in uids:
                self.db.update(STUDIES, {"case_id": new_id}, case_id=case_id, study_uid=uid)
            for report in self.reports(case_id):
                if report.get("study_uid") in uids:
                    self.db.update(REPORTS, {"case_id": new_id}, case_id=case_id,
                                   report_id=report["report_id"])
            # The identity, if any, was confirmed for the old set of patients: ask again.
            self.db.update(CASES, {
                "patients": [p for p in case["patients"] if p["patient_id"] not in moving_ids],
                "identity": None, "same_person": None, "updated": now}, case_id=case_id)
        for sha in replaced:  # the undivided reports: nothing refers to them any more
            self.store.path_for(sha).unlink(missing_ok=True)
        return new_id

    def _split_job_reports(self, case_id: str, new_id: str, moving_ids: set[str],
                           moving: list[dict[str, Any]], kept: list[dict[str, Any]],
                           ) -> tuple[dict[str, str], set[str]]:
        """Divide the import reports of ``case_id``'s jobs; give ``new_id`` jobs for its parts.

        Returns the new case's job id for each job of ``case_id`` it took a part of, and the
        hashes of the report blobs no job refers to any more (the caller deletes them once the
        database holds the divided ones).
        """
        moved_paths = [r.source_path for s in moving for r in self.manifest(s)]
        kept_paths = [r.source_path for s in kept for r in self.manifest(s)]
        moved_uids = {s["study_uid"] for s in moving}
        job_map: dict[str, str] = {}
        old: set[str] = set()
        for job in self.db.find(JOBS, case_id=case_id):
            sha = job.get("report")
            if not sha or not self.store.has(sha):
                continue
            mine, theirs = divide_report(
                json.loads(self.store.read_bytes(sha)), moved_patient_ids=moving_ids,
                moved_study_uids=moved_uids, moved_paths=moved_paths, kept_paths=kept_paths,
                new_case_id=new_id)
            if theirs is None:
                continue
            self.db.update(JOBS, {"report": self.store.put_bytes(_report_bytes(mine))},
                           job_id=job["job_id"])
            split_id = f"split-{time.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}"
            self.db.insert(JOBS, job | {
                "job_id": split_id, "kind": "split", "case_id": new_id,
                "split_from": job["job_id"],
                "report": self.store.put_bytes(_report_bytes(theirs))})
            job_map[job["job_id"]] = split_id
            old.add(sha)
        # A report blob names its job, so only the jobs of these two cases can refer to it.
        still = {j.get("report") for j in [*self.db.find(JOBS, case_id=case_id),
                                           *self.db.find(JOBS, case_id=new_id)]}
        return job_map, old - still

    # --- reports ---------------------------------------------------------------------------

    def reports(self, case_id: str) -> list[dict[str, Any]]:
        """The reports of a case, oldest first (contract: see :mod:`kiosk.reports.merger`)."""
        return sorted(self.db.find(REPORTS, case_id=case_id),
                      key=lambda r: (r.get("merged_ts", 0.0), r["report_id"]))

    def find_report(self, **key: Any) -> dict[str, Any] | None:
        """The first report matching every ``key`` field, or None.

        By ``origin`` alone, only the cases whose index row lists that origin are opened.
        """
        if "origin" in key and "case_id" not in key:
            for row in self.index_rows():
                if key["origin"] in row.get("x", {}).get("origins", []):
                    found = self.db.find(REPORTS, case_id=row["case_id"], **key)
                    if found:
                        return found[0]
            return None
        found = self.db.find(REPORTS, **key)
        return found[0] if found else None

    def add_report(self, doc: dict[str, Any]) -> None:
        """Record a merged report (its PDF and DICOM blobs must already be stored)."""
        self.db.insert(REPORTS, doc)

    # --- jobs ------------------------------------------------------------------------------

    def start_job(self, kind: str, **fields: Any) -> str:
        """Persist a job as running before its work starts; return its id."""
        job_id = f"{kind}-{time.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}"
        with self.db.transaction():
            self.db.insert(JOBS, {
                "job_id": job_id, "kind": kind, "state": "running", "pid": os.getpid(),
                "boot_id": boot_id(), "started": now_iso(), **fields,
            })
            if isinstance(fields.get("source"), str):
                # The medium's recent jobs, so resuming an interrupted import opens one case.
                note = f"source:{kind}:{fields['source']}"
                self.db.set_note(note, [*(self.db.note(note) or [])[-_SOURCE_JOBS + 1:],
                                        job_id])
        return job_id

    def forget_jobs(self, jobs: list[dict[str, Any]]) -> None:
        """Drop ``jobs`` (a purged case's) from their media's lists of recent jobs."""
        with self.db.transaction():
            for kind, source in {(j.get("kind"), j.get("source")) for j in jobs
                                 if isinstance(j.get("source"), str)}:
                note = f"source:{kind}:{source}"
                ids = self.db.note(note)
                if not ids:
                    continue
                gone = {j["job_id"] for j in jobs}
                if any(i in gone for i in ids):
                    self.db.set_note(note, [i for i in ids if i not in gone])

    def finish_job(self, job_id: str, state: str, **fields: Any) -> None:
        """Record a job's end state (complete, incomplete, failed, cancelled)."""
        self.db.update(JOBS, {"state": state, "finished": now_iso(), **fields}, job_id=job_id)

    def job(self, job_id: str) -> dict[str, Any] | None:
        """The job document, or None."""
        return self.db.get(JOBS, job_id=job_id)

    def jobs(self, **key: Any) -> list[dict[str, Any]]:
        """Jobs matching ``key``, oldest first.

        With ``kind`` and ``source`` (and no case), only that medium's recent jobs are read.
        """
        if "source" in key and "kind" in key and "case_id" not in key:
            ids = self.db.note(f"source:{key['kind']}:{key['source']}") or []
            # Located only: a job of a purged case is gone, not looked for in every case.
            found = [self.db.get_located(JOBS, i) for i in ids]
            docs = [d for d in found if d is not None and all(
                d.get(k) == v for k, v in key.items())]
        else:
            docs = self.db.find(JOBS, **key)
        return sorted(docs, key=lambda j: j["started"])

    def running_job_ids(self) -> set[str]:
        """Ids of jobs whose process is still alive."""
        return {j["job_id"] for j in self.db.find_active(JOBS, state="running")
                if claim_alive(j.get("boot_id"), int(j.get("pid", 0)))}

    def mark_interrupted(self) -> list[str]:
        """Mark jobs left 'running' by a dead process (power cut, kill -9) as interrupted."""
        stale: list[str] = []
        with self.db.transaction():
            self.db.repair_active(JOBS)
            alive = self.running_job_ids()
            for job in self.db.find_active(JOBS, state="running"):
                if job["job_id"] not in alive:
                    where = {"case_id": job["case_id"]} \
                        if isinstance(job.get("case_id"), str) else {}
                    self.db.update(JOBS, {"state": "interrupted", "finished": now_iso(),
                                          "error": "the kiosk stopped during this job"},
                                   job_id=job["job_id"], **where)
                    stale.append(job["job_id"])
        return stale


def _report_bytes(report: dict[str, Any]) -> bytes:
    """An import report as stored (the importer's own encoding)."""
    return json.dumps(report, ensure_ascii=False, sort_keys=True).encode("utf-8")
