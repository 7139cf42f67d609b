"""The durable outbox: upload jobs that survive power cuts, crashes and days offline.

Storage: one tinydb document per job in the ``outbox`` table, in the file of the job's case
(the database is atomic and shared with the CLI through a file lock). Jobs not yet done are
mirrored in the small global file (:meth:`kiosk.store.database.Database.find_active`), so
choosing the next job, counting and recovering never open the cases: their cost follows the
jobs waiting, not the uploads ever made. A job is "upload these instances of study X of
case Y to destination D"; its instance list is a content-addressed JSON blob written *before*
the job document, so the document stays small whatever the study size. Per-instance results
are summarised: a cursor into the list, a count, and the failures (few) by SOP Instance UID.

States::

    pending ──claim──▶ in_flight ──▶ done
       ▲                  │  ├─────▶ retry ──(next_attempt reached)──▶ in_flight ...
       │                  │  └─────▶ failed   (permanent: refused login/certificate, instances
       └──(owner died)────┘                     refused for good, or too many rounds)

A claim records the owner (pid and boot id); a job left ``in_flight`` by a process that is gone
(kill -9, power cut) goes back to ``pending`` with its cursor, so it resumes where it was.
Re-sending the last batch after a crash is harmless: STOW-RS is idempotent by SOP Instance UID.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

from kiosk.store.blobstore import BlobStore
from kiosk.store.catalog import now_iso
from kiosk.store.database import Database
from kiosk.system.liveness import boot_id, claim_alive

OUTBOX = "outbox"
#: Job kinds: a study's upload, and a short link's registration or revocation at the gateway.
UPLOAD, SHARE, REVOKE_SHARE = "upload_study", "share", "revoke_share"
PENDING, IN_FLIGHT, DONE, RETRY, FAILED = "pending", "in_flight", "done", "retry", "failed"
STATES = (PENDING, IN_FLIGHT, RETRY, FAILED, DONE)


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait before retry number ``attempt`` (1, 2, ...): exponential, with jitter.

    "Equal jitter": half of the exponential delay is fixed, half random. The fixed half keeps a
    minimum spacing (no hammering a struggling server); the random half spreads the kiosks of
    an office that all lost the network at once so they do not come back in lock-step.
    """
    delay = min(cap, base * (2 ** max(0, attempt - 1)))
    return delay / 2 + rng.uniform(0, delay / 2)


class Outbox:
    """Upload jobs in the database.

    Parameters
    ----------
    db : Database
        The kiosk database.
    store : BlobStore
        Where item lists are kept.
    clock : callable, optional
        Seconds since the epoch (tests pass a fake clock).
    """

    def __init__(self, db: Database, store: BlobStore,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.store = store
        self.clock = clock
        self._boot = boot_id()

    # --- creating jobs ------------------------------------------------------------------------

    def enqueue_upload(self, *, destination: str, case_id: str, study_uid: str,
                       items: list[tuple[str, str]], fingerprint: str,
                       skipped: int = 0) -> str:
        """Persist a pending upload of ``items`` (``(sop_instance_uid, sha256)``); return its id.

        The item list is made durable first, so a job document never points at a missing blob.
        """
        items_sha = self.store.put_bytes(json.dumps(items, separators=(",", ":")).encode())
        job_id = f"upload-{time.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}"
        self.db.insert(OUTBOX, {
            "job_id": job_id, "kind": "upload_study", "destination": destination,
            "case_id": case_id, "study_uid": study_uid, "items": items_sha,
            "total": len(items), "skipped": skipped, "fingerprint": fingerprint,
            "state": PENDING, "cursor": 0, "failures": {}, "attempts": 0, "next_attempt": 0.0,
            "requests": 0, "resumed": 0, "last_error": None, "error_kind": None,
            "created": now_iso(), "updated": now_iso(),
            "created_ts": time.time(),  # sub-second order: claims go oldest first
        })
        return job_id

    def enqueue_share(self, *, destination: str, case_id: str, share_id: str, token: str,
                      token_id: str, passcode: str | None) -> str:
        """Persist a pending registration of a short link at the gateway; return its id.

        The token and passcode live in the job as they live in the case's ``links`` record
        (the same case file); the manifest is attached when the job is sent, so a package
        written after the link was minted still reaches the phone's custody banner.
        """
        return self._enqueue_link(SHARE, destination=destination, case_id=case_id,
                                  share_id=share_id, token=token, token_id=token_id,
                                  passcode=passcode)

    def enqueue_revoke(self, *, destination: str, case_id: str, share_id: str,
                       token_id: str) -> str:
        """Persist a pending revocation of a short link; return its id.

        A registration of the same link that has not been sent yet is cancelled (done,
        never sent), so a revoked link can never go live after its revocation.
        """
        with self.db.transaction():
            for job in self.waiting(case_id=case_id):
                if job.get("kind") == SHARE and job.get("share_id") == share_id and \
                        job["state"] in (PENDING, RETRY, FAILED):
                    self.finish(job["job_id"], DONE, cancelled=True, token="",
                                passcode=None, last_error="revoked before it was sent")
            return self._enqueue_link(REVOKE_SHARE, destination=destination,
                                      case_id=case_id, share_id=share_id, token_id=token_id)

    def _enqueue_link(self, kind: str, **fields: Any) -> str:
        job_id = f"{'share' if kind == SHARE else 'revoke'}-{time.strftime('%Y%m%d%H%M%S')}-" \
                 f"{secrets.token_hex(3)}"
        self.db.insert(OUTBOX, {
            "job_id": job_id, "kind": kind, **fields, "total": 1, "cursor": 0,
            "state": PENDING, "failures": {}, "attempts": 0, "next_attempt": 0.0,
            "requests": 0, "resumed": 0, "last_error": None, "error_kind": None,
            "created": now_iso(), "updated": now_iso(), "created_ts": time.time(),
        })
        return job_id

    def items(self, job: dict[str, Any]) -> list[tuple[str, str]]:
        """The ``(sop_instance_uid, sha256)`` list of a job."""
        return [(sop, sha) for sop, sha in json.loads(self.store.read_bytes(job["items"]))]

    # --- reading ------------------------------------------------------------------------------

    def jobs(self, **key: Any) -> list[dict[str, Any]]:
        """Jobs matching ``key`` (all when empty), oldest first.

        Name ``case_id`` (one case's file) or an unfinished ``state`` (the mirror); any other
        key reads every case (Admin, tests). :meth:`waiting` is the cheap question.
        """
        return _oldest_first(self.db.find(OUTBOX, **key))

    def waiting(self, **key: Any) -> list[dict[str, Any]]:
        """Jobs not done (pending, in flight, retry, failed) matching ``key``, oldest first."""
        return _oldest_first(self.db.find_active(OUTBOX, **key))

    def job(self, job_id: str) -> dict[str, Any] | None:
        """One job, or None."""
        return self.db.get(OUTBOX, job_id=job_id)

    def counts(self, destination: str) -> dict[str, int]:
        """How many jobs of ``destination`` are in each state."""
        counts = dict.fromkeys(STATES, 0)
        for job in self.waiting(destination=destination):
            counts[job["state"]] = counts.get(job["state"], 0) + 1
        # Finished jobs are counted per case in the case index, not by opening every case.
        counts[DONE] = sum(int(row.get("x", {}).get("done", {}).get(destination, 0))
                           for row in self.db.index_rows())
        return counts

    def next_due(self, destination: str) -> float | None:
        """When the earliest waiting job of ``destination`` is due (epoch seconds), or None."""
        due = [0.0 if j["state"] == PENDING else float(j["next_attempt"])
               for j in self.waiting(destination=destination)
               if j["state"] in (PENDING, RETRY)]
        return min(due) if due else None

    # --- claiming and finishing -----------------------------------------------------------------

    def _owned_by_live_process(self, job: dict[str, Any]) -> bool:
        return claim_alive(job.get("owner_boot"), int(job.get("owner_pid", 0)))

    def recover(self) -> list[str]:
        """Put jobs left in flight by a dead process back to pending (cursor kept)."""
        recovered = []
        with self.db.transaction():
            self.db.repair_active(OUTBOX)
            for job in self.waiting(state=IN_FLIGHT):
                if not self._owned_by_live_process(job):
                    self.db.update(OUTBOX, {
                        "state": PENDING, "resumed": job.get("resumed", 0) + 1,
                        "last_error": "the kiosk stopped during this upload; resuming",
                        "updated": now_iso()}, case_id=job["case_id"], job_id=job["job_id"])
                    recovered.append(job["job_id"])
        return recovered

    def claim_next(self, destination: str) -> dict[str, Any] | None:
        """Mark the oldest due job of ``destination`` in flight for this process; return it."""
        now = self.clock()
        with self.db.transaction():
            due = [j for j in self.waiting(destination=destination)
                   if j["state"] == PENDING or (j["state"] == RETRY and j["next_attempt"] <= now)]
            if not due:
                return None
            job = due[0]
            fields = {"state": IN_FLIGHT, "owner_pid": os.getpid(), "owner_boot": self._boot,
                      "claimed": now_iso(), "updated": now_iso()}
            self.db.update(OUTBOX, fields, case_id=job["case_id"], job_id=job["job_id"])
        return job | fields

    def save(self, job_id: str, **fields: Any) -> None:
        """Record progress of a job (cursor, failures, counters)."""
        self.db.update(OUTBOX, {**fields, "updated": now_iso()}, job_id=job_id)

    def finish(self, job_id: str, state: str, **fields: Any) -> None:
        """Leave the in-flight state: ``done``, ``retry``, ``failed`` or back to ``pending``."""
        extra = {"finished": now_iso()} if state in (DONE, FAILED) else {}
        self.db.update(OUTBOX, {"state": state, **fields, **extra, "updated": now_iso()},
                       job_id=job_id)

    def fail_waiting(self, destination: str, error: str, kind: str, credentials: str) -> int:
        """Fail every pending/retry job of ``destination`` (login or certificate refused)."""
        n = 0
        with self.db.transaction():
            for job in self.waiting(destination=destination):
                if job["state"] in (PENDING, RETRY):
                    self.finish(job["job_id"], FAILED, last_error=error, error_kind=kind,
                                credentials=credentials)
                    n += 1
        return n

    def revive(self, destination: str, *, credentials: str | None = None,
               kinds: Iterable[str] | None = None) -> int:
        """Send failed jobs back to pending; return how many.

        Parameters
        ----------
        credentials : str, optional
            Only jobs that failed under *other* credentials (the settings were fixed since).
        kinds : iterable of str, optional
            Only jobs whose ``error_kind`` is one of these.
        """
        wanted = set(kinds) if kinds is not None else None
        n = 0
        with self.db.transaction():
            for job in self.waiting(destination=destination, state=FAILED):
                if wanted is not None and job.get("error_kind") not in wanted:
                    continue
                if credentials is not None and job.get("credentials") in (None, credentials):
                    continue
                # Refused login: carry on where it stopped. Refused instances: send everything
                # again (idempotent), which is simpler than tracking what is worth re-sending.
                resume = job.get("error_kind") in ("auth", "tls")
                self.db.update(OUTBOX, {
                    "state": PENDING, "attempts": 0, "error_kind": None, "updated": now_iso(),
                    "cursor": job["cursor"] if resume else 0,
                    "failures": job.get("failures", {}) if resume else {},
                }, case_id=job["case_id"], job_id=job["job_id"])
                n += 1
        return n


def _oldest_first(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(jobs, key=lambda j: (j.get("created_ts", 0.0), j["job_id"]))
