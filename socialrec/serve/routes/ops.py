"""Public operational routes (dashboard, health, readiness) and the Prometheus metrics (admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from starlette.responses import HTMLResponse, Response

from socialrec.serve import schemas as S
from socialrec.serve.dashboard import DASHBOARD_HTML
from socialrec.serve.deps import ADMIN, AUTH_RESPONSES, service
from socialrec.serve.responses import json_response

router = APIRouter()


@router.get("/", include_in_schema=False)
async def dashboard() -> Any:
    return HTMLResponse(DASHBOARD_HTML)


@router.get("/healthz", response_model=S.Health, tags=["ops"])
async def healthz() -> Any:
    return json_response({"status": "ok"})


@router.get("/readyz", response_model=S.Health, tags=["ops"],
            responses={503: {"description": "no trained model serves yet (the reason is given)"}})
async def readyz(svc: Any = Depends(service)) -> Any:
    ready, detail = svc.ready()
    data = {"text_encrypted": svc.store.encrypted, "text_scrubbed": svc.scrubber is not None,
            "retention_days": svc.settings.retention_days}
    if not ready:
        return json_response({"status": "starting", "model_version": None, "reason": detail, **data}, 503)
    model = svc.model
    return json_response({"status": "ready", "model_version": model.version, "model_kind": model.meta.get("kind"), **data})


@router.get("/metrics", tags=["ops"], dependencies=[ADMIN], response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus exposition"}, **AUTH_RESPONSES})
async def metrics(svc: Any = Depends(service)) -> Any:
    body, content_type = svc.metrics.exposition()
    return Response(body, media_type=content_type)
