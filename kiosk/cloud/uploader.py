"""Run one outbox upload job: STOW-RS in batches, progress, per-instance failures, resume.

The job's cursor is saved after every batch, so a crash re-sends at most one batch (harmless:
the server keeps one copy per SOP Instance UID). An instance the server refuses is recorded and
the rest go on; refused-for-now instances are re-sent in the next round, refused-for-good ones
fail the job at the end (with the list), never silently.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from kiosk.cloud.outbox import DONE, FAILED, PENDING, RETRY, Outbox, backoff_delay
from kiosk.cloud.protocol import Cloud, CloudError, CloudRejected, InstanceFailure, StoreResult
from kiosk.config import SyncSettings
from kiosk.store.blobstore import BlobStore


@dataclass(frozen=True)
class SyncProgress:
    """Upload progress of one job; the UI shows the latest (they replace each other)."""

    job_id: str
    case_id: str
    study_uid: str
    done: int
    total: int
    failed: int
    bytes_sent: int
    elapsed: float


ProgressCallback = Callable[[SyncProgress], None]


class _Cancelled(Exception):
    pass


class Uploader:
    """Uploads outbox jobs to one cloud.

    Parameters
    ----------
    outbox, store, cloud
        Where jobs, blobs and the server are.
    settings : SyncSettings
        Batch sizes, backoff and attempt limits.
    rng : random.Random, optional
        Jitter source (tests seed it).
    credentials : str, optional
        Fingerprint of the credentials in use, kept on jobs failed by a refused login so they
        are retried once the settings change.
    """

    def __init__(self, outbox: Outbox, store: BlobStore, cloud: Cloud, settings: SyncSettings,
                 rng: random.Random | None = None, credentials: str = "") -> None:
        self.credentials = credentials
        self.outbox = outbox
        self.store = store
        self.cloud = cloud
        self.settings = settings
        self.rng = rng or random.Random()

    def run(self, job: dict[str, Any], *, on_progress: ProgressCallback | None = None,
            cancel: threading.Event | None = None) -> str:
        """Upload a claimed job; return the state it ends in.

        Raises
        ------
        CloudError
            The server went away or refused us as a whole. The job is saved first (``retry``
            with backoff for transient errors, ``failed`` for permanent ones) so the caller
            only has to update the connection status.
        """
        items = self.outbox.items(job)
        failures: dict[str, dict[str, Any]] = dict(job.get("failures") or {})
        cursor = int(job["cursor"])
        state = {"cursor": cursor, "requests": int(job.get("requests", 0)), "bytes": 0}
        started = time.monotonic()
        index = {sop: i for i, (sop, _sha) in enumerate(items)}

        def progress() -> None:
            if on_progress is not None:
                on_progress(SyncProgress(
                    job["job_id"], job["case_id"], job["study_uid"],
                    state["cursor"] - len(failures), len(items), len(failures),
                    state["bytes"], time.monotonic() - started))

        def save() -> None:
            self.outbox.save(job["job_id"], cursor=state["cursor"], failures=failures,
                             requests=state["requests"])

        # Instances refused "for now" in an earlier round go first, then the rest in order.
        again = [(sop, sha) for sop, sha in items[:cursor]
                 if sop in failures and failures[sop]["transient"]]
        progress()
        try:
            for batch in self._batches(again + items[cursor:], failures):
                if cancel is not None and cancel.is_set():
                    raise _Cancelled
                result = self._send(batch, state)
                for sop in result.stored:
                    failures.pop(sop, None)
                for sop, failure in result.failed.items():
                    previous = failures.get(sop, {}).get("attempts", 0)
                    failures[sop] = {"reason": failure.reason, "transient": failure.transient,
                                     "attempts": previous + 1}
                state["cursor"] = max(state["cursor"],
                                      max(index[sop] for sop, _ in batch) + 1)
                save()
                progress()
        except _Cancelled:
            save()
            self.outbox.finish(job["job_id"], PENDING)
            return PENDING
        except CloudError as exc:
            save()
            self.interrupted(job, exc)
            raise
        return self._conclude(job, failures)

    def _batches(self, todo: list[tuple[str, str]],
                 failures: dict[str, dict[str, Any]]) -> Iterator[list[tuple[str, bytes]]]:
        """Batches of ``(sop_uid, bytes)`` capped by count and bytes, read lazily from blobs."""
        batch: list[tuple[str, bytes]] = []
        size = 0
        for sop, sha in todo:
            try:
                data = self.store.read_bytes(sha)
            except OSError as exc:
                failures[sop] = {"reason": f"the kiosk's stored copy cannot be read ({exc})",
                                 "transient": False, "attempts": 1}
                continue
            if batch and (len(batch) >= self.settings.batch_instances
                          or size + len(data) > self.settings.batch_bytes):
                yield batch
                batch, size = [], 0
            batch.append((sop, data))
            size += len(data)
        if batch:
            yield batch

    def _send(self, batch: list[tuple[str, bytes]], state: dict[str, int]) -> StoreResult:
        """One STOW-RS request; a batch refused as too large is split in halves."""
        state["requests"] += 1
        try:
            result = self.cloud.store(batch)
        except CloudRejected as exc:
            if exc.status == 413 and len(batch) > 1:
                half = len(batch) // 2
                first, second = self._send(batch[:half], state), self._send(batch[half:], state)
                return StoreResult(first.stored | second.stored, first.failed | second.failed)
            if exc.status == 413:
                return StoreResult(failed={batch[0][0]: InstanceFailure(exc.text, False)})
            raise
        state["bytes"] += sum(len(data) for _sop, data in batch)
        return result

    def interrupted(self, job: dict[str, Any], exc: CloudError) -> None:
        """Leave a job the server interrupted: ``retry`` with backoff, or ``failed``."""
        if exc.transient:
            attempts = int(job.get("attempts", 0)) + 1
            delay = backoff_delay(attempts, self.settings.backoff_base_seconds,
                                  self.settings.backoff_max_seconds, self.rng)
            # A lost connection is never the job's fault: offline-first means waiting as long
            # as it takes, so it is not counted against max_attempts.
            self.outbox.finish(job["job_id"], RETRY, attempts=attempts, last_error=exc.text,
                               error_kind=exc.kind, next_attempt=self.outbox.clock() + delay)
        else:
            self.outbox.finish(job["job_id"], FAILED, last_error=exc.text, error_kind=exc.kind,
                               credentials=self.credentials)

    def _conclude(self, job: dict[str, Any], failures: dict[str, dict[str, Any]]) -> str:
        if not failures:
            self.outbox.finish(job["job_id"], DONE, last_error=None, error_kind=None)
            return DONE
        permanent = {s: f for s, f in failures.items() if not f["transient"]}
        exhausted = any(f["attempts"] >= self.settings.max_attempts for f in failures.values())
        summary = (f"{len(failures)} of {job['total']} instance(s) not stored; first: "
                   f"{next(iter(failures.values()))['reason']}")
        if permanent or exhausted:
            self.outbox.finish(job["job_id"], FAILED, last_error=summary, error_kind="rejected")
            return FAILED
        attempts = int(job.get("attempts", 0)) + 1
        delay = backoff_delay(attempts, self.settings.backoff_base_seconds,
                              self.settings.backoff_max_seconds, self.rng)
        self.outbox.finish(job["job_id"], RETRY, attempts=attempts, last_error=summary,
                           error_kind="rejected", next_attempt=self.outbox.clock() + delay)
        return RETRY
