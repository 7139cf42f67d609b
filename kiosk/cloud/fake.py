"""An in-memory stand-in for the office's DICOMweb server, with switches for faults.

Used by unit tests and the demo; ``tests/cloud/test_cloud_contract.py`` runs the same contract
against it and a real Orthanc, so behaviour that passes here also holds against the server.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Sequence
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset

from kiosk.cloud.protocol import (
    CloudAuthError,
    CloudUnavailable,
    InstanceFailure,
    RemoteInstance,
    ShareRefused,
    ShareRegistration,
    StoreResult,
    share_refusal_text,
)

_ENCAPSULATED_DOCUMENT = 0x00420011


class FakeCloud:
    """A DICOMweb server in a dict.

    Parameters
    ----------
    destination : str
        A name for the destination (outbox jobs are per destination).

    Attributes
    ----------
    online : bool
        False makes every call raise :class:`CloudUnavailable` (server or network down).
    accept_credentials : bool
        False makes every call raise :class:`CloudAuthError` (wrong password).
    requests : int
        Calls made so far, answered or not (tests check that backoff really waits).
    refuse : dict
        SOP Instance UID -> :class:`InstanceFailure` the server answers for it.
    shares : dict
        Registered short links: id -> ``{"token", "passcode", "manifest", "manifest_jws",
        "studies", "revoked"}`` (the gateway's Kiosk API, docs/gateway.md).
    refuse_shares : str or None
        A gateway refusal code (``signature``, ...) every registration gets.
    """

    def __init__(self, destination: str = "fake://office") -> None:
        self.destination = destination
        self.online = True
        self.accept_credentials = True
        self.requests = 0
        self.store_calls = 0
        self.refuse: dict[str, InstanceFailure] = {}
        self._files: dict[str, bytes] = {}
        self._index: dict[str, RemoteInstance] = {}
        self.shares: dict[str, dict[str, Any]] = {}
        self.refuse_shares: str | None = None

    def _call(self) -> None:
        self.requests += 1
        if not self.online:
            raise CloudUnavailable("The fake cloud is offline.")
        if not self.accept_credentials:
            raise CloudAuthError("The fake cloud refused the credentials.")

    def ping(self) -> None:
        """Raise like the real server would; else return."""
        self._call()

    def store(self, instances: Sequence[tuple[str, bytes]]) -> StoreResult:
        """Keep each parseable instance once (by SOP Instance UID); report the others."""
        self._call()
        self.store_calls += 1
        result = StoreResult()
        for sop_uid, data in instances:
            if sop_uid in self.refuse:
                result.failed[sop_uid] = self.refuse[sop_uid]
                continue
            try:
                ds = dcmread(io.BytesIO(data), stop_before_pixels=True)
                remote = RemoteInstance(str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID),
                                        str(ds.SOPInstanceUID), str(ds.SOPClassUID))
            except Exception:  # noqa: BLE001 - like a server: anything unreadable is refused
                result.failed[sop_uid] = InstanceFailure("cannot parse the instance", False)
                continue
            if remote.sop_instance_uid != sop_uid:
                result.failed[sop_uid] = InstanceFailure("SOP Instance UID mismatch", False)
                continue
            self._files.setdefault(sop_uid, data)
            self._index.setdefault(sop_uid, remote)
            result.stored.add(sop_uid)
        return result

    def find_instances(self, study_uid: str, sop_class_uid: str | None = None
                       ) -> list[RemoteInstance]:
        """Instances of the study, optionally of one SOP Class."""
        self._call()
        return [r for r in self._index.values() if r.study_uid == study_uid
                and (sop_class_uid is None or r.sop_class_uid == sop_class_uid)]

    def metadata(self, instance: RemoteInstance) -> Dataset:
        """The header without bulk data, like WADO-RS metadata."""
        self._call()
        ds = dcmread(io.BytesIO(self._files[instance.sop_instance_uid]),
                     stop_before_pixels=True)
        if _ENCAPSULATED_DOCUMENT in ds:
            del ds[_ENCAPSULATED_DOCUMENT]
        return ds

    def retrieve(self, instance: RemoteInstance) -> bytes:
        """The stored bytes."""
        self._call()
        return self._files[instance.sop_instance_uid]

    def register_share(self, share_id: str, share: ShareRegistration) -> str:
        """Keep the share like the gateway: idempotent per token, ``waiting`` until landed."""
        self._call()
        if self.refuse_shares is not None:
            raise ShareRefused(share_refusal_text(self.refuse_shares),
                               reason=self.refuse_shares, status=403)
        kept = self.shares.get(share_id)
        if kept is not None and kept["token"] != share.token:
            raise ShareRefused(share_refusal_text("conflict"), reason="conflict", status=409)
        if kept is not None and kept["revoked"]:
            raise ShareRefused(share_refusal_text("revoked"), reason="revoked", status=403)
        if kept is None:
            self.shares[share_id] = {
                "token": share.token, "passcode": share.passcode, "manifest": share.manifest,
                "manifest_jws": share.manifest_jws, "studies": _token_studies(share.token),
                "revoked": False}
        return self.share_state(share_id)

    def revoke_share(self, share_id: str) -> bool:
        """Mark the share revoked; False when it was never registered."""
        self._call()
        if share_id not in self.shares:
            return False
        self.shares[share_id]["revoked"] = True
        return True

    def share_state(self, share_id: str) -> str:
        """``revoked``, ``live`` (every study landed) or ``waiting``."""
        share = self.shares[share_id]
        if share["revoked"]:
            return "revoked"
        landed = {r.study_uid for r in self._index.values()}
        return "live" if set(share["studies"]) <= landed else "waiting"

    # --- for tests ---------------------------------------------------------------------------

    def put(self, data: bytes) -> RemoteInstance:
        """Place an instance as the office would (bypassing the fault switches)."""
        ds = dcmread(io.BytesIO(data), stop_before_pixels=True)
        remote = RemoteInstance(str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID),
                                str(ds.SOPInstanceUID), str(ds.SOPClassUID))
        self._files[remote.sop_instance_uid] = data
        self._index[remote.sop_instance_uid] = remote
        return remote

    def sop_uids(self) -> set[str]:
        """Every SOP Instance UID held."""
        return set(self._files)


def _token_studies(token: str) -> list[str]:
    """The ``studies`` claim of a JWT, unverified (the fake trusts every kiosk)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return [str(uid) for uid in claims.get("studies", [])]
    except (IndexError, ValueError, AttributeError):
        return []
