"""Conversational recommendation and generated content: POST /v1/users/{id}/chat and
GET /v1/items/{id}/blurb (read scope). The dialogue is `socialrec.explain.dialogue`; sessions
and wiring are `socialrec.serve.chat`."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from starlette.concurrency import run_in_threadpool

from socialrec.serve import schemas as S
from socialrec.serve.chat import UnknownSessionError
from socialrec.serve.deps import AUTH_RESPONSES, BODY_RESPONSES, MODEL_RESPONSES, READ, ErrorOut, served_model, service
from socialrec.serve.responses import json_response

router = APIRouter(tags=["chat"], responses={**AUTH_RESPONSES, **MODEL_RESPONSES})
UserId = Path(min_length=1, max_length=128, pattern=S.NO_NUL)
ItemId = Path(min_length=1, max_length=128, pattern=S.NO_NUL)


@router.post("/v1/users/{user_id}/chat", response_model=S.ChatOut, dependencies=[READ],
             responses={**BODY_RESPONSES, 404: {"model": ErrorOut, "description": "unknown or expired session"}})
async def chat(body: S.ChatIn, user_id: str = UserId, svc: Any = Depends(service)) -> Any:
    model = served_model(svc)
    limit = svc.settings.chat_max_message_chars
    if len(body.message) > limit:  # before scrubbing it (Dialogue.respond checks again for library callers)
        raise HTTPException(422, f"message of {len(body.message)} characters is over the limit of {limit}; "
                                 "send a shorter message")
    try:
        session, turn = await run_in_threadpool(svc.chat.turn, model, user_id, body.session_id, body.message, body.k)
    except UnknownSessionError:
        raise HTTPException(404, "unknown or expired session_id for this user; omit session_id to start a "
                                 "new session") from None
    return json_response({"session_id": session.session_id, "reply": turn.reply,
                          "items": [it.to_dict() for it in turn.items], "question": turn.question,
                          "generated": turn.generated, "language": turn.language, "model_version": model.version})


@router.get("/v1/items/{item_id}/blurb", response_model=S.BlurbOut, dependencies=[READ],
            responses={404: {"model": ErrorOut, "description": "unknown item"}})
async def blurb(item_id: str = ItemId, kind: Literal["blurb", "post"] = Query("blurb"),
                svc: Any = Depends(service)) -> Any:
    model = served_model(svc)
    _, writer = await run_in_threadpool(svc.chat.parts, model)
    try:
        text = await run_in_threadpool(writer.write, item_id, kind)
    except KeyError:
        raise HTTPException(404, f"unknown item {item_id!r}: not in the served catalog") from None
    return json_response({**text.to_dict(), "model_version": model.version})
