"""The one place requests are authorised: FastAPI dependencies shared by every router.

A route names the scope it needs (``dependencies=[READ]``, ``[WRITE]``, ``[ADMIN]`` or
``[EXPORT]``); the key
comes from ``Authorization: Bearer <key>`` and is checked against the service's key store
(401 missing or invalid, 403 wrong scope, 429 over its rate, with Retry-After). The service
itself is ``request.app.state.service`` (`create_app` puts it there); a route works on the
scenario ``?scenario=NAME`` names (`service`; keys are the whole service's).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from fastapi import Depends, HTTPException, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from socialrec.serve.responses import invalid

SCOPE_HELP = "create one with: socialrec keys create --scopes read,write,admin --state-dir DIR"

bearer = HTTPBearer(auto_error=False, description="an API key from `socialrec keys create`")


SCENARIO_HELP = "the scenario (a dataset the service hosts) this request reads or writes; default: the first"


def scenario_service(svc: Any, name: str | None) -> Any:
    """The service of scenario ``name`` (None: the default), or 422 naming the known scenarios
    (its body shaped as FastAPI's own validation errors, as the OpenAPI schema promises)."""
    picked = svc.scenario_service(name)
    if picked is None:
        shown = svc.clean_text(str(name))  # echoed, so scrubbed as any input
        msg = f"unknown scenario {shown!r}; known: {', '.join(svc.scenario_names)}"
        raise HTTPException(422, [invalid("query", "scenario", shown, "enum", msg)])
    return picked


def service(request: Request, scenario: str | None = Query(None, max_length=200, description=SCENARIO_HELP)) -> Any:
    """The service a route works on: the scenario's (``?scenario=NAME``), by default the first."""
    return scenario_service(request.app.state.service, scenario)


def authorize(svc: Any, authorization: str | None, scope: str, client: str | None = None) -> Any:
    """The key behind an ``Authorization: Bearer`` header value, or an HTTPException (401
    missing/invalid, 403 wrong scope, 429 over its rate or, for a client address, over its
    budget of failed authentications). Parses the header as HTTPBearer."""
    if not svc.settings.require_auth:
        return None
    failures, rate = f"auth-failures:{client}", svc.settings.failed_auth_per_second
    wait = svc.limiter.peek(failures, rate) if client is not None else 0.0
    if wait > 0:
        raise HTTPException(429, "too many failed authentications from this address; retry later",
                            headers={"Retry-After": str(max(1, math.ceil(wait)))})
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    key = svc.keys.verify(token) if scheme.lower() == "bearer" and token else None
    if key is None:
        if client is not None:
            svc.limiter.take(failures, rate)
        if not (scheme and token) or scheme.lower() != "bearer":
            raise HTTPException(401, f"missing API key: send 'Authorization: Bearer <key>' ({SCOPE_HELP})",
                                headers={"WWW-Authenticate": "Bearer"})
        raise HTTPException(401, "invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    if scope not in key.scopes:
        raise HTTPException(403, f"this key lacks the '{scope}' scope (it has: {', '.join(sorted(key.scopes))})")
    wait = svc.limiter.take(key.key_id, key.rate_per_second)
    if wait > 0:
        raise HTTPException(429, "rate limit exceeded for this key; retry later",
                            headers={"Retry-After": str(max(1, math.ceil(wait)))})
    return key


def client_address(request: Request) -> str | None:
    return request.client.host if request.client is not None else None


def require(scope: str) -> Callable[..., Any]:
    async def check(request: Request, _creds: HTTPAuthorizationCredentials | None = Security(bearer)) -> Any:
        return authorize(request.app.state.service, request.headers.get("authorization"), scope, client_address(request))
    return check


READ, WRITE, ADMIN = Depends(require("read")), Depends(require("write")), Depends(require("admin"))
EXPORT = Depends(require("export"))


def served_model(svc: Any) -> Any:
    """The model being served, or 503 with Retry-After while none is loaded."""
    model = svc.model
    if model is None:
        raise HTTPException(503, "no model loaded yet (the first one is being prepared); retry shortly",
                            headers={"Retry-After": "1"})
    return model


class ErrorOut(BaseModel):
    detail: Any


def _err(text: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": text}


# What every /v1 route may answer besides its own success (documented in OpenAPI).
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _err("missing, invalid or revoked API key"),
    403: _err("the key lacks the scope"),
    429: _err("over the key's rate, or too many failed authentications from this address (see Retry-After)"),
}
BODY_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _err("malformed request"),
    413: _err("request body over the size limit"),
}
MODEL_RESPONSES: dict[int | str, dict[str, Any]] = {503: _err("no model loaded yet (see Retry-After)")}
