"""One sync round: inbox, upload planning, uploads, translation pulls, connection status.

A round (:meth:`Syncer.run_once`) is safe to run at any time, from the app's background loop
or from ``kiosk sync`` beside it (claims are made under the database lock), and any number of
times: it plans what is not yet planned, uploads what is due and merges what is new.

Connection status for the UI: ``online`` (the last contact worked), ``offline`` (unreachable;
the next contact waits with exponential backoff and jitter), ``error`` (login or certificate
refused, or the URL is not a DICOMweb root: nothing is sent until the settings change or the
coordinator asks to retry), ``disabled`` (no cloud URL configured: the inbox still works).
"""

from __future__ import annotations

import calendar
import hashlib
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kiosk.cloud.outbox import (
    DONE,
    FAILED,
    UPLOAD,
    Outbox,
    backoff_delay,
)
from kiosk.cloud.protocol import Cloud, CloudError
from kiosk.cloud.share_sender import ShareSender
from kiosk.cloud.translations import CaseScope, DicomWebSource, InboxSource, TranslationSource
from kiosk.cloud.uploader import ProgressCallback, SyncProgress, Uploader
from kiosk.config import CloudSettings, SyncSettings
from kiosk.errors import UsageError
from kiosk.reports.merger import ReportMerger
from kiosk.security.audit import AuditLog
from kiosk.store.blobstore import BlobStore
from kiosk.store.catalog import CASES, REPORTS, STUDIES, Catalog, now_iso

SYNC = "sync"
DISABLED, ONLINE, OFFLINE, ERROR = "disabled", "online", "offline", "error"


def credentials_fingerprint(cloud: CloudSettings) -> str:
    """A short hash of the cloud settings: jobs refused under it wait until it changes."""
    text = "\x1f".join((cloud.url, cloud.user, cloud.password, cloud.token, cloud.ca_bundle))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _iso(epoch: float | None) -> str | None:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)) if epoch else None


def _epoch(iso: str | None) -> float:
    try:
        return float(calendar.timegm(time.strptime(iso or "", "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return 0.0


@dataclass(frozen=True)
class SyncStatus:
    """What the UI shows about the cloud (``service.sync_status()``)."""

    state: str  # disabled | online | offline | error
    message: str
    destination: str
    last_success: str | None
    retry_at: str | None
    #: Outbox jobs per state (pending, in_flight, retry, failed, done).
    jobs: dict[str, int]
    #: Inbox files that match no case (misnamed or for a case not on this kiosk).
    unmatched_inbox: tuple[str, ...] = ()

    @property
    def online(self) -> bool:
        """Whether the last contact with the cloud worked."""
        return self.state == ONLINE


@dataclass
class SyncReport:
    """What one round did."""

    status: SyncStatus
    uploaded: list[str] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    merged: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


class Syncer:
    """Runs sync rounds for one kiosk against one cloud (or none).

    Parameters
    ----------
    catalog, store, outbox, merger
        The kiosk's data and the report merger.
    settings : SyncSettings
        Batching, backoff, attempts, pull window.
    inbox : InboxSource
        The office inbox (always looked at, online or not).
    cloud : Cloud or None
        The office's server; None when no URL is configured.
    credentials : str
        :func:`credentials_fingerprint` of the settings in use.
    """

    def __init__(self, catalog: Catalog, store: BlobStore, outbox: Outbox,
                 merger: ReportMerger, settings: SyncSettings, inbox: InboxSource,
                 cloud: Cloud | None, *, credentials: str = "", audit: AuditLog | None = None,
                 clock: Callable[[], float] = time.time,
                 rng: random.Random | None = None) -> None:
        self.catalog = catalog
        self.store = store
        self.outbox = outbox
        self.merger = merger
        self.settings = settings
        self.inbox = inbox
        self.cloud = cloud
        self.credentials = credentials
        self.audit = audit
        self.clock = clock
        self.rng = rng or random.Random()
        self._lock = threading.Lock()  # one round at a time in this process

    @property
    def destination(self) -> str:
        """The cloud's DICOMweb root, or "" without one."""
        return self.cloud.destination if self.cloud is not None else ""

    def uploaded_instances(self, case_id: str) -> set[str]:
        """SOP Instance UIDs of ``case_id`` that finished uploading to the configured cloud."""
        uploaded: set[str] = set()
        if self.cloud is not None:
            for job in self.outbox.jobs(case_id=case_id, state="done",
                                        destination=self.destination, kind=UPLOAD):
                uploaded |= {sop for sop, _sha in self.outbox.items(job)}
        return uploaded

    # --- short links at the office gateway ---------------------------------------------------

    def queue_share(self, *, case_id: str, share_id: str, token: str, token_id: str,
                    passcode: str | None) -> str | None:
        """Queue a short link's registration at the gateway; None without a cloud."""
        if self.cloud is None:
            return None
        return self.outbox.enqueue_share(destination=self.destination, case_id=case_id,
                                         share_id=share_id, token=token, token_id=token_id,
                                         passcode=passcode)

    def queue_revoke(self, *, case_id: str, share_id: str, token_id: str) -> str | None:
        """Queue a short link's revocation at the gateway; None without a cloud."""
        if self.cloud is None:
            return None
        return self.outbox.enqueue_revoke(destination=self.destination, case_id=case_id,
                                          share_id=share_id, token_id=token_id)

    # --- persisted connection state ---------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        doc = self.catalog.db.get(SYNC, key="state") or {}
        if doc.get("destination") != self.destination:
            # A new destination starts fresh; remembered skips stay (they are about reports).
            doc = {"skipped": doc.get("skipped", {}), "unmatched": doc.get("unmatched", [])}
        return {"key": "state", "destination": self.destination, "state": OFFLINE,
                "message": "not contacted yet", "failures": 0, "retry_at": 0.0,
                "last_success": None, "refused": None, "skipped": {}, "unmatched": []} | doc

    def _save_state(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        # Only write when something changed: every tinydb write rewrites the whole file.
        if before != after:
            self.catalog.db.upsert(SYNC, after, key="state")

    def status(self) -> SyncStatus:
        """The connection status and outbox counts, as stored by the last round."""
        st = self._state()
        if self.cloud is None:
            state, message = DISABLED, "No cloud configured (cloud.url); the inbox still works."
        else:
            state, message = st["state"], st["message"]
        return SyncStatus(
            state=state, message=message, destination=self.destination,
            last_success=st["last_success"], retry_at=_iso(st["retry_at"]),
            jobs=self.outbox.counts(self.destination) if self.cloud is not None else {},
            unmatched_inbox=tuple(st["unmatched"]))

    def seconds_until_next(self) -> float:
        """How long the background loop may sleep before the next round is useful."""
        wait = float(self.settings.interval_seconds)
        if self.cloud is None:
            return wait
        st = self._state()
        now = self.clock()
        if st["state"] == OFFLINE and st["retry_at"]:
            return max(0.0, min(wait, st["retry_at"] - now))
        due = self.outbox.next_due(self.destination)
        if due is not None and st["state"] == ONLINE:
            wait = min(wait, due - now)
        return max(0.0, wait)

    def retry_failed(self) -> int:
        """The coordinator's "retry now": failed jobs back to pending, contact allowed again."""
        before = self._state()
        after = before | {"refused": None, "retry_at": 0.0, "failures": 0}
        self._save_state(before, after)
        return self.outbox.revive(self.destination) if self.cloud is not None else 0

    # --- a round ----------------------------------------------------------------------------

    def run_once(self, on_progress: ProgressCallback | None = None,
                 cancel: threading.Event | None = None) -> SyncReport:
        """Inbox, planning, uploads and DICOMweb pulls, as far as the connection allows."""
        with self._lock:
            before = self._state()
            st = dict(before)
            report = SyncReport(status=self.status())
            scopes = self._scopes()
            self._pull(self.inbox, scopes, st, report)
            if self.cloud is not None:
                self._cloud_round(self.cloud, scopes, st, report, on_progress, cancel)
            self._save_state(before, st)
            report.status = self.status()
            return report

    def _cloud_round(self, cloud: Cloud, scopes: list[CaseScope], st: dict[str, Any],
                     report: SyncReport, on_progress: ProgressCallback | None,
                     cancel: threading.Event | None) -> None:
        self.outbox.recover()
        if st["refused"] is not None and st["refused"] != self.credentials:
            st |= {"refused": None, "retry_at": 0.0, "failures": 0}  # settings were changed
        self.outbox.revive(self.destination, credentials=self.credentials,
                           kinds=("auth", "tls"))
        self.plan()
        now = self.clock()
        if st["refused"] == self.credentials:
            return  # a refused login is not retried with the same settings
        if st["retry_at"] and now < st["retry_at"]:
            return  # offline: wait for the backoff to pass
        uploader = Uploader(self.outbox, self.store, cloud, self.settings, self.rng,
                            credentials=self.credentials)
        shares = ShareSender(self.outbox, self.store, self.catalog, cloud, uploader, self.audit)
        try:
            cloud.ping()
            while not (cancel is not None and cancel.is_set()):
                job = self.outbox.claim_next(self.destination)
                if job is None:
                    break
                if job.get("kind", UPLOAD) == UPLOAD:
                    self._upload(uploader, job, report, on_progress, cancel)
                elif shares.run(job) == FAILED:
                    report.failed.append({"job_id": job["job_id"],
                                          "error": (self.outbox.job(job["job_id"]) or job)
                                          .get("last_error")})
            self._pull(DicomWebSource(cloud, self.settings.pull_days), scopes, st, report)
        except CloudError as exc:
            self._contact_failed(exc, st)
            return
        st |= {"state": ONLINE, "message": f"Connected to {self.destination}.", "failures": 0,
               "retry_at": 0.0, "last_success": now_iso()}

    def _contact_failed(self, exc: CloudError, st: dict[str, Any]) -> None:
        if exc.transient:
            failures = int(st["failures"]) + 1
            delay = backoff_delay(failures, self.settings.backoff_base_seconds,
                                  self.settings.backoff_max_seconds, self.rng)
            st |= {"state": OFFLINE, "message": exc.text, "failures": failures,
                   "retry_at": self.clock() + delay}
            return
        self.outbox.fail_waiting(self.destination, exc.text, exc.kind, self.credentials)
        st |= {"state": ERROR, "message": f"{exc.title}: {exc.text}",
               "refused": self.credentials, "retry_at": 0.0}

    def _upload(self, uploader: Uploader, job: dict[str, Any], report: SyncReport,
                on_progress: Callable[[SyncProgress], None] | None,
                cancel: threading.Event | None) -> None:
        try:
            state = uploader.run(job, on_progress=on_progress, cancel=cancel)
        finally:
            done = self.outbox.job(job["job_id"]) or job
            if done["state"] in (DONE, FAILED) and self.audit is not None:
                self.audit.append("upload", job_id=job["job_id"], case_id=job["case_id"],
                                  study_uid=job["study_uid"], state=done["state"],
                                  instances=job["total"], destination=self.destination)
        if state == DONE:
            report.uploaded.append(job["job_id"])
        elif state == FAILED:
            report.failed.append({"job_id": job["job_id"], "error": done.get("last_error")})

    # --- planning ---------------------------------------------------------------------------

    def plan(self) -> list[str]:
        """Enqueue an upload for every study (and its reports) not yet covered; return ids.

        Only cases whose uploadable content changed since the last plan for this destination
        are opened (the case index keeps both signatures), so a round costs the new work, not
        the history. Items already in an earlier job for the same study are left out, so a
        second disc of the same study uploads only its new images.
        """
        if self.cloud is None:
            return []
        created: list[str] = []
        for row in self.catalog.index_rows():
            extra_info = row.get("x", {})
            signature = extra_info.get("upload_sig")
            planned = extra_info.get("planned", {})
            if signature is not None and planned.get(self.destination) == signature:
                continue
            created += self._plan_case(row["case_id"])
            with self.catalog.db.transaction():
                case = self.catalog.case(row["case_id"])
                if case is not None:
                    self.catalog.db.update(CASES, {"planned": (case.get("planned") or {}) | {
                        self.destination: signature}}, case_id=row["case_id"])
        return created

    def _plan_case(self, case_id: str) -> list[str]:
        docs = self.catalog.case_docs(case_id)
        jobs: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for job in docs.docs("outbox"):
            if job.get("destination") == self.destination and job.get("kind", UPLOAD) == UPLOAD:
                jobs[job["study_uid"]].append(job)
        reports: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in docs.docs(REPORTS):
            if r.get("upload") and r.get("dicom_sha256") and r.get("study_uid"):
                reports[r["study_uid"]].append(r)
        created = []
        for study in sorted(docs.docs(STUDIES), key=lambda s: s["study_uid"]):
            key = study["study_uid"]
            extra = sorted((r["sop_instance_uid"], r["dicom_sha256"]) for r in reports[key])
            fingerprint = hashlib.sha256(
                (study["manifest"] + "|" + ",".join(sha for _, sha in extra)).encode()
            ).hexdigest()
            if any(j["fingerprint"] == fingerprint for j in jobs[key]):
                continue
            covered = {sop for j in jobs[key] for sop, _sha in self.outbox.items(j)}
            items: list[tuple[str, str]] = []
            seen: set[str] = set(covered)
            skipped = 0
            for row in self.catalog.manifest(study):
                if not row.verified:
                    skipped += 1  # a copy that failed verification is not sent as the original
                elif row.sop_instance_uid not in seen:
                    items.append((row.sop_instance_uid, row.sha256))
                    seen.add(row.sop_instance_uid)
            items += [(sop, sha) for sop, sha in extra if sop not in seen]
            created.append(self.outbox.enqueue_upload(
                destination=self.destination, case_id=case_id,
                study_uid=study["study_uid"], items=items, fingerprint=fingerprint,
                skipped=skipped))
        return created

    # --- translations -----------------------------------------------------------------------

    def _scopes(self) -> list[CaseScope]:
        scopes = []
        for row in self.catalog.index_rows():  # the case index: no case file is opened here
            extra = row.get("x", {})
            scopes.append(CaseScope(
                case_id=row["case_id"],
                study_uids=tuple(sorted(extra.get("study_uids", []))),
                owns=self._owner(row["case_id"], set(extra.get("report_sops", []))),
                updated=_epoch(row.get("updated") or row.get("created"))))
        return scopes

    def _owner(self, case_id: str, created: set[str]) -> Callable[[str], bool]:
        """Is this SOP Instance UID one the kiosk imported or created? Manifests load lazily."""
        imported: set[str] | None = None

        def owns(sop_uid: str) -> bool:
            nonlocal imported
            if sop_uid in created:
                return True
            if imported is None:
                imported = {row.sop_instance_uid for s in self.catalog.studies(case_id)
                            for row in self.catalog.manifest(s)}
            return sop_uid in imported

        return owns

    def _pull(self, source: TranslationSource, scopes: list[CaseScope], st: dict[str, Any],
              report: SyncReport) -> None:
        seen = {o for row in self.catalog.index_rows() for o in row.get("x", {}).get("origins", [])}
        seen |= set(st["skipped"])
        poll = source.poll(scopes, seen)
        if source.name == "inbox":
            st["unmatched"] = sorted(poll.unmatched)
        if poll.skipped:
            st["skipped"] = {**st["skipped"], **poll.skipped}
            report.skipped.update(poll.skipped)
        for offer in poll.offers:
            try:
                merged, created = self.merger.merge(offer)
            except UsageError as exc:
                st["skipped"] = {**st["skipped"], offer.origin: exc.text}
                report.skipped[offer.origin] = exc.text
                continue
            if created:
                report.merged.append(merged)
                if self.audit is not None:
                    self.audit.append("report_merged", report_id=merged["report_id"],
                                      case_id=merged["case_id"], source=merged["source"],
                                      language=merged["language"], role=merged["role"],
                                      pdf_sha256=merged["pdf_sha256"],
                                      sop_instance_uid=merged["sop_instance_uid"])


def report_states(reports: list[dict[str, Any]], uploaded: set[str]) -> list[dict[str, Any]]:
    """The original (zh) and the translation (en) among ``reports``: missing, pending or synced.

    ``missing``: the kiosk has none. ``pending``: the kiosk has it (it goes onto the patient's
    stick) but the cloud does not yet. ``synced``: it came from the cloud, or its instance is
    among ``uploaded``. Each entry: ``role``, ``language``, ``state``, ``reports``.
    """
    out = []
    for role, language in (("original", "zh"), ("translation", "en")):
        mine = [r for r in reports if r["role"] == role]
        synced = [r for r in mine
                  if r["source"] == "dicomweb" or r.get("sop_instance_uid") in uploaded]
        state = "missing" if not mine else "synced" if synced else "pending"
        out.append({"role": role, "language": language, "state": state, "reports": mine})
    return out
