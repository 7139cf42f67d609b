"""The gateway's decisions (kiosk/gateway/app.py) against docs/gateway.md, fast.

A real :class:`~kiosk.gateway.share_store.ShareStore` (SQLite in a temp folder) and a small
in-memory stand-in for Orthanc's REST API; tests/gateway/test_gateway_orthanc.py runs the same
flows through a real Orthanc with the plugin loaded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from kiosk.gateway import credentials
from kiosk.gateway.app import Gateway, OrthancError, Request, Response
from kiosk.gateway.settings import GatewaySettings, Limits
from kiosk.gateway.share_store import ShareStore
from tests.gateway.gateway_kit import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    KIOSK_PASSWORD,
    KIOSK_USER,
    KioskKey,
    basic,
    hs256_token,
    share_id,
)

STUDY_A, STUDY_B, OTHER = "1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.2", \
    "1.2.826.0.1.3680043.8.498.99"
KIOSK_AUTH = {"authorization": basic(KIOSK_USER, KIOSK_PASSWORD)}
ADMIN_AUTH = {"authorization": basic(ADMIN_USER, ADMIN_PASSWORD)}


class FakeOrthanc:
    """Orthanc's REST API as the gateway calls it: which studies are stored, what was asked."""

    def __init__(self) -> None:
        self.stored: dict[str, str] = {}
        self.calls: list[str] = []

    def get(self, path: str) -> bytes:
        self.calls.append(path)
        if path.startswith("/dicom-web/studies?"):
            uid = path.split("StudyInstanceUID=")[1].split("&")[0]
            return json.dumps([{"0020000D": {"vr": "UI", "Value": [uid]}}]).encode()
        uid = path.split("/")[3].split("?")[0]
        if uid not in self.stored:
            raise OrthancError(404)
        return b'[{"00080060": {"vr": "CS", "Value": ["CT"]}}]'

    def post(self, path: str, body: bytes) -> bytes:
        self.calls.append(path)
        return b"PK\x05\x06" + bytes(18)

    def study_id(self, study_uid: str) -> str | None:
        return self.stored.get(study_uid)


class Clock:
    """Epoch seconds that a test moves on."""

    def __init__(self) -> None:
        import time
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def key() -> KioskKey:
    return KioskKey.new()


def _settings(tmp_path: Path, key: KioskKey, **changes: Any) -> GatewaySettings:
    settings = GatewaySettings(
        public_url="https://gw.example", kiosk_user=KIOSK_USER, kiosk_password=KIOSK_PASSWORD,
        admin_user=ADMIN_USER, admin_password=ADMIN_PASSWORD, trust_keys=(key.public_pem,),
        database=f"sqlite:///{tmp_path / 'gateway.sqlite'}",
        revocation_file=str(tmp_path / "revoked.txt"), client_key_secret="ab" * 32,
        share_page=str(tmp_path / "SHARE.html"))
    return replace(settings, **changes)


@pytest.fixture
def world(tmp_path: Path, key: KioskKey) -> Iterator[tuple[Gateway, FakeOrthanc, Clock]]:
    (tmp_path / "SHARE.html").write_text("<!DOCTYPE html><title>phone page</title>")
    store = ShareStore(f"sqlite:///{tmp_path / 'gateway.sqlite'}")
    orthanc, clock = FakeOrthanc(), Clock()
    yield Gateway(_settings(tmp_path, key), store, orthanc, clock), orthanc, clock
    store.close()


def call(gateway: Gateway, method: str, path: str, body: Any = None,
         headers: dict[str, str] | None = None, client: str = "203.0.113.7",
         query: dict[str, str] | None = None) -> Response:
    raw = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    return gateway.handle(Request(method, path, headers or {}, raw, query or {}, client))


def data(response: Response) -> Any:
    return json.loads(response.body)


def register(gateway: Gateway, key: KioskKey, sid: str, studies: list[str],
             passcode: str | None = None) -> Response:
    return call(gateway, "PUT", f"/kiosk/shares/{sid}",
                {"token": key.token(studies), "passcode": passcode, "manifest": {"v": 1},
                 "manifest_jws": "a..b"}, KIOSK_AUTH)


def open_session(gateway: Gateway, sid: str, passcode: str | None = None) -> Response:
    return call(gateway, "POST", f"/s/{sid}/session",
                {} if passcode is None else {"passcode": passcode})


def cookie_of(response: Response) -> dict[str, str]:
    set_cookie = dict(response.headers)["Set-Cookie"]
    return {"cookie": set_cookie.split(";")[0]}


# --- who may reach what ----------------------------------------------------------------------


def test_the_filter_lets_phones_in_and_keeps_kiosks_to_their_routes(world: Any) -> None:
    gateway, _, _ = world
    assert gateway.allow("/s/anything", {})
    assert gateway.allow("/", {})
    assert not gateway.allow("/dicom-web/studies", {})
    assert gateway.allow("/dicom-web/studies", KIOSK_AUTH)
    assert gateway.allow("/kiosk/shares/x", KIOSK_AUTH)
    # The kiosk's credentials open neither Orthanc's REST API nor the office's routes.
    for path in ("/instances", "/patients", "/tools/create-media", "/office/shares",
                 "/app/explorer.html"):
        assert not gateway.allow(path, KIOSK_AUTH), path
        assert gateway.allow(path, ADMIN_AUTH), path
    wrong = {"authorization": basic(KIOSK_USER, KIOSK_PASSWORD + "x")}
    assert not gateway.allow("/dicom-web/studies", wrong)
    assert not gateway.allow("/dicom-web/studies", {"authorization": "Basic !!!"})
    assert not gateway.allow("/dicom-web/studies", {"authorization": "Bearer abc"})


def test_the_door_asks_for_the_office_credentials(world: Any) -> None:
    gateway, _, _ = world
    assert call(gateway, "GET", "/").realm is not None
    assert call(gateway, "GET", "/", headers=ADMIN_AUTH).redirect == "app/explorer.html"


def test_forwarded_addresses_are_believed_only_from_the_local_proxy(world: Any) -> None:
    gateway, _, _ = world
    headers = {"x-forwarded-for": "198.51.100.1, 203.0.113.9"}
    assert gateway.client_address("127.0.0.1", headers) == "203.0.113.9"
    assert gateway.client_address("192.0.2.44", headers) == "192.0.2.44"


# --- the kiosk API ---------------------------------------------------------------------------


def test_registration_is_idempotent_and_an_id_cannot_be_taken_over(world: Any,
                                                                  key: KioskKey) -> None:
    gateway, orthanc, _ = world
    sid = share_id()
    token = key.token([STUDY_A])
    body = {"token": token, "passcode": None, "manifest": None, "manifest_jws": None}
    first = call(gateway, "PUT", f"/kiosk/shares/{sid}", body, KIOSK_AUTH)
    assert first.status == 201 and data(first) == {"id": sid, "state": "waiting"}
    again = call(gateway, "PUT", f"/kiosk/shares/{sid}", body, KIOSK_AUTH)
    assert again.status == 200 and data(again)["state"] == "waiting"
    taken = call(gateway, "PUT", f"/kiosk/shares/{sid}", {**body, "token": key.token([STUDY_A])},
                 KIOSK_AUTH)
    assert taken.status == 409 and data(taken)["reason"] == "conflict"
    assert set(data(taken)["error"]) == {"en", "zh"}

    orthanc.stored[STUDY_A] = "orthanc-a"
    described = data(call(gateway, "GET", f"/kiosk/shares/{sid}", headers=KIOSK_AUTH))
    assert described["state"] == "live" and described["studies"] == [STUDY_A]
    assert described["studies_present"] == 1 and described["attempts_left"] is None


@pytest.mark.parametrize("case", ["untrusted", "expired", "hs256", "not a jwt"])
def test_tokens_no_trusted_kiosk_signed_or_that_expired_are_refused(world: Any, key: KioskKey,
                                                                   case: str) -> None:
    gateway, _, _ = world
    token = {"untrusted": KioskKey.new("rogue").token([STUDY_A]),
             "expired": key.expired_token([STUDY_A]), "hs256": hs256_token([STUDY_A]),
             "not a jwt": "hello"}[case]
    sid = share_id()
    answer = call(gateway, "PUT", f"/kiosk/shares/{sid}", {"token": token}, KIOSK_AUTH)
    assert answer.status == 403
    assert data(answer)["reason"] == {"untrusted": "signature", "expired": "expired",
                                      "hs256": "signature", "not a jwt": "malformed"}[case]
    assert gateway.store.get(sid) is None


@pytest.mark.parametrize("body", [b"\xff\xfe", b"[1, 2]", b'{"passcode": "123456"}',
                                  b'{"token": "t", "passcode": "12345"}',
                                  b'{"token": "t", "passcode": 123456}',
                                  b'{"token": "t", "manifest": "not an object"}',
                                  b'{"token": "t", "manifest_jws": 7}'])
def test_a_malformed_registration_is_a_400(world: Any, body: bytes) -> None:
    gateway, _, _ = world
    answer = call(gateway, "PUT", f"/kiosk/shares/{share_id()}", body, KIOSK_AUTH)
    assert answer.status == 400 and data(answer)["reason"] == "bad-request"


def test_ids_that_are_not_link_ids_are_unknown_everywhere(world: Any) -> None:
    gateway, _, _ = world
    for path in ("/kiosk/shares/ABC", "/kiosk/shares/" + "a" * 27, "/kiosk/shares/../x"):
        assert call(gateway, "GET", path, headers=KIOSK_AUTH).status == 404
    page = call(gateway, "GET", "/s/not-an-id")
    assert page.status == 404 and page.content_type.startswith("text/html")
    assert b"This link does not work" in page.body
    assert "此链接无法打开".encode() in page.body


def test_a_revoked_token_cannot_be_registered_again(world: Any, key: KioskKey) -> None:
    gateway, _, _ = world
    sid = share_id()
    token = key.token([STUDY_A])
    call(gateway, "PUT", f"/kiosk/shares/{sid}", {"token": token}, KIOSK_AUTH)
    revoked = call(gateway, "POST", f"/kiosk/shares/{sid}/revoke", headers=KIOSK_AUTH)
    assert revoked.status == 200 and data(revoked)["state"] == "revoked"
    again = call(gateway, "POST", f"/kiosk/shares/{sid}/revoke", headers=KIOSK_AUTH)
    assert again.status == 200
    elsewhere = call(gateway, "PUT", f"/kiosk/shares/{share_id()}", {"token": token},
                     KIOSK_AUTH)
    assert elsewhere.status == 403 and data(elsewhere)["reason"] == "revoked"
    assert call(gateway, "POST", f"/kiosk/shares/{share_id()}/revoke",
                headers=KIOSK_AUTH).status == 404


# --- the phone API ---------------------------------------------------------------------------


def test_a_phone_opens_its_share_and_sees_only_its_studies(world: Any, key: KioskKey) -> None:
    gateway, orthanc, _ = world
    orthanc.stored.update({STUDY_A: "a", STUDY_B: "b", OTHER: "o"})
    sid = share_id()
    assert register(gateway, key, sid, [STUDY_A, STUDY_B]).status == 201
    page = call(gateway, "GET", f"/s/{sid}")
    assert page.status == 200 and b"phone page" in page.body
    assert ("Referrer-Policy", "no-referrer") in page.headers

    before = call(gateway, "GET", f"/s/{sid}/api/share")
    assert before.status == 401 and data(before) | {"error": 0} == {
        "error": 0, "reason": "session", "passcode": False}
    session = open_session(gateway, sid)
    assert session.status == 200
    set_cookie = dict(session.headers)["Set-Cookie"]
    for attribute in ("HttpOnly", "Secure", "SameSite=Strict", f"Path=/s/{sid}"):
        assert attribute in set_cookie
    cookie = cookie_of(session)

    share = data(call(gateway, "GET", f"/s/{sid}/api/share", headers=cookie))
    assert share["studies"] == [STUDY_A, STUDY_B] and share["state"] == "live"
    assert share["manifest"] == {"v": 1} and share["manifest_jws"] == "a..b"

    studies = data(call(gateway, "GET", f"/s/{sid}/dicom-web/studies", headers=cookie))
    assert [s["0020000D"]["Value"][0] for s in studies] == [STUDY_A, STUDY_B]
    ok = call(gateway, "GET", f"/s/{sid}/dicom-web/studies/{STUDY_A}/metadata", headers=cookie)
    assert ok.status == 200 and ok.content_type == "application/dicom+json"
    refused = call(gateway, "GET", f"/s/{sid}/dicom-web/studies/{OTHER}/metadata",
                   headers=cookie)
    assert refused.status == 404 and data(refused)["reason"] == "study"
    for path in (f"/s/{sid}/dicom-web/studies/{STUDY_A}/../../{OTHER}",
                 f"/s/{sid}/dicom-web/patients", f"/s/{sid}/instances",
                 f"/s/{sid}/dicom-web/studies/{STUDY_A}/bulkdata/x"):
        assert call(gateway, "GET", path, headers=cookie).status == 404, path
    assert not any(OTHER in c for c in orthanc.calls)

    download = call(gateway, "GET", f"/s/{sid}/download", headers=cookie)
    assert download.status == 200 and download.content_type == "application/zip"
    assert orthanc.calls[-1] == "/tools/create-media"


def test_only_known_query_parameters_reach_orthanc(world: Any, key: KioskKey) -> None:
    gateway, orthanc, _ = world
    orthanc.stored[STUDY_A] = "a"
    sid = share_id()
    register(gateway, key, sid, [STUDY_A])
    cookie = cookie_of(open_session(gateway, sid))
    call(gateway, "GET", f"/s/{sid}/dicom-web/studies/{STUDY_A}/series", headers=cookie,
         query={"includefield": "00080060", "PatientName": "*", "limit": "5;DROP"})
    assert orthanc.calls[-1] == f"/dicom-web/studies/{STUDY_A}/series?includefield=00080060"


def test_a_session_of_one_share_opens_no_other(world: Any, key: KioskKey) -> None:
    gateway, orthanc, _ = world
    orthanc.stored.update({STUDY_A: "a", STUDY_B: "b"})
    first, second = share_id(), share_id()
    register(gateway, key, first, [STUDY_A])
    register(gateway, key, second, [STUDY_B])
    cookie = cookie_of(open_session(gateway, first))
    assert call(gateway, "GET", f"/s/{second}/api/share", headers=cookie).status == 401
    forged = {"cookie": f"{credentials.COOKIE_NAME}=made-up"}
    assert call(gateway, "GET", f"/s/{first}/api/share", headers=forged).status == 401


def test_wrong_passcodes_lock_the_link_until_the_office_unlocks_it(world: Any,
                                                                   key: KioskKey) -> None:
    gateway, orthanc, _ = world
    orthanc.stored[STUDY_A] = "a"
    sid = share_id()
    register(gateway, key, sid, [STUDY_A], passcode="246810")
    assert "246810" not in (gateway.store.get(sid).passcode_hash or "")
    needs = call(gateway, "GET", f"/s/{sid}/api/share")
    assert data(needs)["passcode"] is True
    assert open_session(gateway, sid).status == 401  # none given
    left = [data(open_session(gateway, sid, f"00000{n}"))["attempts_left"] for n in range(4)]
    assert left == [3, 2, 1, 0]
    locked = open_session(gateway, sid, "246810")  # the right one, too late
    assert locked.status == 423 and data(locked)["reason"] == "locked"
    assert call(gateway, "GET", f"/s/{sid}").status == 200  # the page explains the lock
    assert data(call(gateway, "GET", f"/kiosk/shares/{sid}", headers=KIOSK_AUTH))["state"] \
        == "locked"

    unlocked = call(gateway, "POST", f"/office/shares/{sid}/unlock", headers=ADMIN_AUTH)
    assert unlocked.status == 200 and data(unlocked)["attempts_left"] == 5
    assert open_session(gateway, sid, "246810").status == 200


def test_revoked_and_expired_links_say_so_and_nothing_else(world: Any, key: KioskKey,
                                                           tmp_path: Path) -> None:
    gateway, orthanc, clock = world
    orthanc.stored[STUDY_A] = "a"
    revoked, expired, by_list = share_id(), share_id(), share_id()
    for sid in (revoked, expired, by_list):
        register(gateway, key, sid, [STUDY_A])
    cookie = cookie_of(open_session(gateway, revoked))
    call(gateway, "POST", f"/office/shares/{revoked}/revoke", headers=ADMIN_AUTH)
    page = call(gateway, "GET", f"/s/{revoked}")
    assert page.status == 410 and "此链接已被撤销".encode() in page.body
    assert STUDY_A.encode() not in page.body and b"C-0001" not in page.body
    assert call(gateway, "GET", f"/s/{revoked}/api/share", headers=cookie).status == 410

    # The office's revocation file names the kiosk: every link of it stops at once.
    (tmp_path / "revoked.txt").write_text(f"kiosk {key.kiosk_id}\n")
    assert call(gateway, "GET", f"/s/{by_list}").status == 410
    (tmp_path / "revoked.txt").unlink()

    clock.now += 31 * 86400
    gone = call(gateway, "GET", f"/s/{expired}")
    assert gone.status == 410 and "此链接已过期".encode() in gone.body
    assert data(call(gateway, "POST", f"/s/{expired}/session", {}))["reason"] == "expired"


def test_too_many_requests_are_refused_with_retry_after(tmp_path: Path, key: KioskKey) -> None:
    (tmp_path / "SHARE.html").write_text("page")
    store = ShareStore(f"sqlite:///{tmp_path / 'gateway.sqlite'}")
    settings = _settings(tmp_path, key, limits=Limits(client=5, share=100, client_sessions=2))
    gateway = Gateway(settings, store, FakeOrthanc(), Clock())
    sid = share_id()
    register(gateway, key, sid, [STUDY_A])
    answers = [call(gateway, "GET", f"/s/{sid}").status for _ in range(6)]
    assert answers == [200] * 5 + [429]
    assert call(gateway, "GET", f"/s/{sid}", client="198.51.100.2").status == 200
    busy = call(gateway, "GET", f"/s/{sid}/api/share", client="203.0.113.7")
    assert busy.status == 429 and ("Retry-After", "60") in busy.headers
    store.close()


def test_every_phone_request_is_audited_without_the_address(world: Any, key: KioskKey) -> None:
    gateway, orthanc, _ = world
    orthanc.stored[STUDY_A] = "a"
    sid = share_id()
    register(gateway, key, sid, [STUDY_A])
    call(gateway, "GET", f"/s/{sid}")
    cookie = cookie_of(open_session(gateway, sid))
    call(gateway, "GET", f"/s/{sid}/dicom-web/studies/{STUDY_A}/metadata", headers=cookie)
    what = [w for _, w in gateway.store.views(sid)]
    assert what == ["page", "session: opened", "dicom-web: study 1/metadata"]
    assert not any("203.0.113.7" in w for w in what)


def test_orthanc_failing_is_a_503_in_both_languages(world: Any, key: KioskKey) -> None:
    gateway, orthanc, _ = world
    sid = share_id()
    register(gateway, key, sid, [STUDY_A])

    def broken(_uid: str) -> str | None:
        raise OrthancError(500, "database locked")
    orthanc.study_id = broken
    answer = call(gateway, "GET", f"/kiosk/shares/{sid}", headers=KIOSK_AUTH)
    assert answer.status == 503 and set(data(answer)["error"]) == {"en", "zh"}
