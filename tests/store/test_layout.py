"""Layout 2: a write touches its case's file only, and what is derived heals from the case files."""

from __future__ import annotations

import json
import shutil
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kiosk.cloud.outbox import Outbox
from kiosk.security.audit import GENESIS, AuditLog, entry_hash, verify_trail
from kiosk.store import database as database_module
from kiosk.store.blobstore import BlobStore
from kiosk.store.catalog import Catalog
from kiosk.store.database import Database


def _sigs(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.glob("*.json")}


def _db(tmp_path: Path) -> Database:
    return Database(tmp_path / "kiosk.json")


def _loads(monkeypatch: pytest.MonkeyPatch, which: Callable[[Path], bool]) -> list[Path]:
    """The database files parsed from now on (those ``which`` picks), in order."""
    seen: list[Path] = []
    real = database_module.migration.load

    def counting(path: Path) -> Any:
        if which(path):
            seen.append(path)
        return real(path)

    monkeypatch.setattr(database_module.migration, "load", counting)
    return seen


def test_a_write_to_one_case_rewrites_only_that_case_file_and_one_index_bucket(
        tmp_path: Path) -> None:
    db = _db(tmp_path)
    for i in range(20):
        db.insert("cases", {"case_id": f"C{i}", "created": f"2026-12-07T00:00:{i:02d}Z"})
    cases_before = _sigs(tmp_path / "cases")
    index_before = _sigs(tmp_path / "index")
    global_before = (tmp_path / "kiosk.json").read_bytes()
    db.update("cases", {"status": "complete", "updated": "x"}, case_id="C7")
    cases_after = _sigs(tmp_path / "cases")
    changed = {n for n in cases_after if cases_after[n] != cases_before.get(n)}
    assert changed == {db.paths.case_file("C7").name}
    index_after = _sigs(tmp_path / "index")
    assert {n for n in index_after if index_after[n] != index_before.get(n)} == {
        db.paths.index_bucket("C7").name}
    assert (tmp_path / "kiosk.json").read_bytes() == global_before
    assert db.index_row("C7")["updated"] == "x"  # type: ignore[index]


def test_a_cut_between_the_case_file_and_its_index_row_is_repaired_on_the_next_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = _db(tmp_path)
    db.insert("cases", {"case_id": "C1", "created": "2026-12-07T00:00:00Z"})
    assert [r["case_id"] for r in db.index_rows()] == ["C1"]

    def power_cut(self: Database, case_id: str) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(Database, "_refresh_row", power_cut)
    with pytest.raises(OSError):
        db.insert("cases", {"case_id": "C2", "created": "2026-12-07T00:00:01Z"})
    with pytest.raises(OSError):
        db.update("cases", {"updated": "later"}, case_id="C1")
    monkeypatch.undo()
    fresh = _db(tmp_path)  # the next start
    rows = {r["case_id"]: r for r in fresh.index_rows()}
    assert set(rows) == {"C1", "C2"} and rows["C1"]["updated"] == "later"
    # A case file removed behind the index (a purge cut short) loses its row too.
    db.paths.case_file("C2").unlink()
    assert {r["case_id"] for r in _db(tmp_path).index_rows()} == {"C1"}


def test_the_running_jobs_mirror_follows_the_case_files_after_a_cut(tmp_path: Path) -> None:
    db = _db(tmp_path)
    job = {"job_id": "import-1", "case_id": "C1", "kind": "import", "state": "running",
           "pid": 1, "boot_id": "gone", "started": "2026-12-07T00:00:00Z"}
    db.insert("jobs", job)
    assert [j["job_id"] for j in db.find("jobs", state="running")] == ["import-1"]
    # The job finished, but the cut came before the mirror was told.
    path = db.paths.case_file("C1")
    data = json.loads(path.read_text())
    for doc in data["jobs"].values():
        doc["state"] = "complete"
    path.write_text(json.dumps(data))
    assert db.repair_active("jobs") == 1
    assert db.find("jobs", state="running") == []
    assert db.get("jobs", job_id="import-1")["state"] == "complete"  # type: ignore[index]


def test_a_job_is_found_by_its_id_alone_even_when_its_locator_is_lost(tmp_path: Path) -> None:
    db = _db(tmp_path)
    for i in range(5):
        db.insert("jobs", {"job_id": f"import-{i}", "case_id": f"C{i}", "state": "complete",
                           "started": str(i)})
    assert db.get("jobs", job_id="import-3")["case_id"] == "C3"  # type: ignore[index]
    for bucket in (tmp_path / "index").glob("ids-*.json"):
        bucket.unlink()
    assert db.get("jobs", job_id="import-3")["case_id"] == "C3"  # type: ignore[index]
    assert db.update("jobs", {"state": "x"}, job_id="import-3") == 1


def test_choosing_the_next_upload_opens_no_case_but_the_chosen_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = _db(tmp_path)
    (tmp_path / "blobs").mkdir()
    (tmp_path / "tmp").mkdir()
    store = BlobStore(tmp_path / "blobs", tmp_path / "tmp")
    Catalog(db, store)  # the case index rows count finished uploads
    outbox = Outbox(db, store)
    for i in range(40):  # the history: finished uploads of 40 cases
        db.insert("cases", {"case_id": f"C{i}", "created": "2026-12-07T00:00:00Z"})
        job_id = outbox.enqueue_upload(destination="d", case_id=f"C{i}", study_uid="s",
                                       items=[], fingerprint="f")
        outbox.finish(job_id, "done")
    waiting = outbox.enqueue_upload(destination="d", case_id="C7", study_uid="s2", items=[],
                                    fingerprint="g")
    reads = _loads(monkeypatch, lambda path: path.parent.name == "cases")
    job = outbox.claim_next("d")
    assert job is not None and job["job_id"] == waiting
    assert set(reads) <= {db.paths.case_file("C7")}
    assert outbox.counts("d")["done"] == 40 and outbox.counts("d")["in_flight"] == 1


def test_a_write_that_leaves_the_summary_alone_rewrites_no_bucket_and_the_next_start_reads_no_case(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = _db(tmp_path)
    (tmp_path / "blobs").mkdir()
    (tmp_path / "tmp").mkdir()
    store = BlobStore(tmp_path / "blobs", tmp_path / "tmp")
    Catalog(db, store)
    outbox = Outbox(db, store)
    db.insert("cases", {"case_id": "C1", "created": "2026-12-07T00:00:00Z"})
    job_id = outbox.enqueue_upload(destination="d", case_id="C1", study_uid="s", items=[],
                                   fingerprint="f")
    row = dict(db.index_row("C1") or {})
    bucket = db.paths.index_bucket("C1")
    before = (bucket.stat().st_ino, bucket.stat().st_mtime_ns)
    outbox.save(job_id, cursor=3)  # progress: the case file changes, its summary does not
    assert (bucket.stat().st_ino, bucket.stat().st_mtime_ns) == before
    assert db.index_row("C1") == row

    healed: list[str] = []
    real = Database._refresh_row

    def spy(self: Database, case_id: str, *, heal: bool = False) -> None:
        if heal:
            healed.append(case_id)
        real(self, case_id, heal=heal)

    monkeypatch.setattr(Database, "_refresh_row", spy)
    # Every write ended with its rows written: the next start trusts the index as it is.
    assert not db.paths.in_flight.exists()
    Catalog(_db(tmp_path), store).case_summaries()
    assert healed == []
    # A writer killed between a case file and its row leaves the marker: the next start
    # checks every row, rebuilds the one whose file changed, once, and removes the marker.
    db.paths.in_flight.touch()
    Catalog(_db(tmp_path), store).case_summaries()
    assert healed == ["C1"] and not db.paths.in_flight.exists()
    Catalog(_db(tmp_path), store).case_summaries()
    assert healed == ["C1"]
    assert {r["case_id"] for r in _db(tmp_path).index_rows()} == {"C1"}


def test_a_kiosk_that_starts_cleanly_reads_no_case_file_to_list_or_find_its_cases(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = _db(tmp_path)
    for i in range(100):
        db.insert("cases", {"case_id": f"C{i}", "created": f"2026-12-07T00:00:{i % 60:02d}Z"})
    opened = _loads(monkeypatch, lambda path: path.parent.name == "cases")
    fresh = _db(tmp_path)
    assert len(fresh.index_rows()) == 100
    assert len(_db(tmp_path).listing(lambda lean: lean["case_id"])) == 100
    assert opened == []
    # A lost bucket: the rows no longer match the case files, so the next start rebuilds
    # them from the case files (only the lost bucket's cases are opened).
    lost = db.paths.index_bucket("C5")
    lost_ids = {r["case_id"] for r in fresh._buckets.listing(lost)}
    lost.unlink()
    assert {r["case_id"] for r in _db(tmp_path).index_rows()} == {f"C{i}" for i in range(100)}
    assert {p.name for p in opened} == {db.paths.case_file(c).name for c in lost_ids}


def test_an_index_of_the_earlier_one_table_format_is_converted_on_first_use(
        tmp_path: Path) -> None:
    db = _db(tmp_path)
    for i in range(30):
        db.insert("cases", {"case_id": f"C{i}", "created": f"2026-12-07T00:00:{i:02d}Z",
                            "updated": f"u{i}"})
    rows = sorted(db.index_rows(), key=lambda r: r["case_id"])
    # The earlier release kept each bucket as one "rows" table of whole rows.
    for bucket in db.paths.index_buckets():
        if bucket.exists():
            old = {"rows": {str(n): r for n, r in enumerate(db._buckets.rows(bucket), 1)}}
            bucket.with_name(bucket.name.replace("summaries-", "cases-")).write_text(
                json.dumps(old), encoding="utf-8")
            bucket.unlink()
    fresh = _db(tmp_path)
    assert sorted(fresh.index_rows(), key=lambda r: r["case_id"]) == rows
    assert db.paths.legacy_buckets() == []
    first = json.loads(db.paths.index_bucket("C3").read_text(encoding="utf-8"))
    assert set(first) == {"list", "x"}
    # The listing prints the stored lines: the same summary ``kiosk cases --json`` printed.
    lines = {json.loads(line)["case_id"]: json.loads(line)
             for line in _db(tmp_path).listing(lambda lean: lean["line"])}
    assert lines["C3"]["updated"] == "u3" and lines["C3"]["created"] == "2026-12-07T00:00:03Z"


def test_audit_verify_streams_a_long_trail_in_flat_memory_and_the_tail_reads_the_end(
        tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    prev = GENESIS
    with open(path, "wb") as fh:
        for seq in range(1, 20001):
            entry = {"seq": seq, "time": "t", "kiosk": "k", "action": "a",
                     "details": {"case_id": f"C{seq}", "pad": "x" * 200}, "prev": prev}
            entry["hash"] = prev = entry_hash(entry)
            fh.write(json.dumps(entry, sort_keys=True).encode() + b"\n")
    assert path.stat().st_size > 5_000_000
    tracemalloc.start()
    try:
        assert verify_trail(path) == []
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, peak  # the whole file would be > 5 MB
    log = AuditLog(path, "k")
    assert [e["seq"] for e in log.tail(3)] == [19998, 19999, 20000]
    log.append("after")
    assert [e["action"] for e in log.tail(2)] == ["a", "after"]
    # An edited line in the middle is still found.
    lines = path.read_bytes().splitlines(keepends=True)
    lines[9999] = lines[9999].replace(b'"C10000"', b'"C99999"')
    path.write_bytes(b"".join(lines))
    assert verify_trail(path) == ["line 10000 (seq 10000): entry was edited after it was "
                                  "written"]
    shutil.rmtree(tmp_path / "none", ignore_errors=True)


def test_after_its_own_writes_a_process_sees_the_index_as_a_fresh_read_would_without_reading(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = _db(tmp_path)
    for i in range(200):  # about three cases a bucket
        db.insert("cases", {"case_id": f"C{i}", "created": f"2026-12-07T00:{i // 60:02d}:"
                                                          f"{i % 60:02d}Z"})
    db.index_rows()
    reads = _loads(monkeypatch, lambda path: path.name.startswith("summaries-"))
    db.update("cases", {"status": "complete", "updated": "u1"}, case_id="C7")
    db.insert("cases", {"case_id": "C900", "created": "2026-12-08T00:00:00Z"})
    db.update("cases", {"updated": "u2"}, case_id="C900")
    db.remove("cases", case_id="C11")
    mine = db.index_rows()
    assert reads == []  # every bucket it wrote, it already knew
    monkeypatch.undo()
    fresh = _db(tmp_path).index_rows()
    assert mine == fresh
    rows = {r["case_id"]: r for r in mine}
    assert rows["C7"]["updated"] == "u1" and rows["C900"]["updated"] == "u2"
    assert "C11" not in rows and len(rows) == 200


def test_the_retention_order_follows_this_processs_own_writes_as_a_fresh_read_gives_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def summarise(docs: Any) -> dict[str, Any] | None:
        case = docs.first("cases")
        if case is None:
            return None
        return {"case_id": docs.case_id, "created": case.get("created"),
                "x": {"settled": case.get("settled")}}

    db = Database(tmp_path / "kiosk.json", summarise)
    for i in range(150):
        db.insert("cases", {"case_id": f"C{i}", "created": "2026-12-07T00:00:00Z",
                            "settled": float(i) if i % 3 else None})
    version, orders = db.settled_orders(None)
    reads = _loads(monkeypatch, lambda path: path.name.startswith("summaries-"))
    db.update("cases", {"settled": 1000.0}, case_id="C1")  # moves to the end
    db.update("cases", {"settled": None}, case_id="C2")  # leaves the order
    db.update("cases", {"settled": 5.5}, case_id="C3")  # joins it
    db.remove("cases", case_id="C4")
    _later, changed = db.settled_orders(version)
    assert reads == []  # its own writes: nothing read back
    buckets = {db.paths.index_buckets().index(db.paths.index_bucket(f"C{i}")) for i in (1, 2, 3, 4)}
    assert set(changed) == buckets
    orders.update(changed)
    monkeypatch.undo()
    _v, fresh = Database(tmp_path / "kiosk.json", summarise).settled_orders(None)
    assert orders == fresh
    flat = sorted(e for order in orders.values() for e in order)
    assert (1000.0, "C1") in flat and (5.5, "C3") in flat
    assert not any(c in ("C2", "C4") for _t, c in flat)


def test_the_newest_page_follows_this_processs_own_writes_as_a_fresh_read_gives_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = _db(tmp_path)
    for i in range(150):
        db.insert("cases", {"case_id": f"C{i:03d}",
                            "created": f"2026-12-{1 + i % 28:02d}T00:00:00Z"})
    assert [r["case_id"] for r in db.newest_page(0, 3)[0]] == ["C139", "C111", "C083"]
    reads = _loads(monkeypatch, lambda path: path.name.startswith("summaries-"))
    db.update("cases", {"created": "2027-01-01T00:00:00Z"}, case_id="C005")  # to the top
    db.remove("cases", case_id="C139")  # off the page
    db.insert("cases", {"case_id": "C900", "created": "2026-12-31T00:00:00Z"})
    rows, total = db.newest_page(0, 20)
    assert reads == []
    assert total == 150 and [r["case_id"] for r in rows[:3]] == ["C005", "C900", "C111"]
    monkeypatch.undo()
    expected = sorted(_db(tmp_path).index_rows(), reverse=True,
                      key=lambda r: (r["created"], 0.0, r["case_id"]))
    assert rows == expected[:20]
    assert _db(tmp_path).newest_page(20, 20)[0] == expected[20:40]
    assert _db(tmp_path).newest_page(140, 20)[0] == expected[140:]


def test_the_bucket_signatures_are_reused_only_while_the_index_folder_is_settled(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kiosk.store.index_upkeep as upkeep

    db = _db(tmp_path)
    for i in range(30):
        db.insert("cases", {"case_id": f"C{i}", "created": "2026-12-07T00:00:00Z"})
    stats: list[str] = []
    real_stat = upkeep.os.stat

    def counting(path: Any, *args: Any, **kwargs: Any) -> Any:
        stats.append(str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(upkeep.os, "stat", counting)
    index = db.paths.index_dir
    # Just written: the folder's time may not yet show a change in the same clock tick, so
    # every bucket is looked at, every time.
    db.index_rows()
    stats.clear()
    db.index_rows()
    assert sum(1 for p in stats if "summaries-" in p) == 64
    # Settled (its last change well before the look): the folder's own stat is enough.
    old = real_stat(index).st_mtime_ns - 10**9
    upkeep.os.utime(index, ns=(old, old))
    db.index_rows()
    stats.clear()
    assert len(db.index_rows()) == 30
    assert set(stats) == {str(index), str(db.paths.in_flight)}  # no bucket looked at
    # Another process's write renames a bucket into the folder: seen at the next look.
    other = _db(tmp_path)
    other.insert("cases", {"case_id": "C99", "created": "2026-12-08T00:00:00Z"})
    assert {r["case_id"] for r in db.index_rows()} >= {"C99"}


def test_a_bucket_written_from_its_rows_entries_is_byte_for_byte_a_full_encoding(
        tmp_path: Path) -> None:
    from kiosk.store.case_index import bucket_bytes

    db = _db(tmp_path)
    for i in range(200):
        db.insert("cases", {"case_id": f"C{i}", "created": f"2026-12-07T00:00:{i % 60:02d}Z",
                            "patients": [{"name": "李^四", "patient_id": f"P{i}"}]})
    db.update("cases", {"updated": "u", "status": "complete"}, case_id="C7")
    db.remove("cases", case_id="C11")
    db.insert("cases", {"case_id": "C900", "created": "2026-12-08T00:00:00Z"})
    for name in {db.paths.index_bucket(c) for c in ("C7", "C11", "C900")}:
        data = json.loads(name.read_text(encoding="utf-8"))
        assert name.read_bytes() == bucket_bytes(data["list"], data["x"])


def test_every_summary_line_comes_newest_first_from_a_spool_that_leaves_nothing(
        tmp_path: Path) -> None:
    from kiosk.store.summary_listing import newest_first_lines

    db = _db(tmp_path)
    for i in range(120):
        db.insert("cases", {"case_id": f"C{i}", "created": f"2026-12-{1 + i % 28:02d}T00:00:00Z",
                            "updated": "王五"})
    spool = tmp_path / "spool"
    spool.mkdir()
    lines = list(newest_first_lines(db, spool))
    order = [json.loads(line)["case_id"] for line in lines]
    expected = sorted(db.index_rows(), reverse=True,
                      key=lambda r: (r["created"], 0.0, r["case_id"]))
    assert order == [r["case_id"] for r in expected]
    assert json.loads(lines[0])["updated"] == "王五"
    assert list(spool.iterdir()) == []  # the spool had no name
    # Nowhere to spool (a missing or full tmp folder): the same lines, held in memory.
    assert list(newest_first_lines(db, tmp_path / "missing")) == lines
    since = "2026-12-20"
    assert [json.loads(x)["case_id"] for x in newest_first_lines(db, spool, since=since)] == [
        r["case_id"] for r in expected if r["created"] >= since]
