"""Run one outbox link job: register a short link at the office gateway, or revoke it.

A registration carries the kiosk's signed token, the passcode (the gateway keeps a salted hash)
and, when the case has been written to a stick, that package's manifest and signature, so the
phone shows the same chain of custody as the stick. The gateway's answer is idempotent per
token, so re-sending after a crash is harmless. A refusal for good (key not trusted, expired,
revoked, id taken) fails the job with the gateway's reason in plain words; a lost connection
retries with the uploads' backoff.
"""

from __future__ import annotations

import json
from typing import Any

from kiosk.cloud.outbox import DONE, FAILED, IN_FLIGHT, REVOKE_SHARE, SHARE, Outbox
from kiosk.cloud.protocol import Cloud, CloudError, ShareRefused, ShareRegistration
from kiosk.cloud.uploader import Uploader
from kiosk.security.audit import AuditLog
from kiosk.store.blobstore import BlobStore
from kiosk.store.catalog import Catalog


class ShareSender:
    """Sends link jobs (:data:`~kiosk.cloud.outbox.SHARE`, ``REVOKE_SHARE``) to one cloud."""

    def __init__(self, outbox: Outbox, store: BlobStore, catalog: Catalog, cloud: Cloud,
                 uploader: Uploader, audit: AuditLog | None = None) -> None:
        self.outbox = outbox
        self.store = store
        self.catalog = catalog
        self.cloud = cloud
        self.uploader = uploader  # its backoff and failure bookkeeping
        self.audit = audit

    def run(self, job: dict[str, Any]) -> str:
        """Send a claimed link job; return the state it ends in.

        Raises
        ------
        CloudError
            The server went away or refused the kiosk as a whole (saved first, as uploads).
        """
        event: dict[str, Any]
        try:
            if job["kind"] == SHARE:
                state = self.cloud.register_share(job["share_id"], self._registration(job))
                event = {"state": state}
            elif job["kind"] == REVOKE_SHARE:
                known = self.cloud.revoke_share(job["share_id"])
                if not known and self._registration_in_flight(job):
                    # Another process is registering it right now: revoke once that landed.
                    raise _NotYet("the link's registration is still being sent")
                event = {"state": "revoked", "known": known}
            else:
                raise ShareRefused(f"Unknown outbox job kind {job['kind']!r}.", reason="kind")
        except ShareRefused as exc:
            self.outbox.finish(job["job_id"], FAILED, last_error=exc.text,
                               error_kind="rejected", refusal=exc.reason)
            self._audit(job, ok=False, reason=exc.reason)
            return FAILED
        except CloudError as exc:
            self.uploader.interrupted(job, exc)
            raise
        self.outbox.finish(job["job_id"], DONE, cursor=1, last_error=None, error_kind=None,
                           **{"gateway_" + k: v for k, v in event.items()})
        self._audit(job, ok=True, **event)
        return DONE

    def _registration(self, job: dict[str, Any]) -> ShareRegistration:
        manifest, jws = self._manifest(job["case_id"])
        return ShareRegistration(token=job["token"], passcode=job.get("passcode"),
                                 manifest=manifest, manifest_jws=jws)

    def _manifest(self, case_id: str) -> tuple[dict[str, Any] | None, str | None]:
        """The case's last written package's MANIFEST.JSON and MANIFEST.JWS, if any."""
        case = self.catalog.case(case_id) or {}
        for export in reversed(case.get("exports", [])):
            sha, jws = export.get("manifest_blob"), export.get("manifest_jws")
            if sha and jws and self.store.has(sha):
                return json.loads(self.store.read_bytes(sha)), str(jws)
        return None, None

    def _registration_in_flight(self, job: dict[str, Any]) -> bool:
        return any(j.get("kind") == SHARE and j.get("share_id") == job["share_id"]
                   and j["state"] == IN_FLIGHT
                   for j in self.outbox.waiting(case_id=job["case_id"]))

    def _audit(self, job: dict[str, Any], **fields: Any) -> None:
        if self.audit is not None:
            self.audit.append("share_sent" if job["kind"] == SHARE else "share_revoked",
                              job_id=job["job_id"], case_id=job["case_id"],
                              token_id=job.get("token_id"), **fields)  # the id is a capability


class _NotYet(CloudError):
    """A revocation that must wait for its registration (retried like a lost connection)."""

    transient = True
    kind = "offline"
