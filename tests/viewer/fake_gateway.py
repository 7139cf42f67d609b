"""A small stand-in for the office gateway's phone API (docs/gateway.md "Phone API"), for the
phone page's browser tests: an ``http.server`` over real DICOM files.

It answers as the real gateway does (``kiosk/gateway/app.py``): the same routes (its
``_STUDY_TAIL`` decides which DICOMweb paths under a study exist), only the query parameters
the gateway passes on (``_QUERY_NAMES``, others dropped), QIDO as ``application/dicom+json``,
WADO-RS instances as ``multipart/related; type="application/dicom"`` with one part, the
session cookie bound to ``/s/{id}``, and the same JSON errors. Every request is recorded so a
test can check the page asked for nothing the real gateway would not answer.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import secrets
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pydicom
from pydicom.dataset import Dataset

from kiosk.gateway.app import _MESSAGES, _QUERY_NAMES, _QUERY_VALUE, _STUDY_TAIL, _UID

COOKIE = "medpass_share"
SHARE_ID = re.compile(r"[a-z2-7]{26}")
STUDY_FIELDS = ("StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber", "PatientName",
                "PatientID", "PatientBirthDate", "PatientSex", "StudyDescription",
                "ReferringPhysicianName", "StudyID", "SpecificCharacterSet")
SERIES_FIELDS = ("SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription",
                 "SpecificCharacterSet")
INSTANCE_FIELDS = ("SOPClassUID", "SOPInstanceUID", "InstanceNumber", "SpecificCharacterSet")
PAGES = {404: b"<!doctype html><title>Unknown</title><p>This link does not work.",
         410: b"<!doctype html><title>Gone</title><p>This link has expired or was withdrawn."}


def new_share_id() -> str:
    """A share id as the kiosk makes one: 128 random bits, lower-case base32 (26 characters)."""
    return base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=").lower()


@dataclass
class Instance:
    """One stored instance: its file and the UIDs it is found by."""

    path: Path
    study: str
    series: str
    sop: str
    header: Dataset


@dataclass
class FakeShare:
    """A share as the gateway keeps it."""

    id: str
    studies: list[str]
    passcode: str | None = None
    attempts_left: int = 5
    revoked: bool = False
    expires: float = field(default_factory=lambda: time.time() + 86400)
    manifest: dict[str, Any] | None = None
    manifest_jws: str | None = None
    sessions: set[str] = field(default_factory=set)

    def state(self, present: list[str]) -> str:
        """``revoked``, ``expired``, ``locked``, ``live`` or ``waiting`` (the gateway's order)."""
        if self.revoked:
            return "revoked"
        if time.time() >= self.expires:
            return "expired"
        if self.passcode and self.attempts_left <= 0:
            return "locked"
        return "live" if len(present) == len(self.studies) else "waiting"


class FakeGateway:
    """The phone API over ``instances``; ``page`` is the SHARE.html bytes it serves."""

    def __init__(self, page: Path, instances: list[Path]) -> None:
        self.page = page
        self.instances: dict[str, Instance] = {}
        for path in instances:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            header = Dataset()
            for keyword in {*STUDY_FIELDS, *SERIES_FIELDS, *INSTANCE_FIELDS}:
                if keyword in ds:
                    setattr(header, keyword, ds[keyword].value)
            self.instances[str(ds.SOPInstanceUID)] = Instance(
                path, str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID),
                str(ds.SOPInstanceUID), header)
        self.shares: dict[str, FakeShare] = {}
        self.requests: list[tuple[str, str, float]] = []  # (method, path with query, time)
        self.latency = 0.0  # seconds added to every DICOMweb answer (a slower network)
        self._lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    # --- set-up ---------------------------------------------------------------------------

    def add(self, share: FakeShare) -> FakeShare:
        """Register a share (as the kiosk's PUT would)."""
        self.shares[share.id] = share
        return share

    def url(self, share_id: str) -> str:
        """The QR's URL of a share on this server."""
        assert self.server is not None
        port = self.server.server_address[1]
        return f"http://127.0.0.1:{port}/s/{share_id}"

    def start(self) -> FakeGateway:
        """Serve on a free loopback port, in a thread."""
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                gateway._serve(self, "GET")

            def do_POST(self) -> None:
                gateway._serve(self, "POST")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    # --- answers ------------------------------------------------------------------------

    def _present(self, share: FakeShare) -> list[str]:
        held = {i.study for i in self.instances.values()}
        return [uid for uid in share.studies if uid in held]

    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        with self._lock:
            self.requests.append((method, handler.path, time.monotonic()))
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        status, headers, payload = self._answer(method, handler.path, dict(handler.headers), body)
        if self.latency and "/dicom-web/" in handler.path:
            time.sleep(self.latency)
        handler.send_response(status)
        for name, value in headers:
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    @staticmethod
    def _error(status: int, reason: str, **extra: Any) -> tuple[int, list[tuple[str, str]], bytes]:
        en, zh = _MESSAGES[reason]
        data = {"error": {"en": en, "zh": zh}, "reason": reason, **extra}
        headers = [("Content-Type", "application/json; charset=utf-8")]
        if reason == "rate":
            headers.append(("Retry-After", "60"))
        return status, headers, json.dumps(data, ensure_ascii=False).encode()

    @staticmethod
    def _json(data: Any, content_type: str = "application/json; charset=utf-8",
              *extra: tuple[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
        return 200, [("Content-Type", content_type), ("Cache-Control", "no-store"), *extra], \
            json.dumps(data, ensure_ascii=False).encode()

    def _answer(self, method: str, target: str, headers: dict[str, str],
                body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        parts = urlsplit(target)
        query = dict(parse_qsl(parts.query))
        if not parts.path.startswith("/s/"):
            return 403, [("Content-Type", "text/plain")], b"forbidden"
        share_id, _, tail = parts.path[len("/s/"):].partition("/")
        tail = "/" + tail if tail else ""
        page = tail in ("", "/")
        share = self.shares.get(share_id) if SHARE_ID.fullmatch(share_id) else None
        if share is None:
            return (404, [("Content-Type", "text/html; charset=utf-8")], PAGES[404]) if page \
                else self._error(404, "unknown")
        present = self._present(share)
        state = share.state(present)
        if state in ("revoked", "expired"):
            return (410, [("Content-Type", "text/html; charset=utf-8")], PAGES[410]) if page \
                else self._error(410, state)
        if page:
            return 200, [("Content-Type", "text/html; charset=utf-8"),
                         ("Cache-Control", "no-store")], self.page.read_bytes()
        if tail == "/session":
            if method != "POST":
                return self._error(405, "bad-request")
            return self._session(share, state, body)
        cookies = [c.strip().partition("=") for c in headers.get("Cookie", "").split(";")]
        if not any(name == COOKIE and value in share.sessions for name, _, value in cookies):
            return self._error(401, "session", passcode=share.passcode is not None)
        if method != "GET":
            return self._error(405, "bad-request")
        if tail == "/api/share":
            return self._json({"id": share.id, "state": state, "studies": share.studies,
                               "studies_present": len(present),
                               "expires": datetime.fromtimestamp(share.expires, UTC).isoformat(),
                               "manifest": share.manifest, "manifest_jws": share.manifest_jws})
        if tail == "/download":
            return self._download(share)
        if tail.startswith("/dicom-web/"):
            return self._dicomweb(share, present, tail[len("/dicom-web/"):], query)
        return self._error(404, "not-found")

    def _session(self, share: FakeShare, state: str,
                 body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        if state == "locked":
            return self._error(423, "locked")
        try:
            data = json.loads(body.decode() or "{}")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return self._error(400, "bad-request")
        if share.passcode is not None:
            given = data.get("passcode")
            if not (isinstance(given, str) and secrets.compare_digest(given, share.passcode)):
                share.attempts_left -= 1
                if share.attempts_left < 0:
                    share.attempts_left = 0
                    return self._error(423, "locked")
                return self._error(401, "passcode", attempts_left=share.attempts_left)
        token = secrets.token_urlsafe(32)
        share.sessions.add(token)
        cookie = (f"{COOKIE}={token}; Max-Age=3600; Path=/s/{share.id}; HttpOnly; Secure; "
                  "SameSite=Strict")
        return self._json({"ok": True}, "application/json; charset=utf-8", ("Set-Cookie", cookie))

    def _download(self, share: FakeShare) -> tuple[int, list[tuple[str, str]], bytes]:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
            for n, inst in enumerate(i for i in self.instances.values()
                                     if i.study in share.studies):
                z.write(inst.path, f"IMAGES/IM{n:06d}")
        return 200, [("Content-Type", "application/zip"),
                     ("Content-Disposition", 'attachment; filename="medpass-images.zip"')], \
            buf.getvalue()

    def _dicomweb(self, share: FakeShare, present: list[str], rest: str,
                  query: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
        params = {k: v for k, v in query.items() if k in _QUERY_NAMES and _QUERY_VALUE.fullmatch(v)}
        if rest == "studies":
            wanted = query.get("StudyInstanceUID")
            uids = [u for u in present if not wanted or u in wanted.split(",")]
            firsts = [next(i for i in self.instances.values() if i.study == u) for u in uids]
            return self._qido([i.header for i in firsts], STUDY_FIELDS, params)
        match = re.fullmatch(rf"studies/({_UID})(.*)", rest)
        if match is None or not _STUDY_TAIL.fullmatch(match[2]):
            return self._error(404, "not-found")
        uid, tail = match[1], match[2]
        if uid not in share.studies:
            return self._error(404, "study")
        mine = [i for i in self.instances.values() if i.study == uid]
        if tail == "/series":
            seen: dict[str, Dataset] = {}
            for i in mine:
                seen.setdefault(i.series, i.header)
            return self._qido(list(seen.values()), SERIES_FIELDS, params)
        m = re.fullmatch(rf"/series/({_UID})/instances(?:/({_UID}))?", tail)
        if m is None:
            return self._error(404, "not-found")  # metadata, rendered, frames: not faked
        series = [i for i in mine if i.series == m[1]]
        if m[2] is None:
            return self._qido([i.header for i in series], INSTANCE_FIELDS, params)
        found = [i for i in series if i.sop == m[2]]
        if not found:
            return self._error(404, "not-found")
        boundary = secrets.token_hex(16)
        data = found[0].path.read_bytes()
        payload = (f"--{boundary}\r\nContent-Type: application/dicom\r\n"
                   f"Content-Length: {len(data)}\r\n\r\n").encode() + data + \
            f"\r\n--{boundary}--\r\n".encode()
        return 200, [("Content-Type",
                      f'multipart/related; type="application/dicom"; boundary={boundary}'),
                     ("Cache-Control", "private")], payload

    def _qido(self, headers: list[Dataset], fields: tuple[str, ...],
              params: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 0)
        chosen = headers[offset:offset + limit] if limit else headers[offset:]
        out = []
        for h in chosen:
            ds = Dataset()
            for keyword in fields:
                if keyword in h:
                    setattr(ds, keyword, h[keyword].value)
            out.append(ds.to_json_dict())
        return self._json(out, "application/dicom+json")

    # --- what the page asked ----------------------------------------------------------------

    def dicomweb_requests(self) -> Iterator[tuple[str, dict[str, str]]]:
        """Each DICOMweb request's path under ``dicom-web/`` and its query."""
        for _, target, _ in self.requests:
            parts = urlsplit(target)
            if "/dicom-web/" in parts.path:
                yield parts.path.split("/dicom-web/", 1)[1], dict(parse_qsl(parts.query))


def sha256(path: Path) -> str:
    """Lower-hex SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
