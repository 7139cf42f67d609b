"""The real cloud: a DICOMweb server (STOW-RS, QIDO-RS, WADO-RS) over HTTP with ``requests``.

This is the only module that imports ``requests``. It turns every HTTP outcome into the
:mod:`kiosk.cloud.protocol` vocabulary: success, a per-instance failure, or a :class:`CloudError`
that says whether retrying can help.

Security: TLS certificates are verified by default, against ``ca_bundle`` when one is set.
``trust_env`` is off, so ``~/.netrc`` never replaces the configured credentials and proxy
variables never redirect patient data; the kiosk talks to the configured URL only.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import secrets
from collections.abc import Sequence
from typing import Any

import requests
from pydicom.dataset import Dataset

from kiosk import __version__
from kiosk.cloud.protocol import (
    CloudAuthError,
    CloudRejected,
    CloudTLSError,
    CloudUnavailable,
    InstanceFailure,
    RemoteInstance,
    ShareRefused,
    ShareRegistration,
    StoreResult,
    share_refusal_text,
)

_JSON = "application/dicom+json"
_MULTIPART_DICOM = 'multipart/related; type="application/dicom"; transfer-syntax=*'
# DICOM JSON keys (PS3.18 F.2) of the STOW-RS response (PS3.18 10.5.3).
_REFERENCED_SOP_SEQUENCE = "00081199"
_FAILED_SOP_SEQUENCE = "00081198"
_REFERENCED_SOP_INSTANCE_UID = "00081155"
_FAILURE_REASON = "00081197"
_SOP_INSTANCE_UID, _SOP_CLASS_UID = "00080018", "00080016"
_STUDY_UID, _SERIES_UID = "0020000D", "0020000E"
#: HTTP statuses worth retrying later: timeouts, rate limits and server-side failures.
_TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}


def _transient_reason(code: int) -> bool:
    """Whether a STOW-RS Failure Reason (PS3.4 GG.4-1) may clear up on its own."""
    return (0xA700 <= code <= 0xA7FF) or code in (0x0110, 0x0213)


class DicomWebCloud:
    """A DICOMweb server at ``url`` (the root, e.g. ``http://host:8042/dicom-web``).

    Parameters
    ----------
    url : str
        The DICOMweb root.
    user, password : str
        HTTP basic authentication (when ``user`` is set).
    token : str
        Bearer token (when set; exclusive with ``user``).
    ca_bundle : str
        A PEM file of CA certificates to trust instead of the system's; empty = system.
    timeout : float
        Seconds to wait for the server to accept a connection and between bytes of an answer.
    gateway_url : str
        The office gateway's public URL (``link.base_url``), where short links are registered
        (``/kiosk/shares/{id}``) with the same credentials; empty = none.
    """

    def __init__(self, url: str, *, user: str = "", password: str = "", token: str = "",
                 ca_bundle: str = "", timeout: float = 60.0, gateway_url: str = "") -> None:
        self.destination = url.rstrip("/")
        self.gateway_url = gateway_url.rstrip("/")
        self.timeout = (min(10.0, timeout), timeout)
        self._session = requests.Session()
        self._session.trust_env = False
        self._session.verify = ca_bundle or True
        self._session.headers["User-Agent"] = f"medpass-kiosk/{__version__}"
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"
        elif user:
            self._session.auth = (user, password)

    # --- HTTP -------------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, gateway: bool = False,
                 **kwargs: Any) -> requests.Response:
        url = (self.gateway_url if gateway else self.destination) + path
        try:
            response = self._session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.exceptions.SSLError as exc:
            raise CloudTLSError(
                f"The certificate of {self.destination} could not be verified ({exc}). Set "
                "cloud.ca_bundle to the office's CA certificate file if it uses its own CA."
            ) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise CloudUnavailable(
                f"{self.destination} cannot be reached ({type(exc).__name__}); the kiosk keeps "
                "working offline and retries later."
            ) from None
        except requests.exceptions.RequestException as exc:
            raise CloudRejected(f"Request to {url} failed: {exc}") from None
        # The gateway refuses a share with 403 and a reason of its own (not a login problem).
        if response.status_code in (401, 403) and not (gateway and _share_reason(response)):
            how = "token" if "Authorization" in self._session.headers else "user name/password"
            raise CloudAuthError(
                f"{self.destination} refused the {how} (HTTP {response.status_code}). Check "
                "cloud.user/cloud.password or cloud.token (or KIOSK_CLOUD_USER/_PASSWORD/_TOKEN);"
                " uploads wait until the settings change."
            )
        if response.status_code in _TRANSIENT_STATUS:
            raise CloudUnavailable(
                f"{self.destination} answered HTTP {response.status_code} "
                f"({response.reason}); retrying later."
            )
        return response

    def _json(self, response: requests.Response, what: str) -> Any:
        if response.status_code == 204 or not response.content.strip():
            return []
        try:
            return response.json()
        except ValueError:
            raise CloudRejected(
                f"{what}: the server's answer is not DICOM JSON (HTTP {response.status_code}, "
                f"{response.headers.get('Content-Type', 'no content type')}). Is the cloud URL "
                "the DICOMweb root?", status=response.status_code) from None

    def _ok(self, response: requests.Response, what: str) -> None:
        if response.status_code >= 300:
            raise CloudRejected(
                f"{what}: HTTP {response.status_code} {response.reason} from "
                f"{self.destination}. Is the cloud URL the DICOMweb root?",
                status=response.status_code)

    # --- Cloud interface --------------------------------------------------------------------

    def ping(self) -> None:
        """A one-result QIDO-RS query: checks reachability, credentials and the URL."""
        response = self._request("GET", "/studies", params={"limit": "1"},
                                 headers={"Accept": _JSON})
        self._ok(response, "Checking the cloud")
        self._json(response, "Checking the cloud")

    def store(self, instances: Sequence[tuple[str, bytes]]) -> StoreResult:
        """STOW-RS one multipart request; map the response to per-instance outcomes."""
        boundary = secrets.token_hex(16)
        while any(boundary.encode() in data for _uid, data in instances):
            boundary = secrets.token_hex(16)  # practically never; the body must not contain it
        parts: list[bytes] = []
        for _uid, data in instances:
            parts += [b"--", boundary.encode(), b"\r\nContent-Type: application/dicom\r\n\r\n",
                      data, b"\r\n"]
        parts += [b"--", boundary.encode(), b"--\r\n"]
        response = self._request("POST", "/studies", data=b"".join(parts), headers={
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
            "Accept": _JSON,
        })
        if response.status_code == 413:
            raise CloudRejected("The server refused a batch as too large (HTTP 413).",
                                status=413)
        return self._store_result(response, [uid for uid, _data in instances])

    def _store_result(self, response: requests.Response, sent: list[str]) -> StoreResult:
        result = StoreResult()
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, list) and body:
            body = body[0]
        receipt = isinstance(body, dict) and (
            _REFERENCED_SOP_SEQUENCE in body or _FAILED_SOP_SEQUENCE in body)
        if not receipt:
            if response.status_code == 200:  # success without a readable receipt
                result.stored = set(sent)
                return result
            # An error page instead of a STOW-RS receipt: the request as a whole failed.
            self._ok(response, "Uploading images")
            body = {}
        assert isinstance(body, dict)
        for item in _values(body, _REFERENCED_SOP_SEQUENCE):
            result.stored.update(str(v) for v in _values(item, _REFERENCED_SOP_INSTANCE_UID))
        for item in _values(body, _FAILED_SOP_SEQUENCE):
            codes = _values(item, _FAILURE_REASON)
            code = int(codes[0]) if codes else 0
            for uid in _values(item, _REFERENCED_SOP_INSTANCE_UID):
                if str(uid) not in result.stored:
                    result.failed[str(uid)] = InstanceFailure(
                        f"refused by the server (failure reason 0x{code:04X})",
                        _transient_reason(code))
        for uid in sent:
            if uid not in result.stored and uid not in result.failed:
                # Orthanc answers 400 and lists only what it stored when one part is not DICOM.
                result.failed[uid] = InstanceFailure(
                    f"not acknowledged by the server (HTTP {response.status_code})",
                    response.status_code < 300)
        return result

    def find_instances(self, study_uid: str, sop_class_uid: str | None = None
                       ) -> list[RemoteInstance]:
        """QIDO-RS ``/studies/{study}/instances`` (SOP Class filtered here too)."""
        params = {"SOPClassUID": sop_class_uid} if sop_class_uid else {}
        response = self._request("GET", f"/studies/{study_uid}/instances", params=params,
                                 headers={"Accept": _JSON})
        if response.status_code == 404:
            return []
        self._ok(response, "Searching the cloud")
        found = []
        for item in self._json(response, "Searching the cloud"):
            inst = RemoteInstance(
                study_uid=_first(item, _STUDY_UID) or study_uid,
                series_uid=_first(item, _SERIES_UID),
                sop_instance_uid=_first(item, _SOP_INSTANCE_UID),
                sop_class_uid=_first(item, _SOP_CLASS_UID))
            # Some servers ignore filters they do not support: check what came back.
            if inst.sop_instance_uid and inst.series_uid and (
                    sop_class_uid is None or inst.sop_class_uid == sop_class_uid):
                found.append(inst)
        return found

    def _instance_path(self, inst: RemoteInstance) -> str:
        return (f"/studies/{inst.study_uid}/series/{inst.series_uid}"
                f"/instances/{inst.sop_instance_uid}")

    def metadata(self, instance: RemoteInstance) -> Dataset:
        """WADO-RS metadata of one instance, as a pydicom Dataset without bulk data."""
        response = self._request("GET", self._instance_path(instance) + "/metadata",
                                 headers={"Accept": _JSON})
        self._ok(response, "Reading a report's header from the cloud")
        body = self._json(response, "Reading a report's header from the cloud")
        if not body:
            raise CloudRejected("The server returned no metadata for the instance.")
        return Dataset.from_json(json.dumps(body[0]), bulk_data_uri_handler=lambda *_a: b"")

    def retrieve(self, instance: RemoteInstance) -> bytes:
        """WADO-RS retrieve of one instance (first part of the multipart answer)."""
        response = self._request("GET", self._instance_path(instance),
                                 headers={"Accept": _MULTIPART_DICOM})
        self._ok(response, "Fetching a report from the cloud")
        parts = _multipart_parts(response.headers.get("Content-Type", ""), response.content)
        if not parts:
            raise CloudRejected("The server's WADO-RS answer holds no DICOM instance.")
        return parts[0]


    # --- short links at the office gateway (docs/gateway.md "Kiosk API") ---------------------

    def _share_path(self, share_id: str) -> str:
        if not self.gateway_url:
            raise ShareRefused("No office gateway is configured (link.base_url): the link "
                               "cannot be registered.", reason="no-gateway")
        return f"/kiosk/shares/{share_id}"

    def register_share(self, share_id: str, share: ShareRegistration) -> str:
        """``PUT /kiosk/shares/{id}``; the share's state (see the protocol)."""
        body = {"token": share.token, "passcode": share.passcode, "manifest": share.manifest,
                "manifest_jws": share.manifest_jws}
        response = self._request("PUT", self._share_path(share_id), gateway=True,
                                 json=body, headers={"Accept": "application/json"})
        if response.status_code in (200, 201):
            state = _json_field(response, "state")
            return state or "waiting"
        raise _share_refusal(response, self.gateway_url)

    def revoke_share(self, share_id: str) -> bool:
        """``POST /kiosk/shares/{id}/revoke``; False for an id the gateway does not know."""
        response = self._request("POST", self._share_path(share_id) + "/revoke", gateway=True,
                                 headers={"Accept": "application/json"})
        if response.status_code == 200:
            return True
        if response.status_code == 404 and _share_reason(response) == "unknown":
            return False
        raise _share_refusal(response, self.gateway_url)


def _json_field(response: requests.Response, name: str) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    value = body.get(name) if isinstance(body, dict) else None
    return value if isinstance(value, str) else None


def _share_reason(response: requests.Response) -> str | None:
    """The gateway's refusal code (``{"reason": ...}``), None for any other answer."""
    if not response.headers.get("Content-Type", "").startswith("application/json"):
        return None
    return _json_field(response, "reason")


def _share_refusal(response: requests.Response, gateway_url: str) -> ShareRefused:
    reason = _share_reason(response)
    if reason is None:
        return ShareRefused(
            f"{gateway_url} answered HTTP {response.status_code} to a link registration: is "
            "link.base_url the office gateway's address (kiosk gateway config --public-url)?",
            reason="no-gateway", status=response.status_code)
    return ShareRefused(share_refusal_text(reason), reason=reason, status=response.status_code)


def _values(obj: dict[str, Any], key: str) -> list[Any]:
    value = obj.get(key) or {}
    return list(value.get("Value") or []) if isinstance(value, dict) else []


def _first(obj: dict[str, Any], key: str) -> str:
    values = _values(obj, key)
    return str(values[0]) if values else ""


def _multipart_parts(content_type: str, body: bytes) -> list[bytes]:
    """The bodies of a multipart/related answer (binary-safe, via the stdlib MIME parser)."""
    if not content_type.lower().startswith("multipart/"):
        return [body] if body else []
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    parts = []
    for part in message.iter_parts():  # type: ignore[attr-defined]
        payload = part.get_payload(decode=True)
        if payload:
            parts.append(bytes(payload))
    return parts
