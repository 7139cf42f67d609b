"""Beyond one machine (issue 17, item 5): two Orthanc processes on one PostgreSQL behind nginx
with TLS. A link registered through one is served by the other, passcode attempts count across
both, and when one is killed mid-session the phone goes on through the other."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pydicom
import pytest

from kiosk.samples.bulk import write_study
from tests.gateway.gateway_kit import KioskKey, share_id
from tests.gateway.real_gateway import GatewayClient, RealGateway, start_gateway
from tests.gateway.services import Nginx, PostgresCluster

pytestmark = pytest.mark.slow


@dataclass
class Office:
    """The office's servers and what a kiosk knows of them."""

    first: RealGateway
    second: RealGateway
    public: GatewayClient
    key: KioskKey
    study: str


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Office]:
    root = tmp_path_factory.mktemp("office")
    database = PostgresCluster(root / "pg")
    database.start()
    started: list[RealGateway] = []
    nginx = None
    try:
        key = KioskKey.new("desk-21")
        first = start_gateway(root / "a", [key], database=database.url)
        started.append(first)
        second = first.twin("b")
        second.start()
        started.append(second)
        nginx = Nginx(root / "nginx", [first.port, second.port])
        nginx.start()
        files = write_study(root / "study", instances=2, rows=32, columns=32,
                            patient_id="P-PG", seed=21)
        study = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
        assert first.stow(files).status == 200
        yield Office(first, second, GatewayClient(nginx.url, nginx.ssl_context()), key, study)
    finally:
        if nginx is not None:
            nginx.stop()
        for server in started:
            server.stop()
        database.stop()


def test_a_link_registered_through_one_process_is_served_by_the_other(office: Office) -> None:
    settings = json.loads(office.second.config.read_text())
    assert settings["PostgreSQL"]["EnableIndex"] and settings["PostgreSQL"]["EnableStorage"]
    assert settings["MedPassGateway"]["database"].startswith("postgresql://")
    assert "MedPass gateway: 1 trusted kiosk key(s), database postgresql" in office.second.log()
    sid = share_id()
    registered = office.first.kiosk("PUT", f"/kiosk/shares/{sid}",
                                    {"token": office.key.token([office.study])})
    assert registered.status == 201
    # The study went in through the first process and the share too: the second has both.
    assert office.second.kiosk("GET", f"/kiosk/shares/{sid}").json()["state"] == "live"
    session = office.second.request("POST", f"/s/{sid}/session", b"{}")
    assert session.status == 200
    cookie = {"Cookie": session.headers["Set-Cookie"].split(";")[0]}
    listed = office.first.request("GET", f"/s/{sid}/dicom-web/studies", headers=cookie).json()
    assert [s["0020000D"]["Value"][0] for s in listed] == [office.study]


def test_passcode_attempts_count_across_both_processes(office: Office) -> None:
    sid = share_id()
    office.first.kiosk("PUT", f"/kiosk/shares/{sid}",
                       {"token": office.key.token([office.study]), "passcode": "864200"})
    servers = [office.first, office.second] * 3
    left = [servers[n].request("POST", f"/s/{sid}/session", b'{"passcode": "111111"}')
            .json().get("attempts_left") for n in range(5)]
    assert left == [4, 3, 2, 1, 0]
    for server in (office.first, office.second):
        assert server.request("POST", f"/s/{sid}/session",
                              b'{"passcode": "864200"}').status == 423


def test_the_phone_goes_on_through_the_other_when_one_is_killed(office: Office) -> None:
    sid = share_id()
    office.first.kiosk("PUT", f"/kiosk/shares/{sid}",
                       {"token": office.key.token([office.study])})
    page = office.public.request("GET", f"/s/{sid}")
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    session = office.public.request("POST", f"/s/{sid}/session", b"{}")
    assert session.status == 200
    set_cookie = session.headers["Set-Cookie"]
    assert "Secure" in set_cookie and "HttpOnly" in set_cookie
    cookie = {"Cookie": set_cookie.split(";")[0]}
    assert office.public.request("GET", f"/s/{sid}/api/share", headers=cookie).status == 200

    office.first.stop()  # SIGKILL: a crash in the middle of the phone's session
    for _ in range(4):  # whichever process nginx would have picked, the phone gets its images
        share = office.public.request("GET", f"/s/{sid}/api/share", headers=cookie)
        assert share.status == 200 and share.json()["studies"] == [office.study]
        studies = office.public.request("GET", f"/s/{sid}/dicom-web/studies", headers=cookie)
        assert studies.status == 200 and len(studies.json()) == 1


def test_the_office_routes_ask_for_credentials_through_the_proxy(office: Office) -> None:
    for path in ("/system", "/instances", "/app/explorer.html", "/office/shares"):
        refused = office.public.request("GET", path)
        assert refused.status == 401, path
        assert refused.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert office.public.admin("GET", "/system").status == 200
    # A kiosk's own refusals keep their reasons.
    rogue = office.public.kiosk("PUT", f"/kiosk/shares/{share_id()}",
                                {"token": KioskKey.new("rogue").token([office.study])})
    assert rogue.status == 403 and rogue.json()["reason"] == "signature"
