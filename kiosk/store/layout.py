"""Where the database's records live on disk (layout 2): one small file per case, a compact index.

Layout 1 (until this release) kept every table in one tinydb file that every write rewrote, so
the cost of anything grew with the number of cases ever seen. Layout 2 gives each case its own
file and keeps what must be found without knowing the case in small files of their own::

    kiosk.json              global tables: hospitals, sync state, layout marker, and the
                            *active* mirror (running import jobs, unfinished uploads)
    cases/<name>.json       one tinydb file per case: the case, its studies, reports, jobs,
                            links and upload jobs
    index/summaries-<b>.json  the case index: one compact summary row per case, in 64
                            buckets (:mod:`kiosk.store.case_index`; ``cases-<b>.json`` held
                            it in one table until this release and is converted on first use)
    index/.in-flight        present while a write that changes a case's summary is under way:
                            found at the next start, the index is checked against every case
    index/ids-<b>.json      which case a job or report id belongs to, in 64 buckets

Every file is written as today (temp file, fsync, rename, fsync the directory), so each stays
old-or-new through a power cut; the index and the mirror are repaired from the case files,
which are the truth (see :mod:`kiosk.store.database`).

Pure naming and constants; no I/O.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

#: The layout this code writes; the marker sits in ``kiosk.json``'s ``meta`` table.
LAYOUT = 2
META = "meta"
#: Tables whose documents carry a ``case_id`` and live in that case's file.
PARTITIONED = frozenset({"cases", "studies", "reports", "jobs", "links", "outbox"})
#: The id field by which a partitioned document is found without its case.
ID_FIELDS = {"jobs": "job_id", "outbox": "job_id", "reports": "report_id", "links": "share_id"}
#: States mirrored into ``kiosk.json`` so they are found without opening every case.
ACTIVE_STATES = {"jobs": frozenset({"running"}),
                 "outbox": frozenset({"pending", "in_flight", "retry", "failed"})}
#: Global tables kept in buckets of their own (``index/<table>-<b>.json``), by the key field
#: named here: they grow with the hospitals seen (an unnamed disc's issuer is its label), and
#: must make neither ``kiosk.json`` (the mirror) nor one import's write grow with them.
SEPARATE = {"hospitals": "issuer"}
#: Tables whose changes change a case's index row.
SUMMARISED = frozenset({"cases", "studies", "reports", "outbox"})
#: A write rewrites one bucket (N/64 rows); a listing checks 64 signatures.
BUCKETS = 64

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def digest(text: str) -> str:
    """A stable hex digest of ``text`` (SHA-256)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def case_file_name(case_id: str) -> str:
    """The case's file name: readable prefix plus a hash (case ids may hold any character)."""
    return f"{_UNSAFE.sub('_', case_id)[:40]}-{digest(case_id)[:12]}.json"


def bucket(key: str) -> str:
    """The two-digit bucket of ``key`` (a case id, or ``table:id``)."""
    return f"{int(digest(key)[:4], 16) % BUCKETS:02d}"


def active_table(table: str) -> str:
    """The mirror table in ``kiosk.json`` of ``table``'s active documents."""
    return f"active_{table}"


def id_key(table: str, value: str) -> str:
    """The locator key of a job or report id."""
    return f"{table}:{value}"


class Paths:
    """File names of layout 2 beside the global database file ``db_file``."""

    def __init__(self, db_file: Path) -> None:
        self.db_file = db_file
        self.cases_dir = db_file.parent / "cases"
        self.index_dir = db_file.parent / "index"
        #: The layout-1 database, kept until the start after a migration.
        self.backup = db_file.with_name(db_file.name + ".layout1.bak")
        self._buckets = [self.index_dir / f"summaries-{b:02d}.json" for b in range(BUCKETS)]
        self._bucket_names = [str(p) for p in self._buckets]
        #: Present while a summarised write is under way (see the module's text).
        self.in_flight = self.index_dir / ".in-flight"

    def case_file(self, case_id: str) -> Path:
        """The file of one case."""
        return self.cases_dir / case_file_name(case_id)

    def index_buckets(self) -> list[Path]:
        """Every bucket of the case index, present or not."""
        return self._buckets

    def index_bucket_names(self) -> list[str]:
        """:meth:`index_buckets` as strings (for ``os.stat`` in a tight loop)."""
        return self._bucket_names

    def table_file(self, table: str, value: str) -> Path:
        """The bucket of a global table kept apart (:data:`SEPARATE`) holding ``value``."""
        return self.index_dir / f"{table}-{bucket(id_key(table, value))}.json"

    def table_files(self, table: str) -> list[Path]:
        """Every bucket of a global table kept apart, present or not."""
        return [self.index_dir / f"{table}-{b:02d}.json" for b in range(BUCKETS)]

    def index_bucket(self, case_id: str) -> Path:
        """The index bucket holding ``case_id``'s row."""
        return self.index_dir / f"summaries-{bucket(case_id)}.json"

    def legacy_buckets(self) -> list[Path]:
        """The case index's buckets of the earlier format (``cases-<b>.json``) still present."""
        return sorted(self.index_dir.glob("cases-[0-9][0-9].json"))

    def ids_bucket(self, table: str, value: str) -> Path:
        """The locator bucket of a job or report id."""
        return self.index_dir / f"ids-{bucket(id_key(table, value))}.json"
