"""Cloud links: minted offline, verified by gateways, served by a stock orthanc-auth-service."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt  # the independent check: what orthanc-auth-service itself runs
import pytest

from kiosk.bootstrap import build_service
from kiosk.errors import ConfigError, LinkTokenError, UsageError
from kiosk.links.signing_key import load_or_create
from kiosk.links.tokens import KioskTokenMinter, LinkVerifier, OrthancShareMinter
from kiosk.service import KioskService
from tests.conftest import make_instance

Run = Callable[..., tuple[int, str, str]]
SECRET = "orthanc-auth-service-shared-secret-0123456789"
STUDY_A = "1.2.826.0.1.3680043.8.498.10000000000000000000000000000000000001"
STUDY_B = "1.2.826.0.1.3680043.8.498.20000000000000000000000000000000000002"
NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


@pytest.fixture
def key_pem(tmp_path: Path) -> tuple[bytes, str]:
    key = load_or_create(tmp_path / "keys" / "link.pem")
    return key.private_pem, key.public_pem


@pytest.fixture
def two_study_case(service: KioskService, tmp_path: Path) -> str:
    make_instance(tmp_path / "cd" / "A", study_uid=STUDY_A)
    make_instance(tmp_path / "cd" / "B", study_uid=STUDY_B, seed=1)
    return str(service.import_path(tmp_path / "cd", case_id="C20261127-7KQM")["case_id"])


def _kiosk_minter(private_pem: bytes, days: int = 30) -> KioskTokenMinter:
    return KioskTokenMinter("desk-1", private_pem, "https://gw.example/s/{token}", days)


def _tamper(token: str) -> str:
    """Swap the study list in the payload, keep header and signature."""
    header, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["studies"] = ["1.2.3.4"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{sig}"


def test_a_kiosk_token_verifies_with_the_kiosk_key_for_each_of_its_studies(
        key_pem: tuple[bytes, str], tmp_path: Path) -> None:
    private, public = key_pem
    link = _kiosk_minter(private).mint("C1", [STUDY_A, STUDY_B], now=NOW)
    assert link.url == f"https://gw.example/s/{link.token}"
    verifier = LinkVerifier(public, None, tmp_path / "revoked.txt")
    for study in (STUDY_A, STUDY_B):
        claims = verifier.verify(link.token, study_uid=study, now=NOW + timedelta(days=29))
        assert (claims.kiosk_id, claims.case_id, claims.token_id) == ("desk-1", "C1",
                                                                     link.token_id)
        assert claims.study_uids == (STUDY_A, STUDY_B)


def test_the_link_works_through_the_last_printed_day_and_not_after(
        key_pem: tuple[bytes, str], tmp_path: Path) -> None:
    private, public = key_pem
    link = _kiosk_minter(private, days=30).mint("C1", [STUDY_A], now=NOW)
    last_day = NOW.astimezone().date() + timedelta(days=30)
    assert link.expiry_date == last_day.isoformat()
    verifier = LinkVerifier(public, None, tmp_path / "revoked.txt")
    verifier.verify(link.token, now=link.expires - timedelta(seconds=1))
    with pytest.raises(LinkTokenError) as err:
        verifier.verify(link.token, now=link.expires + timedelta(seconds=1))
    assert err.value.reason == "expired" and "expired" in err.value.text


@pytest.mark.parametrize(("case", "reason"), [
    ("tampered claims", "signature"),
    ("another kiosk's key", "signature"),
    ("another study", "study"),
    ("revoked token", "revoked"),
    ("revoked kiosk", "revoked"),
    ("not a token", "malformed"),
])
def test_a_gateway_refuses_a_bad_kiosk_token_and_says_why(
        key_pem: tuple[bytes, str], tmp_path: Path, case: str, reason: str) -> None:
    private, public = key_pem
    link = _kiosk_minter(private).mint("C1", [STUDY_A], now=NOW)
    token, study, revoked = link.token, None, ""
    if case == "tampered claims":
        token = _tamper(token)
    elif case == "another kiosk's key":
        other = load_or_create(tmp_path / "other.pem")
        token = _kiosk_minter(other.private_pem).mint("C1", [STUDY_A], now=NOW).token
    elif case == "another study":
        study = STUDY_B
    elif case == "revoked token":
        revoked = f"# lost slip\ntoken {link.token_id}\n"
    elif case == "revoked kiosk":
        revoked = "kiosk desk-1  # stolen kiosk\n"
    else:
        token = "hello.world"
    (tmp_path / "revoked.txt").write_text(revoked)
    verifier = LinkVerifier(public, None, tmp_path / "revoked.txt")
    with pytest.raises(LinkTokenError) as err:
        verifier.verify(token, study_uid=study, now=NOW)
    assert err.value.reason == reason


def test_an_orthanc_auth_service_decode_yields_its_token_creation_request(
        tmp_path: Path) -> None:
    template = "https://pacs.example/ohif/viewer?StudyInstanceUIDs={study_uid}&token={token}"
    link = OrthancShareMinter(SECRET, "ohif-viewer-publication", template, 30).mint(
        "C1", [STUDY_A, STUDY_B], now=NOW)
    assert link.url == (f"https://pacs.example/ohif/viewer?StudyInstanceUIDs={STUDY_A},"
                        f"{STUDY_B}&token={link.token}")
    # Exactly what Hs256TokensManager._decode_token does, then TokenCreationRequest's fields.
    claims = jwt.decode(link.token, SECRET, algorithms="HS256")
    assert set(claims) == {"id", "resources", "type", "expiration_date"}
    assert claims["id"] == link.token_id
    assert claims["resources"] == [{"dicom_uid": STUDY_A, "level": "study"},
                                   {"dicom_uid": STUDY_B, "level": "study"}]
    assert claims["type"] == "ohif-viewer-publication"
    expires = datetime.fromisoformat(claims["expiration_date"])
    assert expires.tzinfo is not None and expires == link.expires
    assert NOW + timedelta(days=30) < expires < NOW + timedelta(days=32)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(link.token, SECRET[::-1], algorithms="HS256")
    # The kiosk's own verifier reads share tokens too, when it has the secret.
    verifier = LinkVerifier(None, SECRET, tmp_path / "revoked.txt")
    assert verifier.verify(link.token, study_uid=STUDY_B, now=NOW).token_id == link.token_id
    with pytest.raises(LinkTokenError) as err:
        verifier.verify(link.token, now=expires + timedelta(seconds=1))
    assert err.value.reason == "expired"
    with pytest.raises(LinkTokenError) as err:
        LinkVerifier(None, "x" * 32, tmp_path / "r").verify(link.token, now=NOW)
    assert err.value.reason == "signature"


def test_the_case_keeps_one_link_for_screen_slip_and_export_until_half_its_life_is_gone(
        service: KioskService, two_study_case: str) -> None:
    first = service.case_link(two_study_case)
    assert first.study_uids == (STUDY_A, STUDY_B)
    assert service.case_link(two_study_case) == first
    later = service.links.for_case(two_study_case, [STUDY_A, STUDY_B],
                                   now=datetime.now(UTC) + timedelta(days=16))
    assert later.token_id != first.token_id
    minted = [e for e in service.audit.entries() if e["action"] == "link_minted"]
    assert [e["details"]["token_id"] for e in minted] == [first.token_id, later.token_id]
    assert set(minted[0]["details"]) == {"case_id", "token_id", "kind", "studies", "expires",
                                         "short", "passcode"}  # ids and flags: no secret


def test_a_case_without_studies_gets_no_link(service: KioskService) -> None:
    with pytest.raises(UsageError):
        service.case_link("NO-SUCH-CASE")
    with pytest.raises(UsageError):
        service.links.for_case("EMPTY", [])


def test_the_kiosk_makes_a_private_key_once_and_keeps_it(data_dir: Path) -> None:
    first = build_service(data_dir=data_dir, env={}).links.verifier.public_pem
    key_file = data_dir / "keys" / "link-ed25519.pem"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert (data_dir / "keys").stat().st_mode & 0o777 == 0o700
    assert build_service(data_dir=data_dir, env={}).links.verifier.public_pem == first


def test_link_verify_and_pubkey_on_the_command_line(
        run_cli: Run, service: KioskService, two_study_case: str, tmp_path: Path) -> None:
    code, out, _ = run_cli("qr", two_study_case)
    assert code == 0
    link = service.case_link(two_study_case)
    assert out.strip().splitlines()[-1] == link.url  # the short link; the token is kept
    token = link.token
    code, out, err = run_cli("link", "verify", token, "--study", STUDY_B)
    assert code == 0, err
    assert f"case:    {two_study_case}" in out and STUDY_A in out
    code, out, err = run_cli("link", "verify", token, "--study", "1.2.3")
    assert code == 4 and "invalid (study)" in err
    # A gateway holding only the public key and its own revocation list.
    code, pem, _ = run_cli("link", "pubkey")
    assert code == 0 and pem.startswith("-----BEGIN PUBLIC KEY-----")
    (tmp_path / "kiosk.pub").write_text(pem)
    claims = service.verify_link(token)
    (tmp_path / "revoked.txt").write_text(f"token {claims.token_id}\n")
    code, _, err = run_cli("link", "verify", token, "--key", str(tmp_path / "kiosk.pub"),
                           "--revoked", str(tmp_path / "revoked.txt"))
    assert code == 4 and "invalid (revoked)" in err
    code, _, err = run_cli("link", "verify")
    assert code == 2 and "Give the token" in err


def test_orthanc_share_links_come_from_the_config(tmp_path: Path, data_dir: Path) -> None:
    cfg = tmp_path / "k.toml"
    cfg.write_text('[link]\nkind = "orthanc-share"\northanc_token_type = '
                   '"stone-viewer-publication"\nexpiry_days = 7\nurl_template = '
                   '"https://pacs.example/stone-webviewer/index.html?study={study_uid}'
                   '&token={token}"\n')
    service = build_service(cfg, data_dir, env={"KIOSK_LINK_SECRET": SECRET})
    make_instance(tmp_path / "cd" / "A", study_uid=STUDY_A)
    case_id = service.import_path(tmp_path / "cd")["case_id"]
    link = service.case_link(case_id)
    assert link.url.startswith(f"https://pacs.example/stone-webviewer/index.html?study={STUDY_A}")
    claims = jwt.decode(link.token, SECRET, algorithms="HS256")
    assert claims["type"] == "stone-viewer-publication"
    assert datetime.fromisoformat(claims["expiration_date"]) < datetime.now(UTC) + timedelta(8)


@pytest.mark.parametrize(("text", "named"), [
    ('[link]\nkind = "magic"\n', "link.kind"),
    ('[link]\nurl_template = "https://x/{study_uid}"\n', "link.url_template"),
    ('[link]\nurl_template = "https://x/{token}/{patient}"\n', "link.url_template"),
    ('[link]\nurl_template = "https://x/{token"\n', "link.url_template"),
    ('[link]\nexpiry_days = 0\n', "link.expiry_days"),
    ('[link]\nkind = "orthanc-share"\northanc_secret = "short"\n', "link.orthanc_secret"),
    ('[link]\northanc_token_type = "osimis-viewer-publication"\n', "link.orthanc_token_type"),
    ('[printer]\nqr = "ascii"\n', "printer.qr"),
    ('[printer]\nchinese = "big5"\n', "printer.chinese"),
    ('[printer]\nproduct_id = 0x5011\n', "printer.vendor_id"),
    ('[printer]\nwidth_dots = 50\n', "printer.width_dots"),
])
def test_bad_link_and_printer_settings_are_refused_by_name(
        tmp_path: Path, text: str, named: str) -> None:
    from kiosk.config import load_config

    cfg = tmp_path / "k.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(cfg, env={})
    assert f"'{named}'" in err.value.text
