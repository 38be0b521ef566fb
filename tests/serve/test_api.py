"""The /v1 API on the synthetic platform: auth, real-time learning, cold start, limits, erasure."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import numpy as np
import pytest

from tests.serve.conftest import Served, wait_for


def eid() -> str:
    return uuid.uuid4().hex


def ids(doc: dict) -> list[str]:
    return [i["item_id"] for i in doc["items"]]


# --- security ------------------------------------------------------------------------------
def test_every_endpoint_needs_the_right_scope(served: Served) -> None:
    c = served.client
    assert c.get("/v1/users/user_0001/recommendations").status_code == 401
    r = c.get("/v1/users/user_0001/recommendations", headers={"Authorization": "Bearer sr_nope_nope"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert c.get("/v1/users/user_0001/recommendations", headers=served.reader).status_code == 200
    body = {"events": [{"event_id": eid(), "user_id": "user_0001", "kind": "view", "item_id": "item_0001"}]}
    assert c.post("/v1/events", json=body, headers=served.reader).status_code == 403
    assert c.delete("/v1/users/user_0001", headers=served.reader).status_code == 403
    assert c.get("/metrics", headers=served.reader).status_code == 403
    assert c.get("/v1/admin/models", headers=served.reader).status_code == 403
    assert c.get("/healthz").status_code == 200 and c.get("/readyz").json()["status"] == "ready"


def test_keys_are_stored_hashed(served: Served) -> None:
    key = served.service.keys.create(["read"])
    raw = Path(served.service.keys.path).read_bytes() + Path(str(served.service.keys.path) + "-wal").read_bytes()
    assert key.split("_", 2)[2].encode() not in raw


def test_rate_limit_answers_429_with_retry_after(served: Served) -> None:
    slow = served.auth(served.service.keys.create(["read"], rate_per_second=1.0))
    codes = [served.client.get("/v1/items/item_0001/similar", headers=slow).status_code for _ in range(4)]
    assert codes[0] == 200 and 429 in codes
    r = served.client.get("/v1/items/item_0001/similar", headers=slow)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


def test_body_size_limit_and_cors_off(served: Served) -> None:
    big = {"events": [{"event_id": eid(), "user_id": "u", "kind": "comment", "item_id": "item_0001",
                       "text": "x" * 4000}] * 300}
    assert served.client.post("/v1/events", json=big, headers=served.admin).status_code == 413
    r = served.client.get("/healthz", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_invalid_events_are_422(served: Served) -> None:
    for bad in ({"event_id": "a", "user_id": "u", "kind": "like"},  # no item
                {"event_id": "a", "user_id": "u", "kind": "follow"},  # no target
                {"event_id": "a", "user_id": "u", "kind": "rating", "item_id": "i", "value": 9},
                {"event_id": "a", "user_id": "u", "kind": "teleport", "item_id": "i"},
                {"event_id": "a", "user_id": "u", "kind": "view", "item_id": "i", "extra": 1}):
        assert served.client.post("/v1/events", json={"events": [bad]}, headers=served.admin).status_code == 422


# --- reading -----------------------------------------------------------------------------
def test_recommendations_follow_the_planted_community(served: Served) -> None:
    from socialrec.ingest.datasets.synthetic import load_synthetic, synthetic_truth

    ds = load_synthetic()
    truth = synthetic_truth(ds)
    doc = served.recs("user_0003", k=10)
    assert doc["model_version"] == "v0001" and len(doc["items"]) == 10
    idx = ds.items.to_index(ids(doc))
    community = truth.user_community[ds.users.to_index("user_0003")]
    share = float(np.mean(truth.item_topic[idx] == community))
    assert share >= 0.7  # 85% of a user's items are on their community's topic


def test_explanations_use_the_shared_reason_shape(served: Served) -> None:
    doc = served.recs("user_0004", k=10, explain="true")
    kinds = {r["kind"] for item in doc["items"] for r in item["reasons"]}
    assert "collaborative" in kinds and "friends_liked" in kinds
    for item in doc["items"]:
        assert item["explanation"].startswith(item["title"] + ": recommended because")
        for r in item["reasons"]:
            if r["kind"] == "friends_liked":
                assert all(f["id"].startswith("user_") for f in r["evidence"]["friends"])


def test_similar_items_and_friend_suggestions(served: Served) -> None:
    r = served.client.get("/v1/items/item_0010/similar?k=5", headers=served.reader).json()
    assert len(r["items"]) == 5 and "item_0010" not in ids(r)
    assert served.client.get("/v1/items/nope/similar", headers=served.reader).status_code == 404
    f = served.client.get("/v1/users/user_0010/friend-suggestions?k=5", headers=served.reader).json()
    assert len(f["users"]) == 5
    friends = set(served.service.model.bundle.social[10].indices.tolist())
    assert not {served.service.model.user_ids[i] for i in friends} & {u["user_id"] for u in f["users"]}
    assert served.client.get("/v1/users/nobody/friend-suggestions", headers=served.reader).status_code == 404


def test_unknown_user_gets_popular_items(served: Served) -> None:
    doc = served.recs("brand-new-user", k=5, explain="true")
    assert len(doc["items"]) == 5
    assert doc["items"][0]["reasons"][0]["kind"] in ("popular", "trending")


# --- real-time learning ------------------------------------------------------------------
def test_new_events_change_the_next_recommendations(served: Served) -> None:
    before = served.recs("user_0020", k=20)
    top = ids(before)[0]
    factor_before = served.service.model._user_factor(20).copy()
    served.post([{"event_id": eid(), "user_id": "user_0020", "kind": "like", "item_id": top},
                 {"event_id": eid(), "user_id": "user_0020", "kind": "hide", "item_id": ids(before)[1]}])
    after = served.recs("user_0020", k=20)
    assert top not in ids(after) and ids(before)[1] not in ids(after)
    assert not np.allclose(served.service.model._user_factor(20), factor_before)  # folded in, no retraining
    hidden = ids(before)[1]
    for scenario in ("home", "friends", "trending", "new"):
        assert hidden not in ids(served.recs("user_0020", k=100, scenario=scenario))


def test_fold_in_reproduces_the_trained_factor(served: Served) -> None:
    model = served.service.model
    trained = model.bundle.user_factors[30].copy()
    model._fold_in(30)
    folded = model.factors.pop(30)
    cos = float(folded @ trained / np.linalg.norm(folded) / np.linalg.norm(trained))
    assert cos > 0.95


def test_a_friends_new_like_reaches_social_proof(served: Served) -> None:
    served.client.put("/v1/items/fresh-item", json={"title": "Zzq unseen thing"}, headers=served.admin)
    served.post([{"event_id": eid(), "user_id": "user_0040", "kind": "follow", "target_user_id": "user_0041"}])
    model = served.service.model
    friends = [model.user_ids[f] for f in model._friends(40)[0].tolist()]
    assert "user_0041" in friends  # the new follow counts at once
    served.post([{"event_id": eid(), "user_id": f, "kind": "like", "item_id": "fresh-item"} for f in friends])
    doc = served.recs("user_0040", k=3, scenario="friends", explain="true")
    assert ids(doc)[0] == "fresh-item"
    reason = [r for r in doc["items"][0]["reasons"] if r["kind"] == "friends_liked"][0]
    assert len(reason["evidence"]["friends"]) == 3
    everyone = model._friend_evidence(40, model.item_pos["fresh-item"], limit=100)
    assert {f["id"] for f in everyone} == set(friends)


def test_a_new_item_with_text_is_recommended_at_once(served: Served) -> None:
    # user_0000's community and its topic words, from the planted truth
    from socialrec.ingest.datasets.synthetic import load_synthetic, synthetic_truth, topic_vocabulary

    ds = load_synthetic()
    topic = int(synthetic_truth(ds).user_community[0])
    words = " ".join(topic_vocabulary(4)[topic][:4])
    served.client.put("/v1/items/cold-1", json={"title": words.title(), "text": words}, headers=served.admin)
    doc = served.recs("user_0000", k=20, scenario="new", explain="true")
    assert "cold-1" in ids(doc)[:5]
    entry = next(i for i in doc["items"] if i["item_id"] == "cold-1")
    assert {r["kind"] for r in entry["reasons"]} >= {"new", "similar_to"}


def test_retried_batch_is_idempotent(served: Served) -> None:
    batch = [{"event_id": f"idem-{i}", "user_id": "user_0050", "kind": "view", "item_id": f"item_{i:04d}"}
             for i in range(5)]
    assert served.post(batch) == {"accepted": 5, "duplicates": 0}
    assert served.post(batch) == {"accepted": 0, "duplicates": 5}
    rows = served.service.store._rows("SELECT COUNT(*) FROM events WHERE event_id LIKE 'idem-%'")
    assert rows[0][0] == 5


def test_ctr_and_metrics(served: Served) -> None:
    doc = served.recs("user_0060", k=5)
    served.post([{"event_id": eid(), "user_id": "user_0060", "kind": "click", "item_id": ids(doc)[0]}])
    text = served.client.get("/metrics", headers=served.admin).text
    assert "socialrec_recommendation_clicks_total 1.0" in text or "socialrec_recommendation_clicks_total" in text
    clicks = [l for l in text.splitlines() if l.startswith("socialrec_recommendation_clicks_total ")]
    assert float(clicks[0].split()[1]) >= 1
    assert 'socialrec_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/v1/users/{user_id}/recommendations"}' in text
    assert "socialrec_events_ingested_total" in text and "socialrec_recommendation_coverage" in text


# --- models ------------------------------------------------------------------------------
def test_hot_swap_under_load_drops_no_request(served: Served) -> None:
    stop = threading.Event()
    codes: list[int] = []
    versions: set[str] = set()

    def hammer() -> None:
        while not stop.is_set():
            r = served.client.get("/v1/users/user_0070/recommendations?k=20", headers=served.admin)
            codes.append(r.status_code)
            if r.status_code == 200:
                versions.add(r.json()["model_version"])

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        r = served.client.post("/v1/admin/retrain?wait=true", headers=served.admin)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert r.status_code == 200 and r.json()["status"] == "done"
    new = r.json()["version"]
    assert len(codes) > 10 and set(codes) == {200}
    assert new in versions or served.recs("user_0070")["model_version"] == new
    listed = served.client.get("/v1/admin/models", headers=served.admin).json()
    assert listed["serving"] == new
    assert all("ndcg@10" in v["metrics"] for v in listed["versions"])
    # the earlier like/hide of user_0020 survives the swap (replayed or trained in)
    assert served.recs("user_0020")["items"]


# --- privacy -----------------------------------------------------------------------------
def _occurs(path: Path, text: str) -> bool:
    data = path.read_bytes()
    return any(text.encode(enc) in data for enc in ("utf-8", "utf-32-le", "utf-16-le"))


def test_erasure_leaves_no_trace(served: Served) -> None:
    uid = "erase-me-7f3a"
    c, h = served.client, served.admin
    assert c.put(f"/v1/users/{uid}", json={"name": "Eve", "text": "I love vinyl and jazz concerts"}, headers=h).status_code == 200
    served.post([{"event_id": eid(), "user_id": uid, "kind": "like", "item_id": "item_0003"},
                 {"event_id": eid(), "user_id": uid, "kind": "comment", "item_id": "item_0003", "text": "great vinyl"},
                 {"event_id": eid(), "user_id": uid, "kind": "follow", "target_user_id": "user_0001"},
                 {"event_id": eid(), "user_id": "user_0002", "kind": "follow", "target_user_id": uid}])
    served.recs(uid)
    assert c.post("/v1/admin/retrain?wait=true", headers=h).json()["status"] == "done"
    state = Path(served.settings.state_dir)
    assert any(_occurs(p, uid) for p in (state / "models").rglob("arrays.npz"))
    r = c.delete(f"/v1/users/{uid}", headers=h)
    assert r.status_code == 200
    receipt = r.json()
    assert receipt["events_deleted"] == 3 and receipt["events_about_user_deleted"] == 1 and receipt["profile_deleted"]
    assert receipt["embeddings_deleted"] >= 1 and receipt["model_versions_rewritten"]
    wait_for(lambda: served.service.jobs[receipt["retrain_job"]]["status"] != "running", 120)
    files = [p for p in state.rglob("*") if p.is_file()]
    assert any(p.name == "events.sqlite3" for p in files) and any(p.name == "embeddings.sqlite3" for p in files)
    assert any(p.name == "serve.log" for p in files)
    leaks = [str(p) for p in files if _occurs(p, uid)]
    assert leaks == []
    assert uid not in c.get("/v1/users/user_0002/friend-suggestions?k=50", headers=h).text

