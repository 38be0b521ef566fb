"""The event store on both backends (SQLite files, a real PostgreSQL server), and several service
processes on one PostgreSQL store: what one ingests, the others serve within 2 seconds."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.serve.conftest import live_server, wait_for

httpx = pytest.importorskip("httpx")

FAST = {"model_name": "itemknn", "friends": "common-neighbors"}  # fits in a second


def settings(state: Path, store: str | None, **overrides: Any) -> Any:
    from socialrec.serve.engine import ModelConfig
    from socialrec.serve.settings import ServeSettings

    return ServeSettings(dataset="synthetic", state_dir=str(state), store=store, warm_users=0,
                         model=ModelConfig(FAST["model_name"], friends=FAST["friends"]), **overrides)


def test_both_backends_keep_the_same_events_profiles_consent_and_erasures(tmp_path: Path,
                                                                          store_url: str | None) -> None:
    from socialrec.serve.store import EventStore

    store = EventStore(tmp_path, url=store_url)
    batch = [{"event_id": "a", "user_id": "u1", "kind": "like", "item_id": "i1", "timestamp": 10.0},
             {"event_id": "b", "user_id": "u1", "kind": "comment", "item_id": "i2", "text": "okapi", "timestamp": 11.0},
             {"event_id": "a", "user_id": "u1", "kind": "like", "item_id": "i1"},  # repeated within the batch
             {"event_id": "c", "user_id": "u2", "kind": "follow", "target_user_id": "u1", "timestamp": 12.0},
             {"event_id": "d", "user_id": "u2", "kind": "rating", "item_id": "i3", "value": 4, "timestamp": 13.0}]
    new, dup = store.append(batch)
    assert [e.event_id for e in new] == ["a", "b", "c", "d"] and dup == 1
    assert [e.seq for e in new] == sorted(e.seq for e in new) and len({e.seq for e in new}) == 4
    again, dup = store.append(batch[:2] + [{"event_id": "e", "user_id": "u1", "kind": "view", "item_id": "i4"}])
    assert [e.event_id for e in again] == ["e"] and dup == 2 and again[0].seq > new[-1].seq
    assert store.count() == 5 and store.max_seq() == again[0].seq
    assert [e.event_id for e in store.events(after_seq=new[1].seq)] == ["c", "d", "e"]
    assert [e.event_id for e in store.events(user_id="u1", newest_first=True, limit=2)] == ["e", "b"]
    assert [e.event_id for e in store.events(about_user="u1")] == ["c"]
    assert store.events(user_id="u1")[1].text == "okapi" and store.events(user_id="u1", with_text=False)[1].text is None
    assert store.events(user_id="u2")[1].value == 4.0
    store.upsert_item("i9", "Title", "text")
    store.upsert_item("i9", "Title 2", "text 2")
    store.upsert_user("u1", "Name", "bio")
    assert store.items() == [("i9", "Title 2", "text 2")] and store.user("u1") == ("Name", "bio")
    store.set_consent("u1", False, when=5.0)
    store.set_consent("u2", True, when=7.0)
    assert store.opted_out() == {"u1"} and store.opted_in_since(6.0) == {"u2"} and store.consent("u1") == (False, 5.0)
    gone = store.erase_user("u1", "hash-u1")
    assert gone == {"events": 3, "events_about": 1, "profile": 1, "consent": 1, "texts": ["okapi", "bio"]}
    assert [e.event_id for e in store.events()] == ["d"] and store.erased_hashes() == {"hash-u1"}
    assert store.erased_count() == 1 and store.consent("u1") is None and store.user("u1") is None
    assert store.delete_older_than(14.0) == (1, []) and store.count() == 0
    store.close()


def test_a_clear_store_is_encrypted_once_and_refuses_a_wrong_key(tmp_path: Path, store_url: str | None) -> None:
    from cryptography.fernet import Fernet

    from socialrec.privacy.encryption import TextCipher, WrongKeyError
    from socialrec.serve.store import EventStore

    store = EventStore(tmp_path, url=store_url)
    store.append([{"event_id": "a", "user_id": "u", "kind": "comment", "item_id": "i", "text": "walrus opinions"}])
    store.close()
    key = Fernet.generate_key().decode()
    store = EventStore(tmp_path, url=store_url, cipher=TextCipher(key))
    raw = store._rows("SELECT text FROM events")[0][0]
    assert raw.startswith("gAAAAA") and store.events()[0].text == "walrus opinions"
    store.close()
    store = EventStore(tmp_path, url=store_url, cipher=TextCipher(key))  # opened again: not encrypted twice
    assert store.events()[0].text == "walrus opinions"
    store.close()
    with pytest.raises(WrongKeyError):
        EventStore(tmp_path, url=store_url)


def test_keys_live_in_the_shared_store(tmp_path: Path, pg_url: str) -> None:
    from socialrec.serve.auth import KeyStore

    one, other = KeyStore(tmp_path / "host-a", url=pg_url), KeyStore(tmp_path / "host-b", url=pg_url, cache_seconds=0.0)
    token = one.create(["read", "write"], name="shared")
    assert other.verify(token).scopes == frozenset({"read", "write"})
    assert one.revoke(token.split("_")[1]) and other.verify(token) is None
    assert not (tmp_path / "host-a" / "keys.sqlite3").exists()
    one.close()
    other.close()


def test_a_batch_sent_to_two_workers_at_once_is_stored_once(pg_url: str, tmp_path: Path) -> None:
    from socialrec.serve.store import EventStore

    stores = [EventStore(tmp_path, url=pg_url) for _ in range(2)]
    batch = [{"event_id": f"same-{i}", "user_id": f"u{i % 7}", "kind": "view", "item_id": f"i{i}"} for i in range(300)]
    results: list[tuple[int, int]] = []

    def send(store: Any) -> None:
        for start in range(0, 300, 50):
            new, dup = store.append(batch[start:start + 50])
            results.append((len(new), dup))

    threads = [threading.Thread(target=send, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(n for n, _ in results) == 300 and sum(d for _, d in results) == 300
    assert stores[0].count() == 300 and len({e.seq for e in stores[0].events()}) == 300
    for s in stores:
        s.close()


def test_erasure_on_postgresql_leaves_no_copy_in_the_table_files(pg_server: Any, pg_url: str, tmp_path: Path) -> None:
    import psycopg

    from socialrec.serve.store import EventStore

    uid, comment, bio = "erase-pg-okapi-77", "remarks on okapi-trumpets 91", "bio of an okapi-lover 91"
    store = EventStore(tmp_path, url=pg_url)
    store.append([{"event_id": f"x{i}", "user_id": "someone-else", "kind": "view", "item_id": f"i{i}"} for i in range(50)])
    store.append([{"event_id": "mine", "user_id": uid, "kind": "comment", "item_id": "i1", "text": comment}])
    store.upsert_user(uid, "Oka Pi", bio)
    store.set_consent(uid, False)

    def on_disk() -> list[str]:
        with psycopg.connect(pg_url, autocommit=True) as con:
            con.execute("CHECKPOINT")  # every dirty page written to the table files
        files = [p for p in (pg_server.data_dir / "base").rglob("*") if p.is_file()]
        return [t for t in (uid, comment, bio) if any(t.encode() in p.read_bytes() for p in files)]

    assert on_disk() == [uid, comment, bio]  # the check can see them
    store.erase_user(uid, "hash")
    assert on_disk() == []
    assert store.count() == 50
    store.close()


def test_retried_batch_is_idempotent_over_http(tmp_path: Path, store_url: str | None) -> None:
    from fastapi.testclient import TestClient

    from socialrec.serve.app import create_app
    from socialrec.serve.auth import KeyStore

    s = settings(tmp_path, store_url, train_on_start=False)
    keys = KeyStore(tmp_path, url=store_url)
    headers = {"Authorization": f"Bearer {keys.create(['write'])}"}
    keys.close()
    batch = [{"event_id": f"idem-{i}", "user_id": "user_0050", "kind": "view", "item_id": f"item_{i:04d}"}
             for i in range(5)]
    with TestClient(create_app(s)) as client:
        first = client.post("/v1/events", json={"events": batch}, headers=headers)
        again = client.post("/v1/events", json={"events": batch}, headers=headers)
        assert first.json() == {"accepted": 5, "duplicates": 0} and again.json() == {"accepted": 0, "duplicates": 5}
        store = client.app.state.service.store
        assert store._rows("SELECT COUNT(*) FROM events WHERE event_id LIKE 'idem-%'")[0][0] == 5


def test_two_workers_on_one_store_serve_what_the_other_ingested(tmp_path: Path, store_url: str | None) -> None:
    """Two services on one store, over HTTP: on PostgreSQL with separate state directories (as on
    two hosts), on SQLite sharing one (as `serve --workers 2`). Likes posted to A change B's next
    list within 2 s; a catalog item, an opt-out and an erasure posted to A hold on B too."""
    from socialrec.ingest.datasets.synthetic import load_synthetic, synthetic_truth
    from socialrec.serve.app import create_app
    from socialrec.serve.auth import KeyStore

    keys = KeyStore(tmp_path, url=store_url)
    headers = {"Authorization": f"Bearer {keys.create(['read', 'write', 'admin'])}"}
    keys.close()
    ds = load_synthetic()
    truth = synthetic_truth(ds)
    liked = ds.items.to_external(np.flatnonzero(truth.item_topic == 2)[:6]).tolist()
    uid = "two-worker-user-1"
    if store_url is None:
        apps = [create_app(settings(tmp_path, None, sync_interval_s=0.2)) for _ in "ab"]
    else:
        apps = [create_app(settings(tmp_path / name, store_url)) for name in "ab"]
    with live_server(apps[0]) as (url_a, _), live_server(apps[1]) as (url_b, _):
        a, b = (httpx.Client(base_url=u, headers=headers, timeout=10) for u in (url_a, url_b))
        for client in (a, b):
            wait_for(lambda c=client: c.get("/readyz").status_code == 200, 60)

        def items(client: Any) -> list[str]:
            r = client.get(f"/v1/users/{uid}/recommendations", params={"k": 10})
            assert r.status_code == 200, r.text
            return [x["item_id"] for x in r.json()["items"]]

        cold = items(b)
        sent = time.perf_counter()
        r = a.post("/v1/events", json={"events": [{"event_id": f"tw-{n}", "user_id": uid, "kind": "like", "item_id": i}
                                                  for n, i in enumerate(liked)]})
        assert r.json()["accepted"] == 6
        while (got := items(b)) == cold and time.perf_counter() - sent < 5:
            time.sleep(0.02)
        latency = time.perf_counter() - sent
        assert latency < 2.0 and not set(got) & set(liked)
        assert float(np.mean(truth.item_topic[ds.items.to_index(got)] == 2)) >= 0.7

        served_b = apps[1].state.service
        assert a.put("/v1/items/new-item-77", json={"title": "A new item"}).status_code == 200  # added through A
        wait_for(lambda: served_b.known_item("new-item-77"), 2.0)
        r = b.post("/v1/events", json={"events": [{"event_id": "on-new", "user_id": "user_0001", "kind": "view",
                                                   "item_id": "new-item-77"}]})
        assert r.json() == {"accepted": 1, "duplicates": 0}  # B takes events on it
        assert a.put(f"/v1/users/{uid}/consent", json={"personalization": False}).status_code == 200
        wait_for(lambda: served_b.model.is_excluded(uid), 2.0)
        assert items(b) == cold  # the anonymous list
        assert a.delete(f"/v1/users/{uid}").status_code == 200
        wait_for(lambda: uid not in served_b.model.dataset.users, 2.0)
        assert uid not in served_b._opted_out and items(b) == cold
        if store_url is None:  # one state directory: one version, trained once and loaded by the other
            assert [v["version"] for v in served_b.registry.versions()] == ["v0001"]
        a.close()
        b.close()


def test_serve_workers_share_the_settings_and_follow_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`socialrec serve --workers 2`: each uvicorn worker builds its app from the settings the
    parent put in the environment, and syncs from the shared state directory's store."""
    from socialrec.cli.main import build_parser
    from socialrec.cli.serve_cmd import serve_settings
    from socialrec.errors import ConfigError
    from socialrec.serve.app import WORKER_SETTINGS_ENV, encode_settings, worker_app

    args = build_parser().parse_args(["serve", "--dataset", "synthetic", "--state-dir", str(tmp_path), "--workers", "2"])
    s = serve_settings(args)
    assert s.sync_every == 0.2 and s.store is None
    one = build_parser().parse_args(["serve", "--dataset", "synthetic", "--state-dir", str(tmp_path)])
    assert serve_settings(one).sync_every is None  # a lone process on SQLite polls nothing
    monkeypatch.delenv(WORKER_SETTINGS_ENV, raising=False)
    with pytest.raises(ConfigError, match="--workers"):
        worker_app()
    monkeypatch.setenv(WORKER_SETTINGS_ENV, encode_settings(s))
    app = worker_app()
    assert app.state.service.settings == s
    app.state.service.stop()
    with pytest.raises(ConfigError, match="PostgreSQL URL"):
        settings(tmp_path, "mysql://nope")


def test_a_missing_driver_names_the_extra_and_urls_hide_their_password(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    import sys

    from socialrec.errors import MissingDependencyError
    from socialrec.serve.database import redact
    from socialrec.serve.store import EventStore

    assert redact("postgresql://app:s3cret@db:5432/x") == "postgresql://app:***@db:5432/x"
    assert redact("postgresql://app@db/x") == "postgresql://app@db/x"
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'socialrec\[postgres\]'"):
        EventStore(tmp_path, url="postgresql://app:s3cret@db:5432/x")


def test_concurrent_batches_are_committed_together_and_each_counts_its_own(tmp_path: Path,
                                                                           store_url: str | None) -> None:
    """Group commit: batches arriving at once share transactions, and every request still gets
    its own accepted and duplicate counts (an id sent by two requests is accepted once)."""
    from socialrec.serve.service import Service

    svc = Service(settings(tmp_path, store_url, train_on_start=False, scrub_pii=False))
    results: list[tuple[int, int, int]] = []
    lock = threading.Lock()

    def send(t: int) -> None:
        for b in range(5):
            # ids e0..e59 per round: every id is sent by two threads
            batch = [{"event_id": f"g{b}-{(t // 2) * 20 + i}", "user_id": f"user_{i:04d}", "kind": "view",
                      "item_id": f"item_{i:04d}"} for i in range(20)]
            got = svc.ingest(batch)
            with lock:
                results.append(got)

    threads = [threading.Thread(target=send, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(a for a, _, _ in results) == 300 and sum(d for _, d, _ in results) == 300
    assert svc.store.count() == 300 and len({e.event_id for e in svc.store.events()}) == 300
    svc.stop()


def test_nul_characters_in_ids_get_a_422_and_text_loses_them_on_either_backend(tmp_path: Path,
                                                                              store_url: str | None) -> None:
    """PostgreSQL refuses NUL in text: on every store an id with one gets a 422 that says so (never
    a 500) and stores nothing, and free text is stored without its NUL characters."""
    from fastapi.testclient import TestClient

    from socialrec.serve.app import create_app
    from socialrec.serve.auth import KeyStore

    s = settings(tmp_path, store_url, train_on_start=False)
    keys = KeyStore(tmp_path, url=store_url)
    headers = {"Authorization": f"Bearer {keys.create(['write', 'read'])}"}
    keys.close()
    bad = [{"event_id": "nul-1", "user_id": "user\x000050", "kind": "view", "item_id": "item_0001"},
           {"event_id": "nul-2", "user_id": "user_0050", "kind": "view", "item_id": "item\x000001"},
           {"event_id": "nul\x003", "user_id": "user_0050", "kind": "view", "item_id": "item_0001"}]
    with TestClient(create_app(s), raise_server_exceptions=False) as client:
        for event in bad:
            r = client.post("/v1/events", json={"events": [event]}, headers=headers)
            assert r.status_code == 422 and "pattern" in r.text, (event, r.status_code, r.text)
        for path in ("/v1/users/user%000050/recommendations", "/v1/users/user_0050/recommendations?k=1%00",
                     "/v1/users/user%000050/export"):
            r = client.get(path, headers=headers)
            assert r.status_code == 422 and "NUL" in r.text, (path, r.status_code, r.text)
        store = client.app.state.service.store
        assert store._rows("SELECT COUNT(*) FROM events")[0][0] == 0
        comment = {"event_id": "nul-4", "user_id": "user_0050", "kind": "comment", "item_id": "item_0001",
                   "text": "great\x00 song"}
        assert client.post("/v1/events", json={"events": [comment]}, headers=headers).status_code == 200
        assert client.put("/v1/users/user_0050", json={"name": "x\x00y", "text": "a\x00b"},
                          headers=headers).status_code == 200
        assert [e.text for e in store.events(user_id="user_0050")] == ["great song"]
        assert "\x00" not in "".join(store.user("user_0050") or ())
