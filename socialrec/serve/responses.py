"""Response bodies serialised by hand: validating our own output on every request would cost
more than computing it (the pydantic models in `schemas` still document them in OpenAPI)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
from starlette.responses import Response


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body, separators=(",", ":"), allow_nan=False), status_code=status,
                    media_type="application/json", headers=headers)


def unexplained_body(head: str, fragments: list[str], scores: np.ndarray) -> str:
    """The response body of an unexplained list: ``head`` (the object's fields without its closing
    brace), then each item's fragment with its score rounded to 6 decimals."""
    if not np.isfinite(scores).all():
        raise ValueError(f"non-finite score among {scores.tolist()}")
    rounded = np.round(scores, 6).tolist()  # rint(x * 1e6) / 1e6: the nearest double to a 6-decimal number
    items = ",".join([f'{f},"score":{s!r}}}' for f, s in zip(fragments, rounded)])
    return f'{head},"items":[{items}]}}'


def invalid(where: str, name: str, value: str, kind: str, msg: str) -> dict[str, Any]:
    """One entry of a 422 body, shaped as FastAPI's own validation errors."""
    return {"type": kind, "loc": [where, name], "msg": msg, "input": value}


def int_param(raw: str | None, default: int, low: int, high: int, errors: list[dict[str, Any]]) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        errors.append(invalid("query", "k", raw, "int_parsing",
                              "Input should be a valid integer, unable to parse string as an integer"))
        return default
    if value < low:
        errors.append(invalid("query", "k", raw, "greater_than_equal", f"Input should be greater than or equal to {low}"))
    elif value > high:
        errors.append(invalid("query", "k", raw, "less_than_equal", f"Input should be less than or equal to {high}"))
    return value


_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off"}


def bool_param(raw: str | None, errors: list[dict[str, Any]]) -> bool:
    if raw is None:
        return False
    low = raw.lower()
    if low in _TRUE or low in _FALSE:
        return low in _TRUE
    errors.append(invalid("query", "explain", raw, "bool_parsing", "Input should be a valid boolean, unable to interpret input"))
    return False


def json_safe(value: Any, max_chars: int = 200) -> Any:
    """``value`` made safe to echo in an error body: non-finite numbers as strings, strings
    that are not valid Unicode escaped, long strings cut, anything else as its str()."""
    if isinstance(value, float):
        return value if np.isfinite(value) else repr(value)
    if isinstance(value, str):
        safe = value.encode("utf-8", "backslashreplace").decode("utf-8")
        return safe if len(safe) <= max_chars else safe[:max_chars] + "..."
    if isinstance(value, (bool, int)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(json_safe(k)): json_safe(v) for k, v in list(value.items())[:50]}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in list(value)[:50]]
    return json_safe(str(value))


def scrubbed_errors(errors: list[dict[str, Any]], clean: Callable[[str], str | None]) -> list[dict[str, Any]]:
    """Validation errors whose echoed ``input`` has every string passed through ``clean`` (the
    service's scrubber): a rejected comment or bio is shown back without its personal data."""

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            try:
                return clean(value)
            except Exception:  # text the scrubber cannot read is not shown at all
                return "<TEXT>"
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v) for v in value]
        return value

    return [{**e, "input": walk(e["input"])} if "input" in e else e for e in errors]
