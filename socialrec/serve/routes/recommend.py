"""Read routes: a user's recommendations (the hot path, also as a plain Starlette route ahead of
the documented one), similar items, friend suggestions and trends (burst alerts on the served
data's timeline, `retrieve.bursts.recent_trends`)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from starlette.responses import Response
from starlette.routing import Route

from socialrec.errors import UnknownIdError
from socialrec.serve import schemas as S
from socialrec.serve.deps import (AUTH_RESPONSES, MODEL_RESPONSES, READ, authorize, client_address, scenario_service,
                                  served_model, service)
from socialrec.serve.responses import bool_param, int_param, invalid, json_response, unexplained_body

router = APIRouter(tags=["recommend"], responses={**AUTH_RESPONSES, **MODEL_RESPONSES})
UserId = Path(min_length=1, max_length=128, pattern=S.NO_NUL)
ItemId = Path(min_length=1, max_length=128, pattern=S.NO_NUL)
PATH = "/v1/users/{user_id}/recommendations"

_fragments: dict[tuple[str, str], str] = {}  # (item_id, title) -> its JSON object up to the score


def item_fragment(item_id: str, title: str) -> str:
    """``{"item_id":...,"title":...`` without the closing brace, cached: ids and titles repeat
    across requests."""
    frag = _fragments.get((item_id, title))
    if frag is None:
        if len(_fragments) > 200_000:
            _fragments.clear()
        frag = json.dumps({"item_id": item_id, "title": title}, separators=(",", ":"))[:-1]
        _fragments[(item_id, title)] = frag
    return frag


def recommendations_response(svc: Any, model: Any, user_id: str, k: int, explain: bool) -> Response:
    first = {"user_id": user_id, "model_version": model.version}
    if len(svc.scenario_names) > 1:
        first["scenario"] = svc.scenario
    head = json.dumps(first, separators=(",", ":"))[:-1]
    recs = model.recommend(user_id, k, explain=explain)
    svc.metrics.served(user_id, [r.item_id for r in recs], model.n_items())
    if explain:
        items = [{"item_id": r.item_id, "title": r.title, "score": round(r.score, 6), "explanation": r.sentence or None,
                  "reasons": [x.to_dict() for x in r.reasons]} for r in recs]
        body = head + ',"items":' + json.dumps(items, separators=(",", ":"), allow_nan=False) + "}"
    else:
        body = unexplained_body(head, [item_fragment(r.item_id, r.title) for r in recs],
                                np.array([r.score for r in recs], dtype=np.float64))
    return Response(body, media_type="application/json")


@router.get(PATH, response_model=S.RecommendationsOut, dependencies=[READ])
async def recommendations(user_id: str = UserId, k: int = Query(20, ge=1, le=200),
                          explain: bool = Query(False, description="add reasons and a sentence per item"),
                          svc: Any = Depends(service)) -> Any:
    return recommendations_response(svc, served_model(svc), user_id, k, explain)


async def recommendations_fast(request: Any) -> Any:
    """The hot read as a plain Starlette route ahead of the documented FastAPI one: the same
    checks and error bodies, without dependency injection (measured: most of the framework's
    cost per request; see benchmarks/README.md)."""
    request.scope["route"] = FAST_ROUTE  # names the route in metrics and the request log
    svc = request.app.state.service
    authorize(svc, request.headers.get("authorization"), "read", client_address(request))
    user_id = request.path_params["user_id"]
    query = dict(parse_qsl(request.scope["query_string"].decode("latin-1"), keep_blank_values=True))
    errors: list[dict[str, Any]] = []
    if len(user_id) > 128:
        errors.append(invalid("path", "user_id", user_id, "string_too_long", "String should have at most 128 characters"))
    k = int_param(query.get("k"), 20, 1, 200, errors)
    explain = bool_param(query.get("explain"), errors)
    scenario = query.get("scenario")
    if scenario is not None and len(scenario) > 200:
        errors.append(invalid("query", "scenario", scenario, "string_too_long",
                              "String should have at most 200 characters"))
    if errors:
        return json_response({"detail": errors}, 422)
    svc = scenario_service(svc, scenario)
    return recommendations_response(svc, served_model(svc), user_id, k, explain)


FAST_ROUTE = Route(PATH, recommendations_fast, methods=["GET"], include_in_schema=False)


@router.get("/v1/items/{item_id}/similar", response_model=S.SimilarOut, dependencies=[READ],
            responses={404: {"description": "unknown item"}})
async def similar(item_id: str = ItemId, k: int = Query(20, ge=1, le=200), svc: Any = Depends(service)) -> Any:
    model = served_model(svc)
    try:
        recs = model.similar_items(item_id, k)
    except UnknownIdError as exc:
        raise HTTPException(404, str(exc)) from None
    body: dict[str, Any] = {"item_id": item_id, "model_version": model.version}
    if len(svc.scenario_names) > 1:
        body["scenario"] = svc.scenario
    body["items"] = [{"item_id": r.item_id, "title": r.title, "score": round(r.score, 6)} for r in recs]
    return json_response(body)


@router.get("/v1/scenarios", response_model=S.ScenariosOut, dependencies=[READ])
async def scenarios(request: Request) -> Any:
    """The scenarios this service hosts (``?scenario=NAME`` of every route), the default first."""
    names = request.app.state.service.scenario_names
    return json_response({"default": names[0], "scenarios": list(names)})


@router.get("/v1/trends", response_model=S.TrendsOut, dependencies=[READ])
def trends(window: str = Query("1d", pattern=r"^[1-9]\d{0,3}[smhd]$", description="window length: 1d, 6h, 30m..."),
           last: int = Query(30, ge=1, le=366, description="how many of the latest windows"),
           svc: Any = Depends(service)) -> Any:
    # A plain def: FastAPI runs it in its thread pool, so a first computation (keywords segment
    # every post) does not hold up the event loop's other requests.
    from socialrec.retrieve.bursts import parse_window

    model = served_model(svc)
    out = svc.trends(model, parse_window(window), last)  # the pattern admits only valid windows
    return json_response({"model_version": model.version, **out})


@router.get("/v1/users/{user_id}/friend-suggestions", response_model=S.FriendSuggestionsOut, dependencies=[READ],
            responses={404: {"description": "unknown user"}})
async def friend_suggestions(user_id: str = UserId, k: int = Query(10, ge=1, le=100), svc: Any = Depends(service)) -> Any:
    model = served_model(svc)
    try:
        users = model.friend_suggestions(user_id, k)
    except UnknownIdError as exc:
        raise HTTPException(404, str(exc)) from None
    return json_response({"user_id": user_id, "model_version": model.version,
                          "users": [{"user_id": u, "score": round(s, 6)} for u, s in users]})
