"""The key store and rate limiter on their own, without a server: what a key proves, what revoking
does, what scopes are accepted, and how many requests a bucket lets through."""

from __future__ import annotations

import re
import sqlite3
import threading
import time

import pytest

from socialrec.errors import ConfigError
from socialrec.serve import auth
from socialrec.serve.auth import SCOPES, KeyStore, RateLimiter, parse_scopes


@pytest.fixture()
def store(tmp_path):
    keys = KeyStore(tmp_path, cache_seconds=60.0)
    yield keys
    keys.close()


def test_a_created_key_verifies_with_its_scopes_rate_and_name(store: KeyStore) -> None:
    token = store.create(["write", "read"], name="ingest", rate_per_second=5.0)
    prefix, key_id, secret = token.split("_", 2)
    assert prefix == "sr" and len(key_id) == 8 and len(secret) >= 40
    key = store.verify(token)
    assert key == auth.ApiKey(key_id, frozenset({"read", "write"}), 5.0, "ingest")


def test_only_the_hash_of_the_secret_is_stored(store: KeyStore) -> None:
    token = store.create(["read"])
    secret = token.split("_", 2)[2]
    raw = store.path.read_bytes()
    with sqlite3.connect(store.path) as con:
        rows = con.execute("SELECT secret_sha256, scopes FROM keys").fetchall()
    assert secret.encode() not in raw
    import hashlib
    assert rows == [(hashlib.sha256(secret.encode()).hexdigest(), "read")]


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # wrong secret
    lambda t: "sk" + t[2:],  # wrong prefix
    lambda t: t.split("_", 2)[0] + "_" + t.split("_", 2)[1],  # no secret
    lambda t: "sr__" + t.split("_", 2)[2],  # no id
    lambda t: "sr_" + "0" * 8 + "_" + t.split("_", 2)[2],  # another id with this secret
    lambda t: "",
])
def test_a_wrong_or_malformed_token_is_refused(store: KeyStore, mangle) -> None:
    token = store.create(["read"])
    assert store.verify(mangle(token)) is None
    assert store.verify(token) is not None


def test_a_cached_key_is_not_accepted_under_another_id(store: KeyStore) -> None:
    first = store.create(["read"])
    other = store.create(["read"])
    assert store.verify(first) is not None  # now cached by the secret's hash
    forged = f"sr_{other.split('_', 2)[1]}_{first.split('_', 2)[2]}"
    assert store.verify(forged) is None


def test_revoking_stops_the_key_at_once_in_this_process_and_leaves_others(store: KeyStore) -> None:
    a, b = store.create(["read"]), store.create(["read"])
    assert store.verify(a) and store.verify(b)
    assert store.revoke(a.split("_", 2)[1]) is True
    assert store.verify(a) is None
    assert store.verify(b) is not None
    assert store.revoke("nosuchid") is False
    listed = {row["key_id"]: row["revoked"] for row in store.list()}
    assert listed == {a.split("_", 2)[1]: True, b.split("_", 2)[1]: False}


def test_a_revocation_by_another_process_is_seen_once_the_cache_expires(tmp_path) -> None:
    server = KeyStore(tmp_path, cache_seconds=0.2)
    token = server.create(["read"])
    assert server.verify(token) is not None
    other = KeyStore(tmp_path)
    other.revoke(token.split("_", 2)[1])
    other.close()
    assert server.verify(token) is not None  # still cached
    time.sleep(0.25)
    assert server.verify(token) is None
    server.close()


def test_list_shows_ids_scopes_and_names_in_creation_order_never_secrets(store: KeyStore) -> None:
    first = store.create(["admin", "read"], name="ops")
    time.sleep(0.01)
    second = store.create(["write"], name="ingest", rate_per_second=2.5)
    rows = store.list()
    assert [r["key_id"] for r in rows] == [first.split("_", 2)[1], second.split("_", 2)[1]]
    assert rows[0]["scopes"] == ["admin", "read"] and rows[0]["name"] == "ops" and rows[0]["rate_per_second"] is None
    assert rows[1]["scopes"] == ["write"] and rows[1]["rate_per_second"] == 2.5 and rows[1]["revoked"] is False
    assert all(first.split("_", 2)[2] not in str(r) for r in rows)


def test_keys_survive_a_restart(tmp_path) -> None:
    keys = KeyStore(tmp_path)
    token = keys.create(["read", "write"])
    keys.close()
    again = KeyStore(tmp_path)
    assert again.verify(token).scopes == frozenset({"read", "write"})
    again.close()


@pytest.mark.parametrize("scopes", [[], ["root"], ["read", "delete"]])
def test_unknown_or_missing_scopes_are_refused_with_the_valid_ones_named(store: KeyStore, scopes) -> None:
    with pytest.raises(ConfigError, match="read, write, admin"):
        store.create(scopes)
    assert store.list() == []


@pytest.mark.parametrize("rate", [0.0, -1.0])
def test_a_non_positive_rate_is_refused(store: KeyStore, rate) -> None:
    with pytest.raises(ConfigError, match="rate_per_second must be > 0"):
        store.create(["read"], rate_per_second=rate)


def test_parse_scopes() -> None:
    assert parse_scopes("read, write") == ("read", "write")
    assert parse_scopes("admin,") == ("admin",)
    assert SCOPES == ("read", "write", "admin", "export")
    for bad in ("", " , ", "read,sudo"):
        with pytest.raises(ConfigError, match="comma-separated subset"):
            parse_scopes(bad)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(auth.time, "monotonic", c)
    return c


def test_a_bucket_lets_the_burst_through_then_one_request_per_token(clock: Clock) -> None:
    limiter = RateLimiter(rate=2.0, burst=3.0)
    assert [limiter.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("k") == pytest.approx(0.5)  # one token takes 1/rate seconds
    assert limiter.peek("k") == pytest.approx(0.5)
    clock.now += 0.25
    assert limiter.peek("k") == pytest.approx(0.25)
    assert limiter.take("k") == pytest.approx(0.25)
    clock.now += 0.25
    assert limiter.peek("k") == 0.0
    assert limiter.take("k") == 0.0
    assert limiter.take("k") > 0.0
    assert limiter.take("other") == 0.0  # buckets are per key


def test_a_bucket_never_saves_more_than_its_burst(clock: Clock) -> None:
    limiter = RateLimiter(rate=10.0, burst=2.0)
    limiter.take("k")
    clock.now += 3600
    assert [limiter.take("k") for _ in range(3)] == [0.0, 0.0, pytest.approx(0.1)]


def test_peek_takes_nothing(clock: Clock) -> None:
    limiter = RateLimiter(rate=1.0, burst=1.0)
    for _ in range(5):
        assert limiter.peek("k") == 0.0
    assert limiter.take("k") == 0.0
    assert limiter.take("k") == pytest.approx(1.0)


def test_a_per_key_rate_overrides_the_default_with_a_burst_of_two_seconds(clock: Clock) -> None:
    limiter = RateLimiter(rate=100.0, burst=100.0)
    assert [limiter.take("k", rate=1.5) for _ in range(3)] == [0.0, 0.0, 0.0]  # burst max(1, 2 * 1.5)
    assert limiter.take("k", rate=1.5) == pytest.approx(1 / 1.5)
    assert limiter.peek("k", rate=1.5) == pytest.approx(1 / 1.5)
    slow = RateLimiter(rate=100.0, burst=100.0)
    assert [slow.take("k", rate=0.2) for _ in range(2)] == [0.0, pytest.approx(5.0)]  # burst at least 1
    tiny = RateLimiter(rate=1.0, burst=0.1)
    assert [tiny.take("k") for _ in range(2)] == [0.0, pytest.approx(1.0)]  # a bucket holds at least one


# --------------------------------------------------------------------------- exact messages, defaults, boundaries

ALL_SCOPES = "read, write, admin, export"


def whole(message: str) -> str:
    return f"^{re.escape(message)}$"


def test_parse_scopes_names_the_bad_scopes_or_the_whole_text() -> None:
    assert parse_scopes("export") == ("export",)
    with pytest.raises(ConfigError, match=whole(f"unknown or missing scope(s) ['sudo']; use a comma-separated subset of {ALL_SCOPES}")):
        parse_scopes("read,sudo")
    with pytest.raises(ConfigError, match=whole(f"unknown or missing scope(s) ' , '; use a comma-separated subset of {ALL_SCOPES}")):
        parse_scopes(" , ")


def test_create_names_the_bad_scopes_or_the_missing_list(store: KeyStore) -> None:
    with pytest.raises(ConfigError, match=whole(f"unknown or missing scope(s) ['delete']; use a subset of {ALL_SCOPES}")):
        store.create(["read", "delete"])
    with pytest.raises(ConfigError, match=whole(f"unknown or missing scope(s) []; use a subset of {ALL_SCOPES}")):
        store.create([])
    with pytest.raises(ConfigError, match=whole("rate_per_second must be > 0, got 0.0")):
        store.create(["read"], rate_per_second=0.0)


def test_a_rate_below_one_per_second_is_a_valid_rate(store: KeyStore) -> None:
    for rate in (0.5, 1.0):
        assert store.verify(store.create(["read"], rate_per_second=rate)).rate_per_second == rate


def test_a_key_without_a_name_has_an_empty_name_and_a_creation_time(store: KeyStore) -> None:
    before = time.time()
    token = store.create(["export"])
    after = time.time()
    assert store.verify(token).name == ""
    (row,) = store.list()
    assert row["name"] == "" and row["scopes"] == ["export"] and before <= row["created"] <= after


def test_the_secret_is_32_random_bytes(store: KeyStore) -> None:
    # URL-safe base64 of 32 bytes, unpadded: 43 characters.
    secret = store.create(["read"]).split("_", 2)[2]
    assert len(secret) == 43


def test_a_verified_key_is_served_from_the_cache_for_half_a_second_by_default(tmp_path, clock: Clock) -> None:
    server = KeyStore(tmp_path)
    token = server.create(["read"])
    key = server.verify(token)
    other = KeyStore(tmp_path)
    other.revoke(key.key_id)
    other.close()
    clock.now += 0.25
    assert server.verify(token) == key  # from the cache
    clock.now = 1000.5  # verified at 1000.0: the cache entry has expired
    assert server.verify(token) is None
    server.close()


def test_the_state_folder_is_created_with_its_parents(tmp_path) -> None:
    keys = KeyStore(tmp_path / "a" / "b")
    assert (tmp_path / "a" / "b" / "keys.sqlite3").is_file()
    keys.close()


def test_the_store_serves_other_threads(store: KeyStore) -> None:
    token = store.create(["read"])
    results: list[object] = []

    def worker() -> None:
        results.append(store.verify(token))
        results.append(store.create(["write"]))
        results.append(len(store.list()))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert results[0] is not None and results[1].startswith("sr_") and results[2] == 2


def test_the_store_waits_30_seconds_for_a_lock_held_by_another_process(store: KeyStore) -> None:
    # The connection's busy timeout: another process writing (`socialrec keys create`) is waited for.
    assert store.db.rows("PRAGMA busy_timeout") == [(30000,)]


def test_the_key_file_schema_keeps_its_column_names(store: KeyStore) -> None:
    with sqlite3.connect(store.path) as con:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        columns = [r[1] for r in con.execute("PRAGMA table_info(keys)")]
    assert tables == ["keys"]
    assert columns == ["key_id", "secret_sha256", "scopes", "rate", "name", "created", "revoked"]


def test_peek_sees_a_partly_refilled_bucket_and_a_fresh_one(clock: Clock) -> None:
    limiter = RateLimiter(rate=2.0, burst=3.0)
    assert limiter.peek("new") == 0.0  # a fresh bucket holds its burst of 3
    assert [limiter.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    clock.now += 0.75  # 1.5 tokens
    assert limiter.peek("k") == 0.0
    assert limiter.peek("k", rate=4.0) == 0.0  # 3 tokens at a per-key rate of 4
    clock.now += 0.25  # 2 tokens
    assert limiter.take("k") == 0.0
    assert limiter.peek("k") == pytest.approx(0.0) and limiter.take("k") == 0.0
    assert limiter.peek("k") == pytest.approx(0.5)
