"""Write routes of the catalog and profiles, and erasure (admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path

from socialrec.serve import schemas as S
from socialrec.serve.deps import ADMIN, AUTH_RESPONSES, BODY_RESPONSES, WRITE, service
from socialrec.serve.responses import json_response

router = APIRouter(responses={**AUTH_RESPONSES, **BODY_RESPONSES})
UserId = Path(min_length=1, max_length=128, pattern=S.NO_NUL)
ItemId = Path(min_length=1, max_length=128, pattern=S.NO_NUL)


@router.put("/v1/items/{item_id}", response_model=S.ItemUpserted, tags=["catalog"], dependencies=[WRITE],
            responses={422: {"description": "vectors the served model cannot use (unknown modality, wrong "
                                            "dimension, not finite)"},
                       409: {"description": "vectors sent while the served model places no items from vectors "
                                            "(the hybrid, or no model yet): nothing is stored; serve a "
                                            "multimodal model, or send the item without vectors"}})
def put_item(body: S.ItemIn, item_id: str = ItemId, svc: Any = Depends(service)) -> Any:
    from socialrec.errors import DataError

    try:
        placed = svc.upsert_item(item_id, body.title, body.text, vectors=body.vectors)
    except DataError as exc:
        raise HTTPException(422, str(exc)) from None
    except NotImplementedError as exc:
        # The same request succeeds against a served multimodal model: a conflict with the
        # server's state, not a malformed request.
        raise HTTPException(409, str(exc)) from None
    return json_response({"id": item_id, "status": "upserted", "placed": placed})


@router.put("/v1/users/{user_id}", response_model=S.Upserted, tags=["users"], dependencies=[WRITE])
def put_user(body: S.UserIn, user_id: str = UserId, svc: Any = Depends(service)) -> Any:
    svc.upsert_user(user_id, body.name, body.text)
    return json_response({"id": user_id, "status": "upserted"})


@router.delete("/v1/users/{user_id}", response_model=S.ErasureReceipt, tags=["users"], dependencies=[ADMIN])
def delete_user(user_id: str = UserId, svc: Any = Depends(service)) -> Any:
    return json_response(svc.erase(user_id))
