"""The store survives power cuts: atomic database writes, blobs visible only when complete."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from kiosk.errors import StoreError
from kiosk.store.blobstore import BlobStore
from kiosk.store.database import AtomicJSONStorage, Database


def test_documents_round_trip_and_are_addressed_by_fields(tmp_path: Path) -> None:
    db = Database(tmp_path / "db.json")
    db.insert("cases", {"case_id": "C1", "status": "incomplete"})
    db.upsert("cases", {"case_id": "C1", "status": "complete"}, case_id="C1")
    db.upsert("cases", {"case_id": "C2", "status": "incomplete"}, case_id="C2")
    assert db.get("cases", case_id="C1") == {"case_id": "C1", "status": "complete"}
    assert len(db.find("cases")) == 2
    assert db.update("cases", {"status": "x"}, status="incomplete") == 1
    assert db.remove("cases", case_id="C1") == 1
    assert [c["case_id"] for c in Database(tmp_path / "db.json").find("cases")] == ["C2"]


def test_a_crash_during_a_database_write_leaves_the_previous_version(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = Database(tmp_path / "db.json")
    db.insert("cases", {"case_id": "C1"})
    before = (tmp_path / "db.json").read_bytes()

    def power_cut(*_args: object) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", power_cut)
    with pytest.raises(OSError, match="power cut"):
        db.insert("cases", {"case_id": "C2"})
    monkeypatch.undo()
    assert (tmp_path / "db.json").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    assert [c["case_id"] for c in Database(tmp_path / "db.json").find("cases")] == ["C1"]


def test_a_damaged_database_is_reported_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "db.json"
    path.write_text('{"cases": {"1": {"case_id": "C1"}')  # torn by a non-atomic writer
    with pytest.raises(StoreError, match="damaged"):
        Database(path).find("cases")
    assert path.read_text().startswith('{"cases"')


def test_the_storage_writes_valid_json_atomically(tmp_path: Path) -> None:
    storage = AtomicJSONStorage(tmp_path / "db.json")
    assert storage.read() is None
    storage.write({"t": {"1": {"name": "李华"}}})
    assert json.loads((tmp_path / "db.json").read_text("utf-8")) == {"t": {"1": {"name": "李华"}}}


def test_blobs_are_invisible_until_committed_and_named_by_their_hash(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs", tmp_path / "tmp")
    (tmp_path / "blobs").mkdir()
    staging = tmp_path / "tmp" / "job"
    staging.mkdir(parents=True)
    writer = store.writer(staging)
    writer.write(b"hello ")
    writer.write(b"world")
    pending = writer.finish()
    sha = hashlib.sha256(b"hello world").hexdigest()
    assert pending.sha256 == sha and pending.size == 11
    assert not store.has(sha)
    store.commit([pending])
    assert store.has(sha) and store.read_bytes(sha) == b"hello world"
    assert list(staging.iterdir()) == []


def test_committing_bytes_already_stored_keeps_one_copy(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs", tmp_path / "tmp")
    (tmp_path / "blobs").mkdir()
    (tmp_path / "tmp").mkdir()
    sha = store.put_bytes(b"same")
    writer = store.writer(tmp_path / "tmp")
    writer.write(b"same")
    store.commit([writer.finish()])
    assert list((tmp_path / "blobs" / sha[:2]).iterdir()) == [store.path_for(sha)]
    assert [p.name for p in (tmp_path / "tmp").iterdir()] == [".small"]  # small blobs' staging
    assert list((tmp_path / "tmp" / ".small").iterdir()) == []


def test_leftovers_of_dead_jobs_are_cleaned_but_a_running_job_is_kept(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs", tmp_path / "tmp")
    (tmp_path / "blobs").mkdir()
    sha = store.put_bytes(b"a manifest")  # its temp file was staged under tmp/.small
    small = tmp_path / "tmp" / ".small"
    (small / ".abcd.1234.tmp").write_bytes(b"torn")  # a power cut's small-blob temp
    os.utime(small / ".abcd.1234.tmp", (1, 1))
    (small / ".efgh.5678.tmp").write_bytes(b"being written by another process")
    for job in ("dead", "alive"):
        (tmp_path / "tmp" / job).mkdir(parents=True)
        (tmp_path / "tmp" / job / "x.part").write_bytes(b"half")
    assert store.clean_tmp(keep={"alive"}) == 2
    assert sorted(p.name for p in (tmp_path / "tmp").iterdir()) == [".small", "alive"]
    assert [p.name for p in small.iterdir()] == [".efgh.5678.tmp"]
    assert store.read_bytes(sha) == b"a manifest"
    assert [p.name for p in store.path_for(sha).parent.iterdir()] == [sha]


def test_temps_of_an_interrupted_atomic_write_are_removed_once_stale(tmp_path: Path) -> None:
    from kiosk.store.durable import remove_stale_temps

    old = tmp_path / ".kiosk.json.abc.tmp"
    fresh = tmp_path / ".kiosk.json.def.tmp"
    keep = tmp_path / "kiosk.json"
    for path in (old, fresh, keep):
        path.write_bytes(b"x")
    os.utime(old, (1, 1))
    assert remove_stale_temps(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([fresh.name, keep.name])
