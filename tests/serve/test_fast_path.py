"""The fast request path: cached candidate rows stay exact under events, and the plain route
validates like the documented one."""

from __future__ import annotations

import uuid

import pytest

from tests.serve.conftest import Served


def event(user: str, kind: str, item: str | None = None, target: str | None = None) -> dict[str, str]:
    e = {"event_id": uuid.uuid4().hex, "user_id": user, "kind": kind}
    if item is not None:
        e["item_id"] = item
    if target is not None:
        e["target_user_id"] = target
    return e


def test_cached_rows_equal_a_fresh_model_after_events(served: Served) -> None:
    from socialrec.serve.model import LiveModel

    model = served.service.model
    users = [f"user_{u:04d}" for u in range(100, 140)]
    for u in users:  # fill the caches before anything changes
        model.recommend(u, 20)
        model.recommend(u, 20, scenario="friends")
    friends_of_100 = [model.user_ids[f] for f in model._friends(100)[0].tolist()]
    top = [r.item_id for r in model.recommend("user_0101", 3)]
    served.post([event(f, "like", "item_0007") for f in friends_of_100[:3]]  # friends' likes
                + [event("user_0101", "like", top[0]), event("user_0101", "hide", top[1]),  # own events
                   event("user_0102", "follow", target="user_0130"), event("user_0130", "share", "item_0011")])
    fresh = LiveModel(model.bundle, model.options)
    fresh.observe(served.service.store.events())
    for u in users:
        for scenario in ("home", "friends"):
            got = [(r.item_id, round(r.score, 9)) for r in model.recommend(u, 20, scenario=scenario)]
            want = [(r.item_id, round(r.score, 9)) for r in fresh.recommend(u, 20, scenario=scenario)]
            assert got == want, (u, scenario)
    assert top[0] not in [r.item_id for r in model.recommend("user_0101", 20)]


@pytest.mark.parametrize(("query", "field", "kind"), [
    ({"k": "0"}, "k", "greater_than_equal"), ({"k": "201"}, "k", "less_than_equal"),
    ({"k": "ten"}, "k", "int_parsing"), ({"explain": "maybe"}, "explain", "bool_parsing"),
    ({"scenario": "weird"}, "scenario", "string_pattern_mismatch")])
def test_the_plain_route_refuses_bad_parameters_like_fastapi(served: Served, query: dict[str, str], field: str,
                                                              kind: str) -> None:
    r = served.client.get("/v1/users/user_0001/recommendations", params=query, headers=served.reader)
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert detail[0]["loc"] == ["query", field] and detail[0]["type"] == kind and detail[0]["msg"]


def test_the_plain_route_checks_keys_and_accepts_fastapi_booleans(served: Served) -> None:
    path = "/v1/users/user_0001/recommendations"
    assert served.client.get(path, headers={"Authorization": "Basic abc"}).status_code == 401
    doc = served.client.get(path, params={"explain": "ON", "k": "3"}, headers=served.reader).json()
    assert len(doc["items"]) == 3 and all("reasons" in i for i in doc["items"])
    plain = served.client.get(path, params={"k": "3", "explain": "0"}, headers=served.reader).json()
    assert all("reasons" not in i for i in plain["items"])


def test_the_written_list_equals_the_models_list_and_follows_title_changes(served: Served) -> None:
    model = served.service.model
    path = "/v1/users/user_0105/recommendations"
    for scenario in ("home", "friends", "trending"):
        got = served.client.get(path, params={"k": "15", "scenario": scenario}, headers=served.reader).json()
        want = model.recommend("user_0105", 15, scenario=scenario)
        assert [(x["item_id"], x["title"], x["score"]) for x in got["items"]] == \
            [(r.item_id, r.title, round(r.score, 6)) for r in want]
    first = got["items"][0]["item_id"]
    r = served.client.put(f"/v1/items/{first}", json={"title": 'Renamed "quoted" \u00e9', "text": ""},
                          headers=served.admin)
    assert r.status_code == 200, r.text
    again = served.client.get(path, params={"k": "15", "scenario": "trending"}, headers=served.reader).json()
    assert again["items"][0] == {**got["items"][0], "title": 'Renamed "quoted" \u00e9'}


def test_warmed_rows_then_events_equal_a_cold_model(served: Served) -> None:
    from socialrec.serve.model import LiveModel

    model = served.service.model
    friends_of_110 = [model.user_ids[f] for f in model._friends(110)[0].tolist()]
    top = [r.item_id for r in model.recommend("user_0111", 3)]
    served.post([event(f, "like", "item_0005") for f in friends_of_110[:2]]
                + [event("user_0111", "like", top[0]), event("user_0111", "hide", top[1])])
    warmed = LiveModel(model.bundle, model.options)
    assert warmed.warm(10_000) > 100 and len(warmed._rows) > 100
    warmed.observe(served.service.store.events())  # as Service.activate does: warm, then catch up
    cold = LiveModel(model.bundle, model.options)
    cold.observe(served.service.store.events())
    for u in [f"user_{i:04d}" for i in range(100, 130)]:
        assert [(r.item_id, round(r.score, 9)) for r in warmed.recommend(u, 20)] == \
            [(r.item_id, round(r.score, 9)) for r in cold.recommend(u, 20)], u
