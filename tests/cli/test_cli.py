"""The `kiosk` command line is a contract: JSON shape, exit codes, messages."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.conftest import json_report, make_instance

Run = Callable[..., tuple[int, str, str]]


def test_import_json_prints_one_object_with_the_contract_keys(run_cli: Run,
                                                             tmp_path: Path) -> None:
    make_instance(tmp_path / "cd" / "IM1")
    (tmp_path / "cd" / "readme.txt").write_text("hi")
    code, out, err = run_cli("import", str(tmp_path / "cd"), "--json")
    assert code == 0, err
    report = json_report(out)
    assert {"case_id", "source", "instances", "bytes", "patients", "studies", "rejected",
            "ignored", "dicomdir", "warnings"} <= set(report)
    assert set(report["instances"]) >= {"imported", "duplicates", "verified"}
    assert set(report["patients"][0]) >= {"patient_id", "name", "name_display"}
    assert set(report["studies"][0]) >= {"study_uid", "patient_id", "modalities", "series",
                                         "instances"}
    assert set(report["dicomdir"]) >= {"present", "records", "missing"}
    assert report["ignored"] == [{"path": "readme.txt",
                                  "reason": "not DICOM (no DICM marker or DICOM header)"}]


def test_import_into_a_named_case_and_list_cases(run_cli: Run, tmp_path: Path) -> None:
    make_instance(tmp_path / "cd" / "IM1", patient_id="SZ001")
    code, _out, _err = run_cli("import", str(tmp_path / "cd"), "--case", "CASE-42", "--json")
    assert code == 0
    code, out, _err = run_cli("cases", "--json")
    assert code == 0
    [case] = json_report(out)["cases"]
    assert case["case_id"] == "CASE-42" and case["status"] == "complete"
    assert case["instances"] == 1 and case["patients"][0]["patient_id"] == "SZ001"
    code, out, _err = run_cli("cases")
    assert "CASE-42" in out and "complete" in out


def test_nothing_importable_exits_3_and_a_missing_source_exits_2(run_cli: Run,
                                                                tmp_path: Path) -> None:
    (tmp_path / "stick").mkdir()
    (tmp_path / "stick" / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0 not dicom")
    code, out, _err = run_cli("import", str(tmp_path / "stick"), "--json")
    assert code == 3 and json_report(out)["instances"]["found"] == 0
    code, out, err = run_cli("import", str(tmp_path / "nowhere"))
    assert code == 2 and out == "" and "does not exist" in err


def test_a_verification_failure_exits_4(run_cli: Run, tmp_path: Path) -> None:
    make_instance(tmp_path / "cd" / "CUT", rows=64, columns=64)
    path = tmp_path / "cd" / "CUT"
    path.write_bytes(path.read_bytes()[:-500])
    code, out, _err = run_cli("import", str(tmp_path / "cd"), "--json")
    assert code == 4
    assert json_report(out)["verification"]["problems"][0]["path"] == "CUT"


def test_a_bad_config_exits_2_naming_the_key(run_cli: Run, tmp_path: Path) -> None:
    cfg = tmp_path / "k.toml"
    cfg.write_text("[import]\nworkerz = 3\n")
    code, out, err = run_cli("--config", str(cfg), "cases")
    assert code == 2 and out == "" and "import.workerz" in err


def test_usage_errors_exit_2(run_cli: Run) -> None:
    code, _out, _err = run_cli("import")
    assert code == 2


def test_the_console_script_runs_in_a_subprocess_with_logs_on_stderr(tmp_path: Path) -> None:
    make_instance(tmp_path / "cd" / "IM1")
    proc = subprocess.run(
        [sys.executable, "-m", "kiosk.cli.main", "--data-dir", str(tmp_path / "d"), "import",
         str(tmp_path / "cd"), "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["instances"]["verified"] == 1
    assert "copying" in proc.stderr or "done" in proc.stderr  # progress went to stderr
