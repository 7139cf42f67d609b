"""The case index's pieces below the database: one case's records, and the index buckets.

The index (``index/summaries-<b>.json``, 64 buckets) holds one summary row per case so that
listing, finding and retention never open the cases. A bucket is a tinydb file of two tables
under the same doc ids:

``list``  what ``kiosk cases --json`` prints of the case, already encoded (``line``), with its
          sort key (``created``, ``ts``) and the case file's signature (``sig``)
``x``     the rest of the row (:mod:`kiosk.store.case_summary`: what finds it, retention,
          sync planning)

The keys are written sorted, so ``list`` comes first in the file: a full listing parses only
that table (a string per case, not a tree of patients and studies) and prints the lines as
they are. :class:`IndexBuckets` reads a bucket once and keeps it while its file is unchanged
(inode, size, mtime), and writes a bucket from the rows it holds. It takes no lock:
:class:`kiosk.store.database.Database` calls it under its own.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from kiosk.store import migration
from kiosk.store.durable import write_atomic

#: A file's identity for "has it changed": inode, size, modification time in ns.
Signature = list[int]
#: How index rows sort: creation time, its fraction of a second, the case id (newest last).
ListingKey = tuple[str, float, str]
#: An entry of a kept order (``(settled, case_id)`` or ``(listing_key, doc_id)``).
E = TypeVar("E", tuple[float, str], tuple[ListingKey, str])


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


SUMMARY_KEYS = ("case_id", "status", "delivered", "created", "updated", "patients", "studies",
                "instances", "bytes", "modalities")


def public(row: dict[str, Any]) -> dict[str, Any]:
    """The summary part of an index row, in the order ``kiosk cases --json`` prints it."""
    return {k: row.get(k) for k in SUMMARY_KEYS}


def summary_line(row: dict[str, Any]) -> str:
    """One case of ``kiosk cases --json``: the row's summary as one line of JSON."""
    return json.dumps(public(row), ensure_ascii=False)


def basic_summary(docs: CaseDocs) -> dict[str, Any] | None:
    """The smallest index row: the case id and its times (the catalog gives a fuller one)."""
    case = docs.first("cases")
    if case is None:
        return None
    return {"case_id": docs.case_id, "created": case.get("created"),
            "updated": case.get("updated")}


def _split(row: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A whole row as its ``list`` and ``x`` parts (both JSON types only)."""
    x = json.loads(json.dumps(row.get("x") or {}))
    lean = {"case_id": row["case_id"], "created": row.get("created"),
            "ts": x.get("created_ts"), "sig": row.get("sig"), "line": summary_line(row)}
    return lean, x


def _join(lean: dict[str, Any], x: dict[str, Any]) -> dict[str, Any]:
    return json.loads(lean["line"]) | {"sig": lean.get("sig"), "x": x}


def normal(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` as the index gives it back once written (to compare with a row read)."""
    return _join(*_split(row))


def listing_key(lean: dict[str, Any]) -> ListingKey:
    """The sort key of a ``list`` row, newest last (as :func:`case_summary.newest_first`)."""
    return (lean.get("created") or "", lean.get("ts") or 0.0, lean["case_id"])


_LIST_PREFIX = '{"list":'
_DECODER = json.JSONDecoder()


@dataclasses.dataclass
class _Bucket:
    """One bucket as read or written: both tables by doc id, the whole rows when joined."""

    sig: Signature
    lean: dict[str, dict[str, Any]]
    xs: dict[str, dict[str, Any]]
    full: dict[str, dict[str, Any]] | None = None
    _rows: list[dict[str, Any]] | None = None
    #: The cases with ``x.settled`` (delivered and uploaded), as ``(settled, case_id)`` in
    #: order: the retention sweep's question, kept up to date by this process's own writes.
    settled: list[tuple[float, str]] | None = None
    #: ``(listing_key, doc_id)`` of every row, oldest first: the desk's newest page is
    #: merged from these, kept up to date by this process's own writes too.
    newest: list[tuple[ListingKey, str]] | None = None
    #: Each doc id's two entries as the file holds them (``"id":{...}`` of ``list``, of
    #: ``x``): a write re-encodes its one row and joins the rest as they are.
    encoded: dict[str, tuple[bytes, bytes]] | None = None
    #: Whether this process wrote the bucket (it then keeps :attr:`encoded`).
    written: bool = False

    def rows(self) -> list[dict[str, Any]]:
        if self._rows is None:
            if self.full is None:
                self.full = {k: _join(v, self.xs.get(k, {})) for k, v in self.lean.items()}
            self._rows = list(self.full.values())
        return self._rows

    def newest_order(self) -> list[tuple[ListingKey, str]]:
        if self.newest is None:
            self.newest = sorted((listing_key(lean), k) for k, lean in self.lean.items())
        return self.newest

    def joined(self, doc_id: str) -> dict[str, Any]:
        if self.full is not None:
            return self.full[doc_id]
        return _join(self.lean[doc_id], self.xs.get(doc_id, {}))

    def settled_order(self) -> list[tuple[float, str]]:
        if self.settled is None:
            self.settled = sorted(_settled(lean["case_id"], self.xs.get(k, {}))
                                  for k, lean in self.lean.items()
                                  if self.xs.get(k, {}).get("settled") is not None)
        return self.settled


def _settled(case_id: str, x: dict[str, Any]) -> tuple[float, str]:
    return float(x["settled"]), case_id


def _moved(order: list[E], old: E | None, new: E | None) -> list[E]:
    """A copy of the sorted ``order`` with the entry ``old`` (if there) replaced by ``new``."""
    out = list(order)
    if old is not None:
        at = bisect.bisect_left(out, old)
        if at < len(out) and out[at] == old:
            del out[at]
    if new is not None:
        bisect.insort(out, new)
    return out


def _settled_entry(case_id: str, x: dict[str, Any] | None) -> tuple[float, str] | None:
    return _settled(case_id, x) if x is not None and x.get("settled") is not None else None


def _tables(path: Path) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """A bucket's ``list`` and ``x`` tables (a file of the earlier one-table format, too)."""
    data = migration.load(path) or {}
    if "list" in data:
        return data["list"], data.get("x", {})
    return split_rows(list(data.get("rows", {}).values()))


def split_rows(rows: list[dict[str, Any]]) -> tuple[dict[str, dict[str, Any]],
                                                    dict[str, dict[str, Any]]]:
    """Whole rows as the two tables of a bucket, under doc ids 1, 2, ..."""
    lean: dict[str, dict[str, Any]] = {}
    xs: dict[str, dict[str, Any]] = {}
    for n, row in enumerate(rows, 1):
        lean[str(n)], xs[str(n)] = _split(row)
    return lean, xs


def bucket_bytes(lean: dict[str, dict[str, Any]], xs: dict[str, dict[str, Any]]) -> bytes:
    """A bucket file's bytes (tinydb's layout: tables of string doc ids, keys sorted)."""
    return migration.dumps({"list": lean, "x": xs})


def _entries(doc_id: str, lean: dict[str, Any], x: dict[str, Any]) -> tuple[bytes, bytes]:
    key = migration.dump_value(doc_id)
    return key + b":" + migration.dump_value(lean), key + b":" + migration.dump_value(x)


def _joined_bytes(encoded: dict[str, tuple[bytes, bytes]]) -> bytes:
    """:func:`bucket_bytes` from each row's entries (the same bytes: keys sorted at every
    level, the same separators)."""
    order = sorted(encoded)
    return (b'{"list":{' + b",".join(encoded[k][0] for k in order) + b'},"x":{'
            + b",".join(encoded[k][1] for k in order) + b"}}")


class IndexBuckets:
    """Index bucket files and what was last read from or written to each."""

    def __init__(self) -> None:
        self._cache: dict[Path, _Bucket] = {}

    def _read(self, path: Path, sig: Signature | None, keep: bool) -> _Bucket | None:
        sig = sig or file_signature(path)
        if sig is None:
            self._cache.pop(path, None)
            return None
        cached = self._cache.get(path)
        if cached is not None and cached.sig == sig:
            return cached
        found = _Bucket(sig, *_tables(path))
        if keep:
            self._cache[path] = found
        return found

    def rows(self, path: Path, *, keep: bool = True,
             sig: Signature | None = None) -> list[dict[str, Any]]:
        """One bucket's whole rows; kept for the next call unless ``keep`` is False.

        ``sig``: the bucket's signature when the caller has just taken it (no second stat).
        """
        found = self._read(path, sig, keep)
        return found.rows() if found is not None else []

    def count(self, path: Path) -> int:
        """How many rows one bucket holds (kept)."""
        found = self._read(path, None, True)
        return len(found.lean) if found is not None else 0

    def newest(self, path: Path, *, sig: Signature | None = None
               ) -> tuple[list[tuple[ListingKey, str]], Callable[[str], dict[str, Any]]]:
        """One bucket's rows as ``(listing_key, doc_id)``, oldest first, and a function that
        joins the whole row of a doc id (only the rows a page shows are joined).

        Kept with the bucket and moved by :meth:`write`, like :meth:`settled`.
        """
        found = self._read(path, sig, True)
        if found is None:
            return [], lambda doc_id: {}
        return found.newest_order(), found.joined

    def settled(self, path: Path, *, sig: Signature | None = None) -> list[tuple[float, str]]:
        """One bucket's delivered-and-uploaded cases as ``(settled, case_id)``, in order.

        Kept with the bucket and moved by :meth:`write`, so after this process's own write
        the order costs nothing to bring up to date, however many rows the bucket holds.
        """
        found = self._read(path, sig, True)
        return found.settled_order() if found is not None else []

    def row(self, path: Path, case_id: str) -> dict[str, Any] | None:
        """One case's whole row from its bucket (kept), or None; the others are not joined."""
        found = self._read(path, None, True)
        if found is None:
            return None
        if found.full is not None:
            return next((r for r in found.full.values() if r.get("case_id") == case_id), None)
        doc_id = next((k for k, r in found.lean.items() if r.get("case_id") == case_id), None)
        return None if doc_id is None else _join(found.lean[doc_id], found.xs.get(doc_id, {}))

    def listing(self, path: Path) -> list[dict[str, Any]]:
        """One bucket's ``list`` rows only, nothing kept (for a listing of every case).

        Parses the ``list`` table and stops there: the ``x`` table after it is not read.
        """
        cached = self._cache.get(path)
        sig = file_signature(path)
        if sig is None:
            return []
        if cached is not None and cached.sig == sig:
            return list(cached.lean.values())
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        if not text.startswith(_LIST_PREFIX):
            return list(_tables(path)[0].values())
        try:
            table, _end = _DECODER.raw_decode(text, len(_LIST_PREFIX))
        except json.JSONDecodeError as exc:
            raise migration.damaged(path, exc) from None
        if not isinstance(table, dict):
            raise migration.damaged(path, json.JSONDecodeError("not a table", text, 8))
        return list(table.values())

    def write(self, bucket: Path, case_id: str, row: dict[str, Any] | None) -> None:
        """Replace, add or drop one case's row in its bucket, from the rows already held.

        The caller has just validated the bucket against its file (:meth:`rows`) under the
        database lock, so the new file is made from memory instead of tinydb's
        read-modify-write of the whole bucket (a parse of N/64 rows on every summary change).
        The bytes are the ones tinydb would write (string doc ids, the next id one past the
        largest), and the bucket is kept as a fresh read would give it, so this process's
        next look at the index parses nothing.
        """
        cached = self._cache.get(bucket)
        lean = dict(cached.lean) if cached is not None else {}
        xs = dict(cached.xs) if cached is not None else {}
        full = dict(cached.full) if cached is not None and cached.full is not None else None
        doc_id = next((k for k, r in lean.items() if r.get("case_id") == case_id), None)
        old_x = xs.get(doc_id) if doc_id is not None else None
        old_key = listing_key(lean[doc_id]) if doc_id is not None else None
        new_x = None
        if row is None:
            if doc_id is None:
                return
            for table in (lean, xs, full):
                if table is not None:
                    table.pop(doc_id, None)
        else:
            if doc_id is None:
                doc_id = str(max((int(k) for k in lean), default=0) + 1)
            lean[doc_id], xs[doc_id] = _split(row)
            new_x = xs[doc_id]
            if full is not None:
                full[doc_id] = _join(lean[doc_id], xs[doc_id])
        encoded: dict[str, tuple[bytes, bytes]] | None = None
        if cached is not None and cached.encoded is not None:
            encoded = dict(cached.encoded)
        elif cached is not None and cached.written:
            # Written before by this process, so it will be again (the desk): keep each
            # row's entries from now on. A one-off write is one encoding of the whole.
            encoded = {k: _entries(k, v, xs.get(k, {})) for k, v in lean.items()}
        if encoded is None:
            write_atomic(bucket, bucket_bytes(lean, xs))
        else:
            if row is None:
                encoded.pop(doc_id, None)
            else:
                encoded[doc_id] = _entries(doc_id, lean[doc_id], xs[doc_id])
            write_atomic(bucket, _joined_bytes(encoded))
        sig = file_signature(bucket)
        if sig is None:
            self._cache.pop(bucket, None)
            return
        order = sorted(lean)  # the file's order (sorted keys), as a re-read gives it
        settled = newest = None
        if cached is not None and cached.settled is not None:
            settled = _moved(cached.settled, _settled_entry(case_id, old_x),
                             _settled_entry(case_id, new_x))
        if cached is not None and cached.newest is not None:
            newest = _moved(cached.newest, (old_key, doc_id) if old_key is not None else None,
                            (listing_key(lean[doc_id]), doc_id) if row is not None else None)
        self._cache[bucket] = _Bucket(
            sig, {k: lean[k] for k in order}, {k: xs[k] for k in order},
            {k: full[k] for k in order} if full is not None else None, settled=settled,
            newest=newest, encoded=encoded, written=True)
