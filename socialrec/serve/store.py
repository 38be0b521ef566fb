"""The event store: one SQLite file in WAL mode under the service's state directory (the embedded
default), or a PostgreSQL database shared by several service processes and hosts
(``socialrec serve --store postgresql://...``). One class, one set of SQL statements: the
connection and the few statements the engines spell differently are `serve.database`'s.

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

PostgreSQL: every batch is one transaction committed (``synchronous_commit`` as the server sets
it: on by default, so an acknowledged batch is on the server's disk) before the reply; a new
row's ``event_id`` conflict is skipped by ``ON CONFLICT DO NOTHING``, so two workers given the
same retried batch store it once. Appends hold one advisory lock from their first sequence
number to their commit, so sequence numbers become visible in order: a worker that has applied
every event up to ``seq`` finds all later ones with ``seq > ?`` (`Service.sync_from_store`).
Erasure and retention sweeps rewrite the tables they deleted from (``VACUUM FULL``), so no copy
of a deleted row stays in the table files; PostgreSQL's write-ahead log keeps them until its
segments are recycled (encrypt user text with ``SOCIALREC_DATA_KEY`` to keep it out of there).

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

import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from socialrec.serve.database import Database

FILENAME = "events.sqlite3"

ITEM_KINDS = ("view", "click", "like", "comment", "share", "purchase", "rating", "hide")
SOCIAL_KINDS = ("follow", "unfollow")
EVENT_KINDS = ITEM_KINDS + SOCIAL_KINDS

# {serial} and {real} are the engine's spellings (SQLite / PostgreSQL).
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq {serial},
    event_id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    item_id TEXT,
    target_user_id TEXT,
    value {real},
    text TEXT,
    ts {real} NOT NULL
);
CREATE INDEX IF NOT EXISTS events_user ON events (user_id, seq);
DROP INDEX IF EXISTS events_target;
CREATE INDEX IF NOT EXISTS events_target_set ON events (target_user_id) WHERE target_user_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS items (
    item_id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    updated {real} NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    text TEXT NOT NULL,
    updated {real} NOT NULL
);
CREATE TABLE IF NOT EXISTS erased (
    user_hash TEXT PRIMARY KEY,
    erased_at {real} NOT NULL
);
CREATE TABLE IF NOT EXISTS consent (
    user_id TEXT PRIMARY KEY,
    personalization INTEGER NOT NULL,
    updated {real} NOT NULL
);
CREATE TABLE IF NOT EXISTS store_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
)
"""
_SPELLING = {False: {"serial": "INTEGER PRIMARY KEY AUTOINCREMENT", "real": "REAL"},
             True: {"serial": "BIGSERIAL PRIMARY KEY", "real": "DOUBLE PRECISION"}}
CIPHER_CHECK = "text_cipher_check"
SALT_KEY = "pseudonym_salt"
# PostgreSQL advisory lock keys: schema creation and encryption at opening; appends.
_OPEN_LOCK = 0x5EC1A100
_APPEND_LOCK = 0x5EC1A101
# Tables erasure and retention delete from (rewritten afterwards on PostgreSQL).
_PERSONAL_TABLES = ("events", "users", "consent")
_COLUMNS = "event_id, user_id, kind, item_id, target_user_id, value, text, ts"


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
    """Thread-safe access to the event store: SQLite in ``state_dir`` (one connection, one lock:
    SQLite serialises writers anyway, and a single connection keeps the WAL reader snapshot
    simple), or the PostgreSQL database at ``url``."""

    def __init__(self, state_dir: str | Path, *, synchronous: str = "FULL", cipher: Any = None,
                 url: str | None = None) -> None:
        self.cipher = cipher
        self.db, self.path = Database.open(url, state_dir, FILENAME, what="event store",
                                           pragmas=(f"synchronous={synchronous}", "secure_delete=ON"))
        self.location = self.db.where
        try:
            self._open()
        except BaseException:
            self.db.close()
            raise

    @property
    def shared(self) -> bool:
        """Whether the store is a database server (PostgreSQL) that other hosts may share."""
        return self.db.postgres

    def _open(self) -> None:
        """Create the tables; check the key against the store's check value, or encrypt a clear
        store given a key (once, whichever worker comes first)."""
        from socialrec.privacy.encryption import ENV_VAR, WrongKeyError

        with self.db.transaction() as tx:
            self.db.advisory_lock(tx, _OPEN_LOCK)
            for statement in _SCHEMA.format(**_SPELLING[self.db.postgres]).split(";"):
                tx.execute(statement)
            row = tx.rows("SELECT value FROM store_meta WHERE key = ?", (CIPHER_CHECK,))
            if row:
                if self.cipher is None:
                    raise WrongKeyError(f"the user text in {self.location} is encrypted; set {ENV_VAR} to the key it "
                                        "was written with")
                self.cipher.verify(row[0][0], str(self.location))
                return
            if self.cipher is None:
                return
            enc = self.cipher.encrypt
            events = tx.rows("SELECT seq, text FROM events WHERE text IS NOT NULL")
            tx.executemany("UPDATE events SET text = ? WHERE seq = ?", [(enc(t), q) for q, t in events])
            users = tx.rows("SELECT user_id, name, text FROM users")
            tx.executemany("UPDATE users SET name = ?, text = ? WHERE user_id = ?",
                           [(enc(n), enc(t), u) for u, n, t in users])
            tx.execute("INSERT INTO store_meta (key, value) VALUES (?, ?)", (CIPHER_CHECK, self.cipher.check_value()))
        self.db.purge_deleted(("events", "users"))  # no clear copy left behind

    def shared_salt(self) -> bytes | None:
        """The pseudonym salt every service process on a PostgreSQL store uses (created by the
        first), so that all of them name an erased user by the same hash; None on SQLite,
        whose processes share the state directory's salt file."""
        if not self.db.postgres:
            return None
        self.db.execute("INSERT INTO store_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                        (SALT_KEY, secrets.token_hex(32)))
        return bytes.fromhex(self.db.rows("SELECT value FROM store_meta WHERE key = ?", (SALT_KEY,))[0][0])

    @property
    def encrypted(self) -> bool:
        return self.cipher is not None

    def _enc(self, text: str | None) -> str | None:
        return self.cipher.encrypt(text) if self.cipher is not None and text is not None else text

    def _dec(self, text: str | None) -> str | None:
        return self.cipher.decrypt(text) if self.cipher is not None and text is not None else text

    def close(self) -> None:
        self.db.close()

    def pragma(self, name: str) -> Any:
        """A SQLite pragma's value (SQLite stores only)."""
        if self.db.postgres:
            raise NotImplementedError("pragmas are SQLite's; this store is PostgreSQL")
        return self.db.rows(f"PRAGMA {name}")[0][0]

    # --- writes ----------------------------------------------------------------------
    def append(self, events: Sequence[dict[str, Any]]) -> tuple[list[Event], int]:
        """Insert a batch in one committed transaction. Returns (the events newly stored, the
        number of duplicates whose event_id was already there).

        One statement for the batch's rows (SQLite: one lookup of the batch's ids and one
        executemany; PostgreSQL: one ``INSERT ... SELECT FROM unnest(...) ON CONFLICT DO
        NOTHING RETURNING``): per-row statements and their round trips cost more than the commit."""
        now = time.time()
        rows: dict[str, tuple[Any, ...]] = {}
        for e in events:
            eid = e["event_id"]
            if eid not in rows:  # a repeat within the batch is a duplicate too
                rows[eid] = (eid, e["user_id"], e["kind"], e.get("item_id"), e.get("target_user_id"),
                             None if e.get("value") is None else float(e["value"]),
                             e.get("text"), float(e.get("timestamp") or now))
        clear = {eid: row[6] for eid, row in rows.items()}
        if self.cipher is not None:
            rows = {eid: row[:6] + (self._enc(row[6]),) + row[7:] for eid, row in rows.items()}
        seqs = self._insert_pg(list(rows.values())) if self.db.postgres else self._insert_sqlite(rows)
        new = sorted((Event(seqs[eid], *row[:6], clear[eid], row[7]) for eid, row in rows.items() if eid in seqs),
                     key=lambda ev: ev.seq)
        return new, len(events) - len(new)

    def _insert_sqlite(self, rows: dict[str, tuple[Any, ...]]) -> dict[str, int]:
        """The new rows' sequence numbers by event id (rows already stored are left out)."""
        rows = dict(rows)
        with self.db.transaction() as tx:
            ids = list(rows)
            for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
                chunk = ids[start:start + 500]
                marks = ",".join("?" * len(chunk))
                for (known,) in tx.rows(f"SELECT event_id FROM events WHERE event_id IN ({marks})", chunk):
                    del rows[known]
            fresh = list(rows.values())
            if not fresh:
                return {}
            tx.executemany(f"INSERT INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", fresh)
            # One writer (BEGIN IMMEDIATE) and AUTOINCREMENT: the batch got consecutive seqs.
            first = int(tx.rows("SELECT last_insert_rowid()")[0][0]) - len(fresh) + 1
        return {row[0]: first + n for n, row in enumerate(fresh)}

    def _insert_pg(self, fresh: list[tuple[Any, ...]]) -> dict[str, int]:
        if not fresh:
            return {}
        columns = [list(col) for col in zip(*fresh)]
        types = ("text", "text", "text", "text", "text", "float8", "text", "float8")
        arrays = ", ".join(f"?::{t}[]" for t in types)
        # One round trip: BEGIN, the advisory lock (sequence numbers commit in order), the insert, COMMIT.
        got = self.db.pipelined([("SELECT pg_advisory_xact_lock(?)", (_APPEND_LOCK,)),
                                 (f"INSERT INTO events ({_COLUMNS}) SELECT * FROM unnest({arrays}) "
                                  "ON CONFLICT (event_id) DO NOTHING RETURNING event_id, seq", columns)])
        return {eid: int(seq) for eid, seq in got}

    def upsert_item(self, item_id: str, title: str, text: str) -> None:
        self.db.execute("INSERT INTO items (item_id, title, text, updated) VALUES (?, ?, ?, ?) ON CONFLICT (item_id) "
                        "DO UPDATE SET title = excluded.title, text = excluded.text, updated = excluded.updated",
                        (item_id, title, text, time.time()))

    def upsert_user(self, user_id: str, name: str, text: str) -> None:
        self.db.execute("INSERT INTO users (user_id, name, text, updated) VALUES (?, ?, ?, ?) ON CONFLICT (user_id) "
                        "DO UPDATE SET name = excluded.name, text = excluded.text, updated = excluded.updated",
                        (user_id, self._enc(name), self._enc(text), time.time()))

    def set_consent(self, user_id: str, personalization: bool, when: float | None = None) -> float:
        """Record a user's personalisation choice (committed before it returns); returns its time."""
        when = time.time() if when is None else when
        self.db.execute("INSERT INTO consent (user_id, personalization, updated) VALUES (?, ?, ?) ON CONFLICT (user_id) "
                        "DO UPDATE SET personalization = excluded.personalization, updated = excluded.updated",
                        (user_id, int(personalization), when))
        return when

    def delete_older_than(self, cutoff: float) -> tuple[int, list[str]]:
        """Retention: delete every event with a timestamp before ``cutoff`` (unix seconds), no
        copy left in the files (`Database.purge_deleted`). Returns (events deleted, their texts
        in clear)."""
        with self.db.lock:
            with self.db.transaction() as tx:
                texts = [self._dec(r[0]) for r in tx.rows("SELECT text FROM events WHERE ts < ? AND text IS NOT NULL",
                                                         (cutoff,))]
                n = tx.execute("DELETE FROM events WHERE ts < ?", (cutoff,))
            if n:
                self.db.purge_deleted(("events",))
        return n, [t for t in texts if t]

    # --- reads -----------------------------------------------------------------------
    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        return self.db.rows(sql, tuple(params))

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

    def item_count(self) -> int:
        return int(self._rows("SELECT COUNT(*) FROM items")[0][0])

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

    def erased_count(self) -> int:
        return int(self._rows("SELECT COUNT(*) FROM erased")[0][0])

    # --- erasure ---------------------------------------------------------------------
    def erase_user(self, user_id: str, user_hash: str) -> dict[str, Any]:
        """Delete every event by or about the user, their profile and consent record; remember only the hash (so
        that retraining leaves the user out of read-only base datasets). Returns counts and the
        user's texts (so the caller can purge their embeddings)."""
        with self.db.lock:
            with self.db.transaction() as tx:
                texts = [self._dec(r[0]) for r in tx.rows(
                    "SELECT text FROM events WHERE user_id = ? AND text IS NOT NULL", (user_id,))]
                texts += [self._dec(r[0]) for r in tx.rows("SELECT text FROM users WHERE user_id = ?", (user_id,))]
                n_events = tx.execute("DELETE FROM events WHERE user_id = ?", (user_id,))
                n_about = tx.execute("DELETE FROM events WHERE target_user_id = ?", (user_id,))
                n_profile = tx.execute("DELETE FROM users WHERE user_id = ?", (user_id,))
                n_consent = tx.execute("DELETE FROM consent WHERE user_id = ?", (user_id,))
                tx.execute("INSERT INTO erased (user_hash, erased_at) VALUES (?, ?) ON CONFLICT (user_hash) "
                           "DO UPDATE SET erased_at = excluded.erased_at", (user_hash, time.time()))
            # Deleted rows must not survive in the files (SQLite: WAL folded back and truncated).
            self.db.purge_deleted(_PERSONAL_TABLES)
        return {"events": n_events, "events_about": n_about, "profile": n_profile, "consent": n_consent,
                "texts": [t for t in texts if t]}
