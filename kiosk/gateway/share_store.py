"""The gateway's state in one database: shares, sessions, attempts, revocations, views, rates.

Nothing lives in a process, so any number of Orthanc processes serve the same shares: a link
registered through one is served by another, passcode attempts count across all of them.
One module for both engines:

- ``sqlite:///PATH`` (the default, a file beside Orthanc's own SQLite): WAL, a busy timeout,
  ``BEGIN IMMEDIATE`` where a check and a write must be one step;
- ``postgresql://…`` (the same database as Orthanc's index with ``--database``): psycopg2,
  imported lazily so the kiosk itself never needs it; tables prefixed ``medpass_`` beside
  Orthanc's.

Every state change that could race is one SQL statement (an ``UPDATE … WHERE`` guard with
``RETURNING``), so two processes never both get the last passcode attempt.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from kiosk.errors import ConfigError

Registered = Literal["created", "same", "conflict"]

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS medpass_shares (
        id TEXT PRIMARY KEY,
        token TEXT NOT NULL,
        token_id TEXT NOT NULL,
        kiosk_id TEXT,
        case_id TEXT,
        studies TEXT NOT NULL,
        expires DOUBLE PRECISION NOT NULL,
        passcode_hash TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        revoked DOUBLE PRECISION,
        manifest TEXT,
        manifest_jws TEXT,
        created DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS medpass_revoked_tokens (
        token_id TEXT PRIMARY KEY,
        at DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS medpass_sessions (
        token_hash TEXT PRIMARY KEY,
        share_id TEXT NOT NULL,
        created DOUBLE PRECISION NOT NULL,
        expires DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS medpass_views (
        id {serial},
        share_id TEXT NOT NULL,
        at DOUBLE PRECISION NOT NULL,
        what TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS medpass_views_share ON medpass_views (share_id, at)",
    """CREATE TABLE IF NOT EXISTS medpass_rates (
        bucket TEXT NOT NULL,
        window_start BIGINT NOT NULL,
        hits INTEGER NOT NULL,
        PRIMARY KEY (bucket, window_start))""",
)


@dataclass(frozen=True)
class NewShare:
    """What a kiosk registers: the link id and its verified token."""

    id: str
    token: str
    token_id: str
    kiosk_id: str | None
    case_id: str | None
    studies: tuple[str, ...]
    #: Epoch seconds.
    expires: float
    passcode_hash: str | None = None
    manifest: str | None = None
    manifest_jws: str | None = None


@dataclass(frozen=True)
class Share(NewShare):
    """A registered share as stored."""

    attempts: int = 0
    #: Epoch seconds of the revocation, or None.
    revoked: float | None = None
    created: float = 0.0


_SHARE_COLUMNS = ("id, token, token_id, kiosk_id, case_id, studies, expires, passcode_hash, "
                  "manifest, manifest_jws, attempts, revoked, created")


def _share(row: Sequence[Any]) -> Share:
    (sid, token, token_id, kiosk_id, case_id, studies, expires, passcode_hash, manifest,
     manifest_jws, attempts, revoked, created) = row
    return Share(id=sid, token=token, token_id=token_id, kiosk_id=kiosk_id, case_id=case_id,
                 studies=tuple(json.loads(studies)), expires=float(expires),
                 passcode_hash=passcode_hash, manifest=manifest, manifest_jws=manifest_jws,
                 attempts=int(attempts), revoked=None if revoked is None else float(revoked),
                 created=float(created))


class _Engine:
    """One database engine: connections, placeholders, the few SQL words that differ."""

    serial = "INTEGER PRIMARY KEY"
    placeholder = "?"

    def connect(self) -> Any:
        raise NotImplementedError

    def broken(self, exc: BaseException) -> bool:
        """Whether ``exc`` means the connection is unusable (dropped, server restarted)."""
        return False

    def transient(self) -> tuple[type[BaseException], ...]:
        """Errors worth one retry on a fresh connection."""
        return ()

    def begin(self, conn: Any) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def schema_lock(self, cur: Any) -> None:
        """Serialise schema creation between processes starting at once."""


class _Sqlite(_Engine):
    def __init__(self, path: str) -> None:
        self.path = path

    def connect(self) -> Any:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn


class _Postgres(_Engine):
    serial = "BIGSERIAL PRIMARY KEY"
    placeholder = "%s"

    def __init__(self, url: str) -> None:
        try:
            import psycopg2  # lazily: only a PostgreSQL gateway needs it
        except ImportError:
            raise ConfigError("A PostgreSQL gateway database needs psycopg2 (pip install "
                              "'medpass-kiosk[gateway]').") from None
        self._psycopg2 = psycopg2
        self.url = url

    def connect(self) -> Any:
        conn = self._psycopg2.connect(self.url, connect_timeout=10)
        conn.autocommit = True
        return conn

    def broken(self, exc: BaseException) -> bool:
        return isinstance(exc, self._psycopg2.InterfaceError | self._psycopg2.OperationalError)

    def transient(self) -> tuple[type[BaseException], ...]:
        return (self._psycopg2.InterfaceError, self._psycopg2.OperationalError)

    def begin(self, conn: Any) -> None:
        conn.cursor().execute("BEGIN")

    def schema_lock(self, cur: Any) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(7412019)")


def _engine(url: str) -> _Engine:
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path)
        if not path or path == "/":
            raise ConfigError(f"The gateway database {url!r} names no file (sqlite:///PATH).")
        return _Sqlite(path)
    if parts.scheme in ("postgresql", "postgres"):
        return _Postgres(url)
    raise ConfigError(f"The gateway database must be sqlite:///PATH or postgresql://…, "
                      f"not {url!r}.")


class ShareStore:
    """The gateway's tables behind a small interface (one store per process; thread-safe).

    Parameters
    ----------
    url : str
        ``sqlite:///PATH`` or ``postgresql://USER:PASSWORD@HOST:PORT/DB``.
    connections : int
        Connections this process opens at most (requests beyond wait their turn).
    """

    def __init__(self, url: str, connections: int = 8) -> None:
        self._engine = _engine(url)
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        # At most this many connections at once, whatever Orthanc's HTTP threads do: every
        # Orthanc process of the office shares the server's max_connections.
        self._slots = threading.BoundedSemaphore(connections)
        self._closed = False
        self._create_schema()

    # --- plumbing -------------------------------------------------------------------------

    def _sql(self, text: str) -> str:
        return text if self._engine.placeholder == "?" else text.replace("?", "%s")

    @contextlib.contextmanager
    def _conn(self) -> Iterator[Any]:
        """A pooled connection; one that broke (PostgreSQL dropped it) is closed, not reused."""
        with self._slots:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                conn = self._engine.connect()
            with self._held(conn) as held:
                yield held

    @contextlib.contextmanager
    def _held(self, conn: Any) -> Iterator[Any]:
        try:
            yield conn
        except BaseException as exc:
            if self._engine.broken(exc):
                with contextlib.suppress(Exception):
                    conn.close()
                conn = None
            raise
        finally:
            if conn is not None:
                with self._lock:
                    keep = len(self._idle) < 16 and not self._closed
                    if keep:
                        self._idle.append(conn)
                if not keep:
                    with contextlib.suppress(Exception):
                        conn.close()

    def _run(self, sql: str, params: Sequence[Any] = (), *, fetch: str = "none",
             transaction: bool = False) -> Any:
        """Run one statement (retried once on a fresh connection when PostgreSQL dropped)."""
        for attempt in (1, 2):
            try:
                with self._conn() as conn:
                    return self._execute(conn, sql, params, fetch, transaction)
            except self._engine.transient():
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _execute(self, conn: Any, sql: str, params: Sequence[Any], fetch: str,
                 transaction: bool) -> Any:
        cur = conn.cursor()
        try:
            if transaction:
                self._engine.begin(conn)
            try:
                cur.execute(self._sql(sql), tuple(params))
                result = (cur.fetchone() if fetch == "one" else
                          cur.fetchall() if fetch == "all" else cur.rowcount)
            except BaseException:
                if transaction:
                    with contextlib.suppress(Exception):
                        cur.execute("ROLLBACK")
                raise
            if transaction:
                cur.execute("COMMIT")
            return result
        finally:
            cur.close()

    def _create_schema(self) -> None:
        with self._conn() as conn:
            cur = conn.cursor()
            try:
                self._engine.begin(conn)
                self._engine.schema_lock(cur)
                for statement in _SCHEMA:
                    cur.execute(statement.format(serial=self._engine.serial))
                cur.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):
                    cur.execute("ROLLBACK")
                raise
            finally:
                cur.close()

    def close(self) -> None:
        """Close every pooled connection."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):
                conn.close()

    # --- shares ---------------------------------------------------------------------------

    def register(self, share: NewShare, *, now: float | None = None) -> Registered:
        """Store a new share; ``same`` when this id already holds this token, else ``conflict``.

        Registering the same token again changes nothing: neither the passcode nor the
        attempts made (a kiosk's outbox may send a registration twice).
        """
        now = time.time() if now is None else now
        inserted = self._run(
            "INSERT INTO medpass_shares (id, token, token_id, kiosk_id, case_id, studies, "
            "expires, passcode_hash, manifest, manifest_jws, attempts, revoked, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, NULL, ?) ON CONFLICT (id) DO NOTHING",
            (share.id, share.token, share.token_id, share.kiosk_id, share.case_id,
             json.dumps(list(share.studies)), share.expires, share.passcode_hash,
             share.manifest, share.manifest_jws, now))
        if inserted == 1:
            return "created"
        existing = self.get(share.id)
        return "same" if existing is not None and existing.token == share.token else "conflict"

    def get(self, share_id: str) -> Share | None:
        """The share registered under ``share_id``, or None."""
        row = self._run(f"SELECT {_SHARE_COLUMNS} FROM medpass_shares WHERE id = ?",
                        (share_id,), fetch="one")
        return None if row is None else _share(row)

    def shares(self, limit: int = 1000) -> list[Share]:
        """The newest shares first, at most ``limit``."""
        rows = self._run(f"SELECT {_SHARE_COLUMNS} FROM medpass_shares ORDER BY created DESC "
                         "LIMIT ?", (limit,), fetch="all")
        return [_share(r) for r in rows]

    def revoke(self, share_id: str, *, now: float | None = None) -> bool:
        """Revoke a share (and its token, so it cannot be registered again); False if unknown.

        Revoking twice keeps the first time.
        """
        now = time.time() if now is None else now
        row = self._run("UPDATE medpass_shares SET revoked = COALESCE(revoked, ?) WHERE id = ? "
                        "RETURNING token_id", (now, share_id), fetch="one")
        if row is None:
            return False
        self._run("INSERT INTO medpass_revoked_tokens (token_id, at) VALUES (?, ?) "
                  "ON CONFLICT (token_id) DO NOTHING", (row[0], now))
        self._run("DELETE FROM medpass_sessions WHERE share_id = ?", (share_id,))
        return True

    def token_revoked(self, token_id: str) -> bool:
        """Whether a share holding this token was revoked here."""
        return self._run("SELECT 1 FROM medpass_revoked_tokens WHERE token_id = ?",
                         (token_id,), fetch="one") is not None

    def fail_attempt(self, share_id: str, limit: int) -> int | None:
        """Count one wrong passcode: the attempts made so far, or None when none were left.

        One statement, so processes racing for the last attempt cannot both get it.
        """
        row = self._run("UPDATE medpass_shares SET attempts = attempts + 1 "
                        "WHERE id = ? AND attempts < ? RETURNING attempts",
                        (share_id, limit), fetch="one")
        return None if row is None else int(row[0])

    def unlock(self, share_id: str) -> bool:
        """Reset a share's passcode attempts (the office reissues it); False if unknown."""
        return bool(self._run("UPDATE medpass_shares SET attempts = 0 WHERE id = ?",
                              (share_id,)))

    # --- sessions -------------------------------------------------------------------------

    def add_session(self, share_id: str, token_hash: str, expires: float, *,
                    now: float | None = None) -> None:
        """Remember a phone session (by the hash of its cookie) bound to one share."""
        now = time.time() if now is None else now
        self._run("INSERT INTO medpass_sessions (token_hash, share_id, created, expires) "
                  "VALUES (?, ?, ?, ?)", (token_hash, share_id, now, expires))

    def session_share(self, token_hash: str, *, now: float | None = None) -> str | None:
        """The share a live session belongs to, or None."""
        now = time.time() if now is None else now
        row = self._run("SELECT share_id FROM medpass_sessions WHERE token_hash = ? "
                        "AND expires > ?", (token_hash, now), fetch="one")
        return None if row is None else str(row[0])

    # --- audit and rate limits ------------------------------------------------------------

    def audit(self, share_id: str, what: str, *, now: float | None = None) -> None:
        """Record one phone request: share, time, what (no name, no address)."""
        now = time.time() if now is None else now
        self._run("INSERT INTO medpass_views (share_id, at, what) VALUES (?, ?, ?)",
                  (share_id, now, what))

    def views(self, share_id: str) -> list[tuple[float, str]]:
        """The audited requests of a share, oldest first."""
        rows = self._run("SELECT at, what FROM medpass_views WHERE share_id = ? "
                         "ORDER BY at, id", (share_id,), fetch="all")
        return [(float(at), str(what)) for at, what in rows]

    def hit(self, bucket: str, window: int, *, now: float | None = None) -> int:
        """Count one request in ``bucket``'s current window of ``window`` seconds.

        Returns the hits in this window so far, this one included. Old windows are dropped
        now and then.
        """
        now = time.time() if now is None else now
        start = int(now // window) * window
        row = self._run("INSERT INTO medpass_rates (bucket, window_start, hits) VALUES (?, ?, 1) "
                        "ON CONFLICT (bucket, window_start) DO UPDATE SET "
                        "hits = medpass_rates.hits + 1 RETURNING hits",
                        (bucket, start), fetch="one")
        if int(now * 1000) % 97 == 0:  # about 1 request in 100 sweeps windows over an hour old
            self._run("DELETE FROM medpass_rates WHERE window_start < ?", (start - 3600,))
        return int(row[0])
