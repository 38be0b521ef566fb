"""Several datasets served as scenarios of one service: one backbone in memory, ``?scenario=``
picks the scenario's adapter and id space, events stay in their scenario, restart keeps all."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from socialrec.errors import ConfigError

pytest.importorskip("fastapi")
pytest.importorskip("torch")
pytest.importorskip("peft")

# Two synthetic platforms whose ids collide (user_0005, item_0010 exist in both, meaning different
# things); only B has users user_0200.. and items item_0150..
A = "synthetic:n_users=200,n_items=150,seed=1"
B = "synthetic:n_users=240,n_items=180,seed=2"
FAST = (("embedding_dim", 32), ("n_layers", 1), ("n_heads", 1), ("dropout", 0.0), ("learning_rate", 0.01),
        ("batch_size", 64), ("epochs", 3), ("patience", 3), ("adapter_epochs", 2), ("adapter_patience", 2),
        ("min_steps", 5), ("num_threads", 1), ("cache", False))


def settings(state_dir: Path, **overrides: Any) -> Any:
    from socialrec.serve.engine import ModelConfig
    from socialrec.serve.settings import ServeSettings
    from tests.retrieve.test_content import ENCODER

    model = ModelConfig("adapter-seq", params=FAST + (("encoder_object", ENCODER),))
    return ServeSettings(dataset=A, scenarios=(B,), state_dir=str(state_dir), train_on_start=False, warm_users=0,
                         model=model, **overrides)


class Scenarios:
    def __init__(self, state_dir: Path, train: bool) -> None:
        from fastapi.testclient import TestClient

        from socialrec.serve.app import create_app
        from socialrec.serve.service import Service

        self.settings = settings(state_dir)
        self.service = Service(self.settings)
        if train:
            self.service.retrain()
        self.app = create_app(self.settings, service=self.service)
        self.client = TestClient(self.app)
        self.client.__enter__()  # starts the service (loads the saved versions when not trained here)
        self.admin = {"Authorization": f"Bearer {self.service.keys.create(['read', 'write', 'admin'])}"}
        self.open = True

    def recs(self, user: str, scenario: str | None = None, k: int = 10) -> dict[str, Any]:
        params: dict[str, Any] = {"k": k} if scenario is None else {"k": k, "scenario": scenario}
        r = self.client.get(f"/v1/users/{user}/recommendations", params=params, headers=self.admin)
        assert r.status_code == 200, r.text
        return r.json()

    def close(self) -> None:
        if self.open:
            self.client.__exit__(None, None, None)
            self.open = False


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scenarios-state")


@pytest.fixture(scope="module")
def served(state: Path) -> Iterator[Scenarios]:
    s = Scenarios(state, train=True)
    yield s
    s.close()


def ids(body: dict[str, Any]) -> list[str]:
    return [i["item_id"] for i in body["items"]]


@pytest.mark.slow
def test_two_scenarios_share_one_backbone_and_answer_in_their_own_id_space(served: Scenarios) -> None:
    svc = served.service
    assert list(svc.scenarios) == [A, B]
    models = [svc.scenarios[n].model.model for n in (A, B)]
    assert [type(m).__name__ for m in models] == ["AdapterSeq", "AdapterSeq"]
    assert models[0].backbone_ is models[1].backbone_  # one backbone object in memory
    assert models[0].backbone_.adapters == [A, B]
    assert (models[0].scenario, models[1].scenario) == (A, B)
    default, a, b = served.recs("user_0005"), served.recs("user_0005", A), served.recs("user_0005", B)
    assert default == a and a["scenario"] == A and b["scenario"] == B
    assert ids(a) != ids(b)
    # Each answer names items by its own catalogue: the titles are those of that scenario's dataset.
    for body, name in ((a, A), (b, B)):
        ds = svc.scenarios[name].model.dataset
        for item in body["items"]:
            assert item["title"] == ds.item_titles(ds.items.to_index([item["item_id"]]))[0]
    assert ids(served.recs("user_0230", B))  # a user of B only; A answers a stranger with its popular items
    r = served.client.get("/v1/items/item_0170/similar", params={"scenario": B}, headers=served.admin)
    assert r.status_code == 200 and r.json()["scenario"] == B and len(r.json()["items"]) == 20
    assert served.client.get("/v1/items/item_0170/similar", headers=served.admin).status_code == 404  # not in A
    r = served.client.get("/v1/scenarios", headers=served.admin)
    assert r.json() == {"default": A, "scenarios": [A, B]}
    assert served.client.get("/readyz").json()["status"] == "ready"


@pytest.mark.slow
def test_an_unknown_scenario_is_422_naming_the_known_ones(served: Scenarios) -> None:
    c, h = served.client, served.admin
    event = {"event_id": uuid.uuid4().hex, "user_id": "user_0005", "kind": "like", "item_id": "item_0001"}
    answers = [c.get("/v1/users/user_0005/recommendations", params={"scenario": "games"}, headers=h),
               c.get("/v1/users/user_0005/recommendations", params={"scenario": "games", "explain": "true"}, headers=h),
               c.get("/v1/items/item_0001/similar", params={"scenario": "games"}, headers=h),
               c.get("/v1/users/user_0005/activity", params={"scenario": "games"}, headers=h),
               c.post("/v1/events", params={"scenario": "games"}, json={"events": [event]}, headers=h)]
    for r in answers:
        assert r.status_code == 422, r.text
        (error,) = r.json()["detail"]  # shaped as FastAPI's validation errors, as the OpenAPI schema says
        assert error["loc"] == ["query", "scenario"] and error["input"] == "games"
        assert "games" in error["msg"] and A in error["msg"] and B in error["msg"]
    assert c.get("/v1/users/user_0005/activity", headers=h).json()["events"] == []  # nothing stored
    # The schema names the hosted scenarios, so that a client knows which names are valid.
    params = c.get("/openapi.json").json()["paths"]["/v1/users/{user_id}/activity"]["get"]["parameters"]
    assert [p["schema"]["enum"] for p in params if p["name"] == "scenario"] == [[A, B]]


@pytest.mark.slow
def test_writes_to_a_scenario_still_need_a_write_key(served: Scenarios) -> None:
    event = {"event_id": uuid.uuid4().hex, "user_id": "user_0005", "kind": "like", "item_id": "item_0001"}
    reader = {"Authorization": f"Bearer {served.service.keys.create(['read'])}"}
    c = served.client
    assert c.post("/v1/events", params={"scenario": B}, json={"events": [event]}).status_code == 401
    assert c.post("/v1/events", params={"scenario": B}, json={"events": [event]}, headers=reader).status_code == 403
    assert c.get("/v1/users/user_0005/recommendations", params={"scenario": B}).status_code == 401
    assert c.get("/v1/users/user_0005/activity", params={"scenario": B}, headers=served.admin).json()["events"] == []


@pytest.mark.slow
def test_an_event_in_one_scenario_moves_that_scenario_only_at_once(served: Scenarios) -> None:
    before_a, before_b = served.recs("user_0005", A), served.recs("user_0005", B)
    top = ids(before_b)[0]
    r = served.client.post("/v1/events", params={"scenario": B}, headers=served.admin, json={"events": [
        {"event_id": uuid.uuid4().hex, "user_id": "user_0005", "kind": "like", "item_id": top}]})
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    after_a, after_b = served.recs("user_0005", A), served.recs("user_0005", B)
    assert after_b["model_version"] == before_b["model_version"]  # folded in, no retraining
    assert top not in ids(after_b) and ids(after_b) != ids(before_b)
    assert after_a == before_a  # the same user id in A is another user: untouched
    svc_b = served.service.scenarios[B]
    model, ds = svc_b.model.model, svc_b.model.dataset
    user, item = int(ds.users.to_index(["user_0005"])[0]), int(ds.items.to_index([top])[0])
    assert model.recent_items(user, 1).tolist() == [item]  # the newest item of B's sequence
    activity = served.client.get("/v1/users/user_0005/activity", params={"scenario": B}, headers=served.admin)
    assert [e["item_id"] for e in activity.json()["events"]] == [top]
    assert served.client.get("/v1/users/user_0005/activity", headers=served.admin).json()["events"] == []
    assert len(served.service.store.events()) == 0 and len(svc_b.store.events()) == 1  # one store per scenario


@pytest.mark.slow
def test_the_dashboard_picks_and_names_the_scenario(served: Scenarios) -> None:
    import shutil
    import socket
    import tempfile
    import threading

    import uvicorn

    from tests.serve.conftest import wait_for
    from tests.serve.test_dashboard import CHROMIUM, DRIVER

    webdriver = pytest.importorskip("selenium.webdriver")
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        pytest.skip("chromium/chromedriver missing: run `make chromium`")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service as DriverService
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    key = served.service.keys.create(["read"])
    expected = [i["title"] for i in served.recs("user_0005", B)["items"]]
    profile = tempfile.mkdtemp(prefix="socialrec-chromium-")
    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    # lifespan off: the service is started already, and keeps serving after this test
    server = uvicorn.Server(uvicorn.Config(served.app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    driver = webdriver.Chrome(service=DriverService(DRIVER), options=options)
    try:
        wait_for(lambda: server.started, 30)
        driver.get(f"http://127.0.0.1:{port}/#key={key}")
        wait = WebDriverWait(driver, 20)
        wait.until(lambda d: d.find_element(By.ID, "scenario-box").is_displayed())
        select = Select(driver.find_element(By.ID, "scenario"))
        assert [o.get_attribute("value") for o in select.options] == [A, B]
        select.select_by_value(B)
        driver.find_element(By.ID, "user").send_keys("user_0005")
        driver.find_element(By.ID, "lookup").click()
        wait.until(lambda d: f"scenario {B}" in d.find_element(By.ID, "status").text)
        titles = [e.text.strip() for e in driver.find_elements(By.CSS_SELECTOR, "#recs li > span:first-child")]
        assert titles == expected
    finally:
        driver.quit()
        server.should_exit = True
        thread.join(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.slow
def test_a_restart_serves_every_scenario_again_on_one_backbone(served: Scenarios, state: Path) -> None:
    from socialrec.serve.service import Service

    before = {n: served.recs("user_0005", n) for n in (A, B)}
    served.close()
    again = Scenarios(state, train=False)
    try:
        svc: Service = again.service
        assert svc.ready()[0]
        models = [svc.scenarios[n].model for n in (A, B)]
        assert [m.version for m in models] == ["v0001", "v0001"]  # loaded, not retrained
        assert models[0].model.backbone_ is models[1].model.backbone_
        for n in (A, B):  # B's event was folded in again from its store
            assert ids(again.recs("user_0005", n)) == ids(before[n])
    finally:
        again.close()


# --- settings and the command line (no training) ---------------------------------------------
def test_scenario_settings_are_checked(tmp_path: Path) -> None:
    from socialrec.serve.engine import ModelConfig
    from socialrec.serve.settings import ServeSettings

    with pytest.raises(ConfigError, match="adapter-seq"):
        ServeSettings(dataset=A, scenarios=(B,), state_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="once"):
        ServeSettings(dataset=A, scenarios=(A,), state_dir=str(tmp_path), model=ModelConfig("adapter-seq"))
    with pytest.raises(ConfigError, match="SQLite"):
        ServeSettings(dataset=A, scenarios=(B,), state_dir=str(tmp_path), model=ModelConfig("adapter-seq"),
                      store="postgresql://u:p@localhost:5432/db")
    one = ServeSettings(dataset=A, state_dir=str(tmp_path))
    assert one.scenarios == () and one.names == (A,) and one.model.name == "hybrid"


def test_serve_takes_several_datasets_or_a_scenarios_file(tmp_path: Path) -> None:
    from socialrec.cli.main import build_parser
    from socialrec.cli.serve_cmd import serve_settings

    def parse(*argv: str) -> Any:
        return serve_settings(build_parser().parse_args(["serve", *argv, "--state-dir", str(tmp_path)]))

    one = parse("--dataset", "lastfm")
    assert (one.dataset, one.scenarios, one.model.name) == ("lastfm", (), "hybrid")
    two = parse("--dataset", "lastfm", "--dataset", "movielens-100k")
    assert (two.dataset, two.scenarios, two.model.name) == ("lastfm", ("movielens-100k",), "adapter-seq")
    toml = tmp_path / "scenarios.toml"
    toml.write_text('datasets = ["movielens-100k", "lastfm"]\n[model]\nembedding_dim = 32\nepochs = 4\n')
    cfg = parse("--scenarios", str(toml))
    assert (cfg.dataset, cfg.scenarios) == ("movielens-100k", ("lastfm",))
    assert dict(cfg.model.params) == {"embedding_dim": 32, "epochs": 4}
    js = tmp_path / "scenarios.json"
    js.write_text(json.dumps({"datasets": ["lastfm", "movielens-100k"]}))
    assert parse("--scenarios", str(js)).scenarios == ("movielens-100k",)
    js.write_text(json.dumps({"datasets": ["lastfm", "movielens-100k"], "default": "lastfm"}))
    with pytest.raises(ConfigError, match="default"):
        parse("--scenarios", str(js))
    toml.write_text('datasets = ["movielens-100k", "lastfm"]\n[model]\nembeding_dim = 32\n')
    with pytest.raises(ConfigError, match="embeding_dim"):
        parse("--scenarios", str(toml))
    with pytest.raises(ValueError, match="either"):
        parse("--dataset", "lastfm", "--scenarios", str(js))
    with pytest.raises(ConfigError, match="adapter-seq"):
        parse("--dataset", "lastfm", "--dataset", "movielens-100k", "--model", "als")


def test_one_dataset_answers_as_before_and_names_its_one_scenario(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from socialrec.serve.app import create_app
    from socialrec.serve.engine import ModelConfig
    from socialrec.serve.service import Service
    from socialrec.serve.settings import ServeSettings

    one = ServeSettings(dataset=A, state_dir=str(tmp_path), train_on_start=False, warm_users=0,
                        model=ModelConfig("pop", friends="common-neighbors"))
    service = Service(one)
    service.retrain()
    with TestClient(create_app(one, service=service)) as client:
        h = {"Authorization": f"Bearer {service.keys.create(['read'])}"}
        plain = client.get("/v1/users/user_0005/recommendations", headers=h).json()
        assert set(plain) == {"user_id", "model_version", "items"}  # no scenario field with one dataset
        named = client.get("/v1/users/user_0005/recommendations", params={"scenario": A}, headers=h).json()
        assert named == plain
        r = client.get("/v1/users/user_0005/recommendations", params={"scenario": B}, headers=h)
        assert r.status_code == 422 and r.json()["detail"][0]["msg"] == f"unknown scenario {B!r}; known: {A}"
        assert client.get("/v1/scenarios", headers=h).json() == {"default": A, "scenarios": [A]}
