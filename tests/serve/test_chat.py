"""POST /v1/users/{id}/chat and GET /v1/items/{id}/blurb on the served synthetic platform, attacked
with bad input: no key, empty and 10 kB messages, unknown and foreign session ids, unknown users,
unknown items; sessions expire, are exported and erased with the user, and their text is scrubbed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serve.conftest import Served


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def chat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Clock]]:
    clock = Clock()
    from socialrec.serve.engine import ModelConfig

    # Item-kNN fits in a second; the chat needs a served model, not the hybrid.
    s = Served(Path(tmp_path_factory.mktemp("chat-state")), service_options={"clock": clock},
               model=ModelConfig("itemknn", friends="common-neighbors"), chat_encoder=None, chat_session_ttl_s=600.0)
    yield s, clock
    s.close()


def say(s: Served, user: str, message: str, session: str | None = None, **extra: Any) -> Any:
    body: dict[str, Any] = {"message": message, **extra}
    if session is not None:
        body["session_id"] = session
    return s.client.post(f"/v1/users/{user}/chat", json=body, headers=s.reader)


def a_tag(s: Served) -> str:
    dialogue, _ = s.service.chat.parts(s.service.model)
    cat = dialogue.catalog
    return next(t for t in cat.tags if [m.tag for m in cat.match(t)] == [t])


def test_a_session_refines_by_tag_and_keeps_its_id(chat: tuple[Served, Clock]) -> None:
    s, _ = chat
    user = str(s.service.model.dataset.users.external_ids[3])
    tag = a_tag(s)
    r = say(s, user, f"I want {tag}", k=5)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert len(doc["items"]) == 5 and doc["session_id"] and doc["generated"] is False
    catalog = s.service.chat.parts(s.service.model)[0].catalog
    for it in doc["items"]:
        assert tag in catalog.tags_of(catalog.index_of(it["item_id"]))
        assert set(it) == {"item_id", "title", "reason"}
    r2 = say(s, user, "more please", session=doc["session_id"], k=5)
    assert r2.status_code == 200 and r2.json()["session_id"] == doc["session_id"]
    assert not {i["item_id"] for i in doc["items"]} & {i["item_id"] for i in r2.json()["items"]}


def test_bad_input_gets_clear_4xx_never_5xx(chat: tuple[Served, Clock]) -> None:
    s, _ = chat
    user = str(s.service.model.dataset.users.external_ids[0])
    assert s.client.post(f"/v1/users/{user}/chat", json={"message": "hi"}).status_code == 401
    assert say(s, user, "").status_code == 422
    big = say(s, user, "rock " * 2048)  # 10 kB
    assert big.status_code == 422
    assert say(s, user, "hi", k=0).status_code == 422
    assert say(s, user, "hi", session="no-such-session").status_code == 404
    r = s.client.post(f"/v1/users/{user}/chat", json={"message": "hi", "extra": 1}, headers=s.reader)
    assert r.status_code == 422
    r = s.client.post(f"/v1/users/{user}/chat", content=b"{not json", headers={**s.reader, "Content-Type": "application/json"})
    assert r.status_code == 422
    # Another user's session id is not theirs to continue.
    sid = say(s, user, "hello").json()["session_id"]
    other = str(s.service.model.dataset.users.external_ids[1])
    assert say(s, other, "hello", session=sid).status_code == 404
    for text in ("   ", "\u0000\u0007", "😀" * 50, "no no no no", "like like like", "朋友 最新 热门"):
        r = say(s, user, text)
        assert r.status_code == 200, (text, r.text)


def test_an_unknown_user_chats_from_the_words_alone(chat: tuple[Served, Clock]) -> None:
    s, _ = chat
    tag = a_tag(s)
    r = say(s, "never-seen-user", f"some {tag}", k=4)
    assert r.status_code == 200, r.text
    catalog = s.service.chat.parts(s.service.model)[0].catalog
    assert all(tag in catalog.tags_of(catalog.index_of(i["item_id"])) for i in r.json()["items"])
    zh = say(s, "never-seen-user", "有什么热门的推荐吗？")
    assert zh.status_code == 200 and zh.json()["language"] == "zh"
    assert any("\u4e00" <= ch <= "\u9fff" for ch in zh.json()["reply"])


def test_a_session_of_a_user_id_in_chinese_continues(chat: tuple[Served, Clock]) -> None:
    s, _ = chat
    sid = say(s, "张伟", "有什么热门的推荐吗？").json()["session_id"]
    r = say(s, "张伟", "还有别的吗？", session=sid)
    assert r.status_code == 200 and r.json()["session_id"] == sid, r.text


def test_sessions_expire(chat: tuple[Served, Clock]) -> None:
    s, clock = chat
    sid = say(s, "u-expiring", "hello").json()["session_id"]
    clock.now += 601
    r = say(s, "u-expiring", "hello again", session=sid)
    assert r.status_code == 404 and "expired" in r.json()["detail"]


def test_sessions_are_scrubbed_exported_and_erased_with_the_user(chat: tuple[Served, Clock]) -> None:
    s, _ = chat
    user = str(s.service.model.dataset.users.external_ids[7])
    sid = say(s, user, "mail me at jane.doe@example.org something calm").json()["session_id"]
    doc = s.client.get(f"/v1/users/{user}/export", headers=s.admin).json()
    turns = [t for sess in doc["chat"] if sess["session_id"] == sid for t in sess["turns"]]
    assert turns and "jane.doe@example.org" not in turns[0]["message"] and "<EMAIL>" in turns[0]["message"]
    log = (Path(s.settings.state_dir) / "logs" / "serve.log").read_text()
    assert "jane.doe" not in log
    receipt = s.client.delete(f"/v1/users/{user}", headers=s.admin).json()
    assert receipt["other_data_deleted"]["chat"] >= 1
    assert say(s, user, "hello", session=sid).status_code == 404
    assert s.service.chat.sessions.export(user) is None


def test_blurbs_and_posts(chat: tuple[Served, Clock]) -> None:
    s, _ = chat
    item = str(s.service.model.dataset.items.external_ids[0])
    title = s.service.model.title(item)
    r = s.client.get(f"/v1/items/{item}/blurb", headers=s.reader)
    assert r.status_code == 200 and r.json()["text"].startswith(title) and r.json()["kind"] == "blurb"
    r = s.client.get(f"/v1/items/{item}/blurb", params={"kind": "post"}, headers=s.reader)
    assert r.status_code == 200 and "#" in r.json()["text"]
    assert s.client.get("/v1/items/nope/blurb", headers=s.reader).status_code == 404
    assert s.client.get(f"/v1/items/{item}/blurb", params={"kind": "poem"}, headers=s.reader).status_code == 422
    assert s.client.get(f"/v1/items/{item}/blurb").status_code == 401


def test_session_store_bounds_and_ownership() -> None:
    from socialrec.explain.dialogue import SessionState
    from socialrec.serve.chat import ChatSessions, UnknownSessionError

    clock = Clock()
    store = ChatSessions(ttl_s=10.0, max_sessions=2, clock=clock)
    a = store.open("u1", None, SessionState).session_id
    b = store.open("u1", None, SessionState).session_id
    store.open("u1", a, SessionState)  # a is now the most recently used
    store.open("u2", None, SessionState)  # evicts b, the least recently used
    assert len(store) == 2
    with pytest.raises(UnknownSessionError):
        store.open("u1", b, SessionState)
    with pytest.raises(UnknownSessionError):
        store.open("u2", a, SessionState)
    clock.now += 6
    store.open("u1", a, SessionState)  # used at +6: outlives the session of u2, last used at 0
    clock.now += 5
    assert store.export("u2") is None and len(store) == 1
    assert [s["session_id"] for s in store.export("u1") or []] == [a]
    clock.now += 11
    assert store.export("u1") is None and store.erase("u2") == 0
