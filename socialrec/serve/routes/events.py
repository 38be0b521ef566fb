"""Write routes of feedback: events (batches, idempotent by event_id) and a user's activity."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from socialrec.serve import schemas as S
from socialrec.serve.deps import AUTH_RESPONSES, BODY_RESPONSES, READ, WRITE, service
from socialrec.serve.responses import json_response

router = APIRouter(responses={**AUTH_RESPONSES, **BODY_RESPONSES})


@router.post("/v1/events", response_model=S.EventsAck, tags=["events"], dependencies=[WRITE],
             responses={413: {"description": "body too large"}})
def post_events(batch: S.EventBatch, svc: Any = Depends(service)) -> Any:
    if len(batch.events) > svc.settings.max_batch:
        raise HTTPException(422, f"{len(batch.events)} events in one batch; at most {svc.settings.max_batch}")
    accepted, duplicates, refused = svc.ingest([e.model_dump() for e in batch.events])
    body: dict[str, Any] = {"accepted": accepted, "duplicates": duplicates}
    if refused:
        body["refused"] = refused
        body["refused_reason"] = "unknown item_id: add items with PUT /v1/items/{item_id} first"
    return json_response(body)


@router.get("/v1/users/{user_id}/activity", response_model=S.ActivityOut, tags=["users"], dependencies=[READ])
def activity(user_id: str = Path(min_length=1, max_length=128, pattern=S.NO_NUL), limit: int = Query(20, ge=1, le=200),
             svc: Any = Depends(service)) -> Any:
    events = svc.store.events(user_id=user_id, limit=limit, newest_first=True)
    return json_response({"user_id": user_id, "events": [
        {"event_id": e.event_id, "kind": e.kind, "item_id": e.item_id, "target_user_id": e.target_user_id,
         "value": e.value, "ts": e.ts} for e in events]})
