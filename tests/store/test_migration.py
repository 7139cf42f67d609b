"""A data directory written by the single-file store (layout 1) is upgraded in place on first start.

The fixture ``data/v1-store.tar.gz`` was written by that release's code
(``data/build_v1_fixture.py``), and ``data/v1-cases.json`` is what its ``kiosk cases --json``
printed for it.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections import Counter
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from kiosk.bootstrap import build_service
from kiosk.cli.main import main
from kiosk.security.audit import verify_trail
from kiosk.store import migration
from kiosk.store.layout import LAYOUT, PARTITIONED

DATA = Path(__file__).parent / "data"


def _unpack(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    with tarfile.open(DATA / "v1-store.tar.gz") as tar:
        tar.extractall(data, filter="data")
    return data


def _canon(docs: list[dict[str, Any]]) -> Counter[str]:
    return Counter(json.dumps(d, sort_keys=True, ensure_ascii=False) for d in docs)


def _old_tables(data: Path) -> dict[str, list[dict[str, Any]]]:
    old = json.loads((data / "kiosk.json").read_text("utf-8"))
    return {t: list(docs.values()) for t, docs in old.items()}


def _assert_same_records(data: Path, old: dict[str, list[dict[str, Any]]]) -> None:
    service = build_service(data_dir=data, env={})
    db = service.catalog.db
    for table, docs in old.items():
        assert _canon(db.find(table)) == _canon(docs), table
    by_id = {c["case_id"]: c for c in json.loads((DATA / "v1-cases.json").read_text())["cases"]}
    summaries = {c["case_id"]: c for c in service.case_summaries()}
    assert len(summaries) == len(old["cases"])
    assert {k: summaries[k] for k in by_id} == by_id


def test_a_layout_1_store_is_upgraded_on_first_start_with_every_record_kept(
        tmp_path: Path) -> None:
    data = _unpack(tmp_path)
    old = _old_tables(data)
    assert set(old) >= {"cases", "studies", "jobs", "outbox", "reports", "links"}
    _assert_same_records(data, old)
    # One small file per case; the global file holds no case record any more.
    assert len(list((data / "cases").glob("*.json"))) == len(old["cases"])
    now = json.loads((data / "kiosk.json").read_text("utf-8"))
    assert not set(now) & PARTITIONED
    assert migration.layout_of(now) == LAYOUT
    # The old database is kept until the next start, which removes it.
    assert (data / "kiosk.json.layout1.bak").exists()
    build_service(data_dir=data, env={})
    assert not (data / "kiosk.json.layout1.bak").exists()
    _assert_same_records(data, old)


def test_a_power_cut_mid_migration_loses_nothing_and_the_next_start_finishes_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _unpack(tmp_path)
    old = _old_tables(data)
    before = (data / "kiosk.json").read_bytes()
    real = migration._write_unsynced
    written: list[Path] = []

    def cut_after_two(path: Path, payload: bytes) -> None:
        if len(written) == 2:
            raise OSError("power cut")
        written.append(path)
        real(path, payload)

    monkeypatch.setattr(migration, "_write_unsynced", cut_after_two)
    with pytest.raises(OSError, match="power cut"):
        build_service(data_dir=data, env={})
    monkeypatch.undo()
    # Half-way: the old database is still the one in force, and its backup is whole.
    assert (data / "kiosk.json").read_bytes() == before
    assert (data / "kiosk.json.layout1.bak").read_bytes() == before
    assert len(written) == 2
    _assert_same_records(data, old)


def test_a_cut_at_the_commit_point_leaves_layout_1_and_is_redone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _unpack(tmp_path)
    old = _old_tables(data)
    before = (data / "kiosk.json").read_bytes()
    real = migration.write_atomic

    def cut_at_commit(path: Path, payload: bytes, **kw: Any) -> None:
        if path.name == "kiosk.json":
            raise OSError("power cut")
        real(path, payload, **kw)

    monkeypatch.setattr(migration, "write_atomic", cut_at_commit)
    with pytest.raises(OSError, match="power cut"):
        build_service(data_dir=data, env={})
    monkeypatch.undo()
    assert (data / "kiosk.json").read_bytes() == before
    _assert_same_records(data, old)


def test_the_upgraded_store_keeps_working(tmp_path: Path) -> None:
    data = _unpack(tmp_path)
    service = build_service(data_dir=data, env={})
    [wang] = service.case_summaries(find="王小东")
    assert service.case_summaries(find="xiaodong wang")[0]["case_id"] == wang["case_id"]
    detail = service.case_detail(wang["case_id"])
    assert detail["studies"] and detail["studies"][0]["instances"] == 1
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["--data-dir", str(data), "cases", "--json", "--limit", "2"])
    assert code == 0 and len(json.loads(out.getvalue())["cases"]) == 2
    assert verify_trail(data / "audit.jsonl") == []
    # An uploaded and delivered case of the old store is purged like any other.
    delivered = [c for c in service.case_summaries() if c["delivered"]]
    assert delivered and service.upload_state(delivered[0]["case_id"]).uploaded
    service.purge_case(delivered[0]["case_id"])
    assert delivered[0]["case_id"] not in {c["case_id"] for c in service.case_summaries()}
    assert service.catalog.case(delivered[0]["case_id"]) is None


def _grow(data: Path, copies: int) -> dict[str, list[dict[str, Any]]]:
    """Make the fixture's layout-1 store ``copies`` times bigger (new case and job ids).

    Built from the fixture's own records, so the shape is what the old release wrote; only the
    ids differ. Returns the grown tables.
    """
    old = json.loads((data / "kiosk.json").read_text("utf-8"))
    case_ids = [d["case_id"] for d in old["cases"].values()]
    id_values = [d[f] for t, f in (("jobs", "job_id"), ("outbox", "job_id"),
                                   ("reports", "report_id"))
                 for d in old.get(t, {}).values() if isinstance(d.get(f), str)]
    grown: dict[str, dict[str, Any]] = {t: {} for t in old}
    for table, docs in old.items():
        if table not in PARTITIONED:
            grown[table] = docs
            continue
        for n in range(copies):
            for doc in docs.values():
                text = json.dumps(doc, ensure_ascii=False)
                if n:
                    for k, cid in enumerate(case_ids):  # the case number's shape is kept
                        text = text.replace(cid, f"{cid[:-4]}{n * len(case_ids) + k:04X}")
                    for value in id_values:
                        text = text.replace(f'"{value}"', f'"{value}-{n}"')
                grown[table][str(len(grown[table]) + 1)] = json.loads(text)
    (data / "kiosk.json").write_text(json.dumps(grown, ensure_ascii=False), "utf-8")
    return {t: list(docs.values()) for t, docs in grown.items()}


_START = ("import sys; from pathlib import Path; from kiosk.bootstrap import build_service; "
          "build_service(data_dir=Path(sys.argv[1]), env={}); print('up', flush=True)")


def _written(pid: int) -> int:
    """Bytes the process has written so far (``wchar``: its own, from its start)."""
    try:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            if line.startswith("wchar:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


def test_kill_9_at_random_moments_of_a_long_migration_loses_nothing(tmp_path: Path) -> None:
    """SIGKILL the real first start while it migrates 3,000 cases; the next start finishes it.

    Each kill lands at a chosen point of the migration, seen from outside by how many bytes the
    child has written (the backup first, then the case files and locators): right after the
    backup, and at random fractions of the case files.
    """
    import random
    import shutil
    import signal
    import subprocess
    import sys

    data = _unpack(tmp_path)
    old = _grow(data, 750)
    backup = (data / "kiosk.json").stat().st_size
    probe = tmp_path / "probe"
    shutil.copytree(data, probe)
    subprocess.run([sys.executable, "-c", _START, str(probe)], check=True, capture_output=True)
    spread = sum(p.stat().st_size for d in ("cases", "index") for p in (probe / d).iterdir())
    rng = random.Random(20261207)
    fractions = [0.0, *sorted(rng.uniform(0.05, 0.9) for _ in range(4))]
    for fraction in fractions:
        child = subprocess.Popen([sys.executable, "-c", _START, str(data)],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        # The backup is written once, by the first attempt that finds none; later ones start
        # from it. (A kill while it is written is a cut too: the old database stays in force.)
        has_backup = (data / "kiosk.json.layout1.bak").exists()
        target = (0 if has_backup else backup) + int(fraction * spread)
        while child.poll() is None and _written(child.pid) < max(target, 1):
            pass
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate()
        assert b"up" not in out, f"the migration finished before the kill at {fraction:.0%}"
        # Cut before the commit point: the old database is still the one in force.
        assert migration.layout_of(migration.load(data / "kiosk.json")) == 1
    _assert_same_records(data, old)
    assert len(list((data / "cases").glob("*.json"))) == len(old["cases"])
