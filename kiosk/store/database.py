"""The kiosk's database: tinydb on a crash-safe storage, one small file per case.

tinydb's default ``JSONStorage`` truncates and rewrites the file in place, so a power cut during
a write leaves a corrupt database. :class:`AtomicJSONStorage` writes a temp file, fsyncs it,
``os.replace``-s it over the old one and fsyncs the directory: after a crash each file is either
the old or the new version, never a mix.

Every tinydb write rewrites its whole file, so the records are spread over files whose size
follows the work, not the history (layout 2, :mod:`kiosk.store.layout`): a case's records live
in that case's file; what must be found without knowing the case sits in small files of its
own (the case index, id locators, and the *active* mirror of running jobs and unfinished
uploads in ``kiosk.json``). The case files are the truth: the index and the mirror are
repaired from them after a power cut (:meth:`Database.index_rows`,
:meth:`Database.repair_active`). A layout-1 directory is upgraded on first use
(:mod:`kiosk.store.migration`).

The API stays "tables of JSON documents addressed by equality on their fields": a query that
names ``case_id`` (or a job or report id) opens one file; one that names neither reads every
case file, which only rare maintenance does.

This is the only module that imports tinydb. A process-wide ``flock`` serialises writers so the
CLI and the running app never lose each other's updates.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tinydb import Query, TinyDB
from tinydb.storages import Storage

from kiosk.store import migration
from kiosk.store.case_index import (
    CaseDocs,
    IndexBuckets,
    Signature,
    basic_summary,
    file_signature,
)
from kiosk.store.durable import fsync_dir, write_atomic
from kiosk.store.index_upkeep import IndexUpkeep
from kiosk.store.layout import (
    ACTIVE_STATES,
    ID_FIELDS,
    PARTITIONED,
    SEPARATE,
    SUMMARISED,
    Paths,
    active_table,
    id_key,
)


class AtomicJSONStorage(Storage):
    """tinydb storage that replaces the file atomically and durably on every write."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def read(self) -> dict[str, dict[str, Any]] | None:
        """Return the whole file, or None for a new one.

        Raises
        ------
        StoreError
            The file is damaged (it is left as it is).
        """
        return migration.load(self.path)

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        """Write the whole file atomically."""
        write_atomic(self.path, migration.dumps(data))

    def close(self) -> None:
        """Nothing held open between operations."""


class Database(IndexUpkeep):
    """Tables of JSON documents addressed by equality on their fields.

    Parameters
    ----------
    path : Path
        The global database file (``kiosk.json``); its directory must exist. The case files
        and the index live beside it (:class:`kiosk.store.layout.Paths`).
    summarise : callable, optional
        Makes a case's index row from its records (:attr:`summarise`; the catalog sets it).
    """

    def __init__(self, path: Path,
                 summarise: Callable[[CaseDocs], dict[str, Any] | None] | None = None) -> None:
        self.path = path
        self.paths = Paths(path)
        self._db = TinyDB(path, storage=AtomicJSONStorage)
        #: Index row of a case, or None for a case without its case document.
        self.summarise = summarise or basic_summary
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._ready = False
        self._dirty: set[str] = set()
        #: The index buckets as last read or written, checked against their files.
        self._buckets = IndexBuckets()
        #: Whether this process has checked the index against the case files once.
        self._checked = False
        #: A write was cut short (the in-flight marker was found): check every row.
        self._must_heal = False
        #: This transaction created the in-flight marker (removed when it ends).
        self._marked = False
        self._rows: tuple[tuple[Any, ...], list[dict[str, Any]]] | None = None
        self._version_cache: tuple[tuple[int, int] | None, tuple[Any, ...]] | None = None
        self._locators: dict[Path, tuple[Signature, dict[str, dict[str, Any]]]] = {}
        self._page_cache: tuple[tuple[Any, ...], tuple[list[dict[str, Any]], int]] | None = None
        #: Whether the layout-1 data was upgraded by this object (for the start-up log).
        self.migrated = False

    # --- locking and layout ------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the database exclusively for a read-modify-write spanning several calls.

        On the first use the data directory is brought to the current layout. When the
        outermost transaction ends, the index rows of the cases it changed are rewritten.
        """
        with self._thread_lock:
            if self._depth == 0:
                lock_path = self.path.with_name(self.path.name + ".lock")
                fh = open(lock_path, "a+b")  # noqa: SIM115 - kept open while locked
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
                self._lock_file = fh
            self._depth += 1
            try:
                if not self._ready:
                    self.migrated = migration.upgrade(
                        self.paths, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
                    self.paths.cases_dir.mkdir(exist_ok=True)
                    self.paths.index_dir.mkdir(exist_ok=True)
                    self._ready = True
                if self._depth == 1 and not self._marked and self.paths.in_flight.exists():
                    self._must_heal = True  # a writer died between a case file and its row
                yield
            finally:
                try:
                    if self._depth == 1:
                        dirty, self._dirty = self._dirty, set()
                        for case_id in sorted(dirty):
                            self._refresh_row(case_id)
                        if self._marked:
                            # Every changed case has its row: a cut from here on loses nothing.
                            self._marked = False
                            if not self._must_heal:
                                self.paths.in_flight.unlink(missing_ok=True)
                finally:
                    self._depth -= 1
                    if self._depth == 0:
                        fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
                        self._lock_file.close()

    @staticmethod
    def _cond(key: dict[str, Any]) -> Any:
        if not key:
            raise ValueError("a key is required")
        q = Query()
        cond = None
        for name, value in key.items():
            part = q[name] == value
            cond = part if cond is None else (cond & part)
        return cond

    @staticmethod
    def _matches(doc: dict[str, Any], key: dict[str, Any]) -> bool:
        return all(name in doc and doc[name] == value for name, value in key.items())

    def _tiny(self, path: Path | None) -> TinyDB:
        if path is None:
            return self._db
        return TinyDB(path, storage=AtomicJSONStorage)

    def _apart(self, table: str, fields: dict[str, Any]) -> list[Any]:
        """The bucket tables of a table kept apart that may hold documents with ``fields``."""
        field = SEPARATE[table]
        if field in fields:
            return [self._tiny(self.paths.table_file(table, str(fields[field]))).table(table)]
        return [self._tiny(p).table(table) for p in self.paths.table_files(table) if p.exists()]

    def _global(self, table: str) -> Any:
        t = self._db.table(table)
        # tinydb caches search results per table and only forgets them on its own writes;
        # another process (the CLI beside the app) may have rewritten the file since.
        t.clear_cache()
        return t

    def _case_files(self) -> list[Path]:
        try:
            names = sorted(n for n in os.listdir(self.paths.cases_dir)
                           if n.endswith(".json") and not n.startswith("."))
        except FileNotFoundError:
            return []
        return [self.paths.cases_dir / n for n in names]

    def _paths_for(self, table: str, key: dict[str, Any]) -> list[Path | None]:
        """The files that may hold ``table``'s documents matching ``key`` (None: global)."""
        if "case_id" in key:
            case_id = key["case_id"]
            return [self.paths.case_file(case_id)] if isinstance(case_id, str) else [None]
        field = ID_FIELDS.get(table)
        if field and isinstance(key.get(field), str):
            case_id = self._locate(table, key[field])
            if case_id is not None:
                return [self.paths.case_file(case_id)]
        return [None, *self._case_files()]  # a full scan: rare by design

    # --- reading -----------------------------------------------------------------------------

    def get(self, table: str, **key: Any) -> dict[str, Any] | None:
        """Return the document matching every ``key`` field, or None."""
        found = self.find(table, **key)
        return found[0] if found else None

    def find(self, table: str, **key: Any) -> list[dict[str, Any]]:
        """Return every document matching ``key`` (all documents when ``key`` is empty)."""
        with self.transaction():
            if table in SEPARATE:
                return [dict(d) for t in self._apart(table, key)
                        for d in (t.all() if not key else t.search(self._cond(key)))]
            if table not in PARTITIONED:
                t = self._global(table)
                return [dict(d) for d in (t.all() if not key else t.search(self._cond(key)))]
            if "case_id" not in key and key.get("state") in ACTIVE_STATES.get(table, ()):
                return self.find_active(table, **key)
            out: list[dict[str, Any]] = []
            for path in self._paths_for(table, key):
                if path is not None and not path.exists():
                    continue
                t = self._global(table) if path is None else self._tiny(path).table(table)
                out += [dict(d) for d in (t.all() if not key else t.search(self._cond(key)))]
            field = ID_FIELDS.get(table)
            if field and isinstance(key.get(field), str):
                for doc in out:  # found by a scan: note where, for next time
                    if isinstance(doc.get("case_id"), str):
                        self._set_locator(table, doc[field], doc["case_id"])
            return out

    def get_located(self, table: str, value: str) -> dict[str, Any] | None:
        """The document of ``table`` whose id field (:data:`ID_FIELDS`) is ``value``, looked
        for in the global table and the case its locator names only, or None.

        Unlike :meth:`get`, an id without a locator (its case purged) is not looked for in
        every case file: for ids kept in lists of their own, which may outlive their case.
        """
        field = ID_FIELDS[table]
        with self.transaction():
            paths: list[Path | None] = [None]
            case_id = self._locate(table, value)
            if case_id is not None:
                paths.append(self.paths.case_file(case_id))
            for path in paths:
                if path is not None and not path.exists():
                    continue
                t = self._global(table) if path is None else self._tiny(path).table(table)
                found = t.get(self._cond({field: value}))
                if found is not None and not isinstance(found, list):
                    return dict(found)
        return None

    def find_active(self, table: str, **key: Any) -> list[dict[str, Any]]:
        """Documents of ``table`` in an active state (:data:`ACTIVE_STATES`) matching ``key``.

        Read from the mirror in ``kiosk.json``: no case file is opened.
        """
        with self.transaction():
            docs = self._global(active_table(table)).all()
            return [dict(d) for d in docs if self._matches(d, key)]

    def case_docs(self, case_id: str) -> CaseDocs:
        """Every record of one case, with one read of its file."""
        with self.transaction():
            return CaseDocs(case_id, migration.load(self.paths.case_file(case_id)) or {})

    # --- writing -----------------------------------------------------------------------------

    def insert(self, table: str, doc: dict[str, Any]) -> None:
        """Append a document."""
        with self.transaction():
            case_id = doc.get("case_id")
            if table in SEPARATE:
                self._apart(table, doc)[0].insert(doc)
                return
            if table not in PARTITIONED or not isinstance(case_id, str):
                self._global(table).insert(doc)
                return
            self._insert(table, doc, case_id)

    def _insert(self, table: str, doc: dict[str, Any], case_id: str) -> None:
        if doc.get("state") in ACTIVE_STATES.get(table, ()):
            self._mirror(table, doc)  # before the case file: a cut between is repaired
        new = self.paths.case_file(case_id)
        created = not new.exists()
        self._will_change(table)
        self._tiny(new).table(table).insert(doc)
        if created:
            fsync_dir(new.parent)
        self._after(table, case_id, [doc], [])

    def upsert(self, table: str, doc: dict[str, Any], **key: Any) -> None:
        """Insert ``doc`` or replace the fields of the document matching ``key``."""
        with self.transaction():
            if table in SEPARATE:
                self._apart(table, key | doc)[0].upsert(doc, self._cond(key))
                return
            if table not in PARTITIONED:
                self._global(table).upsert(doc, self._cond(key))
                return
            if self.update(table, doc, **key) == 0:
                case_id = doc.get("case_id", key.get("case_id"))
                if isinstance(case_id, str):
                    self._insert(table, doc, case_id)
                else:
                    self._db.table(table).insert(doc)

    def update(self, table: str, fields: dict[str, Any], **key: Any) -> int:
        """Set ``fields`` on every document matching ``key``; return how many changed.

        A changed ``case_id`` moves the document to that case's file.
        """
        with self.transaction():
            if table in SEPARATE:
                return sum(len(t.update(fields, self._cond(key)))
                           for t in self._apart(table, key))
            if table not in PARTITIONED:
                return len(self._global(table).update(fields, self._cond(key)))
            changed = 0
            for path in self._paths_for(table, key):
                if path is not None and not path.exists():
                    continue
                t = self._global(table) if path is None else self._tiny(path).table(table)
                docs = t.search(self._cond(key))
                if not docs:
                    continue
                after = [dict(d) | fields for d in docs]
                owner = docs[0].get("case_id") if path is not None else None
                moving = [a for a in after if a.get("case_id") != owner]
                if path is not None:
                    self._will_change(table)
                if moving:
                    t.remove(doc_ids=[d.doc_id for d, a in zip(docs, after, strict=True)
                                      if a.get("case_id") != owner])
                    for doc in moving:
                        self._after(table, owner, [], [doc | {"case_id": owner}])
                        if isinstance(doc.get("case_id"), str):
                            self._insert(table, doc, doc["case_id"])
                        else:
                            self._db.table(table).insert(doc)
                staying = [(d, a) for d, a in zip(docs, after, strict=True)
                           if a.get("case_id") == owner]
                if staying:
                    t.update(fields, doc_ids=[d.doc_id for d, _a in staying])
                    self._after(table, owner, [a for _d, a in staying], [])
                if path is not None:
                    self._drop_if_empty(path)
                changed += len(docs)
            return changed

    def remove(self, table: str, **key: Any) -> int:
        """Delete the documents matching ``key``; return how many."""
        with self.transaction():
            if table in SEPARATE:
                return sum(len(t.remove(self._cond(key))) for t in self._apart(table, key))
            if table not in PARTITIONED:
                return len(self._global(table).remove(self._cond(key)))
            removed = 0
            for path in self._paths_for(table, key):
                if path is not None and not path.exists():
                    continue
                t = self._global(table) if path is None else self._tiny(path).table(table)
                docs = t.search(self._cond(key))
                if not docs:
                    continue
                if path is not None:
                    self._will_change(table)
                t.remove(doc_ids=[d.doc_id for d in docs])
                self._after(table, docs[0].get("case_id") if path is not None else None, [],
                            [dict(d) for d in docs])
                if path is not None:
                    self._drop_if_empty(path)
                removed += len(docs)
            return removed

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    # --- locators, the active mirror --------------------------------------------------------

    def _after(self, table: str, case_id: str | None, written: list[dict[str, Any]],
               gone: list[dict[str, Any]]) -> None:
        """Bring locators, the mirror and the index up to date with a write to a case file."""
        field = ID_FIELDS.get(table)
        for doc in gone:
            if field and isinstance(doc.get(field), str):
                self._drop_locator(table, doc[field])
                if table in ACTIVE_STATES:
                    self._unmirror(table, doc[field])
        for doc in written:
            if field and isinstance(doc.get(field), str) and case_id is not None:
                self._set_locator(table, doc[field], case_id)
            if table in ACTIVE_STATES:
                if doc.get("state") in ACTIVE_STATES[table]:
                    self._mirror(table, doc)
                elif field and isinstance(doc.get(field), str):
                    self._unmirror(table, doc[field])
        if table in SUMMARISED and case_id is not None:
            self._dirty.add(case_id)

    def _small(self, path: Path) -> dict[str, dict[str, Any]]:
        """A locator bucket's tables, parsed once while the file is unchanged.

        An import asks where its jobs and reports live dozens of times; each bucket holds
        N/64 locators, so re-reading it every time would make an import cost more the more
        cases the kiosk has seen.
        """
        sig = file_signature(path)
        if sig is None:
            self._locators.pop(path, None)
            return {}
        hit = self._locators.get(path)
        if hit is not None and hit[0] == sig:
            return hit[1]
        data = migration.load(path) or {}
        self._locators[path] = (sig, data)
        return data

    def _locate(self, table: str, value: str) -> str | None:
        data = self._small(self.paths.ids_bucket(table, value))
        k = id_key(table, value)
        for doc in data.get("ids", {}).values():
            if doc.get("k") == k:
                return str(doc["case_id"])
        return None

    def _set_locator(self, table: str, value: str, case_id: str) -> None:
        if self._locate(table, value) == case_id:
            return
        k = id_key(table, value)
        self._tiny(self.paths.ids_bucket(table, value)).table("ids").upsert(
            {"k": k, "case_id": case_id}, Query().k == k)

    def _drop_locator(self, table: str, value: str) -> None:
        if self._locate(table, value) is not None:
            self._tiny(self.paths.ids_bucket(table, value)).table("ids").remove(
                Query().k == id_key(table, value))

    def note(self, key: str) -> Any:
        """A small value noted under ``key`` (:meth:`set_note`), or None."""
        with self.transaction():
            data = self._small(self.paths.ids_bucket("note", key))
            k = id_key("note", key)
            for doc in data.get("ids", {}).values():
                if doc.get("k") == k:
                    return doc.get("v")
        return None

    def set_note(self, key: str, value: Any) -> None:
        """Keep a small JSON value under ``key``, in a locator bucket (not in any case)."""
        with self.transaction():
            k = id_key("note", key)
            self._tiny(self.paths.ids_bucket("note", key)).table("ids").upsert(
                {"k": k, "v": value}, Query().k == k)

    def _mirror(self, table: str, doc: dict[str, Any]) -> None:
        field = ID_FIELDS[table]
        t = self._global(active_table(table))
        if t.get(Query()[field] == doc[field]) != doc:
            t.upsert(doc, Query()[field] == doc[field])

    def _unmirror(self, table: str, value: str) -> None:
        field = ID_FIELDS[table]
        t = self._global(active_table(table))
        if t.contains(Query()[field] == value):
            t.remove(Query()[field] == value)

    def repair_active(self, table: str) -> int:
        """Make the mirror of ``table`` agree with the case files; return the fixes.

        After a power cut between a case file's write and the mirror's, a mirrored job may be
        missing from its case, or finished there: the case file wins.
        """
        field = ID_FIELDS[table]
        fixes = 0
        with self.transaction():
            for doc in self.find_active(table):
                case_id = doc.get("case_id")
                truth = None
                if isinstance(case_id, str):
                    truth = self.case_docs(case_id)
                    truth_doc = next((d for d in truth.docs(table)
                                      if d.get(field) == doc[field]), None)
                else:
                    truth_doc = None
                if truth_doc is None or truth_doc.get("state") not in ACTIVE_STATES[table]:
                    self._unmirror(table, doc[field])
                    fixes += 1
                elif truth_doc != doc:
                    self._mirror(table, truth_doc)
                    fixes += 1
        return fixes

    def _drop_if_empty(self, path: Path) -> None:
        data = migration.load(path)
        if data is not None and not any(data.values()):
            path.unlink(missing_ok=True)
            fsync_dir(path.parent)
