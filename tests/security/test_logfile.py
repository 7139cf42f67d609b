"""The desk's log file: no patient data in it, bounded in size, pruned with retention."""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot

from kiosk.errors import SourceReadError
from kiosk.media.medium import MediumKind
from kiosk.samples.pdf import minimal_pdf
from kiosk.security.logfile import (
    BACKUPS,
    LOG_NAME,
    MAX_BYTES,
    WithheldMessageFormatter,
    digest,
    error_kind,
    open_log,
    prune_logs,
)
from kiosk.service import KioskService
from kiosk_tui.import_progress import ImportScreen
from kiosk_tui.reports import ReportsScreen
from tests.conftest import make_instance
from tests.ui_kit import Desk, run, wait_for, wait_screen

#: What a hospital disc calls its patient: folder names, file names, the DICOM name, the label.
NAME_PARTS = ("WANG", "XIAODONG", "Wang", "wang", "王小東")


@pytest.fixture
def kiosk_log(desk: Desk) -> Iterator[Path]:
    """The desk's log handler on the root logger, as ``run_app`` installs it."""
    handler = open_log(desk.service.locations.logs_dir)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield desk.service.locations.logs_dir / LOG_NAME
    root.removeHandler(handler)
    root.setLevel(level)
    handler.close()


def test_a_failed_attach_and_imports_from_a_patient_named_folder_log_no_name_or_path(
        desk: Desk, kiosk_log: Path, tmp_path: Path) -> None:
    # The disc in the drive is "sr0" (fake media use the folder as the device node).
    disc = tmp_path / "sr0"
    folder = disc / "WANG_XIAODONG" / "CT_WANG"
    make_instance(folder / "IM_WANG1", patient_name="WANG^XIAODONG=王小東", patient_id="PW1",
                  charset=["ISO_IR 192"])
    (folder / "REPORT_WANG.PDF").write_bytes(minimal_pdf(["WANG XIAODONG"]))
    named = tmp_path / "WANG_XIAODONG_USB"  # a folder import named after the patient
    make_instance(named / "WANG" / "IM1", patient_name="WANG^XIAODONG", patient_id="PW1")
    app = desk.app()

    async def script(pilot: Pilot[None]) -> None:
        await wait_screen(pilot, "HomeScreen")
        app.push_screen(ImportScreen(path=named, label="WANG XIAODONG"))
        await wait_screen(pilot, "HomeScreen", timeout=30)  # dismissed with the report
        assert desk.service.case_summaries()
        app.push_screen(ImportScreen(path=tmp_path / "WANG_XIAODONG_GONE",
                                     label="WANG XIAODONG"))
        await wait_screen(pilot, "ErrorDialog")
        app.pop_screen()
        case_id = desk.service.case_summaries()[0]["case_id"]
        desk.watcher.insert(disc, kind=MediumKind.OPTICAL, label="WANG XIAODONG")
        await wait_for(pilot, lambda: app.media)
        app.push_screen(ReportsScreen(case_id))
        screen = await wait_screen(pilot, "ReportsScreen")
        screen.attach(str(disc), "WANG_XIAODONG/CT_WANG/MISSING_WANG.PDF", "zh", "original")
        await wait_for(pilot, lambda: "cannot attach" in kiosk_log.read_text("utf-8"))

    run(app, script)
    text = kiosk_log.read_text("utf-8")
    # Useful to a technician: what failed, where, and the kind of error, with a traceback.
    assert re.search(r"cannot attach PDF [0-9a-f]{12} from .*sr0 to case C\d{8}-\w{4}: "
                     r"SourceReadError", text)
    assert digest("WANG_XIAODONG/CT_WANG/MISSING_WANG.PDF") in text
    assert f"import from folder {digest(str(tmp_path / 'WANG_XIAODONG_GONE'))}" in text
    assert "Traceback" in text and "(message withheld from the log)" in text
    leaked = [part for part in NAME_PARTS if part in text]
    assert leaked == [], text
    for component in ("CT_WANG", "MISSING_WANG.PDF", "REPORT_WANG.PDF", "IM_WANG1"):
        assert component not in text


def test_tracebacks_keep_frames_and_types_but_not_messages() -> None:
    formatter = WithheldMessageFormatter("%(message)s")
    name = "ZHANG" + "_SAN"  # not a literal: the traceback shows our source lines
    try:
        try:
            raise FileNotFoundError(2, "No such file", f"/media/{name}/IM1")
        except OSError as exc:
            raise SourceReadError(f"{name}/IM1 cannot be read") from exc
    except SourceReadError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "attach failed", None,
                                   sys.exc_info())
    record.exc_text = f"cached by another handler: {name}"
    out = formatter.format(record)
    assert "ZHANG" not in out
    assert "kiosk.errors.SourceReadError (message withheld" in out
    assert "builtins.FileNotFoundError (message withheld" in out
    assert "direct cause of" in out and "test_tracebacks_keep_frames" in out
    assert record.exc_text == f"cached by another handler: {name}"  # others' cache kept


def test_error_kinds_and_digests_say_what_without_the_text() -> None:
    oserror = OSError(28, "No space left on device", "/media/ZHANG_SAN")
    assert error_kind(oserror) == "OSError [errno 28: No space left on device]"
    assert error_kind(SourceReadError("ZHANG_SAN/IM1 cannot be read")) == "SourceReadError"
    assert error_kind(ValueError("x")) == "ValueError"
    assert digest("ZHANG_SAN/IM1") == digest("ZHANG_SAN/IM1") != digest("LI_SI/IM1")
    assert re.fullmatch(r"[0-9a-f]{12}", digest("ZHANG_SAN/IM1"))
    assert digest(None) == digest("") == "-"
    assert digest("bad\udcff byte") != "-"  # undecodable medium names still hash


def test_the_log_rotates_so_it_never_takes_more_than_a_few_megabytes(tmp_path: Path) -> None:
    handler = open_log(tmp_path / "logs")
    logger = logging.getLogger("test.logfile.rotation")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        line = "x" * 1000
        for _ in range((BACKUPS + 3) * MAX_BYTES // 1000):
            logger.info(line)
    finally:
        logger.removeHandler(handler)
        handler.close()
    files = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert files == [LOG_NAME, *(f"{LOG_NAME}.{i}" for i in range(1, BACKUPS + 1))]
    total = sum(p.stat().st_size for p in (tmp_path / "logs").iterdir())
    assert total <= (BACKUPS + 1) * (MAX_BYTES + 2000)


def test_rotated_logs_older_than_retention_are_pruned(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    now = time.time()
    for name, age_days in ((LOG_NAME, 30), (f"{LOG_NAME}.1", 3), (f"{LOG_NAME}.2", 15),
                           (f"{LOG_NAME}.3", 40), ("other.txt", 40)):
        (logs / name).write_text("x")
        os.utime(logs / name, (now - age_days * 86400, now - age_days * 86400))
    (logs / f"{LOG_NAME}.4").symlink_to(logs / "other.txt")
    assert prune_logs(logs, 0, now) == 0  # retention off: the size bound is enough
    assert prune_logs(tmp_path / "missing", 14, now) == 0
    assert prune_logs(logs, 14, now) == 2
    # The live file is the handler's; other files and links are not the log's to remove.
    assert sorted(p.name for p in logs.iterdir()) == [
        LOG_NAME, f"{LOG_NAME}.1", f"{LOG_NAME}.4", "other.txt"]


def test_a_retention_run_prunes_old_rotated_logs(service: KioskService) -> None:
    logs = service.locations.logs_dir
    logs.mkdir(parents=True, exist_ok=True)
    old = logs / f"{LOG_NAME}.1"
    old.write_text("x")
    stamp = service.clock() - (service.config.retention.days + 1) * 86400
    os.utime(old, (stamp, stamp))
    assert service.run_retention(dry_run=True) == [] and old.exists()
    service.run_retention()
    assert not old.exists()
