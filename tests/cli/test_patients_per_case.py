"""A case, its stick and its link are for one person (DESIGN.md §1 step 2).

A disc with three patients imported from the command line becomes three cases; ``--case`` with
``--same-person`` keeps differing ids together on the coordinator's word; export and QR refuse
a case that still holds several people nobody confirmed as one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kiosk.bootstrap import build_service
from tests.conftest import json_report, make_instance

Cli = Callable[..., tuple[int, str, str]]


def _disc(root: Path, patients: list[tuple[str, str]], per_patient: int = 2) -> Path:
    root.mkdir(parents=True)
    for n, (pid, name) in enumerate(patients):
        for i in range(per_patient):
            make_instance(root / f"P{n}I{i}", patient_id=pid, patient_name=name, seed=n * 10 + i)
    return root


THREE = [("H1001", "WANG^LEI"), ("H2002", "LI^NA"), ("H3003", "ZHANG^WEI")]


def test_a_disc_with_three_patients_becomes_three_cases_of_one_person_each(
        tmp_path: Path, run_cli: Cli) -> None:
    code, out, _err = run_cli("import", str(_disc(tmp_path / "disc", THREE)), "--json")
    report = json_report(out)
    assert code == 0
    assert len(report["cases"]) == 3
    assert sorted(pid for c in report["cases"] for pid in c["patient_ids"]) == [
        "H1001", "H2002", "H3003"]
    assert report["cases"][0]["case_id"] == report["case_id"]
    code, out, _err = run_cli("cases", "--json")
    cases = json_report(out)["cases"]
    assert len(cases) == 3
    assert sorted(len(c["patients"]) for c in cases) == [1, 1, 1]
    assert sorted(c["instances"] for c in cases) == [2, 2, 2]
    for case in report["cases"]:  # each may go onto a stick and behind a link
        code, out, err = run_cli("qr", case["case_id"])
        assert code == 0, err


def test_the_summary_says_how_many_patients_and_where_each_went(
        tmp_path: Path, run_cli: Cli) -> None:
    code, out, _err = run_cli("import", str(_disc(tmp_path / "disc", THREE)))
    assert code == 0
    assert "3 found" in out and "a case of their own" in out
    assert out.count("Case:      ") == 3
    for pid in ("H1001", "H2002", "H3003"):
        assert f"ID {pid}" in out


def test_a_second_disc_of_someone_else_goes_to_a_case_of_its_own(
        tmp_path: Path, run_cli: Cli) -> None:
    first = json_report(run_cli("import", str(_disc(tmp_path / "a", THREE[:1])), "--json")[1])
    case_id = first["case_id"]
    code, out, _err = run_cli("import", str(_disc(tmp_path / "b", THREE[1:2])), "--case",
                              case_id, "--json")
    report = json_report(out)
    assert code == 0
    assert report["cases"][0] == {"case_id": case_id, "patient_ids": ["H1001"]}
    assert report["cases"][1]["patient_ids"] == ["H2002"]
    assert report["cases"][1]["case_id"] != case_id
    (tmp_path / "stick").mkdir()
    code, out, err = run_cli("export", case_id, "--to", str(tmp_path / "stick"), "--json")
    assert code == 0, err  # the case still holds one person


def test_same_person_keeps_differing_ids_together_and_the_case_exports(
        tmp_path: Path, run_cli: Cli, data_dir: Path) -> None:
    first = json_report(run_cli("import", str(_disc(tmp_path / "a", THREE[:1])), "--json")[1])
    case_id = first["case_id"]
    # The same person, imaged at another hospital under that hospital's id.
    code, out, err = run_cli("import", str(_disc(tmp_path / "b", [("BJ-77", "WANG^LEI")])),
                             "--case", case_id, "--same-person", "--json")
    assert code == 0, err
    assert json_report(out)["cases"] == [{"case_id": case_id,
                                          "patient_ids": ["H1001", "BJ-77"]}]
    (tmp_path / "stick").mkdir()
    code, out, err = run_cli("export", case_id, "--to", str(tmp_path / "stick"), "--json")
    assert code == 0, err
    assert json_report(out)["verified"] is True
    service = build_service(data_dir=data_dir)
    assert any(e["action"] == "same_person_confirmed" and e["details"]["case_id"] == case_id
               for e in service.recent_audit())


def test_export_and_qr_refuse_a_case_of_several_people_and_say_how_to_fix_it(
        tmp_path: Path, run_cli: Cli, data_dir: Path) -> None:
    # The desk's import files everything in one case and lets the coordinator split per row;
    # until someone does, the case is for nobody's stick.
    service = build_service(data_dir=data_dir)
    case_id = service.import_path(_disc(tmp_path / "disc", THREE))["case_id"]
    (tmp_path / "stick").mkdir()
    for args in (("export", case_id, "--to", str(tmp_path / "stick")), ("qr", case_id)):
        code, out, err = run_cli(*args)
        assert code == 2, (args, out, err)
        assert "3 patients" in err and "--same-person" in err and "Case screen" in err
        assert "Traceback" not in err
    assert list((tmp_path / "stick").iterdir()) == []  # nothing written
    # Moving the others out (the desk's split) makes it exportable.
    service.split_patients(case_id, ["H2002", "H3003"])
    code, _out, err = run_cli("export", case_id, "--to", str(tmp_path / "stick"))
    assert code == 0, err


def test_same_person_without_a_case_is_a_usage_error(tmp_path: Path, run_cli: Cli) -> None:
    code, _out, err = run_cli("import", str(_disc(tmp_path / "disc", THREE[:1])),
                              "--same-person")
    assert code == 2
    assert "--case" in err
