"""The kiosk's side of the gateway's Kiosk API (docs/gateway.md): ``register_share`` and
``revoke_share`` of :class:`kiosk.cloud.dicomweb.DicomWebCloud` against a real gateway from
``kiosk gateway config``, and the same contract on the fake cloud the unit tests and the demo
use. Each refusal comes back as a :class:`ShareRefused` with the gateway's reason and words a
coordinator can act on; a wrong password is a login problem, not a refused link."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
import pytest

from kiosk.cloud.dicomweb import DicomWebCloud
from kiosk.cloud.fake import FakeCloud
from kiosk.cloud.protocol import CloudAuthError, ShareRefused, ShareRegistration
from kiosk.samples.bulk import write_study
from tests.gateway.gateway_kit import KIOSK_PASSWORD, KIOSK_USER, KioskKey, share_id
from tests.gateway.real_gateway import RealGateway, start_gateway
from tests.orthanc import PASSWORD, USER, OrthancServer
from tests.orthanc import orthanc as plain_orthanc  # noqa: F401 - the session fixture

pytestmark = pytest.mark.slow
STUDY = "1.2.826.0.1.3680043.8.498.17017"


@dataclass
class Side:
    """One implementation under the contract, and how to make it refuse."""

    cloud: Any
    trusted: KioskKey
    untrusted: KioskKey
    gateway: RealGateway | None = None

    def refuse_untrusted(self) -> None:
        if isinstance(self.cloud, FakeCloud):  # the fake trusts every key unless told
            self.cloud.refuse_shares = "signature"

    def accept_again(self) -> None:
        if isinstance(self.cloud, FakeCloud):
            self.cloud.refuse_shares = None


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealGateway]:
    trusted = KioskKey.new("desk-11")
    server = start_gateway(tmp_path_factory.mktemp("gw"), [trusted])
    server.trusted = trusted  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["fake", "real"])
def side(request: pytest.FixtureRequest) -> Side:
    if request.param == "fake":
        return Side(FakeCloud(), KioskKey.new("desk-11"), KioskKey.new("stranger"))
    server = request.getfixturevalue("real")
    cloud = DicomWebCloud(server.url + "/dicom-web", user=KIOSK_USER, password=KIOSK_PASSWORD,
                          timeout=20, gateway_url=server.url)
    return Side(cloud, server.trusted, KioskKey.new("stranger"), server)


def test_a_registration_is_idempotent_waits_for_its_study_and_revokes(
        side: Side, tmp_path: Path) -> None:
    sid = share_id()
    share = ShareRegistration(token=side.trusted.token([STUDY]), passcode="123456")
    assert side.cloud.register_share(sid, share) == "waiting"
    assert side.cloud.register_share(sid, share) == "waiting"  # the outbox may send it twice
    other = ShareRegistration(token=side.trusted.token([STUDY]))
    with pytest.raises(ShareRefused) as refused:
        side.cloud.register_share(sid, other)
    assert refused.value.reason == "conflict" and "reissue" in refused.value.text
    assert side.cloud.revoke_share(sid) is True
    assert side.cloud.revoke_share(sid) is True  # again: the same
    assert side.cloud.revoke_share(share_id()) is False  # never registered


def test_a_registration_goes_live_once_its_study_landed(side: Side, tmp_path: Path) -> None:
    files = write_study(tmp_path / "s", instances=2, rows=16, columns=16, seed=5,
                        patient_id="P-LIVE")
    uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    side.cloud.store([(str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID),
                       f.read_bytes()) for f in files])
    assert side.cloud.register_share(share_id(), ShareRegistration(
        token=side.trusted.token([uid]))) == "live"


def test_a_token_from_a_key_the_office_does_not_trust_is_refused_in_plain_words(
        side: Side) -> None:
    side.refuse_untrusted()
    try:
        with pytest.raises(ShareRefused) as refused:
            side.cloud.register_share(share_id(), ShareRegistration(
                token=side.untrusted.token([STUDY])))
    finally:
        side.accept_again()
    assert refused.value.reason == "signature"
    assert "kiosk link pubkey" in refused.value.text


def test_the_real_gateway_refuses_expired_tokens_and_wrong_passwords(real: RealGateway) -> None:
    cloud = DicomWebCloud(real.url + "/dicom-web", user=KIOSK_USER, password=KIOSK_PASSWORD,
                          timeout=20, gateway_url=real.url)
    with pytest.raises(ShareRefused) as refused:
        cloud.register_share(share_id(), ShareRegistration(
            token=real.trusted.expired_token([STUDY])))  # type: ignore[attr-defined]
    assert refused.value.reason == "expired" and "reissue" in refused.value.text
    wrong = DicomWebCloud(real.url + "/dicom-web", user=KIOSK_USER, password="not-it",
                          timeout=20, gateway_url=real.url)
    with pytest.raises(CloudAuthError):
        wrong.register_share(share_id(), ShareRegistration(
            token=real.trusted.token([STUDY])))  # type: ignore[attr-defined]


def test_a_plain_dicomweb_server_is_not_mistaken_for_a_gateway(
        request: pytest.FixtureRequest) -> None:
    # link.base_url pointing at an Orthanc without the plugin: a clear "no gateway there".
    orthanc: OrthancServer = request.getfixturevalue("orthanc")
    cloud = DicomWebCloud(orthanc.dicomweb, user=USER, password=PASSWORD, timeout=20,
                          gateway_url=orthanc.root)
    with pytest.raises(ShareRefused) as refused:
        cloud.register_share(share_id(), ShareRegistration(token=KioskKey.new().token([STUDY])))
    assert refused.value.reason == "no-gateway" and "link.base_url" in refused.value.text
