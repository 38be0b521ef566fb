"""API keys: created once and printed once, stored only as a SHA-256 hash, with scopes and a
per-key token-bucket rate limit.

A key is ``sr_<id>_<secret>``: the id (8 hex characters) finds the row, the secret (32 random
bytes, URL-safe) is what proves possession. A 256-bit random secret needs no slow password hash:
SHA-256 of it cannot be inverted or guessed, and verification stays a microsecond.

Keys live beside the events: in ``state_dir/keys.sqlite3``, or in the PostgreSQL store every
service process shares (``url``), so a key created or revoked once holds for all of them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from socialrec.errors import ConfigError
from socialrec.serve.database import Database

# export: read everything held about a user (GET /v1/users/{id}/export), for the platform's
# account-settings back end; no other scope implies it.
SCOPES = ("read", "write", "admin", "export")
FILENAME = "keys.sqlite3"
_OPEN_LOCK = 0x5EC1A102  # PostgreSQL advisory lock: creating the table


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    scopes: frozenset[str]
    rate_per_second: float | None
    name: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def parse_scopes(text: str) -> tuple[str, ...]:
    scopes = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [s for s in scopes if s not in SCOPES]
    if bad or not scopes:
        raise ConfigError(f"unknown or missing scope(s) {bad or text!r}; use a comma-separated subset of {', '.join(SCOPES)}")
    return scopes


class KeyStore:
    """Keys in ``state_dir/keys.sqlite3``, or in the PostgreSQL database at ``url``. A verified
    key is cached in memory by hash for ``cache_seconds``: a key revoked by another process
    (`socialrec keys revoke`) stops working within that time."""

    def __init__(self, state_dir: str | Path, cache_seconds: float = 0.5, *, url: str | None = None) -> None:
        self.cache_seconds = cache_seconds
        self.db, self.path = Database.open(url, state_dir, FILENAME, what="key store")
        real = "DOUBLE PRECISION" if self.db.postgres else "REAL"
        with self.db.transaction() as tx:
            self.db.advisory_lock(tx, _OPEN_LOCK)
            tx.execute(f"CREATE TABLE IF NOT EXISTS keys (key_id TEXT PRIMARY KEY, secret_sha256 TEXT NOT NULL, "
                       f"scopes TEXT NOT NULL, rate {real}, name TEXT NOT NULL, created {real} NOT NULL, "
                       "revoked INTEGER NOT NULL DEFAULT 0)")
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[ApiKey, float]] = {}  # hash -> (key, when it must be checked again)

    def close(self) -> None:
        self.db.close()

    def create(self, scopes: tuple[str, ...] | list[str], *, name: str = "", rate_per_second: float | None = None) -> str:
        """A new key; the returned string is the only time the secret exists outside a hash."""
        bad = [s for s in scopes if s not in SCOPES]
        if bad or not scopes:
            raise ConfigError(f"unknown or missing scope(s) {bad or list(scopes)}; use a subset of {', '.join(SCOPES)}")
        if rate_per_second is not None and rate_per_second <= 0:
            raise ConfigError(f"rate_per_second must be > 0, got {rate_per_second}")
        key_id = secrets.token_hex(4)
        secret = secrets.token_urlsafe(32)
        self.db.execute("INSERT INTO keys (key_id, secret_sha256, scopes, rate, name, created) VALUES (?, ?, ?, ?, ?, ?)",
                        (key_id, _hash(secret), ",".join(sorted(set(scopes))), rate_per_second, name, time.time()))
        return f"sr_{key_id}_{secret}"

    def revoke(self, key_id: str) -> bool:
        n = self.db.execute("UPDATE keys SET revoked = 1 WHERE key_id = ?", (key_id,))
        with self._lock:
            self._cache = {h: kt for h, kt in self._cache.items() if kt[0].key_id != key_id}
        return n == 1

    def list(self) -> list[dict[str, object]]:
        rows = self.db.rows("SELECT key_id, scopes, rate, name, created, revoked FROM keys ORDER BY created")
        return [{"key_id": r[0], "scopes": r[1].split(","), "rate_per_second": r[2], "name": r[3], "created": r[4],
                 "revoked": bool(r[5])} for r in rows]

    def verify(self, token: str) -> ApiKey | None:
        """The key for a bearer token, or None when it is malformed, unknown or revoked."""
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != "sr" or not parts[1] or not parts[2]:
            return None
        digest = _hash(parts[2])
        cached = self._cache.get(digest)
        now = time.monotonic()
        if cached is not None and cached[0].key_id == parts[1] and now < cached[1]:
            return cached[0]
        found = self.db.rows("SELECT secret_sha256, scopes, rate, name FROM keys WHERE key_id = ? AND revoked = 0",
                             (parts[1],))
        row = found[0] if found else None
        if row is None or not hmac.compare_digest(row[0], digest):
            self._cache.pop(digest, None)
            return None
        key = ApiKey(parts[1], frozenset(row[1].split(",")), row[2], row[3])
        self._cache[digest] = (key, now + self.cache_seconds)
        return key


class RateLimiter:
    """A token bucket per key: ``rate`` tokens a second, at most ``burst`` saved up."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def peek(self, key: str, rate: float | None = None) -> float:
        """Seconds until ``key`` has a token again (0.0: it has one now); takes nothing."""
        r = rate or self.rate
        with self._lock:
            bucket = self._buckets.get(key)
        if bucket is None:  # a new bucket is full; the burst cap (at least 1) never decides below
            return 0.0
        tokens = bucket[0] + (time.monotonic() - bucket[1]) * r
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / r

    def take(self, key: str, rate: float | None = None) -> float:
        """0.0 when the request may go ahead, else the seconds to wait for the next token."""
        r = rate or self.rate
        burst = max(self.burst if rate is None else max(1.0, 2 * r), 1.0)
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (burst, now))
            tokens = min(burst, tokens + (now - last) * r)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / r
