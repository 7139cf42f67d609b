"""The Orthanc side: registers the filter and the REST callbacks (the only module importing
``orthanc``, which exists only inside Orthanc's embedded Python).

Facts of Orthanc 1.10 + orthanc-python 4.0 this relies on (tried on Debian 12):

- the incoming-request filter gets the peer's address, the REST callback does not; both run
  on the same HTTP thread, one after the other, so the filter leaves the address under the
  thread's native id for the callback (:data:`_PEERS`);
- a filter that says no makes Orthanc answer 403 (it cannot ask for credentials); the door
  ``/`` is a callback of ours so a browser gets a real 401 challenge there;
- a plugin's REST callbacks are tried before Orthanc's own routes;
- ``RestApiGetAfterPlugins`` reaches the DICOMweb plugin's routes but hands back the body
  only, so :mod:`kiosk.gateway.app` reads a multipart answer's boundary back from its body;
- ``SendHttpStatus`` wants ``(status, str, byte length)``.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import orthanc

from kiosk.gateway.app import Gateway, OrthancError, Request, Response
from kiosk.gateway.settings import SECTION, GatewaySettings
from kiosk.gateway.share_store import ShareStore

#: Peer address seen by the filter, by native thread id, for the callback that follows.
_PEERS: dict[int, str] = {}
_GATEWAY: list[Gateway] = []
_UNKNOWN_CODES = {"UNKNOWN_RESOURCE", "INEXISTENT_ITEM", "INEXISTENT_FILE"}
_FAILURE = json.dumps({"error": {"en": "The server could not answer. Try again shortly.",
                                 "zh": "服务器暂时无法响应，请稍后再试。"},
                       "reason": "unavailable"}, ensure_ascii=False)


def _status_of(exc: BaseException) -> int:
    code = exc.args[0] if exc.args else None
    name = getattr(code, "name", "")
    if not name:
        try:
            name = orthanc.ErrorCode(int(code)).name  # type: ignore[arg-type]
        except (TypeError, ValueError):
            name = ""
    return 404 if name in _UNKNOWN_CODES else 500


class _OrthancRest:
    """:class:`kiosk.gateway.app.OrthancAccess` through the plugin SDK."""

    def get(self, path: str) -> bytes:
        try:
            return bytes(orthanc.RestApiGetAfterPlugins(path))
        except orthanc.OrthancException as exc:
            raise OrthancError(_status_of(exc), str(exc)) from None

    def post(self, path: str, body: bytes) -> bytes:
        try:
            return bytes(orthanc.RestApiPost(path, body))
        except orthanc.OrthancException as exc:
            raise OrthancError(_status_of(exc), str(exc)) from None

    def study_id(self, study_uid: str) -> str | None:
        try:
            found = orthanc.LookupStudy(study_uid)
        except orthanc.OrthancException:
            return None
        return str(found) if found else None


def _filter(uri: str, **request: Any) -> bool:
    try:
        _PEERS[threading.get_native_id()] = str(request.get("ip", ""))
        return _GATEWAY[0].allow(uri, request.get("headers") or {})
    except Exception as exc:  # noqa: BLE001 - a filter that fails refuses (never a half-checked request)
        orthanc.LogError(f"MedPass gateway filter: {type(exc).__name__}")
        return False


def _send(output: Any, response: Response) -> None:
    if response.redirect is not None:
        output.Redirect(response.redirect)
        return
    if response.realm is not None:
        output.SendUnauthorized(response.realm)
        return
    for name, value in response.headers:
        output.SetHttpHeader(name, value)
    if response.status == 200:
        output.AnswerBuffer(response.body, response.content_type)
        return
    output.SetHttpHeader("Content-Type", response.content_type)
    text = response.body.decode("utf-8")
    output.SendHttpStatus(response.status, text, len(response.body))


def _callback(output: Any, uri: str, **request: Any) -> None:
    gateway = _GATEWAY[0]
    headers = request.get("headers") or {}
    peer = _PEERS.get(threading.get_native_id(), "")
    body = request.get("body") or b""
    req = Request(method=str(request.get("method", "GET")), path=uri, headers=headers,
                  body=body if isinstance(body, bytes) else str(body).encode(),
                  query=request.get("get") or {}, client=gateway.client_address(peer, headers))
    try:
        response = gateway.handle(req)
    except Exception as exc:  # noqa: BLE001 - never a traceback to a phone; the log names the kind only
        orthanc.LogError(f"MedPass gateway {req.method} {uri.split('/')[1]}: "
                         f"{type(exc).__name__}: {exc}")
        output.SetHttpHeader("Content-Type", "application/json; charset=utf-8")
        output.SendHttpStatus(503, _FAILURE, len(_FAILURE.encode()))
        return
    _send(output, response)


def start() -> None:
    """Read the ``MedPassGateway`` settings, open the database, register everything."""
    settings = GatewaySettings.from_json(json.loads(orthanc.GetConfiguration()).get(SECTION))
    _GATEWAY[:] = [Gateway(settings, ShareStore(settings.database), _OrthancRest())]
    orthanc.RegisterIncomingHttpRequestFilter(_filter)
    for route in ("/", "/s/(.*)", "/kiosk/shares/(.*)", "/office/shares(.*)"):
        orthanc.RegisterRestCallback(route, _callback)
    orthanc.LogWarning(f"MedPass gateway: {len(settings.trust_keys)} trusted kiosk key(s), "
                       f"database {settings.database.split(':', 1)[0]}")
