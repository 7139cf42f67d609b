"""Upgrading a layout-1 data directory (one ``kiosk.json`` holding everything) to layout 2.

Runs in place on the first start of this release, under the database lock:

1. the old ``kiosk.json`` is copied, durably, to ``kiosk.json.layout1.bak`` (once);
2. from that copy, every case's records are written to ``cases/<name>.json``, the id
   locators to ``index/ids-*.json`` and the hospital cards to ``index/hospitals-*.json``
   (leftovers of an interrupted attempt are cleared first),
   then one ``syncfs`` makes them durable;
3. ``kiosk.json`` is replaced, atomically, by the global tables plus the layout marker. This
   is the commit point: a power cut before it leaves the old ``kiosk.json`` in force and the
   next start does the whole migration again from the backup; after it, layout 2 is in force.

The case index is not written here: it rebuilds itself from the case files the first time the
cases are listed (:meth:`kiosk.store.database.Database.index_rows`). The backup is deleted by
the next start that finds layout 2 in force (:func:`finish`).
"""

from __future__ import annotations

import json
import os
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

from kiosk.errors import StoreError
from kiosk.store.durable import fsync_dir, syncfs, temp_name, write_atomic
from kiosk.store.layout import (
    ACTIVE_STATES,
    ID_FIELDS,
    LAYOUT,
    META,
    PARTITIONED,
    SEPARATE,
    Paths,
    active_table,
    id_key,
)

Tables = dict[str, dict[str, dict[str, Any]]]


def dumps(data: Tables) -> bytes:
    """A tinydb file's bytes, as :class:`~kiosk.store.database.AtomicJSONStorage` writes them."""
    return dump_value(data)


def dump_value(value: Any) -> bytes:
    """Any JSON value encoded as :func:`dumps` encodes a file (a part of a file's bytes)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"),
                      sort_keys=True).encode("utf-8")


def load(path: Path) -> Tables | None:
    """A tinydb file's tables, or None when it is missing or empty.

    Raises
    ------
    StoreError
        The file is not valid JSON (torn by a non-atomic writer, edited by hand).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    if not text.strip():
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise damaged(path, exc) from None
    if not isinstance(data, dict):
        raise StoreError(f"The kiosk database {path} is not a tinydb file.")
    return data


def damaged(path: Path, exc: json.JSONDecodeError) -> StoreError:
    """The error for a database file that does not parse (it is left as it is)."""
    return StoreError(
        f"The kiosk database {path} is damaged ({exc}). It has not been changed; "
        "restore it from backup or move it aside to start empty.")


def layout_of(data: Tables | None) -> int:
    """The layout a global database file declares (1 when it has no marker)."""
    for doc in (data or {}).get(META, {}).values():
        if doc.get("key") == "layout":
            return int(doc.get("version", 1))
    return 1


def _meta(data: Tables) -> dict[str, Any]:
    for doc in data.get(META, {}).values():
        if doc.get("key") == "layout":
            return doc
    return {}


def _write_unsynced(path: Path, payload: bytes) -> None:
    """Temp file and rename, no fsync: the caller syncs the whole batch once."""
    tmp = temp_name(path)
    with open(tmp, "wb") as fh:
        fh.write(payload)
    os.replace(tmp, path)


def _has_records(data: Tables) -> bool:
    return any(data.get(t) for t in PARTITIONED)


def upgrade(paths: Paths, now: str) -> bool:
    """Bring the data directory to layout 2; return True when a migration ran.

    Call with the database lock held. Safe to call again after a power cut at any point.
    """
    current = load(paths.db_file)
    if layout_of(current) >= LAYOUT:
        finish(paths, current or {})
        return False
    if not paths.backup.exists():
        if current is None or not _has_records(current):
            fresh = dict(current or {})
            fresh[META] = {"1": {"key": "layout", "version": LAYOUT, "created": now}}
            paths.cases_dir.mkdir(exist_ok=True)
            paths.index_dir.mkdir(exist_ok=True)
            fsync_dir(paths.db_file.parent)
            write_atomic(paths.db_file, dumps(fresh))
            return False
        write_atomic(paths.backup, paths.db_file.read_bytes(), mode=0o600)
    source = load(paths.backup) or {}
    for folder in (paths.cases_dir, paths.index_dir):  # an interrupted attempt's files
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
    fsync_dir(paths.db_file.parent)
    per_case: dict[str, Tables] = defaultdict(dict)
    global_tables: Tables = {t: docs for t, docs in source.items() if t not in PARTITIONED}
    ids: dict[Path, dict[str, dict[str, Any]]] = defaultdict(dict)
    for table in sorted(PARTITIONED):
        for doc_id, doc in source.get(table, {}).items():
            case_id = doc.get("case_id")
            if not isinstance(case_id, str):
                global_tables.setdefault(table, {})[doc_id] = doc
                continue
            per_case[case_id].setdefault(table, {})[doc_id] = doc
            field = ID_FIELDS.get(table)
            if field and isinstance(doc.get(field), str):
                bucket = ids[paths.ids_bucket(table, doc[field])]
                bucket[str(len(bucket) + 1)] = {"k": id_key(table, doc[field]),
                                                "case_id": case_id}
            if doc.get("state") in ACTIVE_STATES.get(table, ()):
                mirror = global_tables.setdefault(active_table(table), {})
                mirror[str(len(mirror) + 1)] = doc
    for case_id, tables in per_case.items():
        _write_unsynced(paths.case_file(case_id), dumps(tables))
    for path, docs in ids.items():
        _write_unsynced(path, dumps({"ids": docs}))
    for table, field in sorted(SEPARATE.items()):
        parts: dict[Path, dict[str, dict[str, Any]]] = defaultdict(dict)
        for doc in global_tables.pop(table, {}).values():
            part = parts[paths.table_file(table, str(doc.get(field)))]
            part[str(len(part) + 1)] = doc
        for path, docs in parts.items():
            _write_unsynced(path, dumps({table: docs}))
    syncfs(paths.cases_dir)
    fsync_dir(paths.cases_dir)
    fsync_dir(paths.index_dir)
    global_tables[META] = {"1": {"key": "layout", "version": LAYOUT, "migrated": now,
                                 "from": 1, "cases": len(per_case),
                                 "backup": paths.backup.name}}
    write_atomic(paths.db_file, dumps(global_tables))  # the commit point
    return True


def finish(paths: Paths, current: Tables) -> None:
    """On a start after a migration: drop the layout-1 backup, and its note in the marker."""
    meta = _meta(current)
    if not meta.get("backup"):
        return
    paths.backup.unlink(missing_ok=True)
    fsync_dir(paths.db_file.parent)
    for doc in current.get(META, {}).values():
        if doc.get("key") == "layout":
            doc.pop("backup", None)
            doc["backup_removed"] = True
    write_atomic(paths.db_file, dumps(current))
