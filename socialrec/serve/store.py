"""The embedded event store: one SQLite file in WAL mode under the service's state directory.

Why SQLite and not DuckDB: the service writes many small transactions (a batch of events per
request, each acknowledged only after it is committed) while reading single users' histories.
That is SQLite's home ground: row-oriented B-trees, a write-ahead log with one fsync per commit,
readers that never block the writer. DuckDB is a columnar engine built for large analytical
scans; its per-transaction cost is much higher and it allows only one process to open a file
for writing. Offline training reads everything once, which SQLite also does in well under a
second at our sizes.

Durability: every batch is one transaction committed before the HTTP reply; with
``synchronous=FULL`` the WAL is fsynced at every commit (an acknowledged event survives a power
cut), with ``NORMAL`` only at checkpoints (it survives a killed process, not a killed machine).
``secure_delete`` overwrites deleted rows, so an erased user's data does not linger in free pages.

Idempotency: ``event_id`` (chosen by the client) is the primary key; a retried batch inserts
nothing twice and reports the duplicates.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FILENAME = "events.sqlite3"

ITEM_KINDS = ("view", "click", "like", "comment", "share", "purchase", "rating", "hide")
SOCIAL_KINDS = ("follow", "unfollow")
EVENT_KINDS = ITEM_KINDS + SOCIAL_KINDS

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    item_id TEXT,
    target_user_id TEXT,
    value REAL,
    text TEXT,
    ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_user ON events (user_id, seq);
DROP INDEX IF EXISTS events_target;
CREATE INDEX IF NOT EXISTS events_target_set ON events (target_user_id) WHERE target_user_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS items (
    item_id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    text TEXT NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS erased (
    user_hash TEXT PRIMARY KEY,
    erased_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class Event:
    """One feedback event as stored."""

    seq: int
    event_id: str
    user_id: str
    kind: str
    item_id: str | None
    target_user_id: str | None
    value: float | None
    text: str | None
    ts: float


class EventStore:
    """Thread-safe access to the SQLite event store (one connection, one lock: SQLite serialises
    writers anyway, and a single connection keeps the WAL reader snapshot simple)."""

    def __init__(self, state_dir: str | Path, *, synchronous: str = "FULL") -> None:
        self.path = Path(state_dir) / FILENAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._con = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False, isolation_level=None)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute(f"PRAGMA synchronous={synchronous}")
        self._con.execute("PRAGMA secure_delete=ON")
        self._con.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def pragma(self, name: str) -> Any:
        with self._lock:
            return self._con.execute(f"PRAGMA {name}").fetchone()[0]

    # --- writes ----------------------------------------------------------------------
    def append(self, events: Sequence[dict[str, Any]]) -> tuple[list[Event], int]:
        """Insert a batch in one committed transaction. Returns (the events newly stored, the
        number of duplicates whose event_id was already there).

        One lookup of the batch's ids and one executemany of the new rows: per-row statements
        and their Python round trips cost more than the commit itself."""
        now = time.time()
        rows: dict[str, tuple[Any, ...]] = {}
        for e in events:
            eid = e["event_id"]
            if eid not in rows:  # a repeat within the batch is a duplicate too
                rows[eid] = (eid, e["user_id"], e["kind"], e.get("item_id"), e.get("target_user_id"), e.get("value"),
                             e.get("text"), float(e.get("timestamp") or now))
        with self._lock:
            cur = self._con.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                ids = list(rows)
                for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
                    chunk = ids[start:start + 500]
                    marks = ",".join("?" * len(chunk))
                    for (known,) in cur.execute(f"SELECT event_id FROM events WHERE event_id IN ({marks})", chunk):
                        del rows[known]
                fresh = list(rows.values())
                first = 0
                if fresh:
                    cur.executemany("INSERT INTO events (event_id, user_id, kind, item_id, target_user_id, value, text, ts) "
                                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", fresh)
                    # One writer (BEGIN IMMEDIATE) and AUTOINCREMENT: the batch got consecutive seqs.
                    first = int(cur.execute("SELECT last_insert_rowid()").fetchone()[0]) - len(fresh) + 1
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        new = [Event(first + n, *row) for n, row in enumerate(fresh)]
        return new, len(events) - len(new)

    def upsert_item(self, item_id: str, title: str, text: str) -> None:
        with self._lock:
            with self._con:
                self._con.execute("INSERT OR REPLACE INTO items (item_id, title, text, updated) VALUES (?, ?, ?, ?)",
                                  (item_id, title, text, time.time()))

    def upsert_user(self, user_id: str, name: str, text: str) -> None:
        with self._lock:
            with self._con:
                self._con.execute("INSERT OR REPLACE INTO users (user_id, name, text, updated) VALUES (?, ?, ?, ?)",
                                  (user_id, name, text, time.time()))

    # --- reads -----------------------------------------------------------------------
    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._con.execute(sql, tuple(params)).fetchall()

    def events(self, *, after_seq: int = 0, user_id: str | None = None, limit: int | None = None,
               newest_first: bool = False) -> list[Event]:
        sql = "SELECT seq, event_id, user_id, kind, item_id, target_user_id, value, text, ts FROM events WHERE seq > ?"
        params: list[Any] = [after_seq]
        if user_id is not None:
            sql += " AND user_id = ?"
            params.append(user_id)
        sql += " ORDER BY seq DESC" if newest_first else " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [Event(*row) for row in self._rows(sql, params)]

    def hidden_pairs(self) -> list[tuple[str, str]]:
        return [(u, i) for u, i in self._rows("SELECT user_id, item_id FROM events WHERE kind = 'hide'")]

    def max_seq(self) -> int:
        return int(self._rows("SELECT COALESCE(MAX(seq), 0) FROM events")[0][0])

    def count(self) -> int:
        return int(self._rows("SELECT COUNT(*) FROM events")[0][0])

    def items(self) -> list[tuple[str, str, str]]:
        return [tuple(r) for r in self._rows("SELECT item_id, title, text FROM items ORDER BY updated")]  # type: ignore[misc]

    def item(self, item_id: str) -> tuple[str, str] | None:
        rows = self._rows("SELECT title, text FROM items WHERE item_id = ?", (item_id,))
        return (rows[0][0], rows[0][1]) if rows else None

    def user(self, user_id: str) -> tuple[str, str] | None:
        rows = self._rows("SELECT name, text FROM users WHERE user_id = ?", (user_id,))
        return (rows[0][0], rows[0][1]) if rows else None

    def erased_hashes(self) -> set[str]:
        return {r[0] for r in self._rows("SELECT user_hash FROM erased")}

    # --- erasure ---------------------------------------------------------------------
    def erase_user(self, user_id: str, user_hash: str) -> dict[str, Any]:
        """Delete every event by or about the user and their profile; remember only the hash (so
        that retraining leaves the user out of read-only base datasets). Returns counts and the
        user's texts (so the caller can purge their embeddings)."""
        with self._lock:
            texts = [r[0] for r in self._con.execute(
                "SELECT text FROM events WHERE user_id = ? AND text IS NOT NULL", (user_id,))]
            texts += [r[0] for r in self._con.execute("SELECT text FROM users WHERE user_id = ?", (user_id,))]
            with self._con:
                n_events = self._con.execute("DELETE FROM events WHERE user_id = ?", (user_id,)).rowcount
                n_about = self._con.execute("DELETE FROM events WHERE target_user_id = ?", (user_id,)).rowcount
                n_profile = self._con.execute("DELETE FROM users WHERE user_id = ?", (user_id,)).rowcount
                self._con.execute("INSERT OR REPLACE INTO erased (user_hash, erased_at) VALUES (?, ?)",
                                  (user_hash, time.time()))
            # Fold the WAL back into the main file and truncate it: deleted rows must not survive there.
            self._con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return {"events": n_events, "events_about": n_about, "profile": n_profile, "texts": texts}
