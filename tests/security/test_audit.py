"""The audit trail is tamper-evident: `kiosk audit verify` finds an edited, inserted or
deleted entry and says which."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from kiosk.security.audit import AuditLog, verify_trail

Run = Callable[..., tuple[int, str, str]]


def _trail(tmp_path: Path, n: int = 4, kiosk: str = "desk-1") -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    log = AuditLog(tmp_path / "audit.jsonl", kiosk)
    for i in range(n):
        log.append("import", case_id=f"C{i}", instances=i)
    return log.path


def _lines(path: Path) -> list[str]:
    return path.read_text("utf-8").splitlines()


def test_an_untouched_trail_verifies(tmp_path: Path) -> None:
    assert verify_trail(_trail(tmp_path)) == []


def test_an_edited_entry_is_found(tmp_path: Path) -> None:
    path = _trail(tmp_path)
    lines = _lines(path)
    entry = json.loads(lines[1])
    entry["details"]["instances"] = 999
    lines[1] = json.dumps(entry, sort_keys=True)
    path.write_text("\n".join(lines) + "\n", "utf-8")
    assert verify_trail(path) == ["line 2 (seq 2): entry was edited after it was written"]


def test_a_deleted_entry_is_found(tmp_path: Path) -> None:
    path = _trail(tmp_path)
    lines = _lines(path)
    del lines[2]
    path.write_text("\n".join(lines) + "\n", "utf-8")
    problems = verify_trail(path)
    assert any("line 3 (seq 4): does not follow" in p for p in problems)
    assert any("seq 4 where 3 was expected" in p for p in problems)


def test_an_inserted_entry_is_found_even_with_a_valid_own_hash(tmp_path: Path) -> None:
    path = _trail(tmp_path)
    other = _trail(tmp_path / "other", n=2, kiosk="desk-2")  # well-formed, from another trail
    lines = _lines(path)
    lines.insert(1, _lines(other)[1])
    path.write_text("\n".join(lines) + "\n", "utf-8")
    problems = verify_trail(path)
    assert any(p.startswith("line 2 (seq 2): does not follow") for p in problems)


def test_the_command_reports_tampering_with_exit_4(run_cli: Run, data_dir: Path,
                                                  tmp_path: Path) -> None:
    from tests.conftest import make_instance

    make_instance(tmp_path / "cd" / "IM1")
    assert run_cli("import", str(tmp_path / "cd"), "--json")[0] == 0
    code, out, _err = run_cli("audit", "verify")
    assert code == 0 and "intact" in out
    trail = data_dir / "audit.jsonl"
    trail.write_text(trail.read_text("utf-8").replace('"import"', '"imp0rt"'), "utf-8")
    code, _out, err = run_cli("audit", "verify")
    assert code == 4 and "edited" in err
