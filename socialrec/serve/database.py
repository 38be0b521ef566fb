"""One connection to the service's database, SQLite or PostgreSQL, behind one small interface.

The event store (`serve.store`) and the key store (`serve.auth`) write their SQL once, with ``?``
placeholders and the syntax both engines share (``INSERT ... ON CONFLICT ... DO UPDATE``,
``COALESCE``, partial indexes); `Database` runs it on either:

- SQLite (the embedded default): a file under the state directory in WAL mode, one connection
  in autocommit mode, a transaction is ``BEGIN IMMEDIATE ... COMMIT`` (one writer at a time, across
  processes too).
- PostgreSQL (``postgresql://user:pass@host:port/db``, the ``postgres`` extra: psycopg 3): one
  connection in autocommit mode, a transaction is psycopg's ``transaction()`` block; ``?``
  becomes ``%s``. A broken connection (the server restarted) is opened again before the next
  statement; the statement that met the break fails, so its request fails unacknowledged and
  the client's retry (same event ids) is idempotent.

Both are used by one thread at a time (a re-entrant lock around each statement or transaction):
the service's writes are serialised by its ingest lock anyway, and its reads are short.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(location: str | None) -> bool:
    return bool(location) and str(location).startswith(POSTGRES_SCHEMES)


def redact(url: str) -> str:
    """``url`` without its password (for logs and error messages)."""
    return re.sub(r"^(postgres(?:ql)?://[^:/@]*):[^@]*@", r"\1:***@", url)


def check_store_url(url: str | None, where: str) -> None:
    """A ConfigError unless ``url`` is None (SQLite) or a PostgreSQL URL."""
    if url is not None and not is_postgres_url(url):
        from socialrec.errors import ConfigError

        raise ConfigError(f"{where} must be a PostgreSQL URL (postgresql://user:password@host:port/database) or unset "
                          f"for the embedded SQLite store, got {redact(str(url))!r}")


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        from socialrec.errors import MissingDependencyError

        raise MissingDependencyError("psycopg", "postgres", "A PostgreSQL store (--store postgresql://...)") from exc
    return psycopg


class Transaction:
    """Statements inside one committed-or-rolled-back transaction (see `Database.transaction`)."""

    def __init__(self, db: "Database", cursor: Any) -> None:
        self._db = db
        self._cur = cursor

    def _params(self, params: Sequence[Any]) -> Any:
        return (tuple(params) or None) if self._db.postgres else tuple(params)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._cur.execute(self._db.sql(sql), self._params(params))
        return int(self._cur.rowcount)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._cur.executemany(self._db.sql(sql), [tuple(r) for r in rows])

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._cur.execute(self._db.sql(sql), self._params(params))
        return [tuple(r) for r in self._cur.fetchall()] if self._cur.description else []


class Database:
    """A connection, its dialect and its lock. Build with `Database.sqlite` or `Database.postgres`."""

    def __init__(self, connect: Any, *, postgres: bool, where: str) -> None:
        self._connect = connect
        self.postgres = postgres
        self.where = where  # the file, or the URL without its password
        self.lock = threading.RLock()
        self._con = connect()

    @classmethod
    def open(cls, url: str | None, state_dir: str | Path, filename: str, *, what: str,
             pragmas: Sequence[str] = ()) -> tuple["Database", Path | None]:
        """The PostgreSQL database at ``url``, or (``url`` None) the SQLite file ``filename`` in
        ``state_dir`` with its ``pragmas``: ``(database, the file or None)``. ``what`` names the
        store in the error a URL that is not PostgreSQL's gets."""
        check_store_url(url, f"the {what}'s url")
        if url is not None:
            return cls.postgres(url), None
        path = Path(state_dir) / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls.sqlite(path, pragmas=pragmas), path

    @classmethod
    def sqlite(cls, path: Path, *, pragmas: Sequence[str] = ()) -> "Database":
        def connect() -> Any:
            con = sqlite3.connect(path, timeout=30.0, check_same_thread=False, isolation_level=None)
            for pragma in ("journal_mode=WAL", *pragmas):
                con.execute(f"PRAGMA {pragma}")
            return con

        return cls(connect, postgres=False, where=str(path))

    @classmethod
    def postgres(cls, url: str) -> "Database":
        psycopg = _psycopg()

        def connect() -> Any:
            try:
                return psycopg.connect(url, autocommit=True, connect_timeout=10)
            except psycopg.OperationalError as exc:
                from socialrec.errors import ConfigError

                raise ConfigError(f"cannot connect to the PostgreSQL store {redact(url)}: {str(exc).strip()}; "
                                  "check the URL, that the server runs and that it accepts this user") from exc

        return cls(connect, postgres=True, where=redact(url))

    def sql(self, text: str) -> str:
        return text.replace("?", "%s") if self.postgres else text

    def _connection(self) -> Any:
        if self.postgres and (self._con.closed or self._con.broken):
            self._con = self._connect()
        return self._con

    def close(self) -> None:
        with self.lock:
            self._con.close()

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of one statement (autocommit)."""
        with self.lock:
            con = self._connection()
            if not self.postgres:
                return con.execute(sql, tuple(params)).fetchall()
            with con.cursor() as cur:
                cur.execute(self.sql(sql), tuple(params) if params else None)
                return [tuple(r) for r in cur.fetchall()] if cur.description else []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement (autocommit); returns its row count."""
        with self.lock:
            con = self._connection()
            if not self.postgres:
                return int(con.execute(sql, tuple(params)).rowcount)
            with con.cursor() as cur:
                cur.execute(self.sql(sql), tuple(params) if params else None)
                return int(cur.rowcount)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One transaction, committed when the block ends, rolled back when it raises. On SQLite
        it takes the write lock at once (``BEGIN IMMEDIATE``)."""
        with self.lock:
            con = self._connection()
            if self.postgres:
                with con.transaction(), con.cursor() as cur:
                    yield Transaction(self, cur)
                return
            cur = con.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(self, cur)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    def pipelined(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[tuple[Any, ...]]:
        """PostgreSQL: run ``statements`` in one transaction sent in one round trip (BEGIN, the
        statements and COMMIT pipelined); returns the last statement's rows once committed."""
        with self.lock:
            con = self._connection()
            with con.pipeline(), con.cursor() as cur:
                with con.transaction():
                    for sql, params in statements:
                        cur.execute(self.sql(sql), tuple(params) or None)
                rows = cur.fetchall()  # after COMMIT: the pipeline syncs here
            return [tuple(r) for r in rows]

    def advisory_lock(self, tx: Transaction, key: int) -> None:
        """Hold a PostgreSQL advisory lock until ``tx`` ends (nothing on SQLite, whose
        ``BEGIN IMMEDIATE`` already admits one writer)."""
        if self.postgres:
            tx.execute("SELECT pg_advisory_xact_lock(?)", (key,))

    def purge_deleted(self, tables: Sequence[str]) -> None:
        """Leave no copy of deleted rows in the database files: SQLite (``secure_delete`` on)
        folds its WAL into the file and truncates it; PostgreSQL rewrites ``tables``
        (``VACUUM FULL``: new files, the old ones dropped; it holds each table's exclusive lock
        while it runs)."""
        with self.lock:
            if not self.postgres:
                self._connection().execute("PRAGMA wal_checkpoint(TRUNCATE)")
                return
            for table in tables:
                self.execute(f"VACUUM (FULL) {table}")
