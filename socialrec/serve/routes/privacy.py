"""A user's control over their data: export everything held about them (export scope), read
(read) and set (write) their personalisation consent. Erasure is DELETE /v1/users/{id} (admin)
in the catalog router."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path

from socialrec.serve import schemas as S
from socialrec.serve.deps import AUTH_RESPONSES, BODY_RESPONSES, EXPORT, READ, WRITE, ErrorOut, service
from socialrec.serve.export import export_user
from socialrec.serve.responses import json_response

router = APIRouter(tags=["users"], responses=AUTH_RESPONSES)
UserId = Path(min_length=1, max_length=128, pattern=S.NO_NUL)


@router.get("/v1/users/{user_id}/export", response_model=S.ExportOut, dependencies=[EXPORT],
            responses={404: {"model": ErrorOut, "description": "nothing is held about this user (or they were erased)"}})
def export(user_id: str = UserId, svc: Any = Depends(service)) -> Any:
    doc = export_user(svc, user_id)
    if doc is None:
        raise HTTPException(404, f"nothing is held about user {user_id!r}")
    return json_response(doc)


@router.get("/v1/users/{user_id}/consent", response_model=S.ConsentOut, dependencies=[READ])
def get_consent(user_id: str = UserId, svc: Any = Depends(service)) -> Any:
    return json_response(svc.consent(user_id))


@router.put("/v1/users/{user_id}/consent", response_model=S.ConsentOut, dependencies=[WRITE], responses=BODY_RESPONSES)
def put_consent(body: S.ConsentIn, user_id: str = UserId, svc: Any = Depends(service)) -> Any:
    return json_response(svc.set_consent(user_id, body.personalization))
