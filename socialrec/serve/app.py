"""`create_app(settings)`: the FastAPI application. Nothing happens at import time.

The routes live in `serve/routes/` (one router per resource) and authorise through the one
dependency module `serve/deps.py`: every /v1 endpoint needs a bearer key with the right scope
(read, write, admin or export); /healthz, /readyz and the dashboard page (which asks for a key and holds
no data) are public. This module adds the body-size guard, request metrics and log, CORS and the
benchmark ceilings.
"""


import base64
import json
import os
import pickle
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from socialrec.serve.settings import ServeSettings

API_TITLE = "socialrec"


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Any:
    from socialrec.serve.responses import json_response

    return json_response(body, status, headers)


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

        if _has_nul(scope):
            # No store keeps a NUL character (PostgreSQL refuses it): say so instead of failing later.
            response = _json({"detail": "the path or query contains a NUL character (%00); ids and parameters "
                                        "must be plain text"}, 422)
            await response(scope, receive, send_wrapper)
            self.service.metrics.observe_request("unmatched", scope["method"], 422, time.perf_counter() - start)
            return
        try:
            if too_big:
                raise _TooLarge()
            app_receive = receive_limited
            if length is None and scope["method"] in ("POST", "PUT", "PATCH"):
                # A streamed (chunked) body: read it here, within the limit, and hand it on whole;
                # the framework would turn an error raised while it reads into a 400.
                app_receive = await _buffered(receive_limited)
            await self.app(scope, app_receive, send_wrapper)
        except _TooLarge:
            response = _json({"detail": f"request body larger than {self.max_body} bytes; send smaller batches"}, 413)
            await response(scope, receive, send_wrapper)
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        seconds = time.perf_counter() - start
        self.service.metrics.observe_request(template, scope["method"], status["code"], seconds)
        if self.service.settings.log_requests and template not in ("/healthz", "/readyz", "/metrics", "/v1/admin/stats"):
            self.service.log.info("%s %s %d %.1fms", scope["method"], template, status["code"], seconds * 1000)


def _has_nul(scope: dict[str, Any]) -> bool:
    query = scope.get("query_string") or b""
    return "\x00" in scope.get("path", "") or b"%00" in query.lower() or b"\x00" in query


class _TooLarge(Exception):
    pass


async def _buffered(receive: Callable[[], Awaitable[dict[str, Any]]]) -> Callable[[], Awaitable[dict[str, Any]]]:
    """Read a whole request body from ``receive`` (which raises `_TooLarge` past the limit) and
    return a receive callable that gives it in one message, then what ``receive`` gives."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    sent = {"done": False}

    async def replay() -> dict[str, Any]:
        if not sent["done"]:
            sent["done"] = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        return await receive()

    return replay


def create_app(settings: ServeSettings, *, service: Any = None, ceiling_endpoint: bool = False) -> Any:
    """Build the application. ``service``: an already built `Service` (tests, benchmarks).
    ``ceiling_endpoint``: add GET /bench/fixed returning a fixed 20-item list, and
    /bench/fixed-auth doing the same after the API key check (the framework's ceilings measured
    in benchmarks/serving.py)."""
    try:
        from fastapi import FastAPI
        from fastapi.exceptions import RequestValidationError
        from starlette.responses import Response
        from starlette.routing import Route
    except ImportError as exc:
        from socialrec.errors import MissingDependencyError

        raise MissingDependencyError("fastapi", "serve", "The HTTP service") from exc

    from socialrec.serve.deps import authorize
    from socialrec.serve.responses import json_safe, scrubbed_errors
    from socialrec.serve.routes import admin, catalog, chat, events, ops, privacy, recommend
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
                              "profile upserts, erasure, a user's data export and personalisation consent, model administration. Send `Authorization: Bearer <key>`.")
    app.state.service = svc

    async def invalid_request(_request: Any, exc: RequestValidationError) -> Any:
        # FastAPI's own handler echoes the input, and fails (500) on NaN, Infinity or lone surrogates.
        # The input is echoed scrubbed (before json_safe cuts long strings: a cut email would escape the
        # scrubber), and nothing of it is logged.
        errors = exc.errors()
        if svc.scrubber is not None:
            errors = scrubbed_errors(list(errors), svc.clean_text)
        return _json({"detail": json_safe(errors)}, 422)

    app.add_exception_handler(RequestValidationError, invalid_request)
    # The hot read first, as a plain route ahead of the documented FastAPI one (same checks).
    app.router.routes.append(recommend.FAST_ROUTE)
    for router in (ops.router, recommend.router, chat.router, events.router, catalog.router, privacy.router,
                   admin.router):
        app.include_router(router)

    default_openapi = app.openapi

    def openapi_naming_the_scenarios() -> dict[str, Any]:
        # ?scenario= takes the names this service hosts, no other: say so in the schema, so that a
        # client (or a fuzzer) reading it knows an unknown name is a 422 and not a valid request.
        if app.openapi_schema is None:
            schema = default_openapi()
            for operation in (op for path in schema.get("paths", {}).values() for op in path.values()):
                for param in operation.get("parameters", []) if isinstance(operation, dict) else []:
                    if param.get("name") == "scenario" and param.get("in") == "query":
                        param["schema"] = {"type": "string", "enum": list(svc.scenario_names), "title": "Scenario"}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi_naming_the_scenarios  # type: ignore[method-assign]

    if ceiling_endpoint:
        fixed = json.dumps({"items": [{"item_id": f"item_{i}", "score": 1.0 - i / 100} for i in range(20)]})

        async def bench_fixed(_request: Any) -> Any:
            return Response(fixed, media_type="application/json")

        async def bench_fixed_auth(request: Any) -> Any:
            authorize(svc, request.headers.get("authorization"), "read")
            return Response(fixed, media_type="application/json")

        app.router.routes.append(Route("/bench/fixed", bench_fixed, methods=["GET"], include_in_schema=False))
        app.router.routes.append(Route("/bench/fixed-auth", bench_fixed_auth, methods=["GET"], include_in_schema=False))

    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["*"],
                           allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(_Guard, service=svc, max_body=settings.max_body_bytes)
    return app


# `socialrec serve --workers N`: the parent puts the settings here; each worker process reads them.
WORKER_SETTINGS_ENV = "SOCIALREC_WORKER_SETTINGS"


def encode_settings(settings: ServeSettings) -> str:
    return base64.b64encode(pickle.dumps(settings)).decode("ascii")


def one_blas_thread() -> None:
    """One BLAS thread: requests are tiny matrix-vector products, and a multi-threaded BLAS spins
    its threads against the event loop and each other (measured: 14.8 ms -> 1.4 ms per LastFM
    recommendation on 2 cores)."""
    import importlib

    from threadpoolctl import threadpool_limits

    for module in ("numpy", "scipy.linalg"):  # threadpoolctl limits only the BLAS libraries already loaded
        importlib.import_module(module)
    threadpool_limits(1, "blas")


def worker_app() -> Any:
    """The application of one `socialrec serve --workers N` process (uvicorn's factory): the
    settings its parent process wrote to the environment (pickled by that same trusted parent)."""
    encoded = os.environ.get(WORKER_SETTINGS_ENV)
    if not encoded:
        from socialrec.errors import ConfigError

        raise ConfigError(f"{WORKER_SETTINGS_ENV} is not set: worker_app is started by `socialrec serve --workers N`")
    settings = pickle.loads(base64.b64decode(encoded))
    if not isinstance(settings, ServeSettings):
        from socialrec.errors import ConfigError

        raise ConfigError(f"{WORKER_SETTINGS_ENV} does not hold serve settings")
    one_blas_thread()
    return create_app(settings)
