"""Everything the issue lists lands in the audit trail — import, identity confirmation, export
(with its encryption flag), print, link minting, upload, purge, admin login — with ids and
hashes only, and the trail still verifies."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from kiosk.bootstrap import attach_media
from kiosk.cloud.fake import FakeCloud
from kiosk.links.printer import DummyReceiptPrinter
from kiosk.media.fake_media import FakeMediaWatcher
from kiosk.media.medium import MediumKind
from kiosk.security.audit import verify_trail
from kiosk.service import KioskService
from tests.conftest import make_instance
from tests.sync_kit import fake_syncer

Run = Callable[..., tuple[int, str, str]]

NAME = "ZQXWANG^XIAODONG"
PASSPORT = "ZQXWANG XIAODONG"
BIRTH = "1979-06-21"


def test_every_listed_event_is_audited_with_ids_and_hashes_only(
        service: KioskService, tmp_path: Path, run_cli: Run) -> None:
    service._syncer = fake_syncer(service, FakeCloud())
    service.printer = DummyReceiptPrinter()
    # A folder (its name becomes the source label) and a disc label carrying the patient's name,
    # as hospitals sometimes write it.
    folder = tmp_path / "ZQXWANG_XIAODONG_CT"
    ds = make_instance(folder / "IM1", patient_name=NAME, seed=11)
    case = service.import_path(folder)["case_id"]
    watcher = FakeMediaWatcher()
    desk = attach_media(service, fake=watcher)
    try:
        make_instance(tmp_path / "disc2" / "IM2", patient_name=NAME, seed=12,
                      study_uid=str(ds.StudyInstanceUID))
        medium = watcher.insert(tmp_path / "disc2", kind=MediumKind.OPTICAL,
                                label="ZQXWANG XIAODONG CT")
        desk.poll(1.0)
        service.import_medium(medium.device, case_id=case)
    finally:
        desk.close()
        watcher.close()
    service.confirm_identity(case, passport_name=PASSPORT, birth_date=BIRTH)
    sticks = [tmp_path / "stick-a", tmp_path / "stick-b"]
    for stick in sticks:
        stick.mkdir()
    encrypted = service.export_case(case, sticks[0])
    service.export_case(case, sticks[1], encrypt=False)
    service.print_slip(case, passphrase=encrypted["passphrase"])
    service.sync_once()  # the upload
    service.set_pin("582039", source="ui")
    assert not service.check_pin("000111", "admin").ok
    assert service.check_pin("582039", "admin").ok
    service.purge_case(case)

    entries = service.audit.entries()
    actions = {e["action"] for e in entries}
    assert actions >= {"import", "import_medium", "identity_confirmed", "export", "print",
                       "link_minted", "upload", "purge", "admin_login", "pin_set"}
    exports = [e["details"] for e in entries if e["action"] == "export"]
    assert [d["encrypted"] for d in exports] == [True, False]
    assert all(len(d["manifest_sha256"]) == 64 for d in exports)
    [upload] = [e["details"] for e in entries if e["action"] == "upload"]
    assert upload["case_id"] == case and upload["state"] == "done"
    assert [e["details"]["ok"] for e in entries if e["action"] == "admin_login"] == [False, True]
    [purge] = [e["details"] for e in entries if e["action"] == "purge"]
    assert purge["uploaded"] is True and purge["forced"] is False
    assert all(e["details"].get("case_id") in (case, None) for e in entries)

    trail = service.locations.audit_file.read_text("utf-8")
    pixels = bytes(ds.PixelData)
    secrets_and_names = [
        "ZQXWANG", "XIAODONG", BIRTH, BIRTH.replace("-", ""),  # names, birth date
        str(ds.SOPInstanceUID),  # image ids stay in the store, not the trail
        encrypted["passphrase"], "582039", "000111",  # the passphrase and the PINs
        pixels[:24].hex(), json.dumps(pixels[:24].decode("latin-1"))[1:-1],  # pixel data
    ]
    assert [s for s in secrets_and_names if s in trail] == []
    assert verify_trail(service.locations.audit_file) == []
    code, out, _err = run_cli("audit", "verify")
    assert code == 0 and f"{len(entries)} entries" in out
