"""`create_app(settings)`: the FastAPI application. Nothing happens at import time.

Every /v1 endpoint needs a bearer key with the right scope (read, write or admin); /healthz,
/readyz and the dashboard page (which asks for a key and holds no data) are public. Responses of
the hot read endpoints are serialised by hand (their pydantic models still document them in
OpenAPI): validating our own output on every request would cost more than computing it.
"""


import json
import math
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl

import numpy as np

from socialrec.errors import UnknownIdError
from socialrec.serve.settings import ServeSettings

API_TITLE = "socialrec"
SCOPE_HELP = "create one with: socialrec keys create --scopes read,write,admin --state-dir DIR"


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Any:
    from starlette.responses import Response

    return Response(json.dumps(body, separators=(",", ":"), allow_nan=False), status_code=status,
                    media_type="application/json", headers=headers)


class _Guard:
    """Pure ASGI middleware: body size limit (413), request metrics and a privacy-safe request log.

    The log names the route template (``/v1/users/{user_id}/recommendations``), never the path
    itself, so no raw user id reaches it; uvicorn's own access log is switched off for the same
    reason."""

    def __init__(self, app: Any, service: Any, max_body: int) -> None:
        self.app = app
        self.service = service
        self.max_body = max_body

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]],
                       send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        length = dict(scope.get("headers") or []).get(b"content-length")
        too_big = False
        if length is not None:
            try:
                too_big = int(length) > self.max_body
            except ValueError:
                too_big = True
        received = {"n": 0}

        async def receive_limited() -> dict[str, Any]:
            message = await receive()
            if message["type"] == "http.request":
                received["n"] += len(message.get("body", b""))
                if received["n"] > self.max_body:
                    raise _TooLarge()
            return message

        try:
            if too_big:
                raise _TooLarge()
            await self.app(scope, receive_limited, send_wrapper)
        except _TooLarge:
            response = _json({"detail": f"request body larger than {self.max_body} bytes; send smaller batches"}, 413)
            await response(scope, receive, send_wrapper)
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        seconds = time.perf_counter() - start
        self.service.metrics.observe_request(template, scope["method"], status["code"], seconds)
        if self.service.settings.log_requests and template not in ("/healthz", "/readyz", "/metrics", "/v1/admin/stats"):
            self.service.log.info("%s %s %d %.1fms", scope["method"], template, status["code"], seconds * 1000)


class _TooLarge(Exception):
    pass


def create_app(settings: ServeSettings, *, service: Any = None, ceiling_endpoint: bool = False) -> Any:
    """Build the application. ``service``: an already built `Service` (tests, benchmarks).
    ``ceiling_endpoint``: add GET /bench/fixed returning a fixed 20-item list, and
    /bench/fixed-auth doing the same after the API key check (the framework's ceilings measured
    in benchmarks/serving.py)."""
    try:
        from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Security
        from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
        from starlette.responses import HTMLResponse, Response
    except ImportError as exc:
        from socialrec.errors import MissingDependencyError

        raise MissingDependencyError("fastapi", "serve", "The HTTP service") from exc

    from socialrec.serve import schemas as S
    from socialrec.serve.dashboard import DASHBOARD_HTML
    from socialrec.serve.service import Service

    svc = service if service is not None else Service(settings)

    @asynccontextmanager
    async def lifespan(_app: Any) -> Any:
        if svc.model is None:
            svc.start()
        yield
        svc.stop()

    app = FastAPI(title=API_TITLE, version="1", lifespan=lifespan,
                  description="Recommendations, similar items, friend suggestions, feedback events, catalog and "
                              "profile upserts, erasure, model administration. Send `Authorization: Bearer <key>`.")
    app.state.service = svc
    bearer = HTTPBearer(auto_error=False, description="an API key from `socialrec keys create`")

    def authorize(authorization: str | None, scope: str) -> Any:
        """The key behind an ``Authorization: Bearer`` header value, or an HTTPException (401
        missing/invalid, 403 wrong scope, 429 over its rate). Parses the header as HTTPBearer."""
        if not settings.require_auth:
            return None
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if not (scheme and token) or scheme.lower() != "bearer":
            raise HTTPException(401, f"missing API key: send 'Authorization: Bearer <key>' ({SCOPE_HELP})",
                                headers={"WWW-Authenticate": "Bearer"})
        key = svc.keys.verify(token)
        if key is None:
            raise HTTPException(401, "invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"})
        if scope not in key.scopes:
            raise HTTPException(403, f"this key lacks the '{scope}' scope (it has: {', '.join(sorted(key.scopes))})")
        wait = svc.limiter.take(key.key_id, key.rate_per_second)
        if wait > 0:
            raise HTTPException(429, "rate limit exceeded for this key; retry later",
                                headers={"Retry-After": str(max(1, math.ceil(wait)))})
        return key

    def require(scope: str) -> Callable[..., Any]:
        async def check(request: Request, _creds: HTTPAuthorizationCredentials | None = Security(bearer)) -> Any:
            return authorize(request.headers.get("authorization"), scope)
        return check

    read, write, admin = Depends(require("read")), Depends(require("write")), Depends(require("admin"))
    UserId = Path(min_length=1, max_length=128)
    ItemId = Path(min_length=1, max_length=128)

    def model_or_503() -> Any:
        model = svc.model
        if model is None:
            raise HTTPException(503, "no model loaded yet (the first one is being prepared); retry shortly",
                                headers={"Retry-After": "1"})
        return model

    # --- public ------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    async def dashboard() -> Any:
        return HTMLResponse(DASHBOARD_HTML)

    @app.get("/healthz", response_model=S.Health, tags=["ops"])
    async def healthz() -> Any:
        return _json({"status": "ok"})

    @app.get("/readyz", response_model=S.Health, tags=["ops"], responses={503: {"description": "not ready"}})
    async def readyz() -> Any:
        ready, detail = svc.ready()
        if not ready:
            return _json({"status": "starting", "model_version": None, "reason": detail}, 503)
        model = svc.model
        return _json({"status": "ready", "model_version": model.version, "model_kind": model.meta.get("kind")})

    @app.get("/metrics", tags=["ops"], dependencies=[admin], response_class=Response,
             responses={200: {"content": {"text/plain": {}}, "description": "Prometheus exposition"}})
    async def metrics() -> Any:
        body, content_type = svc.metrics.exposition()
        return Response(body, media_type=content_type)

    # --- reads -------------------------------------------------------------------------
    @app.get("/v1/users/{user_id}/recommendations", response_model=S.RecommendationsOut, tags=["recommend"],
             dependencies=[read])
    async def recommendations(user_id: str = UserId, k: int = Query(20, ge=1, le=200),
                              explain: bool = Query(False, description="add reasons and a sentence per item")) -> Any:
        return recommendations_response(model_or_503(), user_id, k, explain)

    fragments: dict[tuple[str, str], str] = {}  # (item_id, title) -> its JSON object up to the score

    def recommendations_response(model: Any, user_id: str, k: int, explain: bool) -> Any:
        head = json.dumps({"user_id": user_id, "model_version": model.version}, separators=(",", ":"))[:-1]
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

    def item_fragment(item_id: str, title: str) -> str:
        """``{"item_id":...,"title":...`` without the closing brace, cached: ids and titles repeat
        across requests."""
        frag = fragments.get((item_id, title))
        if frag is None:
            if len(fragments) > 200_000:
                fragments.clear()
            frag = json.dumps({"item_id": item_id, "title": title}, separators=(",", ":"))[:-1]
            fragments[(item_id, title)] = frag
        return frag

    async def recommendations_fast(request: Any) -> Any:
        """The hot read as a plain Starlette route ahead of the documented FastAPI one: the same
        checks and error bodies, without dependency injection (measured: most of the framework's
        cost per request; see benchmarks/README.md)."""
        request.scope["route"] = fast_route  # names the route in metrics and the request log
        authorize(request.headers.get("authorization"), "read")
        user_id = request.path_params["user_id"]
        query = dict(parse_qsl(request.scope["query_string"].decode("latin-1"), keep_blank_values=True))
        errors = []
        if len(user_id) > 128:
            errors.append(_invalid("path", "user_id", user_id, "string_too_long", "String should have at most 128 characters"))
        k = _int_param(query.get("k"), 20, 1, 200, errors)
        explain = _bool_param(query.get("explain"), errors)
        if errors:
            return _json({"detail": errors}, 422)
        return recommendations_response(model_or_503(), user_id, k, explain)

    @app.get("/v1/items/{item_id}/similar", response_model=S.SimilarOut, tags=["recommend"], dependencies=[read],
             responses={404: {"description": "unknown item"}})
    async def similar(item_id: str = ItemId, k: int = Query(20, ge=1, le=200)) -> Any:
        model = model_or_503()
        try:
            recs = model.similar_items(item_id, k)
        except UnknownIdError as exc:
            raise HTTPException(404, str(exc)) from None
        return _json({"item_id": item_id, "model_version": model.version,
                      "items": [{"item_id": r.item_id, "title": r.title, "score": round(r.score, 6)} for r in recs]})

    @app.get("/v1/users/{user_id}/friend-suggestions", response_model=S.FriendSuggestionsOut, tags=["recommend"],
             dependencies=[read], responses={404: {"description": "unknown user"}})
    async def friend_suggestions(user_id: str = UserId, k: int = Query(10, ge=1, le=100)) -> Any:
        model = model_or_503()
        try:
            users = model.friend_suggestions(user_id, k)
        except UnknownIdError as exc:
            raise HTTPException(404, str(exc)) from None
        return _json({"user_id": user_id, "model_version": model.version,
                      "users": [{"user_id": u, "score": round(s, 6)} for u, s in users]})

    @app.get("/v1/users/{user_id}/activity", response_model=S.ActivityOut, tags=["users"], dependencies=[read])
    def activity(user_id: str = UserId, limit: int = Query(20, ge=1, le=200)) -> Any:
        events = svc.store.events(user_id=user_id, limit=limit, newest_first=True)
        return _json({"user_id": user_id, "events": [
            {"event_id": e.event_id, "kind": e.kind, "item_id": e.item_id, "target_user_id": e.target_user_id,
             "value": e.value, "ts": e.ts} for e in events]})

    # --- writes ------------------------------------------------------------------------
    @app.post("/v1/events", response_model=S.EventsAck, tags=["events"], dependencies=[write],
              responses={413: {"description": "body too large"}})
    def post_events(batch: S.EventBatch) -> Any:
        if len(batch.events) > settings.max_batch:
            raise HTTPException(422, f"{len(batch.events)} events in one batch; at most {settings.max_batch}")
        accepted, duplicates = svc.ingest([e.model_dump() for e in batch.events])
        return _json({"accepted": accepted, "duplicates": duplicates})

    @app.put("/v1/items/{item_id}", response_model=S.Upserted, tags=["catalog"], dependencies=[write])
    def put_item(body: S.ItemIn, item_id: str = ItemId) -> Any:
        svc.upsert_item(item_id, body.title, body.text)
        return _json({"id": item_id, "status": "upserted"})

    @app.put("/v1/users/{user_id}", response_model=S.Upserted, tags=["users"], dependencies=[write])
    def put_user(body: S.UserIn, user_id: str = UserId) -> Any:
        svc.upsert_user(user_id, body.name, body.text)
        return _json({"id": user_id, "status": "upserted"})

    @app.delete("/v1/users/{user_id}", response_model=S.ErasureReceipt, tags=["users"], dependencies=[admin])
    def delete_user(user_id: str = UserId) -> Any:
        return _json(svc.erase(user_id))

    # --- admin -------------------------------------------------------------------------
    @app.post("/v1/admin/retrain", response_model=S.RetrainOut, status_code=202, tags=["admin"], dependencies=[admin])
    def retrain(wait: bool = Query(False, description="answer when the new version serves")) -> Any:
        job = svc.start_retrain()
        if wait:
            job["_done"].wait(timeout=600)
        return _json({k: v for k, v in job.items() if not k.startswith("_") and k != "started"},
                     200 if wait else 202)

    @app.get("/v1/admin/jobs/{job_id}", response_model=S.RetrainOut, tags=["admin"], dependencies=[admin],
             responses={404: {"description": "unknown job"}})
    def job(job_id: str = Path(min_length=1, max_length=64)) -> Any:
        j = svc.jobs.get(job_id)
        if j is None:
            raise HTTPException(404, f"no retraining job {job_id!r}")
        return _json({k: v for k, v in j.items() if not k.startswith("_") and k != "started"})

    @app.get("/v1/admin/models", response_model=S.ModelsOut, tags=["admin"], dependencies=[admin])
    def models() -> Any:
        model = svc.model
        return _json({"serving": model.version if model is not None else None, "versions": svc.registry.versions()})

    @app.get("/v1/admin/stats", tags=["admin"], dependencies=[admin])
    async def stats() -> Any:
        return _json(svc.metrics.snapshot())

    if ceiling_endpoint:
        fixed = json.dumps({"items": [{"item_id": f"item_{i}", "score": 1.0 - i / 100} for i in range(20)]})

        @app.get("/bench/fixed", include_in_schema=False)
        async def bench_fixed() -> Any:
            return Response(fixed, media_type="application/json")

        async def bench_fixed_auth(request: Any) -> Any:
            authorize(request.headers.get("authorization"), "read")
            return Response(fixed, media_type="application/json")

        from starlette.routing import Route as _Route

        app.router.routes.append(_Route("/bench/fixed-auth", bench_fixed_auth, methods=["GET"], include_in_schema=False))

    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["*"],
                           allow_headers=["Authorization", "Content-Type"])
    from starlette.routing import Route

    documented = next(i for i, r in enumerate(app.router.routes)
                      if getattr(r, "path", None) == "/v1/users/{user_id}/recommendations")
    fast_route = Route("/v1/users/{user_id}/recommendations", recommendations_fast, methods=["GET"],
                       include_in_schema=False)
    app.router.routes.insert(documented, fast_route)
    app.add_middleware(_Guard, service=svc, max_body=settings.max_body_bytes)
    return app


def unexplained_body(head: str, fragments: list[str], scores: np.ndarray) -> str:
    """The response body of an unexplained list: ``head`` (the object's fields without its closing
    brace), then each item's fragment with its score rounded to 6 decimals."""
    if not np.isfinite(scores).all():
        raise ValueError(f"non-finite score among {scores.tolist()}")
    rounded = np.round(scores, 6).tolist()  # rint(x * 1e6) / 1e6: the nearest double to a 6-decimal number
    items = ",".join([f'{f},"score":{s!r}}}' for f, s in zip(fragments, rounded)])
    return f'{head},"items":[{items}]}}'


def _invalid(where: str, name: str, value: str, kind: str, msg: str) -> dict[str, Any]:
    """One entry of a 422 body, shaped as FastAPI's own validation errors."""
    return {"type": kind, "loc": [where, name], "msg": msg, "input": value}


def _int_param(raw: str | None, default: int, low: int, high: int, errors: list[dict[str, Any]]) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        errors.append(_invalid("query", "k", raw, "int_parsing",
                               "Input should be a valid integer, unable to parse string as an integer"))
        return default
    if value < low:
        errors.append(_invalid("query", "k", raw, "greater_than_equal", f"Input should be greater than or equal to {low}"))
    elif value > high:
        errors.append(_invalid("query", "k", raw, "less_than_equal", f"Input should be less than or equal to {high}"))
    return value


_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off"}


def _bool_param(raw: str | None, errors: list[dict[str, Any]]) -> bool:
    if raw is None:
        return False
    low = raw.lower()
    if low in _TRUE or low in _FALSE:
        return low in _TRUE
    errors.append(_invalid("query", "explain", raw, "bool_parsing", "Input should be a valid boolean, unable to interpret input"))
    return False
