"""A real server process killed with SIGKILL mid-stream keeps every acknowledged event exactly once,
on each store backend (SQLite in the state directory, a real PostgreSQL server)."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")

SERVER = textwrap.dedent("""
    import sys, uvicorn
    from socialrec.serve.app import create_app
    from socialrec.serve.settings import ServeSettings
    settings = ServeSettings(dataset="synthetic", state_dir=sys.argv[1],
                             train_on_start=False, store=sys.argv[3] or None)
    uvicorn.run(create_app(settings), host="127.0.0.1", port=int(sys.argv[2]), access_log=False, log_level="warning")
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(state: Path, port: int, store: str | None = None) -> subprocess.Popen[bytes]:
    log = state / "server-stderr.txt"
    with open(log, "ab") as err:
        proc = subprocess.Popen([sys.executable, "-c", SERVER, str(state), str(port), store or ""],
                                stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"server did not start: {log.read_text()}")


def stored_event_ids(state: Path, store: str | None) -> list[str]:
    """Every event id in the store, read straight from the database (not through the service)."""
    if store is None:
        con = sqlite3.connect(state / "events.sqlite3")
        ids = [row[0] for row in con.execute("SELECT event_id FROM events")]
        con.close()
        return ids
    import psycopg

    with psycopg.connect(store) as con:
        return [row[0] for row in con.execute("SELECT event_id FROM events")]


def test_sigkill_mid_stream_loses_no_acknowledged_event(tmp_path: Path, store_url: str | None) -> None:
    from socialrec.serve.auth import KeyStore

    keys = KeyStore(tmp_path, url=store_url)
    headers = {"Authorization": f"Bearer {keys.create(['write', 'read'])}"}
    keys.close()
    port = free_port()
    proc = start(tmp_path, port, store_url)
    acked: list[str] = []
    stop = threading.Event()

    def stream() -> None:
        n = 0
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=5) as client:
            while not stop.is_set():
                batch = [{"event_id": f"e{n}-{i}", "user_id": f"user_{i % 50:04d}", "kind": "click",
                          "item_id": f"item_{(n + i) % 400:04d}"} for i in range(50)]
                n += 1
                try:
                    r = client.post("/v1/events", json={"events": batch})
                except httpx.HTTPError:
                    return  # the server died mid-request: this batch was never acknowledged
                if r.status_code == 200:
                    acked.extend(e["event_id"] for e in batch)

    writer = threading.Thread(target=stream)
    writer.start()
    time.sleep(1.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stop.set()
    writer.join()
    assert len(acked) >= 500, f"only {len(acked)} events acknowledged before the kill"

    proc = start(tmp_path, port, store_url)  # same state directory: it must open cleanly after the crash
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/v1/users/user_0001/activity?limit=5", headers=headers)
        assert r.status_code == 200 and r.json()["events"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    stored = stored_event_ids(tmp_path, store_url)
    counts: dict[str, int] = {}
    for e in stored:
        counts[e] = counts.get(e, 0) + 1
    assert all(counts.get(e) == 1 for e in acked), [e for e in acked if counts.get(e) != 1][:5]
    assert max(counts.values()) == 1
