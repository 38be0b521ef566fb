"""Fuzz the running service: schemathesis over its OpenAPI schema with every check on (a bounded
number of examples), against a real uvicorn server on a loopback port: no 5xx, every response as
documented (status codes, content types, bodies), schema-valid requests accepted, invalid ones
rejected, invalid credentials answered 401. Then a generator of what schemathesis never sends
(NaN, Infinity, lone surrogates, oversized strings, injected into any field of every body): each
must get a 4xx that says why. benchmarks/fuzz.py runs schemathesis with many more examples."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.serve.conftest import Served, live_server

schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")
httpx = pytest.importorskip("httpx")


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, str]]:
    # The fuzzer sends invalid credentials on purpose, many times: no per-address budget here
    # (that budget is attacked in test_hardening).
    s = Served(tmp_path_factory.mktemp("fuzz-state"), failed_auth_per_second=1e9, rate_per_second=1e9, rate_burst=1e9)
    try:
        with live_server(s.app) as (url, _port):
            yield s, url
    finally:
        s.close()


def fuzz_operations(served: Served, max_examples: int, skip_destructive: bool = True,
                    url: str | None = None) -> dict[str, int]:
    """Schemathesis over every operation (``url``: a live server; else the app in process)."""
    from hypothesis import HealthCheck, given, settings

    schema = (schemathesis.openapi.from_url(f"{url}/openapi.json") if url is not None
              else schemathesis.openapi.from_asgi("/openapi.json", served.app))
    done: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        if skip_destructive and (operation.path == "/v1/admin/retrain" or operation.method.upper() == "DELETE"):
            continue  # slow or destructive: attacked on purpose in test_api and test_hardening

        @given(case=operation.as_strategy())
        @settings(max_examples=max_examples, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck), derandomize=True)
        def fuzz(case: object) -> None:
            # Retraining with wait=true and erasure (which waits for a running retrain) take seconds.
            kwargs = {"timeout": 300} if url is not None else {}
            case.call_and_validate(headers=served.admin, **kwargs)  # type: ignore[attr-defined]

        fuzz()
        done[f"{operation.method.upper()} {operation.path}"] = max_examples
    return done


def test_openapi_fuzz_against_the_live_server_finds_nothing(fuzzed: tuple[Served, str]) -> None:
    served, url = fuzzed
    assert len(fuzz_operations(served, max_examples=8, url=url)) >= 12


VALID_BODIES = {
    ("POST", "/v1/events"): {"events": [{"event_id": "e", "user_id": "user_0001", "kind": "rating",
                                         "item_id": "item_0001", "value": 4.0, "timestamp": 1.0}]},
    ("PUT", "/v1/items/fz-1"): {"title": "A title", "text": "some text"},
    ("PUT", "/v1/users/fz-user"): {"name": "A name", "text": "a bio"},
    ("PUT", "/v1/users/fz-user/consent"): {"personalization": False},
    ("POST", "/v1/users/user_0001/chat"): {"message": "something like this", "k": 5},
}
HOSTILE = ["NaN", "Infinity", "-Infinity", '"\\ud800"', '"\\udfff tail"', '"' + "x" * 100_000 + '"']  # past every field's limit, under the body limit


def _leaves(doc: object, path: tuple = ()) -> Iterator[tuple]:
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _leaves(v, path + (i,))
    else:
        yield path


def _with(doc: object, path: tuple, raw: str) -> str:
    """The JSON text of ``doc`` with the value at ``path`` replaced by the raw JSON ``raw``."""
    marker = "__HOSTILE__"
    copy = json.loads(json.dumps(doc))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = marker
    return json.dumps(copy).replace(f'"{marker}"', raw)


def test_hostile_values_in_any_field_get_a_4xx_that_says_why(fuzzed: tuple[Served, str]) -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    served, url = fuzzed
    headers = {**served.admin, "Content-Type": "application/json"}
    cases = [(m, p, leaf) for (m, p), doc in VALID_BODIES.items() for leaf in _leaves(doc)]

    with httpx.Client(base_url=url, timeout=30) as client:
        @given(case=st.sampled_from(cases), raw=st.sampled_from(HOSTILE))
        @settings(max_examples=60, deadline=None, database=None, derandomize=True)
        def attack(case: tuple, raw: str) -> None:
            method, path, leaf = case
            body = _with(VALID_BODIES[(method, path)], leaf, raw)
            r = client.request(method, path, content=body, headers=headers)
            assert 400 <= r.status_code < 500, (method, path, leaf, raw[:20], r.status_code, r.text[:200])
            assert r.json()["detail"]

        attack()
