"""Admin routes: retraining (jobs), model versions and live statistics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from socialrec.serve import schemas as S
from socialrec.serve.deps import ADMIN, AUTH_RESPONSES, service
from socialrec.serve.responses import json_response

router = APIRouter(tags=["admin"], dependencies=[ADMIN], responses=AUTH_RESPONSES)


def _public(job: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in job.items() if not k.startswith("_") and k != "started"}


@router.post("/v1/admin/retrain", response_model=S.RetrainOut, status_code=202,
             responses={200: {"model": S.RetrainOut, "description": "with wait=true: the job, finished"}})
def retrain(wait: bool = Query(False, description="answer when the new version serves"), svc: Any = Depends(service)) -> Any:
    job = svc.start_retrain()
    if wait:
        job["_done"].wait(timeout=3600)
    return json_response(_public(job), 200 if wait else 202)


@router.get("/v1/admin/jobs/{job_id}", response_model=S.RetrainOut, responses={404: {"description": "unknown job"}})
def job(job_id: str = Path(min_length=1, max_length=64, pattern=S.NO_NUL), svc: Any = Depends(service)) -> Any:
    j = svc.jobs.get(job_id)
    if j is None:
        raise HTTPException(404, f"no retraining job {job_id!r}")
    return json_response(_public(j))


@router.get("/v1/admin/models", response_model=S.ModelsOut)
def models(svc: Any = Depends(service)) -> Any:
    model = svc.model
    return json_response({"serving": model.version if model is not None else None, "versions": svc.registry.versions()})


@router.get("/v1/admin/stats")
async def stats(svc: Any = Depends(service)) -> Any:
    return json_response(svc.metrics.snapshot())
