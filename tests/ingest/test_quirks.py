"""The quirks report: what a hospital's medium does that the standard does not ask for.

Stable codes with counts in every import report; ``kiosk hospitals`` adds them up per issuing
institution (Institution Name, else the DICOMDIR's File-set ID, else the volume label) with no
patient data. Media are built from pydicom's own test files and from crafted ones.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from pydicom.data import get_testdata_file

from kiosk.ingest.quirks import CODES, issuer
from tests.conftest import PYDICOM_FILES, json_report, make_instance

Cli = Callable[..., tuple[int, str, str]]


def _quirks(report: dict[str, object]) -> dict[str, int]:
    return {q["code"]: q["count"] for q in report["quirks"]}  # type: ignore[union-attr, index]


def test_a_clean_pydicom_file_set_has_no_quirk_and_is_filed_under_its_file_set_id(
        tmp_path: Path, run_cli: Cli) -> None:
    disc = tmp_path / "disc"
    shutil.copytree(PYDICOM_FILES / "dicomdirtests", disc)
    code, out, err = run_cli("import", str(disc), "--same-person", "--case", "C1", "--json")
    report = json_report(out)
    assert code == 0, err
    assert _quirks(report) == {}
    assert report["issuer"] == {"issuer": "PYDICOM_TEST", "from": "fileset_id"}


def test_a_messy_disc_reports_each_quirk_with_its_count(tmp_path: Path, run_cli: Cli) -> None:
    disc = tmp_path / "disc"
    (disc / "dicom").mkdir(parents=True)
    # GBK bytes labelled Latin-1 (common on Chinese CDs), twice; and two files without preamble.
    gbk = "王^小东".encode("gbk")
    make_instance(disc / "dicom" / "im0001", patient_name=gbk, charset="ISO_IR 100", seed=1)
    make_instance(disc / "dicom" / "im0002", patient_name=gbk, charset="ISO_IR 100", seed=2)
    make_instance(disc / "NOPRE1", preamble=False, seed=3)
    make_instance(disc / "NOPRE2", preamble=False, seed=4)
    shutil.copy(get_testdata_file("CT_small.dcm"), disc / "CTSMALL")
    (disc / "VIEWER.EXE").write_bytes(b"MZ" + bytes(100))
    (disc / "AUTORUN.INF").write_text("[autorun]\r\nopen=VIEWER.EXE\r\n")
    damaged = disc / "TRUNC"
    make_instance(damaged, seed=5, rows=64, columns=64)
    damaged.write_bytes(damaged.read_bytes()[:-1000])  # pixel data cut short
    (disc / "LINK").symlink_to("/etc/passwd")
    code, out, _err = run_cli("import", str(disc), "--json")
    report = json_report(out)
    quirks = _quirks(report)
    assert code == 4  # the truncated image is flagged, never passed as clean
    assert quirks["charset_mislabelled"] == 2
    assert quirks["no_preamble"] == 2
    assert quirks["lowercase_names"] == 2
    assert quirks["dicomdir_missing"] == 1
    assert quirks["viewer_present"] == 1 and quirks["autorun_present"] == 1
    assert quirks["symlinks"] == 1
    assert quirks["pixel_data_damaged"] == 1
    assert set(quirks) <= set(CODES)
    assert [q["code"] for q in report["quirks"]] == sorted(quirks)
    # The Institution Name of the one file that has it names the issuer.
    assert report["issuer"] == {"issuer": "JFK IMAGING CENTER", "from": "institution"}


def test_a_stale_dicomdir_and_rejected_files_are_counted(tmp_path: Path, run_cli: Cli) -> None:
    disc = tmp_path / "disc"
    shutil.copytree(PYDICOM_FILES / "dicomdirtests", disc)
    listed = sorted(p for p in disc.rglob("*") if p.is_file() and p.name != "DICOMDIR")
    listed[0].unlink()  # a record without its file
    make_instance(disc / "EXTRA", seed=9)  # a file the DICOMDIR does not list
    (disc / "GARBAGE").write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 40)
    _code, out, _err = run_cli("import", str(disc), "--case", "C1", "--same-person", "--json")
    quirks = _quirks(json_report(out))
    assert quirks["dicomdir_stale"] == 2
    assert quirks["rejected_files"] == 1


def test_hospitals_add_up_media_per_issuer_and_hold_no_patient_data(
        tmp_path: Path, run_cli: Cli, data_dir: Path) -> None:
    for n in range(2):
        disc = tmp_path / f"jfk{n}"
        disc.mkdir()
        shutil.copy(get_testdata_file("CT_small.dcm"), disc / "ct")  # lowercase: a quirk
    # A disc without Institution Name or DICOMDIR, labelled with the patient's name.
    named = tmp_path / "WANG_LEI_CT"
    named.mkdir()
    make_instance(named / "IM1", patient_name="WANG^LEI", patient_id="H77")
    for disc in (tmp_path / "jfk0", tmp_path / "jfk1", named):
        assert run_cli("import", str(disc), "--json")[0] == 0
    code, out, _err = run_cli("hospitals", "--json")
    assert code == 0
    data = json_report(out)
    cards = {c["issuer"]: c for c in data["hospitals"]}
    jfk = cards["JFK IMAGING CENTER"]
    assert jfk["media"] == 2 and jfk["instances"] == 2 and jfk["rejected"] == 0
    assert jfk["quirks"]["lowercase_names"] == 2 and jfk["quirks"]["dicomdir_missing"] == 2
    assert data["codes"] == CODES
    hashed = [c for c in data["hospitals"] if c["from"] == "label_hashed"]
    assert len(hashed) == 1 and hashed[0]["issuer"].startswith("label ")
    # No patient name, id or identifying label anywhere in the card.
    text = json.dumps(data)
    for secret in ("WANG", "LEI", "H77"):
        assert secret not in text
    code, out, _err = run_cli("hospitals")
    assert "JFK IMAGING CENTER" in out and "lowercase_names" in out and "media 2" in out


def test_the_issuer_falls_back_from_institution_to_file_set_to_label() -> None:
    from collections import Counter

    assert issuer(Counter({"": 3, "Ruijin Hospital": 2}), ["FS1"], "LBL", [])["issuer"] == \
        "Ruijin Hospital"
    assert issuer(Counter(), ["", "FS1"], "LBL", []) == {"issuer": "FS1", "from": "fileset_id"}
    assert issuer(Counter(), [], "RUIJIN_CT", ["WANG"]) == {"issuer": "RUIJIN_CT",
                                                            "from": "label"}
    assert issuer(Counter(), [], "WANG_LEI", ["WANG", "LEI"])["from"] == "label_hashed"
    assert issuer(Counter(), [], None, []) == {"issuer": "(unknown)", "from": "none"}
