"""The hybrid pipeline served through `HybridServingModel`: learned ranking, live effects kept."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serve.conftest import Served

pytest.importorskip("lightgbm")


@pytest.fixture(scope="module")
def hybrid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    s = Served(tmp_path_factory.mktemp("hybrid-state"), model="hybrid", encoder="none",
               hybrid_warm_users=50)
    yield s
    s.close()


def ids(doc: dict) -> list[str]:
    return [i["item_id"] for i in doc["items"]]


def event(user: str, kind: str, item: str) -> dict[str, str]:
    return {"event_id": uuid.uuid4().hex, "user_id": user, "kind": kind, "item_id": item}


def test_the_hybrid_serves_known_users_with_its_reasons(hybrid: Served) -> None:
    from socialrec.serve.hybrid import HybridServingModel

    model = hybrid.service.model
    assert isinstance(model, HybridServingModel)
    assert hybrid.client.get("/readyz").json()["model_kind"].startswith("hybrid(")
    doc = hybrid.recs("user_0003", k=10, explain="true")
    assert len(doc["items"]) == 10 and len(set(ids(doc))) == 10
    assert all(item["explanation"] and item["reasons"] for item in doc["items"])
    # The hybrid's ranking leads (weight 1 against the live list's 0.3 for a user without new events).
    hybrid_top = [r.item_id for r in model.pipeline.recommend("user_0003", 10, explain=False)]
    assert len(set(hybrid_top) & set(ids(doc))) >= 7 and ids(doc)[0] in hybrid_top[:3]
    seen = set(model.pipeline.dataset.items.to_external(
        model.pipeline.model.user_items_[model.pipeline.dataset.users.to_index("user_0003")].indices))
    assert not seen & set(ids(doc))


def test_live_events_and_hides_reach_the_hybrid_list(hybrid: Served) -> None:
    before = ids(hybrid.recs("user_0005", k=20))
    hybrid.post([event("user_0005", "like", before[0]), event("user_0005", "hide", before[1])])
    after = ids(hybrid.recs("user_0005", k=20))
    assert before[0] not in after and before[1] not in after


def test_unknown_users_and_other_scenarios_fall_back_to_the_live_model(hybrid: Served) -> None:
    model = hybrid.service.model
    assert ids(hybrid.recs("brand-new-user", k=5)) == [r.item_id for r in model.live.recommend("brand-new-user", 5)]
    doc = hybrid.recs("user_0007", k=5, scenario="friends")
    assert ids(doc) == [r.item_id for r in model.live.recommend("user_0007", 5, scenario="friends")]


def test_erased_users_leave_the_hybrid(hybrid: Served, tmp_path: Path) -> None:
    hybrid.recs("user_0009", k=5)
    r = hybrid.client.delete("/v1/users/user_0009", headers=hybrid.admin)
    assert r.status_code == 200
    model = hybrid.service.model
    assert "user_0009" in model._forgotten or model.live.user_pos.get("user_0009") is None
