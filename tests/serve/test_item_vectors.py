"""PUT /v1/items/{id} with modality vectors: a new video is recommendable at once, and vectors the
served model cannot use are refused with a 4xx that says why (real TikTok vectors, no training:
the served model is the modality profile, which places items from their vectors)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def tiktok_service(tmp_path_factory: pytest.TempPathFactory, real_data: Path):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from socialrec.serve.app import create_app
    from socialrec.serve.engine import ModelConfig
    from socialrec.serve.service import Service
    from socialrec.serve.settings import ServeSettings

    if not (real_data / "tiktok-multimodal").is_dir():
        pytest.skip("tiktok-multimodal is absent")
    settings = ServeSettings(dataset="tiktok-multimodal", data=str(real_data), train_on_start=False,
                             state_dir=str(tmp_path_factory.mktemp("mm-state")), model=ModelConfig("modality"),
                             warm_users=0)
    service = Service(settings)
    service.retrain()
    client = TestClient(create_app(settings, service=service))
    client.__enter__()
    headers = {"Authorization": f"Bearer {service.keys.create(['read', 'write'])}"}
    yield client, headers, service
    client.__exit__(None, None, None)


def test_a_new_video_is_recommended_at_once_from_its_vectors(tiktok_service) -> None:  # type: ignore[no-untyped-def]
    client, headers, service = tiktok_service
    ds = service.model.dataset
    user = "0"
    u = int(ds.users.to_index(user))
    history = service.model.model.user_items_[u].indices
    # A new video that looks and sounds like the user's own videos (the mean of their vectors).
    vectors = {name: ds.item_features[name][history].mean(axis=0).round(5).tolist() for name in ("image", "audio")}
    before = client.get(f"/v1/users/{user}/recommendations", params={"k": 10}, headers=headers).json()
    assert "new-video" not in [r["item_id"] for r in before["items"]]
    r = client.put("/v1/items/new-video", json={"title": "New video", "vectors": vectors}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"id": "new-video", "status": "upserted", "placed": True}
    after = client.get(f"/v1/users/{user}/recommendations", params={"k": 10}, headers=headers).json()
    assert after["items"][0]["item_id"] == "new-video"
    assert service.model.dataset.item_features["image"].shape[0] == service.model.model.n_items_


def test_vectors_the_model_cannot_use_are_refused_with_the_reason(tiktok_service) -> None:  # type: ignore[no-untyped-def]
    client, headers, service = tiktok_service
    n = service.model.model.n_items_
    r = client.put("/v1/items/bad-1", json={"title": "x", "vectors": {"image": [0.1] * 127}}, headers=headers)
    assert r.status_code == 422 and "dimension 127" in r.text and "expects 128" in r.text
    r = client.put("/v1/items/bad-2", json={"title": "x", "vectors": {"smell": [0.1] * 4}}, headers=headers)
    assert r.status_code == 422 and "unknown modality 'smell'" in r.text
    assert service.model.model.n_items_ == n and "bad-1" not in service.model.dataset.items
    # Without vectors the item is stored for the next version, as before.
    r = client.put("/v1/items/plain", json={"title": "x"}, headers=headers)
    assert r.status_code == 200 and r.json()["placed"] is False
    assert np.isfinite(service.model.model.score(np.array([0]))).all()
