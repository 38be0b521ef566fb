"""Users in control of their data (issue 24), through HTTP: export, personalisation consent,
retention and encryption at rest, on a service whose stored text is encrypted and whose events
expire after 30 days (its clock can be moved forward)."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serve.conftest import Served

pytest.importorskip("cryptography")

DAY = 86_400.0


def eid() -> str:
    return uuid.uuid4().hex


def ids(doc: dict) -> list[str]:
    return [i["item_id"] for i in doc["items"]]


class Clock:
    """Unix time, moved forward on demand."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture(scope="module")
def key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, key: str, clock: Clock) -> Iterator[Served]:
    s = Served(tmp_path_factory.mktemp("control-state"), retention_days=30,
               service_options={"environ": {"SOCIALREC_DATA_KEY": key}, "clock": clock})
    yield s
    s.close()


def raw_bytes(state: Path) -> bytes:
    """The event store's file and its WAL, as bytes on disk."""
    return b"".join(p.read_bytes() for p in state.glob("events.sqlite3*") if p.is_file())


def _occurs(path: Path, text: str) -> bool:
    data = path.read_bytes()
    return any(text.encode(enc) in data for enc in ("utf-8", "utf-32-le", "utf-16-le"))


# --- export ------------------------------------------------------------------------------
ALL_KINDS = [
    {"kind": "view", "item_id": "item_0001"},
    {"kind": "click", "item_id": "item_0002"},
    {"kind": "like", "item_id": "item_0003"},
    {"kind": "share", "item_id": "item_0004"},
    {"kind": "purchase", "item_id": "item_0005"},
    {"kind": "hide", "item_id": "item_0006"},
    {"kind": "rating", "item_id": "item_0007", "value": 2.0},
    {"kind": "comment", "item_id": "item_0008", "text": "loved the bassline, mail me at eve@example.org"},
    {"kind": "comment", "item_id": "item_0009"},
    {"kind": "follow", "target_user_id": "user_0001"},
    {"kind": "follow", "target_user_id": "user_0002"},
    {"kind": "unfollow", "target_user_id": "user_0002"},
]

SCRUBBED = {"loved the bassline, mail me at eve@example.org": "loved the bassline, mail me at <EMAIL>"}


def test_export_returns_everything_the_store_holds(served: Served) -> None:
    uid = "export-me-31c"
    c, h = served.client, served.admin
    assert c.put(f"/v1/users/{uid}", json={"name": "Eve Export", "text": "jazz, vinyl, Lisbon"}, headers=h).status_code == 200
    mine = [{"event_id": eid(), "user_id": uid, "timestamp": 1_700_000_000.0 + n * 60, **e} for n, e in enumerate(ALL_KINDS)]
    mine[0].pop("timestamp")  # stored at "now"
    about = {"event_id": eid(), "user_id": "user_0003", "kind": "follow", "target_user_id": uid}
    served.post(mine + [about])
    assert c.put(f"/v1/users/{uid}/consent", json={"personalization": True}, headers=h).status_code == 200

    r = c.get(f"/v1/users/{uid}/export", headers=h)
    assert r.status_code == 200, r.text
    doc = r.json()
    store = served.service.store
    # every stored event of the user, all kinds, with timestamps and text in clear
    stored = store.events(user_id=uid)
    assert [e["event_id"] for e in doc["events"]] == [e.event_id for e in stored] == [e["event_id"] for e in mine]
    for got, sent, kept in zip(doc["events"], mine, stored):
        assert got == {"event_id": kept.event_id, "kind": kept.kind, "item_id": kept.item_id,
                       "target_user_id": kept.target_user_id, "value": kept.value, "text": kept.text, "timestamp": kept.ts}
        # stored scrubbed (scrub_pii is on by default): the email became a placeholder
        assert got["kind"] == sent["kind"] and got["text"] == SCRUBBED.get(sent.get("text"), sent.get("text"))
        assert got["timestamp"] == sent.get("timestamp", got["timestamp"])
    # ... and the same rows as the file itself holds, decrypted
    con = sqlite3.connect(store.path)
    rows = con.execute("SELECT event_id, text FROM events WHERE user_id = ? ORDER BY seq", (uid,)).fetchall()
    profile_row = con.execute("SELECT name, text FROM users WHERE user_id = ?", (uid,)).fetchone()
    con.close()
    assert [(e["event_id"], e["text"]) for e in doc["events"]] == [(i, store.cipher.decrypt(t)) for i, t in rows]
    assert doc["profile"]["name"] == "<PERSON>" == store.cipher.decrypt(profile_row[0])  # a name field is replaced whole
    assert doc["profile"]["text"] == "jazz, vinyl, Lisbon" == store.cipher.decrypt(profile_row[1])
    assert doc["consent"]["personalization"] is True and doc["consent"]["updated"] == store.consent(uid)[1]
    assert [e["event_id"] for e in doc["events_about_user"]] == [about["event_id"]]
    assert doc["events_about_user"][0]["user_id"] == "user_0003"
    assert doc["social"] == {"following": ["user_0001"], "followers": ["user_0003"]}
    assert doc["dataset"] is None and doc["catalog_items"] == []  # not a dataset user
    # what the live model holds: the positive items, the hidden one, the edges
    assert doc["model"]["in_model"] and doc["model"]["hidden_items"] == ["item_0006"]
    assert set(doc["model"]["items"]) == {"item_0001", "item_0002", "item_0003", "item_0004", "item_0005",
                                          "item_0008", "item_0009"}
    assert doc["model"]["following"] == ["user_0001"]


def test_export_of_a_dataset_user_includes_their_base_data(served: Served) -> None:
    doc = served.client.get("/v1/users/user_0010/export", headers=served.admin).json()
    ds = served.service.dataset()
    u = ds.users.to_index("user_0010")
    assert len(doc["dataset"]["interactions"]) == int((ds.interactions["user"] == u).sum()) > 0
    assert set(doc["social"]["following"]) == set(ds.users.to_external(ds.social_matrix()[u].indices).tolist())


def test_export_needs_the_export_scope_and_an_unknown_user_is_404(served: Served) -> None:
    c = served.client
    assert c.get("/v1/users/user_0010/export").status_code == 401
    assert c.get("/v1/users/user_0010/export", headers=served.reader).status_code == 403
    writer = served.auth(served.service.keys.create(["read", "write", "admin"]))
    assert c.get("/v1/users/user_0010/export", headers=writer).status_code == 403  # admin does not imply it
    exporter = served.auth(served.service.keys.create(["export"]))
    assert c.get("/v1/users/user_0010/export", headers=exporter).status_code == 200
    r = c.get("/v1/users/never-seen-anywhere/export", headers=exporter)
    assert r.status_code == 404 and "nothing is held" in r.json()["detail"]
    # consent: read to see it, write to change it
    assert c.get("/v1/users/user_0010/consent", headers=served.reader).json()["personalization"] is True
    assert c.put("/v1/users/user_0010/consent", json={"personalization": False}, headers=served.reader).status_code == 403
    assert c.put("/v1/users/user_0010/consent", json={"personalization": "maybe"}, headers=writer).status_code == 422
    assert c.put("/v1/users/user_0010/consent", json={}, headers=writer).status_code == 422


def test_export_of_a_user_takes_well_under_a_second(served: Served) -> None:
    uid = "heavy-exporter-8d"
    served.post([{"event_id": eid(), "user_id": uid, "kind": "comment", "item_id": f"item_{n % 400:04d}",
                  "text": f"comment number {n} with some words"} for n in range(1000)])
    start = time.perf_counter()
    doc = served.client.get(f"/v1/users/{uid}/export", headers=served.admin).json()
    assert len(doc["events"]) == 1000 and time.perf_counter() - start < 1.0


# --- consent -----------------------------------------------------------------------------
def anonymous(served: Served, k: int = 20) -> list[str]:
    return ids(served.recs("nobody-anonymous", k=k))


def test_opting_out_serves_the_anonymous_list_and_learns_nothing(served: Served, key: str) -> None:
    uid, c, h = "user_0042", served.client, served.admin
    personal = ids(served.recs(uid))
    assert personal != anonymous(served)
    r = c.put(f"/v1/users/{uid}/consent", json={"personalization": False}, headers=h)
    assert r.status_code == 200 and r.json()["personalization"] is False
    assert c.get(f"/v1/users/{uid}/consent", headers=served.reader).json()["personalization"] is False
    assert ids(served.recs(uid)) == anonymous(served)  # the cached personal list is gone too
    model = served.service.model
    u = model.dataset.users.to_index(uid)
    assert model.model.user_items_[u].nnz == 0  # their state left the live model
    assert model.user_state(uid)["following"] == [] and model.user_state(uid)["followers"] == []
    assert c.get(f"/v1/users/{uid}/friend-suggestions", headers=h).json()["users"] == []
    # new events are stored (and exported) but change neither their list nor the model
    before = anonymous(served)
    new = [{"event_id": eid(), "user_id": uid, "kind": "like", "item_id": i} for i in before[:5]]
    new.append({"event_id": eid(), "user_id": uid, "kind": "follow", "target_user_id": "user_0007"})
    served.post(new)
    assert ids(served.recs(uid)) == anonymous(served) == before
    assert model.model.user_items_[u].nnz == 0 and model.user_state(uid)["following"] == []
    exported = c.get(f"/v1/users/{uid}/export", headers=h).json()
    assert {e["event_id"] for e in new} <= {e["event_id"] for e in exported["events"]}
    assert exported["consent"]["personalization"] is False and exported["model"]["items"] == []

    # a retrain leaves them out: the data given to training holds none of their interactions or edges
    assert c.post("/v1/admin/retrain?wait=true", headers=h).json()["status"] == "done"
    model = served.service.model
    trained = model.dataset
    u = trained.users.to_index(uid)
    assert not (trained.interactions["user"] == u).any()
    assert not ((trained.social["source"] == u) | (trained.social["target"] == u)).any()
    assert model.model.user_items_[u].nnz == 0
    assert ids(served.recs(uid)) == anonymous(served)

    # the choice survives a restart (it is stored with the events)
    from socialrec.serve.service import Service

    again = Service(served.settings, environ={"SOCIALREC_DATA_KEY": key})
    try:
        assert again.consent(uid)["personalization"] is False and uid in again._opted_out
    finally:
        again.store.close()
        again.keys.close()

    # opting back in restores personalisation at once, from what is held about them
    r = c.put(f"/v1/users/{uid}/consent", json={"personalization": True}, headers=h)
    assert r.status_code == 200 and r.json()["personalization"] is True
    back = ids(served.recs(uid))
    assert back != anonymous(served)
    assert not set(back) & set(before[:5])  # their likes while opted out are known now
    ds = served.service.dataset()
    base_items = set(ds.items.to_external(ds.interactions.loc[ds.interactions["user"] == ds.users.to_index(uid), "item"]))
    assert base_items <= set(model.user_state(uid)["items"])
    assert "user_0007" in model.user_state(uid)["following"]
    # ... and after a restart that loads the version trained while they were opted out
    again = Service(served.settings, environ={"SOCIALREC_DATA_KEY": key})
    again.start()
    try:
        assert again.model is not None and again.model.version == model.version
        assert base_items <= set(again.model.user_state(uid)["items"])
        assert [r.item_id for r in again.model.recommend(uid, 20)] != [r.item_id for r in again.model.recommend("nobody-x", 20)]
    finally:
        again.stop()


# --- encryption at rest ------------------------------------------------------------------
def test_stored_text_is_encrypted_and_exported_in_clear(served: Served) -> None:
    uid, c, h = "cipher-user-5e", served.client, served.admin
    comment, bio = "my secret comment about zebra-striped guitars", "a bio that mentions saxophone-penguins"
    assert c.put(f"/v1/users/{uid}", json={"name": "Zed Cipher", "text": bio}, headers=h).status_code == 200
    served.post([{"event_id": eid(), "user_id": uid, "kind": "comment", "item_id": "item_0011", "text": comment}])
    raw = raw_bytes(Path(served.settings.state_dir))
    for text in (comment, bio, "Zed Cipher", "<PERSON>", "zebra-striped", "saxophone-penguins"):
        assert text.encode() not in raw
    doc = c.get(f"/v1/users/{uid}/export", headers=h).json()
    assert doc["events"][0]["text"] == comment and doc["profile"]["text"] == bio and doc["profile"]["name"] == "<PERSON>"
    assert c.get("/readyz").json()["text_encrypted"] is True


def test_a_wrong_or_missing_key_at_restart_is_a_clear_error(served: Served) -> None:
    from cryptography.fernet import Fernet

    from socialrec.errors import ConfigError
    from socialrec.serve.service import Service

    with pytest.raises(ConfigError, match="not the key"):
        Service(served.settings, environ={"SOCIALREC_DATA_KEY": Fernet.generate_key().decode()})
    with pytest.raises(ConfigError, match="is encrypted; set SOCIALREC_DATA_KEY"):
        Service(served.settings, environ={})
    with pytest.raises(ConfigError, match="not a Fernet key"):
        Service(served.settings, environ={"SOCIALREC_DATA_KEY": "hunter2"})


def test_a_clear_store_is_encrypted_when_a_key_is_first_given(tmp_path: Path, key: str) -> None:
    from socialrec.privacy.encryption import TextCipher
    from socialrec.serve.store import EventStore

    store = EventStore(tmp_path)
    store.append([{"event_id": "a", "user_id": "u", "kind": "comment", "item_id": "i", "text": "walrus opinions"}])
    store.upsert_user("u", "Wally", "walrus fan")
    store.close()
    assert b"walrus" in raw_bytes(tmp_path)
    store = EventStore(tmp_path, cipher=TextCipher(key))
    assert store.events()[0].text == "walrus opinions" and store.user("u") == ("Wally", "walrus fan")
    store.close()
    assert b"walrus" not in raw_bytes(tmp_path) and b"Wally" not in raw_bytes(tmp_path)


def test_an_unencrypted_service_says_so_at_start_up(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from socialrec.serve.app import create_app
    from socialrec.serve.engine import ModelConfig
    from socialrec.serve.settings import ServeSettings

    settings = ServeSettings(dataset="synthetic", state_dir=str(tmp_path), train_on_start=False, model=ModelConfig("als"))
    from socialrec.serve.service import Service

    with TestClient(create_app(settings, service=Service(settings, environ={}))) as client:
        body = client.get("/readyz").json()
        assert body["text_encrypted"] is False
    assert "NOT encrypted at rest: SOCIALREC_DATA_KEY is not set" in (tmp_path / "logs" / "serve.log").read_text()


# --- erasure -----------------------------------------------------------------------------
def test_erasure_leaves_no_trace_of_encrypted_text_or_consent(served: Served) -> None:
    uid, c, h = "erase-encrypted-4b", served.client, served.admin
    comment, bio = "ciphered words about okapi-trumpets", "bio of okapi-lover"
    assert c.put(f"/v1/users/{uid}", json={"name": "Oka Pi", "text": bio}, headers=h).status_code == 200
    served.post([{"event_id": eid(), "user_id": uid, "kind": "comment", "item_id": "item_0013", "text": comment},
                 {"event_id": eid(), "user_id": uid, "kind": "like", "item_id": "item_0014"}])
    assert c.put(f"/v1/users/{uid}/consent", json={"personalization": False}, headers=h).status_code == 200
    con = sqlite3.connect(served.service.store.path)
    tokens = [r[0] for r in con.execute("SELECT text FROM events WHERE user_id = ? AND text IS NOT NULL", (uid,))]
    tokens += list(con.execute("SELECT name, text FROM users WHERE user_id = ?", (uid,)).fetchone())
    con.close()
    assert len(tokens) == 3 and all(t.startswith("gAAAAA") for t in tokens)
    assert c.post("/v1/admin/retrain?wait=true", headers=h).json()["status"] == "done"
    r = c.delete(f"/v1/users/{uid}", headers=h)
    assert r.status_code == 200 and r.json()["profile_deleted"]
    state = Path(served.settings.state_dir)
    files = [p for p in state.rglob("*") if p.is_file()]
    leaks = [(str(p), text[:12]) for p in files for text in (uid, comment, bio, "okapi", *tokens) if _occurs(p, text)]
    assert leaks == []
    assert served.service.store.consent(uid) is None and uid not in served.service._opted_out
    assert c.get(f"/v1/users/{uid}/export", headers=h).status_code == 404
    assert c.get(f"/v1/users/{uid}/consent", headers=h).json() == {"user_id": uid, "personalization": True, "updated": None}


# --- retention (last: it moves the service's clock forward) -------------------------------
def test_events_past_retention_are_swept_from_the_store_export_and_training(served: Served, clock: Clock,
                                                                           key: str) -> None:
    uid, c, h = "retention-user-2a", served.client, served.admin
    now = time.time()
    old = [{"event_id": eid(), "user_id": uid, "kind": "comment", "item_id": "item_0020", "text": "an old walrus remark",
            "timestamp": now - 40 * DAY},
           {"event_id": eid(), "user_id": uid, "kind": "like", "item_id": "item_0021", "timestamp": now - 31 * DAY}]
    fresh = [{"event_id": eid(), "user_id": uid, "kind": "like", "item_id": "item_0022", "timestamp": now - 29 * DAY},
             {"event_id": eid(), "user_id": uid, "kind": "like", "item_id": "item_0023"}]
    served.post(old + fresh)
    assert len(c.get(f"/v1/users/{uid}/export", headers=h).json()["events"]) == 4
    swept = served.service.sweep_retention()  # what the periodic sweep runs
    assert swept["events_deleted"] == 2
    kept = [e["event_id"] for e in c.get(f"/v1/users/{uid}/export", headers=h).json()["events"]]
    assert kept == [e["event_id"] for e in fresh]
    assert c.post("/v1/admin/retrain?wait=true", headers=h).json()["status"] == "done"
    trained = served.service.model.dataset
    u = trained.users.to_index(uid)
    items = set(trained.items.to_external(trained.interactions.loc[trained.interactions["user"] == u, "item"]))
    assert items == {"item_0022", "item_0023"}
    assert c.get("/readyz").json()["retention_days"] == 30

    # Ten days later the event stamped 29 days ago has expired: a restart sweeps it at start-up.
    from socialrec.serve.service import Service

    clock.offset = 10 * DAY
    again = Service(served.settings, environ={"SOCIALREC_DATA_KEY": key}, clock=clock)
    try:
        assert again.last_sweep is not None and again.last_sweep["events_deleted"] >= 1
        assert [e.item_id for e in again.store.events(user_id=uid)] == ["item_0023"]
    finally:
        again.store.close()
        again.keys.close()
    assert [e["item_id"] for e in c.get(f"/v1/users/{uid}/export", headers=h).json()["events"]] == ["item_0023"]
