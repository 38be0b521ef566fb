"""The OpenAI-compatible backend against a real HTTP server process (tests/explain/
chat_completions_server.py under uvicorn), inside the dialogue's grounding check."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from socialrec.errors import ConfigError
from socialrec.explain.catalog import CatalogIndex
from socialrec.explain.llm import OpenAIChat, make_generator
from tests.explain.tiny_catalog import genres, make_dialogue, tiny_catalog

pytest.importorskip("uvicorn")
SERVER = Path(__file__).with_name("chat_completions_server.py")
KEY = "test-key-123"


@pytest.fixture(scope="module")
def catalog() -> CatalogIndex:
    return tiny_catalog()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    proc = subprocess.Popen([sys.executable, str(SERVER), str(port), KEY], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/health", timeout=1).read()
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                proc.wait(timeout=10)
                raise RuntimeError(f"chat server did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=10)
    if proc.stderr is not None:
        proc.stderr.close()


def test_the_key_comes_from_the_environment(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    messages = [{"role": "user", "content": "Recommended:\n- Blue Note Trio (jazz)"}]
    monkeypatch.delenv("SOCIALREC_LLM_KEY", raising=False)
    with pytest.raises(RuntimeError, match="answered 401"):
        OpenAIChat(server, "any").generate(messages)
    monkeypatch.setenv("SOCIALREC_LLM_KEY", KEY)
    assert OpenAIChat(server + "/v1", "any").generate(messages) == "Try Blue Note Trio, it fits what you asked for."


def test_grounded_replies_pass_and_invented_names_fall_back(server: str, catalog: CatalogIndex,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCIALREC_LLM_KEY", KEY)
    gen = make_generator("openai", url=server, model="any")
    d = make_dialogue(catalog, generator=gen)
    turn = d.respond(d.new_session(), None, "some jazz", k=3)
    assert turn.generated and turn.reply == f"Try {turn.items[0].title}, it fits what you asked for."
    turn = d.respond(d.new_session(), None, "some jazz INVENT", k=3)
    assert not turn.generated and "Zanzibar" not in turn.reply and genres(turn) == {"jazz"}
    turn = d.respond(d.new_session(), None, "爵士 CHINESE", k=3)
    assert turn.generated and turn.language == "zh" and turn.items[0].title in turn.reply


def test_a_server_that_is_down_gives_the_template(catalog: CatalogIndex) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    d = make_dialogue(catalog, generator=OpenAIChat(f"http://127.0.0.1:{port}", "any", timeout_s=2))
    turn = d.respond(d.new_session(), None, "jazz", k=3)
    assert not turn.generated and turn.reply.startswith("For jazz:") and "generator failed" in turn.problems[0]


def test_backend_names_are_checked() -> None:
    assert make_generator("none") is None
    with pytest.raises(ConfigError, match="--llm-url"):
        make_generator("openai")
    with pytest.raises(ConfigError, match="unknown llm backend"):
        make_generator("gpt")
    with pytest.raises(ConfigError, match="http"):
        OpenAIChat("ftp://x", "m")
