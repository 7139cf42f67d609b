"""The office's cloud (a DICOMweb server) as the sync engine sees it: a small interface.

Two implementations pass the same contract tests (``tests/cloud/test_cloud_contract.py``):
:class:`kiosk.cloud.dicomweb.DicomWebCloud` (real: STOW-RS, QIDO-RS, WADO-RS over HTTP) and
:class:`kiosk.cloud.fake.FakeCloud` (in memory, with switches for faults). Everything above this
interface (outbox, uploads, translation pulls) is written and tested against it, so a
different server (or a vendor SDK) only needs a new implementation here.

Errors say whether trying again later can help (``transient``): the outbox retries transient
errors with backoff for as long as it takes (the kiosk is offline-first) and stops at once on
permanent ones (wrong password, certificate refused), so a misconfiguration is shown to the
coordinator instead of being retried forever.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pydicom.dataset import Dataset

from kiosk.errors import KioskError


class CloudError(KioskError):
    """A request to the office's DICOMweb server did not succeed.

    Attributes
    ----------
    transient : bool
        True when the same request may succeed later (server down, network gone, overloaded).
    kind : str
        ``"offline"``, ``"auth"``, ``"tls"`` or ``"rejected"``: what the status line shows.
    """

    default_title = "Cloud sync problem"
    transient = False
    kind = "rejected"


class CloudUnavailable(CloudError):
    """The server cannot be reached or is temporarily failing; retried with backoff."""

    default_title = "Cloud offline"
    transient = True
    kind = "offline"


class CloudAuthError(CloudError):
    """The server refused the credentials (HTTP 401/403); not retried until settings change."""

    default_title = "Cloud login refused"
    kind = "auth"


class CloudTLSError(CloudError):
    """The server's TLS certificate could not be verified; not retried until settings change."""

    default_title = "Cloud certificate not trusted"
    kind = "tls"


class CloudRejected(CloudError):
    """The server understood the request and refused it (HTTP 4xx other than auth)."""

    default_title = "Cloud refused the request"

    def __init__(self, text: str, *, status: int | None = None) -> None:
        super().__init__(text)
        self.status = status


@dataclass(frozen=True)
class RemoteInstance:
    """One instance found on the server with QIDO-RS."""

    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str


@dataclass(frozen=True)
class InstanceFailure:
    """Why the server did not store one instance of a batch."""

    reason: str
    #: True when sending the same bytes again later may work (server out of resources).
    transient: bool


@dataclass
class StoreResult:
    """Outcome of one STOW-RS batch, per SOP Instance UID sent."""

    stored: set[str] = field(default_factory=set)
    failed: dict[str, InstanceFailure] = field(default_factory=dict)


class Cloud(Protocol):
    """What the kiosk needs from the office's server."""

    #: Where uploads go (the DICOMweb root URL); outbox jobs are per destination.
    destination: str

    def ping(self) -> None:
        """Check that the server answers and accepts our credentials.

        Raises
        ------
        CloudUnavailable, CloudAuthError, CloudTLSError, CloudRejected
        """

    def store(self, instances: Sequence[tuple[str, bytes]]) -> StoreResult:
        """Store Part 10 files (``(sop_instance_uid, bytes)``) in one request.

        Storing an instance the server already holds succeeds (STOW-RS is idempotent by SOP
        Instance UID); every UID sent is either in ``stored`` or in ``failed``.

        Raises
        ------
        CloudUnavailable, CloudAuthError, CloudTLSError, CloudRejected
            The request as a whole failed; nothing can be said about single instances.
        """
        ...

    def find_instances(self, study_uid: str, sop_class_uid: str | None = None
                       ) -> list[RemoteInstance]:
        """Instances of a study on the server (QIDO-RS), optionally of one SOP Class.

        An unknown study gives an empty list.
        """
        ...

    def metadata(self, instance: RemoteInstance) -> Dataset:
        """The header of one instance (WADO-RS metadata), without bulk data values."""
        ...

    def retrieve(self, instance: RemoteInstance) -> bytes:
        """The Part 10 bytes of one instance (WADO-RS)."""
        ...

    def register_share(self, share_id: str, share: ShareRegistration) -> str:
        """Register a short link with the office gateway (``PUT /kiosk/shares/{id}``).

        Idempotent: the same id with the same token again succeeds. Returns the share's state
        (``waiting`` until its studies have landed, then ``live``).

        Raises
        ------
        ShareRefused
            The gateway refused this share for good (key not trusted, expired, revoked,
            id taken, no gateway at that address).
        CloudUnavailable, CloudAuthError, CloudTLSError
        """
        ...

    def revoke_share(self, share_id: str) -> bool:
        """Revoke a short link at the gateway; False when the gateway does not know it.

        Raises
        ------
        CloudUnavailable, CloudAuthError, CloudTLSError, CloudRejected
        """
        ...


@dataclass(frozen=True)
class ShareRegistration:
    """What the gateway keeps of a short link (docs/gateway.md "Kiosk API")."""

    #: The kiosk's signed grant (EdDSA JWT).
    token: str
    #: Six digits, or None; the gateway keeps only a salted hash.
    passcode: str | None = None
    #: The case's last package manifest and its detached JWS (the phone's custody banner).
    manifest: dict[str, object] | None = None
    manifest_jws: str | None = None


#: What the coordinator reads for each refusal code of the gateway (docs/gateway.md).
SHARE_REFUSALS = {
    "signature": "The office gateway does not trust this kiosk's key. Give the office the "
                 "output of `kiosk link pubkey` (its --trust-key), then retry.",
    "expired": "The link expired before it reached the office gateway; reissue it "
               "(`kiosk link reissue CASE`).",
    "revoked": "The office gateway has revoked this link (or every link of this kiosk).",
    "malformed": "The office gateway could not read the link's token.",
    "conflict": "The office gateway already holds another link under this id; reissue it.",
    "bad-request": "The office gateway did not accept the link's details.",
}


def share_refusal_text(reason: str) -> str:
    """The plain-words message for a gateway refusal code."""
    return SHARE_REFUSALS.get(reason, f"The office gateway refused the link ({reason}).")


class ShareRefused(CloudRejected):
    """The gateway refused one share for good; ``reason`` is its code (``signature``, ...)."""

    default_title = "Link refused by the office gateway"

    def __init__(self, text: str, *, reason: str, status: int | None = None) -> None:
        super().__init__(text, status=status)
        self.reason = reason
