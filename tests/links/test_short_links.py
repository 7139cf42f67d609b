"""Short links (issue 17 item 1): ``{base}/s/{id}`` in a small QR, the token and passcode to
the gateway through the outbox, revoke and reissue. The gateway here is the fake cloud's (the
same contract as the real one: ``tests/gateway/test_share_registration.py``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kiosk.bootstrap import build_service, connect_links
from kiosk.cloud.fake import FakeCloud
from kiosk.cloud.outbox import DONE, FAILED, PENDING, REVOKE_SHARE, SHARE
from kiosk.config import load_config
from kiosk.errors import ConfigError, UsageError
from kiosk.links import qr
from kiosk.links.printer import DummyReceiptPrinter, SlipLayout
from kiosk.service import KioskService
from tests.conftest import make_instance
from tests.sync_kit import fake_syncer, import_study

BASE = "https://gw.office.example"
_ID = re.compile(r"[a-z2-7]{26}")


def _kiosk(data_dir: Path, tmp_path: Path, cloud: FakeCloud | None, *, passcode: bool = False,
           base: str = BASE) -> KioskService:
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(f"[link]\npasscode = {'true' if passcode else 'false'}\n"
                   f'base_url = "{base}"\n')
    service = build_service(cfg, data_dir=data_dir, env={})
    if cloud is not None:
        service._syncer = fake_syncer(service, cloud)
        connect_links(service.links, service._syncer)
    return service


def _jobs(service: KioskService, case_id: str, kind: str) -> list[dict]:
    return [j for j in service.syncer.outbox.jobs(case_id=case_id) if j.get("kind") == kind]


def test_the_qr_holds_a_short_link_of_version_5_or_less_that_fits_an_80x24_screen(
        service: KioskService, tmp_path: Path) -> None:
    case_id, _study, _sops = import_study(service, tmp_path)
    link = service.case_link(case_id)
    base, _, share_id = link.url.rpartition("/s/")
    assert base == "https://link.medpass.example" and _ID.fullmatch(share_id)
    assert link.share_id == share_id and link.token not in link.url
    assert qr.version_of(link.url) <= 4
    # The longest base the config accepts still gives version 5 at M, on paper and on screen.
    longest = "https://" + "g" * (55 - len("https://.example")) + ".example"
    assert len(longest) == 55
    assert qr.version_of(f"{longest}/s/{share_id}") <= 5
    columns, rows = qr.terminal_size(f"{longest}/s/{share_id}")
    assert columns <= 80 and rows <= 24 - 3  # beside the lines of the Done screen
    # 128 random bits: every mint a new id.
    ids = {service.links.reissue(case_id, [_study]).share_id for _ in range(5)}
    assert len(ids) == 5 and all(_ID.fullmatch(i) for i in ids)


def test_a_passcode_is_on_the_slip_and_in_qr_json_but_never_in_the_qr(
        data_dir: Path, tmp_path: Path, run_cli) -> None:
    service = _kiosk(data_dir, tmp_path, None, passcode=True)
    case_id, _study, _ = import_study(service, tmp_path)
    code, out, err = run_cli("--config", str(tmp_path / "kiosk.toml"), "qr", case_id, "--json",
                             "--png", str(tmp_path / "qr.png"))
    assert code == 0, err
    shown = json.loads(out)
    assert re.fullmatch(r"\d{6}", shown["passcode"]) and shown["passcode"] not in shown["url"]
    assert shown["url"].startswith(BASE + "/s/") and shown["id"] == shown["url"][-26:]
    assert shown["qr_version"] <= 5 and (tmp_path / "qr.png").stat().st_size > 0
    printer = DummyReceiptPrinter(SlipLayout())
    service.printer = printer
    service.print_slip(case_id)
    slip = printer.output
    assert b"Link passcode:" in slip
    assert f"{shown['passcode'][:3]} {shown['passcode'][3:]}".encode() in slip


def test_minting_queues_the_registration_and_sync_sends_token_passcode_and_manifest(
        data_dir: Path, tmp_path: Path) -> None:
    cloud = FakeCloud()
    service = _kiosk(data_dir, tmp_path, cloud, passcode=True)
    case_id, _study, sops = import_study(service, tmp_path)
    stick = tmp_path / "stick"
    stick.mkdir()
    service.export_case(case_id, stick)  # mints the link; the manifest is kept for it
    link = service.case_link(case_id)
    assert [j["state"] for j in _jobs(service, case_id, SHARE)] == [PENDING]
    report = service.syncer.run_once()
    assert report.failed == []
    share = cloud.shares[link.share_id]
    assert share["token"] == link.token and share["passcode"] == link.passcode
    assert share["manifest"]["case_id"] == case_id and share["manifest_jws"].count(".") == 2
    assert {f["sop_instance_uid"] for f in share["manifest"]["files"]
            if f.get("sop_instance_uid")} >= set(sops)
    assert cloud.share_state(link.share_id) == "live"  # the study landed in the same round
    (job,) = _jobs(service, case_id, SHARE)
    assert job["state"] == DONE and job["gateway_state"] in ("waiting", "live")
    # A registration is not an upload: the case's upload summary counts images only.
    assert service.upload_state(case_id).uploaded
    # The same link again mints nothing and sends nothing.
    assert service.case_link(case_id) == link and len(_jobs(service, case_id, SHARE)) == 1
    entry = [e for e in service.audit.entries() if e["action"] == "share_sent"][-1]
    assert link.share_id not in json.dumps(entry) and link.passcode not in json.dumps(entry)


def test_revoke_by_case_or_id_reaches_the_gateway_and_reissue_gives_a_new_id_and_passcode(
        data_dir: Path, tmp_path: Path, run_cli) -> None:
    cloud = FakeCloud()
    service = _kiosk(data_dir, tmp_path, cloud, passcode=True)
    case_id, _study, _ = import_study(service, tmp_path)
    first = service.case_link(case_id)
    service.syncer.run_once()
    assert cloud.share_state(first.share_id) == "live"
    assert service.revoke_link(first.share_id) == [first]
    # Refused here at once (the revocation list), at the gateway after the next sync.
    code, _, err = run_cli("--config", str(tmp_path / "kiosk.toml"), "link", "verify",
                           first.token)
    assert code == 4 and "invalid (revoked)" in err
    assert cloud.share_state(first.share_id) == "live"
    service.syncer.run_once()
    assert cloud.share_state(first.share_id) == "revoked"
    assert [j["state"] for j in _jobs(service, case_id, REVOKE_SHARE)] == [DONE]
    # A revoked link is never handed out again.
    second = service.case_link(case_id)
    assert second.share_id != first.share_id and second.passcode is not None
    third = service.reissue_link(case_id)
    assert third.share_id not in (first.share_id, second.share_id)
    assert service.case_link(case_id) == third
    service.syncer.run_once()
    assert second.share_id not in cloud.shares  # revoked before it was sent: never live
    assert cloud.share_state(third.share_id) == "live"
    assert service.revoke_link(case_id) == [third] and service.revoke_link(case_id) == []
    service.syncer.run_once()
    assert cloud.share_state(third.share_id) == "revoked"


def test_link_revoke_and_reissue_on_the_command_line(data_dir: Path, tmp_path: Path,
                                                     run_cli) -> None:
    service = _kiosk(data_dir, tmp_path, None, passcode=True)
    case_id, _study, _ = import_study(service, tmp_path)
    config = ["--config", str(tmp_path / "kiosk.toml")]
    first = service.case_link(case_id)
    code, out, err = run_cli(*config, "link", "reissue", case_id)
    assert code == 0, err
    second = service.case_link(case_id)
    assert second.url == out.strip().splitlines()[-1] and second.share_id != first.share_id
    assert f"Passcode: {second.passcode[:3]} {second.passcode[3:]}" in out
    assert "kiosk qr CASE --print" in out
    code, out, err = run_cli(*config, "link", "revoke", second.share_id)
    assert code == 0 and second.url in out, err
    assert "no cloud is configured" in out  # nothing can tell the gateway from here
    code, out, err = run_cli(*config, "link", "revoke", case_id)
    assert code == 0 and "already revoked" in err


def test_a_link_revoked_before_its_registration_was_sent_never_goes_live(
        data_dir: Path, tmp_path: Path) -> None:
    cloud = FakeCloud()
    service = _kiosk(data_dir, tmp_path, cloud)
    case_id, _study, _ = import_study(service, tmp_path)
    link = service.case_link(case_id)
    service.revoke_link(case_id)
    service.syncer.run_once()
    assert link.share_id not in cloud.shares
    (share,) = _jobs(service, case_id, SHARE)
    assert share["state"] == DONE and share["cancelled"] and share["token"] == ""
    assert [j["state"] for j in _jobs(service, case_id, REVOKE_SHARE)] == [DONE]


def test_a_gateway_refusal_fails_that_job_in_plain_words_and_the_uploads_go_on(
        data_dir: Path, tmp_path: Path) -> None:
    cloud = FakeCloud()
    cloud.refuse_shares = "signature"
    service = _kiosk(data_dir, tmp_path, cloud)
    case_id, _study, sops = import_study(service, tmp_path)
    service.case_link(case_id)
    report = service.syncer.run_once()
    assert cloud.sop_uids() == set(sops)  # the images went
    (job,) = _jobs(service, case_id, SHARE)
    assert job["state"] == FAILED and job["refusal"] == "signature"
    assert "kiosk link pubkey" in job["last_error"]
    assert [f["job_id"] for f in report.failed] == [job["job_id"]]
    # The office adds the key; "retry now" sends it again.
    cloud.refuse_shares = None
    service.syncer.retry_failed()
    service.syncer.run_once()
    assert _jobs(service, case_id, SHARE)[0]["state"] == DONE


def test_offline_the_registration_waits_and_goes_when_the_gateway_is_back(
        data_dir: Path, tmp_path: Path) -> None:
    cloud = FakeCloud()
    cloud.online = False
    service = _kiosk(data_dir, tmp_path, cloud)
    case_id, _study, _ = import_study(service, tmp_path)
    link = service.case_link(case_id)
    service.syncer.run_once()
    assert _jobs(service, case_id, SHARE)[0]["state"] == PENDING
    cloud.online = True
    service.syncer.clock = lambda: 10**10  # past any backoff
    service.syncer.outbox.clock = service.syncer.clock
    service.syncer.run_once()
    assert cloud.share_state(link.share_id) == "live"


def test_without_a_base_url_nothing_is_registered(service: KioskService, tmp_path: Path) -> None:
    service._syncer = fake_syncer(service, FakeCloud())
    case_id, _study, _ = import_study(service, tmp_path)
    service.case_link(case_id)
    assert _jobs(service, case_id, SHARE) == []


def test_unknown_case_or_link_gets_a_clear_message(service: KioskService, run_cli) -> None:
    with pytest.raises(UsageError, match="no case or link NOPE"):
        service.revoke_link("NOPE")
    code, _, err = run_cli("link", "revoke", "NOPE")
    assert code == 2 and "There is no case or link NOPE" in err and "Traceback" not in err
    code, _, err = run_cli("link", "revoke")
    assert code == 2 and "Name the case or the link id" in err
    code, _, err = run_cli("link", "reissue", "NOPE")
    assert code == 2 and "There is no case NOPE" in err


def test_the_base_url_comes_from_the_environment_too(tmp_path: Path) -> None:
    config = load_config(None, {"KIOSK_LINK_BASE_URL": BASE + "/"})
    assert config.link.registers and config.link.template == BASE + "/s/{id}"
    assert not load_config(None, {}).link.registers


@pytest.mark.parametrize(("toml", "env", "key"), [
    ('[link]\nbase_url = "ftp://gw.example"\n', {}, "link.base_url"),
    ('[link]\nbase_url = "https://gw.example/?x=1"\n', {}, "link.base_url"),
    ("", {"KIOSK_LINK_BASE_URL": "https://" + "g" * 60 + ".example"}, "link.base_url"),
    ('[link]\nkind = "orthanc-share"\npasscode = true\northanc_secret = "' + "s" * 40 + '"\n',
     {}, "link.passcode"),
    ('[link]\npasscode = true\nurl_template = "https://x.example/{token}"\n', {},
     "link.passcode"),
])
def test_bad_link_settings_are_refused_naming_the_key(tmp_path: Path, toml: str,
                                                      env: dict[str, str], key: str) -> None:
    cfg = tmp_path / "k.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError, match=re.escape(key)):
        load_config(cfg, env)


def test_a_long_token_link_is_still_made_when_a_template_asks_for_one(
        tmp_path: Path, data_dir: Path) -> None:
    cfg = tmp_path / "k.toml"
    cfg.write_text('[link]\nurl_template = "https://own.example/v?t={token}"\n')
    service = build_service(cfg, data_dir=data_dir, env={"KIOSK_LINK_BASE_URL": BASE})
    make_instance(tmp_path / "cd" / "A")
    case_id = service.import_path(tmp_path / "cd")["case_id"]
    link = service.case_link(case_id)
    assert link.url == f"https://own.example/v?t={link.token}" and link.share_id is None
