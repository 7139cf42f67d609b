"""Keeping the case index true to the case files, and reading it (part of the database).

The rows of the cases a transaction changed are written when it ends
(:meth:`IndexUpkeep._refresh_row`). Before the first case-file write that may change a row,
the transaction creates ``index/.in-flight`` durably; it removes it once every changed row is
written. A power cut or kill -9 in between leaves the marker, and the next process to read the
index compares every row with its case file and rebuilds those that differ (:meth:`_heal`).
Without the marker a process trusts the index as it is, checking only that it holds as many
rows as there are case files (a lost bucket) and that no bucket of the earlier format is left:
nothing at start-up looks at every case.

A mixin of :class:`kiosk.store.database.Database`, which holds the lock, the paths and the
bucket cache; this module never imports tinydb.
"""

from __future__ import annotations

import heapq
import itertools
import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar

from kiosk.store import migration
from kiosk.store.case_index import (
    CaseDocs,
    IndexBuckets,
    ListingKey,
    Signature,
    bucket_bytes,
    file_signature,
    normal,
    split_rows,
)
from kiosk.store.durable import fsync_dir, write_atomic
from kiosk.store.layout import PARTITIONED, SUMMARISED, Paths, case_file_name

T = TypeVar("T")
#: How long after the index folder's last change its time is trusted to reveal the next one
#: (file times advance by the kernel's clock tick, a few milliseconds; this is generous).
RACY_NS = 100_000_000


class IndexUpkeep:
    """The case index's half of the database (see the module's text)."""

    paths: Paths
    _buckets: IndexBuckets
    summarise: Callable[[CaseDocs], dict[str, Any] | None]
    #: Whether this process has checked the index against the case files once.
    _checked: bool
    #: A write was cut short (the in-flight marker was found): check every row.
    _must_heal: bool
    #: This transaction created the in-flight marker (removed when it ends).
    _marked: bool
    _rows: tuple[tuple[Any, ...], list[dict[str, Any]]] | None
    #: The index folder's (inode, mtime) and the bucket signatures taken while it held them.
    _version_cache: tuple[tuple[int, int] | None, tuple[Any, ...]] | None
    #: The last newest page asked for: ``((version, offset, limit), (rows, total))``.
    _page_cache: tuple[tuple[Any, ...], tuple[list[dict[str, Any]], int]] | None

    def transaction(self) -> AbstractContextManager[None]:
        """The database lock (:meth:`kiosk.store.database.Database.transaction`)."""
        raise NotImplementedError

    def case_docs(self, case_id: str) -> CaseDocs:
        """One case's records (:meth:`kiosk.store.database.Database.case_docs`)."""
        raise NotImplementedError

    def _will_change(self, table: str) -> None:
        """Before a case-file write that may change the case's index row: say so, durably.

        The rows of the cases a transaction changed are written when it ends; a power cut
        (or kill -9) in between leaves the marker behind, and the next process to read the
        index checks every row against its case file. Without the marker nothing at start-up
        needs to look at every case.
        """
        if table in SUMMARISED and not self._marked:
            fd = os.open(self.paths.in_flight, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
            fsync_dir(self.paths.index_dir)
            self._marked = True

    def _refresh_row(self, case_id: str, *, heal: bool = False) -> None:
        """Bring the case's index row up to date after a write to its case file.

        The bucket is rewritten only when the summary changed: most writes (an upload's
        progress, a job claimed or finished) leave it as it was, and a bucket holds N/64 rows.
        The row's ``sig`` (the case file's signature when the row was made) then lags behind
        the file; a heal (after a cut short write, :meth:`_will_change`) re-checks such a row
        and (``heal=True``) writes the current signature even when the summary is the same.
        """
        path = self.paths.case_file(case_id)
        row = self.summarise(self.case_docs(case_id))
        bucket = self.paths.index_bucket(case_id)
        before = self._buckets.row(bucket, case_id)
        if row is not None:
            row = normal(row | {"case_id": case_id, "sig": file_signature(path)})
        if row == before:
            return
        if not heal and row is not None and before is not None and \
                {**row, "sig": None} == {**before, "sig": None}:
            return
        self._buckets.write(bucket, case_id, row)

    def listing(self, pick: Callable[[dict[str, Any]], T | None]) -> list[T]:
        """``pick`` of every case's ``list`` row (:mod:`kiosk.store.case_index`), when not None.

        For ``kiosk cases --json``: each bucket's ``list`` table is parsed (not the rest of
        the row) and only what ``pick`` returns is kept, so the listing's memory is about
        the lines it prints.
        """
        with self.transaction():
            for _attempt in range(2):
                picked: list[T] = []
                count = 0
                for bucket in self.paths.index_buckets():
                    for lean in self._buckets.listing(bucket):
                        count += 1
                        value = pick(lean)
                        if value is not None:
                            picked.append(value)
                if not self._heal_needed(count):
                    break
                self._heal()
            return picked

    def _heal_needed(self, rows: int) -> bool:
        """Whether the index must be checked against every case file before it is used.

        Once per process (and again when a writer was cut short, :meth:`_will_change`):
        the in-flight marker, buckets of the earlier format, or a number of rows that is
        not the number of case files (a bucket lost, a case file removed behind the index).
        """
        if self._must_heal:
            return True
        if self._checked:
            return False
        self._checked = True
        return (self.paths.in_flight.exists() or bool(self.paths.legacy_buckets())
                or rows != self._case_file_count())

    def _case_file_count(self) -> int:
        # Counted as the folder is read, not from a list of every name: a listing of every
        # case holds its keys at this point, and needs no second thing the size of the history.
        try:
            with os.scandir(self.paths.cases_dir) as entries:
                return sum(1 for e in entries
                           if e.name.endswith(".json") and not e.name.startswith("."))
        except FileNotFoundError:
            return 0

    def index_rows(self) -> list[dict[str, Any]]:
        """Every case's index row (callers must not change them).

        No case file is read: the 64 buckets' signatures are checked and only a changed bucket
        is read again. When a write was cut short (or the index does not match the case
        files) every row is first compared with its case file's signature and those a power
        cut (or a migration) left behind are rebuilt.
        """
        return self.index_snapshot()[1]

    def index_snapshot(self) -> tuple[tuple[Any, ...], list[dict[str, Any]]]:
        """``(version, rows)``: the version changes whenever any row may have changed."""
        with self._checked_index():
            version = self._bucket_version()
            if self._rows is not None and self._rows[0] == version:
                return self._rows
            rows: list[dict[str, Any]] = []
            for bucket in self.paths.index_buckets():
                rows += self._buckets.rows(bucket)
            self._rows = (version, rows)
            return self._rows

    def _bucket_version(self) -> tuple[Any, ...]:
        """The 64 buckets' signatures: changes whenever any bucket may have changed.

        Every bucket is replaced by a rename in ``index/``, which changes the folder's
        modification time; while that has not changed, the signatures taken last time still
        hold and cost one ``stat`` instead of 64 (a desk's worker waits for the GIL after
        each system call). Only signatures taken well after the folder's last change are
        reused: a change within the same clock tick as an earlier one would otherwise leave
        the folder's time as it was (git's "racily clean" index entries, the same problem).
        """
        try:
            folder = os.stat(self.paths.index_dir)
        except FileNotFoundError:
            folder = None
        key = (folder.st_ino, folder.st_mtime_ns) if folder is not None else None
        cached = self._version_cache
        if key is not None and cached is not None and cached[0] == key:
            return cached[1]
        started = time.time_ns()
        out: list[tuple[int, int, int] | None] = []
        for name in self.paths.index_bucket_names():
            try:
                st = os.stat(name)
            except FileNotFoundError:
                out.append(None)
                continue
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
        version = tuple(out)
        settled = folder is not None and started - folder.st_mtime_ns > RACY_NS
        self._version_cache = (key, version) if settled else None
        return version

    def newest_page(self, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """``(rows, total)``: the index rows of the newest cases (``offset`` skipped, at most
        ``limit``) and how many cases there are.

        Merged from each bucket's rows in order (:meth:`IndexBuckets.newest`, kept and moved
        by this process's writes) and only the rows shown are joined: the desk's Home page
        costs the same with 3,000 cases as with 20.
        """
        with self._checked_index():
            version = self._bucket_version()
            cached = self._page_cache
            if cached is not None and cached[0] == (version, offset, limit):
                return cached[1]  # Home asks again as it settles: nothing changed since
            orders = []
            for i, (sig, path) in enumerate(zip(version, self.paths.index_buckets(),
                                                strict=True)):
                if sig is not None:
                    order, join = self._buckets.newest(path, sig=list(sig))
                    orders.append((i, order, join))
            newest = heapq.merge(*[_tagged(i, order) for i, order, _join in orders],
                                 reverse=True)
            joins = {i: join for i, _order, join in orders}
            top = list(itertools.islice(newest, offset + limit))[offset:]
            page = ([joins[i](doc_id) for _key, i, doc_id in top],
                    sum(len(order) for _i, order, _join in orders))
            self._page_cache = ((version, offset, limit), page)
            return page

    @contextmanager
    def _checked_index(self) -> Iterator[None]:
        """The database lock, with the index checked against the case files when due."""
        with self.transaction():
            if self._must_heal or not self._checked:
                rows = sum(self._buckets.count(p) for p in self.paths.index_buckets())
                if self._heal_needed(rows):
                    self._heal()
            yield

    def settled_orders(self, seen: tuple[Any, ...] | None
                       ) -> tuple[tuple[Any, ...], dict[int, list[tuple[float, str]]]]:
        """``(version, changed)``: the index's version and, for each bucket that changed since
        ``seen`` (a version this returned before; None: every bucket), its delivered and
        uploaded cases as ``(settled, case_id)`` in order (:meth:`IndexBuckets.settled`).

        For the retention sweep, which keeps the orders and asks only for what changed: an
        unchanged bucket costs one ``stat``, one this process wrote nothing more.
        """
        with self._checked_index():
            version = self._bucket_version()
            changed = {i: self._buckets.settled(path, sig=list(sig)) if sig is not None else []
                       for i, (sig, path) in enumerate(zip(version, self.paths.index_buckets(),
                                                           strict=True))
                       if seen is None or seen[i] != sig}
            return version, changed

    def _heal(self) -> None:
        """Check every row against its case file; rebuild the rows that do not match."""
        self._convert_legacy()
        # Only each row's case file signature is kept: the rows themselves are not needed.
        rows = {r["case_id"]: r.get("sig") for path in self.paths.index_buckets()
                for r in self._buckets.listing(path)}
        files: dict[str, Signature] = {}
        with os.scandir(self.paths.cases_dir) as entries:
            for entry in entries:
                if entry.name.endswith(".json") and not entry.name.startswith("."):
                    st = entry.stat()
                    files[entry.name] = [st.st_ino, st.st_size, st.st_mtime_ns]
        stale = set()
        named = set()
        for case_id, sig in rows.items():
            name = case_file_name(case_id)
            named.add(name)
            if files.get(name) != sig:
                stale.add(case_id)
        for name in files.keys() - named:
            docs = CaseDocs("", migration.load(self.paths.cases_dir / name) or {})
            owner = next((d.get("case_id") for t in sorted(PARTITIONED)
                          for d in docs.docs(t) if isinstance(d.get("case_id"), str)), None)
            if owner is not None:
                stale.add(owner)
        for case_id in sorted(stale):
            self._refresh_row(case_id, heal=True)
        self._must_heal = False
        self._checked = True
        if not self._marked:  # a transaction that marked removes its own marker
            self.paths.in_flight.unlink(missing_ok=True)

    def _convert_legacy(self) -> None:
        """Rewrite buckets of the earlier one-table format (``cases-<b>.json``) as they are.

        The new bucket is written before the old one is removed; a bucket of the new name
        already there is newer (only this code writes it), so the old one is just removed.
        """
        legacy = self.paths.legacy_buckets()
        for old in legacy:
            new = self.paths.index_dir / old.name.replace("cases-", "summaries-", 1)
            if not new.exists():
                rows = list(((migration.load(old) or {}).get("rows") or {}).values())
                write_atomic(new, bucket_bytes(*split_rows(rows)))
            old.unlink()
        if legacy:
            fsync_dir(self.paths.index_dir)

    def index_row(self, case_id: str) -> dict[str, Any] | None:
        """One case's index row, or None (read from its bucket only)."""
        with self.transaction():
            return self._buckets.row(self.paths.index_bucket(case_id), case_id)


def _tagged(bucket: int, order: list[tuple[ListingKey, str]]
            ) -> Iterator[tuple[ListingKey, int, str]]:
    """A bucket's order newest first, each entry tagged with its bucket."""
    for key, doc_id in reversed(order):
        yield key, bucket, doc_id
