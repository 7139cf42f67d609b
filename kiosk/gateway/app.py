"""What the gateway answers (docs/gateway.md), with Orthanc behind a small protocol.

:class:`Gateway` decides every request: the incoming-request filter (:meth:`Gateway.allow`:
who may reach which route) and the answers of the kiosk, office and phone APIs
(:meth:`Gateway.handle`). It never imports Orthanc: :mod:`kiosk.gateway.plugin` adapts
Orthanc's calls to :class:`Request` / :class:`Response` and gives Orthanc's REST API as an
:class:`OrthancAccess`.

Routes and who may use them:

====================  ==========================================================
``/s/{id}…``          phones: no credentials, the share's cookie (checked here)
``/``                 the office's door: 401 with a basic-auth challenge, or Explorer
``/kiosk/…``          the kiosk credentials (or the admin's)
``/dicom-web/…``      the kiosk credentials (or the admin's): STOW, QIDO, WADO
anything else         the admin credentials: Orthanc's REST API, Explorer, ``/office/…``
====================  ==========================================================
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from kiosk.errors import ConfigError, LinkTokenError
from kiosk.gateway import credentials, pages
from kiosk.gateway.settings import GatewaySettings
from kiosk.gateway.share_store import NewShare, Share, ShareStore
from kiosk.links.tokens import RevocationList
from kiosk.links.trust import TrustedKeys

_UID = r"[0-9]{1,64}(?:\.[0-9]{1,64}){0,40}"
_UID_RE = re.compile(_UID)
#: What a phone may ask of one of its studies, relative to ``studies/{uid}``.
_STUDY_TAIL = re.compile(
    rf"(?:/metadata|/rendered|/instances|/series(?:/{_UID}(?:/metadata|/rendered|/instances"
    rf"(?:/{_UID}(?:/metadata|/rendered|/frames/[0-9]{{1,6}}(?:,[0-9]{{1,6}}){{0,99}}"
    rf"(?:/rendered)?)?)?)?)?)?")
#: Query parameters passed on to DICOMweb, and the values they may take.
_QUERY_NAMES = frozenset({"includefield", "limit", "offset", "fuzzymatching", "Modality",
                          "SeriesInstanceUID", "SOPInstanceUID", "SeriesNumber",
                          "InstanceNumber", "viewport", "window", "quality"})
_QUERY_VALUE = re.compile(r"[A-Za-z0-9.,_*\-]{0,200}")

_MESSAGES: dict[str, tuple[str, str]] = {
    "unknown": ("This link does not work.", "此链接无法打开。"),
    "revoked": ("This link has been withdrawn.", "此链接已被撤销。"),
    "expired": ("This link has expired.", "此链接已过期。"),
    "locked": ("Too many wrong passcodes: the link is locked. Ask the office to reissue it.",
               "密码错误次数过多，链接已锁定。请联系机构重新签发。"),
    "passcode": ("The passcode is not right. Check the six digits on your slip.",
                 "密码不正确。请核对回执上的六位数字。"),
    "session": ("Open the link from your slip first.", "请先打开回执上的链接。"),
    "rate": ("Too many requests. Wait a minute and try again.",
             "请求过于频繁。请稍候一分钟再试。"),
    "study": ("This image is not part of your link.", "此影像不属于您的链接。"),
    "not-found": ("Not found.", "未找到。"),
    "bad-request": ("The request is not one this server understands.", "无法识别此请求。"),
    "signature": ("No trusted kiosk signed this token.", "此令牌未经受信任的终端签名。"),
    "malformed": ("The token is malformed.", "令牌格式错误。"),
    "conflict": ("This link id is already taken by another token.", "此链接编号已被其他令牌占用。"),
    "unavailable": ("The image server is busy or unavailable. Try again shortly.",
                    "影像服务器繁忙或不可用，请稍后再试。"),
}


class OrthancError(Exception):
    """Orthanc's REST API refused or failed a call (``status`` as HTTP would say it)."""

    def __init__(self, status: int, text: str = "") -> None:
        super().__init__(text or f"Orthanc answered {status}")
        self.status = status


class OrthancAccess(Protocol):
    """Orthanc's own REST API (and its plugins' routes), called from inside Orthanc."""

    def get(self, path: str) -> bytes:
        """GET ``path``; raises :class:`OrthancError` (404 when unknown)."""
        ...

    def post(self, path: str, body: bytes) -> bytes:
        """POST ``body`` to ``path``; raises :class:`OrthancError`."""
        ...

    def study_id(self, study_uid: str) -> str | None:
        """Orthanc's id of the study with this Study Instance UID, if it is stored."""
        ...


@dataclass(frozen=True)
class Request:
    """One HTTP request as Orthanc hands it to a REST callback."""

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    query: Mapping[str, str] = field(default_factory=dict)
    #: The client's address (the peer, or X-Forwarded-For behind a trusted proxy).
    client: str = ""


@dataclass
class Response:
    """What to answer; ``realm`` asks for basic auth, ``redirect`` sends elsewhere."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    realm: str | None = None
    redirect: str | None = None


def _json(status: int, data: Any, *headers: tuple[str, str]) -> Response:
    return Response(status, json.dumps(data, ensure_ascii=False).encode("utf-8"),
                    "application/json; charset=utf-8", [*headers, ("Cache-Control", "no-store")])


def _error(status: int, reason: str, **extra: Any) -> Response:
    en, zh = _MESSAGES[reason]
    headers = [("Retry-After", "60")] if reason == "rate" else []
    return _json(status, {"error": {"en": en, "zh": zh}, "reason": reason, **extra}, *headers)


def _html(status: int, body: bytes) -> Response:
    return Response(status, body, "text/html; charset=utf-8",
                    [("Cache-Control", "no-store"), ("Referrer-Policy", "no-referrer"),
                     ("X-Content-Type-Options", "nosniff"),
                     ("Content-Security-Policy", "frame-ancestors 'none'")])


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def _multipart_type(body: bytes) -> str:
    """The Content-Type of a DICOMweb multipart answer, read back from its first boundary."""
    first, _, rest = body.partition(b"\r\n")
    boundary = first[2:].decode("ascii", "replace").strip() if first.startswith(b"--") else ""
    part_type = "application/octet-stream"
    for line in rest.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-type":
            part_type = value.split(";")[0].strip() or part_type
    if not boundary:
        return "application/octet-stream"
    return f'multipart/related; type="{part_type}"; boundary={boundary}'


def _sniff(body: bytes, tail: str) -> str:
    if tail.endswith("/rendered"):
        if body.startswith(b"\xff\xd8"):
            return "image/jpeg"
        if body.startswith(b"\x89PNG"):
            return "image/png"
        return "application/octet-stream"
    if tail.endswith("/metadata") or tail.endswith(("/series", "/instances")) or not tail:
        return "application/dicom+json"
    return _multipart_type(body)


class Gateway:
    """The gateway's decisions and answers.

    Parameters
    ----------
    settings : GatewaySettings
        From ``orthanc.json``.
    store : ShareStore
        The shared database.
    orthanc : OrthancAccess
        Orthanc's REST API.
    clock : callable
        Epoch seconds now (tests move it).
    """

    def __init__(self, settings: GatewaySettings, store: ShareStore, orthanc: OrthancAccess,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store = store
        self.orthanc = orthanc
        self.clock = clock
        self.revocation_file = Path(settings.revocation_file)
        self.trust = TrustedKeys(settings.trust_keys, self.revocation_file)
        self._client_secret = bytes.fromhex(settings.client_key_secret)
        self._revoked: tuple[float, RevocationList] = (-1.0, RevocationList())
        self._page: tuple[float, bytes] = (-1.0, pages.PLACEHOLDER)

    # --- the filter -----------------------------------------------------------------------

    def is_admin(self, headers: Mapping[str, str]) -> bool:
        """Whether the request carries the office's admin credentials."""
        return credentials.basic_auth_matches(headers.get("authorization"),
                                              self.settings.admin_user,
                                              self.settings.admin_password)

    def allow(self, path: str, headers: Mapping[str, str]) -> bool:
        """The incoming-request filter: may this request reach its route at all?

        Phones' routes and the office's door (``/``) are decided by their handlers; the
        kiosk's routes need the kiosk (or admin) credentials; everything else the admin's.
        """
        if path == "/" or path.startswith("/s/"):
            return True
        if self.is_admin(headers):
            return True
        if path.startswith(("/kiosk/", "/dicom-web/")) or path == "/dicom-web":
            return credentials.basic_auth_matches(headers.get("authorization"),
                                                  self.settings.kiosk_user,
                                                  self.settings.kiosk_password)
        return False

    def client_address(self, peer: str, headers: Mapping[str, str]) -> str:
        """The client's address: the peer's, or the last X-Forwarded-For hop a proxy added."""
        forwarded = headers.get("x-forwarded-for")
        if forwarded and peer in self.settings.trusted_proxies:
            return forwarded.split(",")[-1].strip() or peer
        return peer

    # --- dispatch -------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Answer one request on one of the gateway's routes."""
        path = request.path
        try:
            if path == "/":
                return self._door(request)
            if path.startswith("/s/"):
                return self._phone(request)
            if path.startswith("/kiosk/shares/"):
                return self._kiosk(request)
            if path.startswith("/office/shares"):
                return self._office(request)
        except OrthancError as exc:
            return (_error(404, "not-found") if exc.status == 404
                    else _error(503, "unavailable"))
        return _error(404, "not-found")

    def _door(self, request: Request) -> Response:
        if self.is_admin(request.headers):
            return Response(redirect="app/explorer.html")
        return Response(401, pages.ADMIN, "text/html; charset=utf-8",
                        realm="MedPass gateway (office)")

    # --- shares and their state -------------------------------------------------------------

    def _file_revoked(self, share: Share) -> bool:
        """Whether the office's revocation list names this share's token or kiosk."""
        try:
            mtime = os.stat(self.revocation_file).st_mtime
        except FileNotFoundError:
            mtime = 0.0
        if mtime != self._revoked[0]:
            try:
                self._revoked = (mtime, RevocationList.read(self.revocation_file))
            except ConfigError:
                return True  # an unreadable list must not let anything through
        listed = self._revoked[1]
        return share.token_id in listed.token_ids or (share.kiosk_id or "") in listed.kiosk_ids

    def _present(self, share: Share) -> list[str]:
        """The share's studies that Orthanc holds now."""
        return [uid for uid in share.studies if self.orthanc.study_id(uid) is not None]

    def state(self, share: Share, present: list[str] | None = None) -> str:
        """``revoked``, ``expired``, ``locked``, ``live`` or ``waiting``."""
        if share.revoked is not None or self._file_revoked(share):
            return "revoked"
        if self.clock() >= share.expires:
            return "expired"
        if share.passcode_hash and share.attempts >= self.settings.passcode_attempts:
            return "locked"
        if present is None:
            present = self._present(share)
        return "live" if len(present) == len(share.studies) else "waiting"

    def _attempts_left(self, share: Share) -> int | None:
        if not share.passcode_hash:
            return None
        return max(0, self.settings.passcode_attempts - share.attempts)

    def _describe(self, share: Share) -> dict[str, Any]:
        present = self._present(share)
        return {"id": share.id, "state": self.state(share, present),
                "studies": list(share.studies), "studies_present": len(present),
                "attempts_left": self._attempts_left(share), "expires": _iso(share.expires)}

    # --- kiosk API --------------------------------------------------------------------------

    def _kiosk(self, request: Request) -> Response:
        rest = request.path[len("/kiosk/shares/"):]
        share_id, _, action = rest.partition("/")
        if not credentials.SHARE_ID_RE.fullmatch(share_id) or action not in ("", "revoke"):
            return _error(404, "unknown")
        if action == "revoke":
            if request.method != "POST":
                return _error(405, "bad-request")
            if not self.store.revoke(share_id, now=self.clock()):
                return _error(404, "unknown")
            return _json(200, {"id": share_id, "state": "revoked"})
        if request.method == "PUT":
            return self._register(share_id, request.body)
        if request.method == "GET":
            share = self.store.get(share_id)
            return _error(404, "unknown") if share is None else _json(200, self._describe(share))
        return _error(405, "bad-request")

    def _register(self, share_id: str, raw: bytes) -> Response:
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return _error(400, "bad-request")
        if not isinstance(body, dict) or not isinstance(body.get("token"), str):
            return _error(400, "bad-request")
        passcode, manifest, jws = body.get("passcode"), body.get("manifest"), \
            body.get("manifest_jws")
        if passcode is not None and not (isinstance(passcode, str)
                                         and credentials.PASSCODE_RE.fullmatch(passcode)):
            return _error(400, "bad-request")
        if (manifest is not None and not isinstance(manifest, dict)) or \
                (jws is not None and not isinstance(jws, str)):
            return _error(400, "bad-request")
        try:
            claims = self.trust.verify(body["token"], now=datetime.fromtimestamp(self.clock(),
                                                                                 UTC))
        except LinkTokenError as exc:
            reason = exc.reason if exc.reason in ("expired", "revoked", "malformed") \
                else "signature"
            return _error(403, reason)
        except ConfigError:
            return _error(503, "unavailable")
        if not all(_UID_RE.fullmatch(uid) for uid in claims.study_uids):
            return _error(403, "malformed")
        if self.store.token_revoked(claims.token_id):
            return _error(403, "revoked")
        existing = self.store.get(share_id)
        if existing is not None:  # the same token again: changes nothing (no scrypt either)
            if existing.token != body["token"].strip():
                return _error(409, "conflict")
            return _json(200, {"id": share_id, "state": self.state(existing)})
        share = NewShare(
            id=share_id, token=body["token"].strip(), token_id=claims.token_id,
            kiosk_id=claims.kiosk_id, case_id=claims.case_id, studies=claims.study_uids,
            expires=claims.expires.timestamp(),
            passcode_hash=credentials.hash_passcode(passcode) if passcode else None,
            manifest=json.dumps(manifest, ensure_ascii=False) if manifest is not None else None,
            manifest_jws=jws)
        outcome = self.store.register(share, now=self.clock())
        if outcome == "conflict":
            return _error(409, "conflict")
        stored = self.store.get(share_id)
        assert stored is not None
        return _json(201 if outcome == "created" else 200,
                     {"id": share_id, "state": self.state(stored)})

    # --- office API -------------------------------------------------------------------------

    def _office(self, request: Request) -> Response:
        if request.path == "/office/shares":
            if request.method != "GET":
                return _error(405, "bad-request")
            wanted = request.query.get("state")
            found = []
            for share in self.store.shares():
                described = self._describe(share)
                if wanted in (None, "", described["state"]):
                    found.append({**described, "created": _iso(share.created),
                                  "kiosk": share.kiosk_id, "case": share.case_id})
            return _json(200, {"shares": found})
        match = re.fullmatch(r"/office/shares/([^/]+)/(unlock|revoke)", request.path)
        if match is None or not credentials.SHARE_ID_RE.fullmatch(match[1]):
            return _error(404, "unknown")
        if request.method != "POST":
            return _error(405, "bad-request")
        share_id, action = match[1], match[2]
        done = (self.store.unlock(share_id) if action == "unlock"
                else self.store.revoke(share_id, now=self.clock()))
        if not done:
            return _error(404, "unknown")
        updated = self.store.get(share_id)
        assert updated is not None
        return _json(200, self._describe(updated))

    # --- phone API --------------------------------------------------------------------------

    def _limited(self, client: str, share_id: str | None, *, session: bool = False) -> bool:
        limits, now = self.settings.limits, self.clock()
        key = credentials.client_key(self._client_secret, client or "?")
        if self.store.hit(f"c:{key}", 60, now=now) > limits.client:
            return True
        if session and self.store.hit(f"cs:{key}", 60, now=now) > limits.client_sessions:
            return True
        return share_id is not None and self.store.hit(f"s:{share_id}", 60, now=now) > \
            limits.share

    def _share_page(self) -> bytes:
        path = Path(self.settings.share_page)
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return pages.PLACEHOLDER
        if mtime != self._page[0]:
            try:
                self._page = (mtime, path.read_bytes())
            except OSError:
                return pages.PLACEHOLDER
        return self._page[1]

    def _session_share(self, share_id: str, headers: Mapping[str, str]) -> bool:
        """Whether a cookie sent is a live session of this very share."""
        now = self.clock()
        for value in credentials.cookie_values(headers.get("cookie")):
            if self.store.session_share(credentials.token_hash(value), now=now) == share_id:
                return True
        return False

    def _phone(self, request: Request) -> Response:
        share_id, _, tail = request.path[len("/s/"):].partition("/")
        tail = "/" + tail if tail else ""
        page = tail in ("", "/")
        if not credentials.SHARE_ID_RE.fullmatch(share_id):
            if self._limited(request.client, None):
                return _html(429, pages.BUSY) if page else _error(429, "rate")
            return _html(404, pages.UNKNOWN) if page else _error(404, "unknown")
        if self._limited(request.client, share_id, session=tail == "/session"):
            return _html(429, pages.BUSY) if page else _error(429, "rate")
        share = self.store.get(share_id)
        if share is None:
            return _html(404, pages.UNKNOWN) if page else _error(404, "unknown")
        response, what = self._phone_answer(share, tail, request)
        self.store.audit(share_id, what, now=self.clock())
        return response

    def _phone_answer(self, share: Share, tail: str, request: Request) -> tuple[Response, str]:
        page = tail in ("", "/")
        # Which studies have landed matters to the page, the share's summary, the study list
        # and the download; a request inside one study needs only "not revoked or expired"
        # (Orthanc says 404 for what has not landed), so it costs no lookup per study.
        inside = tail.startswith("/dicom-web/studies/")
        present = list(share.studies) if inside else self._present(share)
        state = self.state(share, present)
        if state in ("revoked", "expired"):
            body = pages.REVOKED if state == "revoked" else pages.EXPIRED
            return (_html(410, body) if page else _error(410, state)), f"refused: {state}"
        if page:
            if request.method != "GET":
                return _error(405, "bad-request"), "refused: method"
            return _html(200, self._share_page()), "page"
        if tail == "/session":
            if request.method != "POST":
                return _error(405, "bad-request"), "refused: method"
            return self._open_session(share, state, request)
        if not self._session_share(share.id, request.headers):
            return (_error(401, "session", passcode=share.passcode_hash is not None),
                    "refused: session")
        if request.method != "GET":
            return _error(405, "bad-request"), "refused: method"
        if tail == "/api/share":
            manifest = json.loads(share.manifest) if share.manifest else None
            return _json(200, {"id": share.id, "state": state, "studies": list(share.studies),
                               "studies_present": len(present), "expires": _iso(share.expires),
                               "manifest": manifest, "manifest_jws": share.manifest_jws}), \
                "share"
        if tail == "/download":
            return self._download(share, present)
        if tail.startswith("/dicom-web/"):
            return self._dicomweb(share, present, tail[len("/dicom-web/"):], request.query)
        return _error(404, "not-found"), "refused: route"

    def _open_session(self, share: Share, state: str,
                      request: Request) -> tuple[Response, str]:
        if state == "locked":
            return _error(423, "locked"), "session: locked"
        try:
            body = json.loads(request.body.decode("utf-8") or "{}")
        except (UnicodeDecodeError, ValueError):
            body = None
        if not isinstance(body, dict):
            return _error(400, "bad-request"), "session: bad request"
        if share.passcode_hash:
            given = body.get("passcode")
            ok = isinstance(given, str) and credentials.PASSCODE_RE.fullmatch(given) is not None \
                and credentials.passcode_matches(given, share.passcode_hash)
            if not ok:
                used = self.store.fail_attempt(share.id, self.settings.passcode_attempts)
                if used is None:
                    return _error(423, "locked"), "session: locked"
                left = self.settings.passcode_attempts - used
                return _error(401, "passcode", attempts_left=left), "session: wrong passcode"
        now = self.clock()
        token = credentials.new_session_token()
        expires = min(now + self.settings.session_hours * 3600, share.expires)
        self.store.add_session(share.id, credentials.token_hash(token), expires, now=now)
        cookie = credentials.session_cookie(share.id, token, max(1, int(expires - now)))
        return _json(200, {"ok": True}, ("Set-Cookie", cookie)), "session: opened"

    def _download(self, share: Share, present: list[str]) -> tuple[Response, str]:
        ids = [self.orthanc.study_id(uid) for uid in present]
        if not ids:
            return _error(404, "not-found"), "download: nothing yet"
        body = self.orthanc.post("/tools/create-media", json.dumps(ids).encode())
        return Response(200, body, "application/zip", [
            ("Content-Disposition", 'attachment; filename="medpass-images.zip"'),
            ("Cache-Control", "no-store")]), f"download: {len(ids)} studies"

    def _dicomweb(self, share: Share, present: list[str], rest: str,
                  query: Mapping[str, str]) -> tuple[Response, str]:
        params = {k: v for k, v in query.items()
                  if k in _QUERY_NAMES and _QUERY_VALUE.fullmatch(v)}
        if rest == "studies":
            wanted = query.get("StudyInstanceUID")
            found: list[Any] = []
            for uid in present:
                if wanted and uid not in wanted.split(","):
                    continue
                qs = "&".join(f"{k}={quote(v, safe=',.*')}" for k, v in
                              {**params, "StudyInstanceUID": uid}.items())
                found.extend(json.loads(self.orthanc.get(f"/dicom-web/studies?{qs}") or b"[]"))
            return Response(200, json.dumps(found).encode(), "application/dicom+json",
                            [("Cache-Control", "no-store")]), f"dicom-web: {len(found)} studies"
        match = re.fullmatch(rf"studies/({_UID})(.*)", rest)
        if match is None or not _STUDY_TAIL.fullmatch(match[2]):
            return _error(404, "not-found"), "refused: dicom-web route"
        uid, tail = match[1], match[2]
        if uid not in share.studies:
            return _error(404, "study"), "refused: study"
        number = share.studies.index(uid) + 1
        qs = "&".join(f"{k}={quote(v, safe=',.*')}" for k, v in params.items())
        try:
            body = self.orthanc.get(f"/dicom-web/studies/{uid}{tail}" + (f"?{qs}" if qs else ""))
        except OrthancError as exc:
            if exc.status == 404:
                return _error(404, "not-found"), f"dicom-web: study {number}: not found"
            raise
        shape = re.sub(_UID, "…", tail) or "/"
        return Response(200, body, _sniff(body, tail), [("Cache-Control", "private")]), \
            f"dicom-web: study {number}{shape}"
