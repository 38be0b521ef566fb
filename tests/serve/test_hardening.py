"""Attacks on a running service, each a request that once broke a promise (issue 19)."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serve.conftest import Served, live_server, wait_for


def test_a_key_revoked_by_another_process_stops_working_within_a_second(served: Served) -> None:
    key = served.service.keys.create(["read"])
    headers = served.auth(key)
    assert served.client.get("/v1/items/item_0001/similar", headers=headers).status_code == 200  # now cached
    key_id = key.split("_")[1]
    subprocess.run([sys.executable, "-m", "socialrec", "keys", "revoke", key_id, "--state-dir",
                    served.settings.state_dir], check=True, capture_output=True)
    time.sleep(1.0)
    r = served.client.get("/v1/items/item_0001/similar", headers=headers)
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


BAD_BODIES = [
    ("POST", "/v1/events", '{"events":[{"event_id":"a","user_id":"u","kind":"rating","item_id":"i","value":NaN}]}'),
    ("POST", "/v1/events", '{"events":[{"event_id":"a","user_id":"u","kind":"rating","item_id":"i","value":Infinity}]}'),
    ("POST", "/v1/events", '{"events":[{"event_id":"a","user_id":"u","kind":"rating","item_id":"i","value":-Infinity}]}'),
    ("POST", "/v1/events", '{"events":[{"event_id":"\\ud800","user_id":"u","kind":"view","item_id":"i"}]}'),
    ("POST", "/v1/events", '{"events":[{"event_id":"a","user_id":"u","kind":"comment","item_id":"i","text":"\\udfff x"}]}'),
    ("PUT", "/v1/items/x1", '{"title":"\\ud800"}'),
    ("PUT", "/v1/items/x1", '{"title":"t","text":"a","extra":NaN}'),
    ("PUT", "/v1/users/u1", '{"name":"\\ud83d","text":"x"}'),
]


@pytest.mark.parametrize("method, path, body", BAD_BODIES)
def test_nan_infinity_and_lone_surrogates_are_422_not_500(served: Served, method: str, path: str, body: str) -> None:
    headers = {**served.admin, "Content-Type": "application/json"}
    r = served.client.request(method, path, content=body, headers=headers)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]  # says why


@pytest.fixture(scope="module")
def live_port(served: Served) -> Iterator[int]:
    with live_server(served.app) as (_url, port):
        yield port


def test_a_chunked_body_over_the_limit_is_413(served: Served, live_port: int) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(160):  # 10 MB
            yield b"x" * 65536

    conn = http.client.HTTPConnection("127.0.0.1", live_port, timeout=60)
    conn.request("POST", "/v1/events", body=chunks(), encode_chunked=True,
                 headers={**served.admin, "Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    r = conn.getresponse()
    status, text = r.status, r.read()
    conn.close()
    assert status == 413 and b"larger than" in text
    # a small chunked batch still goes through
    body = json.dumps({"events": [{"event_id": uuid.uuid4().hex, "user_id": "user_0009", "kind": "view",
                                   "item_id": "item_0009"}]}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", live_port, timeout=60)
    conn.request("POST", "/v1/events", body=iter([body[:7], body[7:]]), encode_chunked=True,
                 headers={**served.admin, "Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    r = conn.getresponse()
    status, text = r.status, r.read()
    conn.close()
    assert status == 200 and json.loads(text)["accepted"] == 1


def _occurs(path: Path, text: str) -> bool:
    data = path.read_bytes()
    return any(text.encode(enc) in data for enc in ("utf-8", "utf-32-le", "utf-16-le"))


def test_erasure_during_a_retrain_leaves_no_published_version_with_the_user(served: Served) -> None:
    uid = "erase-during-retrain-91b"
    served.post([{"event_id": uuid.uuid4().hex, "user_id": uid, "kind": "like", "item_id": "item_0005"}])
    started = served.client.post("/v1/admin/retrain", headers=served.admin).json()
    r = served.client.delete(f"/v1/users/{uid}", headers=served.admin)
    assert r.status_code == 200
    job = served.service.jobs[started["job_id"]]
    wait_for(lambda: job["status"] != "running", 300)
    receipt = r.json()
    serving = served.service.model.version
    # The retrain finished before the erasure went ahead (it waits for training), so the version
    # it published was rewritten by the erasure, and older ones deleted.
    assert receipt["model_versions_rewritten"] == [serving]
    state = Path(served.settings.state_dir)
    leaks = [str(p) for p in state.rglob("*") if p.is_file() and _occurs(p, uid)]
    assert leaks == []
    assert served.recs(uid, k=3, explain="true")["items"][0]["reasons"][0]["kind"] in ("popular", "trending")


def test_deletes_start_no_retrain_and_versions_stay_bounded(served: Served) -> None:
    before = {v["version"] for v in served.client.get("/v1/admin/models", headers=served.admin).json()["versions"]}
    for n in range(5):
        r = served.client.delete(f"/v1/users/nobody-{n}", headers=served.admin)
        assert r.status_code == 200 and "retrain_job" not in r.json()
    after = {v["version"] for v in served.client.get("/v1/admin/models", headers=served.admin).json()["versions"]}
    assert after <= before | {served.service.model.version}
    for _ in range(served.settings.max_versions + 1):
        assert served.client.post("/v1/admin/retrain?wait=true", headers=served.admin).json()["status"] == "done"
    dirs = [p for p in (Path(served.settings.state_dir) / "models").iterdir() if p.is_dir()]
    assert len(dirs) == served.settings.max_versions


def test_a_write_key_cannot_create_or_promote_catalog_items(served: Served) -> None:
    spam = "BUY-CHEAP-PILLS"
    bots = [{"event_id": uuid.uuid4().hex, "user_id": f"bot-{n}", "kind": "like", "item_id": spam} for n in range(300)]
    r = served.client.post("/v1/events", json={"events": bots}, headers=served.admin)
    assert r.status_code == 200 and r.json()["accepted"] == 0 and r.json()["refused"] == 300
    assert "PUT /v1/items" in r.json()["refused_reason"]
    rows = served.service.store._rows("SELECT COUNT(*) FROM events WHERE item_id = ?", (spam,))
    assert rows[0][0] == 0
    # Put in the catalog by a write key, then pushed by 300 fresh accounts: it does not trend.
    assert served.client.put(f"/v1/items/{spam}", json={"title": spam}, headers=served.admin).status_code == 200
    bots = [{**b, "event_id": uuid.uuid4().hex} for b in bots]
    assert served.post(bots)["accepted"] == 300
    assert served.client.post("/v1/admin/retrain?wait=true", headers=served.admin).json()["status"] == "done"
    assert spam in served.service.model.dataset.items  # a catalog item now
    for user in ("user_0001", "user_0002", "someone-new"):
        assert spam not in ids(served.recs(user, k=10)), user


def ids(doc: dict) -> list[str]:
    return [i["item_id"] for i in doc["items"]]


def test_state_files_are_owner_only(served: Served) -> None:
    served.post([{"event_id": uuid.uuid4().hex, "user_id": "user_0012", "kind": "view", "item_id": "item_0012"}])
    assert served.client.post("/v1/admin/retrain?wait=true", headers=served.admin).json()["status"] == "done"
    state = Path(served.settings.state_dir)
    loose = [f"{p} {oct(p.stat().st_mode & 0o777)}" for p in [state, *state.rglob("*")]
             if p.exists() and p.stat().st_mode & 0o077]
    assert loose == []


def test_the_log_rotates(tmp_path: Path) -> None:
    from socialrec.serve import service as svc_module

    log = svc_module.service_logger(tmp_path)
    handler = next(h for h in log.handlers if isinstance(h, svc_module._PrivateRotatingHandler))
    assert handler.maxBytes == svc_module.LOG_MAX_BYTES and handler.backupCount == svc_module.LOG_BACKUPS
    handler.maxBytes = 2000  # small, to see it roll over
    for n in range(200):
        log.info("line %d %s", n, "x" * 50)
    files = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert files == ["serve.log", "serve.log.1", "serve.log.2", "serve.log.3"]
    assert all((tmp_path / "logs" / f).stat().st_size <= 2200 for f in files)
    assert all(((tmp_path / "logs" / f).stat().st_mode & 0o077) == 0 for f in files)
    log.removeHandler(handler)
    handler.close()


def test_failed_authentications_are_rate_limited_per_address(served: Served) -> None:
    from fastapi.testclient import TestClient

    guesser = TestClient(served.app, client=("203.0.113.7", 5000))
    codes = [guesser.get("/v1/items/item_0001/similar", headers={"Authorization": f"Bearer sr_x_{n}"}).status_code
             for n in range(30)]
    assert codes[0] == 401 and 429 in codes
    r = guesser.get("/v1/items/item_0001/similar", headers=served.reader)  # even a good key waits
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    # another address is not affected
    assert served.client.get("/v1/items/item_0001/similar", headers=served.reader).status_code == 200
