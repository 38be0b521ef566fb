"""A served synthetic platform (600 users, 400 items, planted communities), trained once per module."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("implicit")


def wait_for(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.05)


FAST_CHANNELS = ("als", "itemknn", "social-proof", "trending")


class Served:
    def __init__(self, state_dir: Path, *, service_options: dict[str, Any] | None = None, **overrides: Any) -> None:
        from fastapi.testclient import TestClient

        from socialrec.serve.app import create_app
        from socialrec.serve.engine import ModelConfig
        from socialrec.serve.service import Service
        from socialrec.serve.settings import ServeSettings

        # The hybrid pipeline the service serves by default, on channels that fit in seconds
        # (a test may serve another model with ``model=ModelConfig(...)``).
        overrides.setdefault("model", ModelConfig("hybrid", channels=FAST_CHANNELS))
        self.settings = ServeSettings(dataset="synthetic", state_dir=str(state_dir), train_on_start=False,
                                      **overrides)
        self.service = Service(self.settings, **(service_options or {}))
        self.service.retrain()
        self.app = create_app(self.settings, service=self.service)
        self.client = TestClient(self.app)
        self.client.__enter__()
        self.admin = self.auth(self.service.keys.create(["read", "write", "admin", "export"]))
        self.reader = self.auth(self.service.keys.create(["read"]))

    @staticmethod
    def auth(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def recs(self, user: str, k: int = 20, **params: Any) -> dict[str, Any]:
        r = self.client.get(f"/v1/users/{user}/recommendations", params={"k": k, **params}, headers=self.admin)
        assert r.status_code == 200, r.text
        return r.json()

    def post(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        r = self.client.post("/v1/events", json={"events": events}, headers=self.admin)
        assert r.status_code == 200, r.text
        return r.json()

    def close(self) -> None:
        for job in list(self.service.jobs.values()):
            job["_done"].wait(timeout=120)
        self.client.__exit__(None, None, None)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    s = Served(tmp_path_factory.mktemp("serve-state"))
    yield s
    s.close()


@contextmanager
def live_server(app: Any) -> Iterator[tuple[str, int]]:
    """``app`` under a real uvicorn server on a free loopback port, in a thread; yields (url, port)
    and stops the server on exit."""
    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 30)
    try:
        yield f"http://127.0.0.1:{port}", port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# --- PostgreSQL: a throwaway server per test session (socialrec.serve.pg_local) -------------
@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    """A real PostgreSQL server started from Debian's binaries (`make test` installs them);
    skipped, saying why, where psycopg or the binaries are missing or the server cannot start."""
    pytest.importorskip("psycopg", reason="psycopg is not installed: pip install 'socialrec[postgres]'")
    from socialrec.serve.pg_local import LocalPostgres

    try:
        # fsync off: the tests kill service processes, never the machine; commits stay synchronous.
        server = LocalPostgres(fsync=False).start()
    except (RuntimeError, OSError) as exc:
        pytest.skip(f"no PostgreSQL server for the store tests: {exc}")
    yield server
    server.stop()


_databases = iter(range(1_000_000))


@pytest.fixture
def pg_url(pg_server: Any) -> str:
    """The URL of a new empty database on the session's server."""
    return str(pg_server.create_database(f"t{next(_databases)}"))


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> str | None:
    """Each store backend in turn: None (the SQLite files in the state directory) or a PostgreSQL URL."""
    return None if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))
