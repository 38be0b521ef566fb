"""sasrec served through the contract: an event extends the user's sequence at once (no retraining)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("torch")

FAST = (("embedding_dim", 32), ("n_layers", 1), ("n_heads", 1), ("epochs", 3), ("patience", 3),
        ("learning_rate", 0.01))


@pytest.mark.slow
def test_an_event_moves_a_served_sasrec_users_sequence_at_once(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from socialrec.serve.app import create_app
    from socialrec.serve.engine import ModelConfig
    from socialrec.serve.service import Service
    from socialrec.serve.settings import ServeSettings

    settings = ServeSettings(dataset="synthetic", state_dir=str(tmp_path), train_on_start=False,
                             model=ModelConfig("sasrec", params=FAST))
    service = Service(settings)
    service.retrain()
    with TestClient(create_app(settings, service=service)) as client:
        admin = {"Authorization": f"Bearer {service.keys.create(['read', 'write', 'admin'])}"}

        def recs() -> dict:
            r = client.get("/v1/users/user_0020/recommendations", params={"k": 10}, headers=admin)
            assert r.status_code == 200, r.text
            return r.json()

        before = recs()
        top = before["items"][0]["item_id"]
        r = client.post("/v1/events", json={"events": [{"event_id": uuid.uuid4().hex, "user_id": "user_0020",
                                                        "kind": "like", "item_id": top}]}, headers=admin)
        assert r.status_code == 200, r.text
        after = recs()
        assert after["model_version"] == before["model_version"]  # folded in, no retraining
        assert top not in [i["item_id"] for i in after["items"]]
        model = service.model.model  # the served SASRec: the liked item is now the newest of the sequence
        service.model.flush()
        ds = service.model.dataset
        user, item = int(ds.users.to_index(["user_0020"])[0]), int(ds.items.to_index([top])[0])
        assert model.recent_items(user, 1).tolist() == [item]
