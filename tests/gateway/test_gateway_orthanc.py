"""The gateway end to end in a real Orthanc: ``kiosk gateway config``, then what kiosks, phones
and the office get over HTTP (docs/gateway.md)."""

from __future__ import annotations

import io
import json
import os
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from kiosk.samples.bulk import write_study
from tests.gateway.gateway_kit import KioskKey, share_id
from tests.gateway.real_gateway import RealGateway, start_gateway

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def key() -> KioskKey:
    return KioskKey.new("desk-07")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, key: KioskKey) -> Iterator[RealGateway]:
    server = start_gateway(tmp_path_factory.mktemp("gateway"), [key, KioskKey.new("desk-08")])
    try:
        yield server
    finally:
        server.stop()


def _study(folder: Path, patient: str, seed: int) -> tuple[str, list[Path]]:
    files = write_study(folder, instances=3, rows=64, columns=64, patient_id=patient,
                        patient_name=f"TEST^{patient}", seed=seed)
    uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    return uid, files


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, list[Path]]]:
    root = tmp_path_factory.mktemp("studies")
    return {"mine": _study(root / "mine", "P-MINE", 11),
            "other": _study(root / "other", "P-OTHER", 12)}


def _cookie(answer_headers: dict[str, str]) -> dict[str, str]:
    return {"Cookie": answer_headers["Set-Cookie"].split(";")[0]}


def test_the_configuration_is_private_and_names_how_to_start(gateway: RealGateway) -> None:
    mode = stat.S_IMODE(os.stat(gateway.config).st_mode)
    assert mode == 0o600
    assert f"/usr/sbin/Orthanc {gateway.config}" in gateway.config_output
    settings = json.loads(gateway.config.read_text())
    assert settings["DicomServerEnabled"] is False and settings["RemoteAccessAllowed"] is False


def test_kiosk_credentials_open_dicomweb_and_nothing_of_the_office(
        gateway: RealGateway, studies: dict[str, tuple[str, list[Path]]]) -> None:
    assert gateway.request("GET", "/dicom-web/studies").status == 403
    assert gateway.kiosk("GET", "/dicom-web/studies").status == 200
    for path in ("/instances", "/patients", "/system", "/app/explorer.html",
                 "/office/shares"):
        assert gateway.kiosk("GET", path).status == 403, path
        assert gateway.request("GET", path).status == 403, path
    assert gateway.admin("GET", "/system").status == 200
    door = gateway.request("GET", "/")
    assert door.status == 401 and "WWW-Authenticate" in door.headers


def test_a_phone_follows_the_link_to_its_own_studies_only(
        gateway: RealGateway, key: KioskKey,
        studies: dict[str, tuple[str, list[Path]]]) -> None:
    mine, mine_files = studies["mine"]
    other, other_files = studies["other"]
    sid = share_id()
    registered = gateway.kiosk("PUT", f"/kiosk/shares/{sid}",
                               {"token": key.token([mine]), "passcode": None,
                                "manifest": {"files": 3}, "manifest_jws": None})
    assert registered.status == 201 and registered.json()["state"] == "waiting"

    assert gateway.stow(mine_files).status == 200
    assert gateway.stow(other_files).status == 200
    described = gateway.kiosk("GET", f"/kiosk/shares/{sid}").json()
    assert described["state"] == "live" and described["studies_present"] == 1

    page = gateway.request("GET", f"/s/{sid}")
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    assert gateway.request("GET", f"/s/{sid}/api/share").status == 401
    session = gateway.request("POST", f"/s/{sid}/session", b"{}",
                              {"Content-Type": "application/json"})
    assert session.status == 200, session.body
    cookie = _cookie(session.headers)
    share = gateway.request("GET", f"/s/{sid}/api/share", headers=cookie).json()
    assert share["studies"] == [mine] and share["manifest"] == {"files": 3}

    listed = gateway.request("GET", f"/s/{sid}/dicom-web/studies", headers=cookie).json()
    assert [s["0020000D"]["Value"][0] for s in listed] == [mine]
    instances = gateway.request("GET", f"/s/{sid}/dicom-web/studies/{mine}/instances",
                                headers=cookie).json()
    assert len(instances) == 3
    series_uid = instances[0]["0020000E"]["Value"][0]
    sop_uid = instances[0]["00080018"]["Value"][0]
    wado = gateway.request("GET", f"/s/{sid}/dicom-web/studies/{mine}/series/{series_uid}/"
                                  f"instances/{sop_uid}", headers=cookie)
    assert wado.status == 200
    content_type = wado.headers["Content-Type"]
    assert content_type.startswith("multipart/related") and "boundary=" in content_type
    boundary = content_type.split("boundary=")[1].strip('"')
    part = wado.body.split(b"--" + boundary.encode())[1]
    dataset = pydicom.dcmread(io.BytesIO(part.split(b"\r\n\r\n", 1)[1].rstrip(b"\r\n")))
    assert dataset.SOPInstanceUID == sop_uid and dataset.PatientID == "P-MINE"

    rendered = gateway.request("GET", f"/s/{sid}/dicom-web/studies/{mine}/series/{series_uid}/"
                                      f"instances/{sop_uid}/rendered", headers=cookie)
    assert rendered.status == 200 and rendered.body[:2] in (b"\xff\xd8", b"\x89P")

    refused = gateway.request("GET", f"/s/{sid}/dicom-web/studies/{other}/metadata",
                              headers=cookie)
    assert refused.status == 404 and b"P-OTHER" not in refused.body
    assert gateway.request("GET", f"/s/{sid}/dicom-web/studies/{mine}/../{other}",
                           headers=cookie).status == 404

    download = gateway.request("GET", f"/s/{sid}/download", headers=cookie)
    assert download.status == 200 and "attachment" in download.headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(download.body)) as archive:
        names = archive.namelist()
        assert "DICOMDIR" in names and len(names) == 4
        for name in names:
            if name != "DICOMDIR":
                held = pydicom.dcmread(io.BytesIO(archive.read(name)))
                assert held.PatientID == "P-MINE"


def test_passcode_attempts_lock_the_link_in_the_database(
        gateway: RealGateway, key: KioskKey,
        studies: dict[str, tuple[str, list[Path]]]) -> None:
    mine, _ = studies["mine"]
    sid = share_id()
    gateway.kiosk("PUT", f"/kiosk/shares/{sid}", {"token": key.token([mine]),
                                                  "passcode": "135790"})
    wrong = [gateway.request("POST", f"/s/{sid}/session", b'{"passcode": "000000"}')
             for _ in range(5)]
    assert [a.status for a in wrong] == [401] * 5
    assert [a.json()["attempts_left"] for a in wrong] == [4, 3, 2, 1, 0]
    locked = gateway.request("POST", f"/s/{sid}/session", b'{"passcode": "135790"}')
    assert locked.status == 423 and set(locked.json()["error"]) == {"en", "zh"}
    assert gateway.admin("POST", f"/office/shares/{sid}/unlock").status == 200
    assert gateway.request("POST", f"/s/{sid}/session", b'{"passcode": "135790"}').status == 200


def test_refused_tokens_and_revoked_links(gateway: RealGateway, key: KioskKey,
                                          studies: dict[str, tuple[str, list[Path]]]) -> None:
    mine, _ = studies["mine"]
    rogue = gateway.kiosk("PUT", f"/kiosk/shares/{share_id()}",
                          {"token": KioskKey.new("rogue").token([mine])})
    assert rogue.status == 403 and rogue.json()["reason"] == "signature"
    garbage = gateway.request("PUT", f"/kiosk/shares/{share_id()}", b"\xff",
                              {"Authorization": gateway.kiosk_auth()})
    assert garbage.status == 400

    sid = share_id()
    gateway.kiosk("PUT", f"/kiosk/shares/{sid}", {"token": key.token([mine])})
    assert gateway.request("GET", f"/s/{sid}").status == 200
    assert gateway.kiosk("POST", f"/kiosk/shares/{sid}/revoke").status == 200
    gone = gateway.request("GET", f"/s/{sid}")
    assert gone.status == 410 and "此链接已被撤销".encode() in gone.body
    unknown = gateway.request("GET", f"/s/{share_id()}")
    assert unknown.status == 404 and b"This link does not work" in unknown.body
    listed = gateway.admin("GET", "/office/shares?state=revoked").json()["shares"]
    assert sid in [s["id"] for s in listed]
