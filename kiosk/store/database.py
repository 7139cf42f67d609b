"""The kiosk's database: tinydb on a crash-safe storage, behind a small key-value API.

tinydb's default ``JSONStorage`` truncates and rewrites the file in place, so a power cut during
a write leaves a corrupt database. :class:`AtomicJSONStorage` writes a temp file, fsyncs it,
``os.replace``-s it over the old one and fsyncs the directory: after a crash the file is either
the old or the new version, never a mix.

Every tinydb write rewrites the whole file, so documents are kept coarse (one per case, per study
manifest reference, per job); per-instance data lives in content-addressed manifest blobs.

This is the only module that imports tinydb. A process-wide ``flock`` serialises writers so the
CLI and the running app never lose each other's updates.
"""

from __future__ import annotations

import fcntl
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tinydb import Query, TinyDB
from tinydb.storages import Storage

from kiosk.errors import StoreError
from kiosk.store.durable import write_atomic


class AtomicJSONStorage(Storage):
    """tinydb storage that replaces the file atomically and durably on every write."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def read(self) -> dict[str, dict[str, Any]] | None:
        """Return the whole database, or None for a new one."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        if not text.strip():
            return None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StoreError(
                f"The kiosk database {self.path} is damaged ({exc}). It has not been changed; "
                "restore it from backup or move it aside to start empty."
            ) from None
        if not isinstance(data, dict):
            raise StoreError(f"The kiosk database {self.path} is not a tinydb file.")
        return data

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        """Write the whole database atomically."""
        payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        write_atomic(self.path, payload.encode("utf-8"))

    def close(self) -> None:
        """Nothing held open between operations."""


class Database:
    """Tables of JSON documents addressed by equality on their fields.

    Parameters
    ----------
    path : Path
        The database file; its directory must exist.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = TinyDB(path, storage=AtomicJSONStorage)
        self._thread_lock = threading.RLock()
        self._depth = 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the database exclusively for a read-modify-write spanning several calls."""
        with self._thread_lock:
            if self._depth == 0:
                lock_path = self.path.with_name(self.path.name + ".lock")
                fh = open(lock_path, "a+b")  # noqa: SIM115 - kept open while locked
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
                self._lock_file = fh
            self._depth += 1
            try:
                yield
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

    def get(self, table: str, **key: Any) -> dict[str, Any] | None:
        """Return the document matching every ``key`` field, or None."""
        with self.transaction():
            doc = self._db.table(table).get(self._cond(key))
        return dict(doc) if doc is not None else None  # type: ignore[arg-type]

    def find(self, table: str, **key: Any) -> list[dict[str, Any]]:
        """Return every document matching ``key`` (all documents when ``key`` is empty)."""
        with self.transaction():
            t = self._db.table(table)
            # tinydb caches search results per table and only forgets them on its own writes;
            # another process (the CLI beside the app) may have rewritten the file since.
            t.clear_cache()
            docs = t.all() if not key else t.search(self._cond(key))
        return [dict(d) for d in docs]

    def upsert(self, table: str, doc: dict[str, Any], **key: Any) -> None:
        """Insert ``doc`` or replace the fields of the document matching ``key``."""
        with self.transaction():
            self._db.table(table).upsert(doc, self._cond(key))

    def insert(self, table: str, doc: dict[str, Any]) -> None:
        """Append a document."""
        with self.transaction():
            self._db.table(table).insert(doc)

    def update(self, table: str, fields: dict[str, Any], **key: Any) -> int:
        """Set ``fields`` on every document matching ``key``; return how many changed."""
        with self.transaction():
            return len(self._db.table(table).update(fields, self._cond(key)))

    def remove(self, table: str, **key: Any) -> int:
        """Delete the documents matching ``key``; return how many."""
        with self.transaction():
            return len(self._db.table(table).remove(self._cond(key)))

    def close(self) -> None:
        """Close the database."""
        self._db.close()
