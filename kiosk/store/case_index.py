"""The case index's pieces below the database: one case's records, and the index buckets.

The index (``index/cases-<b>.json``, 64 buckets) holds one summary row per case so that
listing, finding and retention never open the cases. :class:`IndexBuckets` reads a bucket
once and keeps it while its file is unchanged (inode, size, mtime), and writes a bucket from
the rows it holds. It takes no lock: :class:`kiosk.store.database.Database` calls it under its
own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kiosk.store import migration
from kiosk.store.durable import write_atomic

#: A file's identity for "has it changed": inode, size, modification time in ns.
Signature = list[int]


def file_signature(path: Path) -> Signature | None:
    """``path``'s :data:`Signature`, or None when it does not exist."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns]


class CaseDocs:
    """The records of one case, read with one parse of its file."""

    def __init__(self, case_id: str, tables: dict[str, dict[str, dict[str, Any]]]) -> None:
        self.case_id = case_id
        self._tables = tables

    def docs(self, table: str) -> list[dict[str, Any]]:
        """The documents of ``table``, in insertion order (copies)."""
        rows = self._tables.get(table, {})
        return [dict(rows[k]) for k in sorted(rows, key=lambda k: int(k))]

    def first(self, table: str) -> dict[str, Any] | None:
        """The first document of ``table``, or None."""
        docs = self.docs(table)
        return docs[0] if docs else None


def basic_summary(docs: CaseDocs) -> dict[str, Any] | None:
    """The smallest index row: the case id and its times (the catalog gives a fuller one)."""
    case = docs.first("cases")
    if case is None:
        return None
    return {"case_id": docs.case_id, "created": case.get("created"),
            "updated": case.get("updated")}


class IndexBuckets:
    """Index bucket files and what was last read from or written to each."""

    def __init__(self) -> None:
        #: Per bucket: its file's signature, its rows by tinydb doc id, and in file order.
        self._cache: dict[Path, tuple[Signature, dict[str, dict[str, Any]],
                                      list[dict[str, Any]]]] = {}

    def rows(self, path: Path, *, keep: bool = True,
             sig: Signature | None = None) -> list[dict[str, Any]]:
        """One bucket's rows; kept for the next call unless ``keep`` is False.

        ``sig``: the bucket's signature when the caller has just taken it (no second stat).
        """
        sig = sig or file_signature(path)
        if sig is None:
            self._cache.pop(path, None)
            return []
        cached = self._cache.get(path)
        if cached is not None and cached[0] == sig:
            return cached[2]
        by_id = (migration.load(path) or {}).get("rows", {})
        rows = list(by_id.values())
        if keep:
            self._cache[path] = (sig, by_id, rows)
        return rows

    def write(self, bucket: Path, case_id: str, row: dict[str, Any] | None) -> None:
        """Replace, add or drop one case's row in its bucket, from the rows already held.

        The caller has just validated the bucket against its file (:meth:`rows`) under the
        database lock, so the new file is made from memory instead of tinydb's
        read-modify-write of the whole bucket (a parse of N/64 rows on every summary change).
        The bytes are the ones tinydb would write (one ``rows`` table, string doc ids, the
        next id one past the largest), and the bucket is kept as a fresh read would give it,
        so this process's next look at the index parses nothing.
        """
        cached = self._cache.get(bucket)
        by_id: dict[str, dict[str, Any]] = dict(cached[1]) if cached is not None else {}
        doc_id = next((k for k, r in by_id.items() if r.get("case_id") == case_id), None)
        if row is None:
            if doc_id is None:
                return
            del by_id[doc_id]
        else:
            if doc_id is None:
                doc_id = str(max((int(k) for k in by_id), default=0) + 1)
            by_id[doc_id] = json.loads(json.dumps(row))  # JSON types, as a re-read gives them
        write_atomic(bucket, migration.dumps({"rows": by_id}))
        ordered = {k: by_id[k] for k in sorted(by_id)}  # the file's order (sorted keys)
        sig = file_signature(bucket)
        if sig is None:
            self._cache.pop(bucket, None)
        else:
            self._cache[bucket] = (sig, ordered, list(ordered.values()))
