"""Fuzz the OpenAPI schema with schemathesis, every check on (a bounded number of examples):
no 5xx, every response as documented (status codes, content types, bodies), schema-valid
requests accepted, invalid ones rejected, invalid credentials answered 401. The generator's
blind spots (NaN, Infinity, lone surrogates, chunked oversized bodies) are attacked by hand in
tests/serve/test_hardening.py; benchmarks/fuzz.py runs the same with many more examples."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.serve.conftest import Served

schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    # The fuzzer sends invalid credentials on purpose, many times: no per-address budget here
    # (that budget is attacked in test_hardening).
    s = Served(tmp_path_factory.mktemp("fuzz-state"), failed_auth_per_second=1e9, rate_per_second=1e9, rate_burst=1e9)
    yield s
    s.close()


def fuzz_operations(served: Served, max_examples: int, skip_destructive: bool = True) -> dict[str, int]:
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_asgi("/openapi.json", served.app)
    done: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        if skip_destructive and (operation.path == "/v1/admin/retrain" or operation.method.upper() == "DELETE"):
            continue  # slow or destructive: attacked on purpose in test_api and test_hardening

        @given(case=operation.as_strategy())
        @settings(max_examples=max_examples, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck), derandomize=True)
        def fuzz(case: object) -> None:
            case.call_and_validate(headers=served.admin)  # type: ignore[attr-defined]

        fuzz()
        done[f"{operation.method.upper()} {operation.path}"] = max_examples
    return done


def test_openapi_fuzz_with_every_check_finds_nothing(fuzzed: Served) -> None:
    assert len(fuzz_operations(fuzzed, max_examples=8)) >= 12
