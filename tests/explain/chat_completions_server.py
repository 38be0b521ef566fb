"""A real OpenAI-compatible chat server for tests: POST /v1/chat/completions answers
deterministically from the prompt, under uvicorn in its own process.

    python tests/explain/chat_completions_server.py PORT [KEY]

With KEY, requests without ``Authorization: Bearer KEY`` get 401. The answer recommends the first
title under "Recommended:" in the last user message; a request whose user message contains
"INVENT" is answered with a name that is in no prompt (for grounding tests); "CHINESE" gets a
Chinese answer.
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


def make_app(key: str | None) -> Any:
    app = FastAPI()

    @app.get("/health")
    async def health() -> Any:
        return {"ok": True}

    @app.post("/v1/chat/completions")
    async def completions(request: Request) -> Any:
        if key is not None and request.headers.get("authorization") != f"Bearer {key}":
            return JSONResponse({"error": {"message": "invalid api key"}}, status_code=401)
        body = await request.json()
        user = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
        lines = user.split("Recommended:", 1)[-1].strip().splitlines()
        first = lines[0].lstrip("- ").split(" (")[0] if lines else "nothing"
        if "INVENT" in user:
            text = f"You should hear {first} and also Zanzibar Moonlight Orchestra."
        elif "CHINESE" in user:
            text = f"推荐你听 {first}。"
        else:
            text = f"Try {first}, it fits what you asked for."
        return {"id": "cmpl-1", "object": "chat.completion", "model": body.get("model"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}

    return app


if __name__ == "__main__":
    uvicorn.run(make_app(sys.argv[2] if len(sys.argv) > 2 else None), host="127.0.0.1", port=int(sys.argv[1]),
                log_level="warning")
