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

User text at rest: given a cipher (`socialrec.privacy.encryption.TextCipher`, from
``SOCIALREC_DATA_KEY``), event texts and profile names and bios are stored encrypted and
decrypted on read; an encrypted check value in ``store_meta`` tells the right key from a wrong
one at opening. A store written without a key is encrypted in place the first time it is opened
with one. Catalog items (written by the platform, not by users) stay in clear.

Consent: ``consent`` holds each user's personalisation choice (users without a row have not
opted out); it lives in the same file as the events, so it survives restarts and is erased with
them.
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
CREATE TABLE IF NOT EXISTS consent (
    user_id TEXT PRIMARY KEY,
    personalization INTEGER NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS store_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
CIPHER_CHECK = "text_cipher_check"


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

    def __init__(self, state_dir: str | Path, *, synchronous: str = "FULL", cipher: Any = None) -> None:
        self.path = Path(state_dir) / FILENAME
        self.cipher = cipher
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._con = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False, isolation_level=None)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute(f"PRAGMA synchronous={synchronous}")
        self._con.execute("PRAGMA secure_delete=ON")
        self._con.executescript(_SCHEMA)
        try:
            self._open_text_encryption()
        except BaseException:
            self._con.close()
            raise

    def _open_text_encryption(self) -> None:
        """Check the key against the store's check value; encrypt a clear store given a key."""
        from socialrec.privacy.encryption import ENV_VAR, WrongKeyError

        row = self._con.execute("SELECT value FROM store_meta WHERE key = ?", (CIPHER_CHECK,)).fetchone()
        if row is not None:
            if self.cipher is None:
                raise WrongKeyError(f"the user text in {self.path} is encrypted; set {ENV_VAR} to the key it was "
                                    "written with")
            self.cipher.verify(row[0], str(self.path))
            return
        if self.cipher is None:
            return
        enc = self.cipher.encrypt
        with self._con:
            events = self._con.execute("SELECT seq, text FROM events WHERE text IS NOT NULL").fetchall()
            self._con.executemany("UPDATE events SET text = ? WHERE seq = ?", [(enc(t), q) for q, t in events])
            users = self._con.execute("SELECT user_id, name, text FROM users").fetchall()
            self._con.executemany("UPDATE users SET name = ?, text = ? WHERE user_id = ?",
                                  [(enc(n), enc(t), u) for u, n, t in users])
            self._con.execute("INSERT INTO store_meta (key, value) VALUES (?, ?)", (CIPHER_CHECK, self.cipher.check_value()))
        self._con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # no clear copy left in the WAL

    @property
    def encrypted(self) -> bool:
        return self.cipher is not None

    def _enc(self, text: str | None) -> str | None:
        return self.cipher.encrypt(text) if self.cipher is not None and text is not None else text

    def _dec(self, text: str | None) -> str | None:
        return self.cipher.decrypt(text) if self.cipher is not None and text is not None else text

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
        clear = {eid: row[6] for eid, row in rows.items()}
        if self.cipher is not None:
            rows = {eid: row[:6] + (self._enc(row[6]),) + row[7:] for eid, row in rows.items()}
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
        new = [Event(first + n, *row[:6], clear[row[0]], row[7]) for n, row in enumerate(fresh)]
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
                                  (user_id, self._enc(name), self._enc(text), time.time()))

    def set_consent(self, user_id: str, personalization: bool, when: float | None = None) -> float:
        """Record a user's personalisation choice (committed before it returns); returns its time."""
        when = time.time() if when is None else when
        with self._lock:
            with self._con:
                self._con.execute("INSERT OR REPLACE INTO consent (user_id, personalization, updated) VALUES (?, ?, ?)",
                                  (user_id, int(personalization), when))
        return when

    def delete_older_than(self, cutoff: float) -> tuple[int, list[str]]:
        """Retention: delete every event with a timestamp before ``cutoff`` (unix seconds), pages
        overwritten and the WAL truncated. Returns (events deleted, their texts in clear)."""
        with self._lock:
            texts = [self._dec(r[0]) for r in self._con.execute(
                "SELECT text FROM events WHERE ts < ? AND text IS NOT NULL", (cutoff,))]
            with self._con:
                n = self._con.execute("DELETE FROM events WHERE ts < ?", (cutoff,)).rowcount
            if n:
                self._con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return n, [t for t in texts if t]

    # --- reads -----------------------------------------------------------------------
    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._con.execute(sql, tuple(params)).fetchall()

    def events(self, *, after_seq: int = 0, user_id: str | None = None, about_user: str | None = None,
               limit: int | None = None, newest_first: bool = False, with_text: bool = True) -> list[Event]:
        """Stored events in sequence order: all, those ``user_id`` made, or those naming
        ``about_user`` as their target (follows of them). ``with_text=False``: texts left out
        (None), as training needs none and decrypting them costs."""
        text = "text" if with_text else "NULL"
        sql = f"SELECT seq, event_id, user_id, kind, item_id, target_user_id, value, {text}, ts FROM events WHERE seq > ?"
        params: list[Any] = [after_seq]
        if user_id is not None:
            sql += " AND user_id = ?"
            params.append(user_id)
        if about_user is not None:
            sql += " AND target_user_id = ?"
            params.append(about_user)
        sql += " ORDER BY seq DESC" if newest_first else " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        rows = self._rows(sql, params)
        if self.cipher is not None and with_text:
            return [Event(*row[:7], self._dec(row[7]), row[8]) for row in rows]
        return [Event(*row) for row in rows]

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
        profile = self.profile(user_id)
        return (profile["name"], profile["text"]) if profile is not None else None

    def profile(self, user_id: str) -> dict[str, Any] | None:
        """The user's profile in clear (name, text, updated), or None."""
        rows = self._rows("SELECT name, text, updated FROM users WHERE user_id = ?", (user_id,))
        if not rows:
            return None
        return {"name": self._dec(rows[0][0]), "text": self._dec(rows[0][1]), "updated": rows[0][2]}

    def consent(self, user_id: str) -> tuple[bool, float] | None:
        """(personalisation allowed, when it was set), or None when the user never chose."""
        rows = self._rows("SELECT personalization, updated FROM consent WHERE user_id = ?", (user_id,))
        return (bool(rows[0][0]), float(rows[0][1])) if rows else None

    def opted_in_since(self, when: float) -> set[str]:
        """Users whose latest choice, made after ``when``, allows personalisation."""
        return {r[0] for r in self._rows("SELECT user_id FROM consent WHERE personalization = 1 AND updated > ?", (when,))}

    def opted_out(self) -> set[str]:
        """Users who opted out of personalisation."""
        return {r[0] for r in self._rows("SELECT user_id FROM consent WHERE personalization = 0")}

    def erased_hashes(self) -> set[str]:
        return {r[0] for r in self._rows("SELECT user_hash FROM erased")}

    # --- erasure ---------------------------------------------------------------------
    def erase_user(self, user_id: str, user_hash: str) -> dict[str, Any]:
        """Delete every event by or about the user, their profile and consent record; remember only the hash (so
        that retraining leaves the user out of read-only base datasets). Returns counts and the
        user's texts (so the caller can purge their embeddings)."""
        with self._lock:
            texts = [self._dec(r[0]) for r in self._con.execute(
                "SELECT text FROM events WHERE user_id = ? AND text IS NOT NULL", (user_id,))]
            texts += [self._dec(r[0]) for r in self._con.execute("SELECT text FROM users WHERE user_id = ?", (user_id,))]
            with self._con:
                n_events = self._con.execute("DELETE FROM events WHERE user_id = ?", (user_id,)).rowcount
                n_about = self._con.execute("DELETE FROM events WHERE target_user_id = ?", (user_id,)).rowcount
                n_profile = self._con.execute("DELETE FROM users WHERE user_id = ?", (user_id,)).rowcount
                n_consent = self._con.execute("DELETE FROM consent WHERE user_id = ?", (user_id,)).rowcount
                self._con.execute("INSERT OR REPLACE INTO erased (user_hash, erased_at) VALUES (?, ?)",
                                  (user_hash, time.time()))
            # Fold the WAL back into the main file and truncate it: deleted rows must not survive there.
            self._con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return {"events": n_events, "events_about": n_about, "profile": n_profile, "consent": n_consent,
                "texts": [t for t in texts if t]}
