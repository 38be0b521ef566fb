"""`socialrec serve`, `socialrec keys` and the serving phase of `socialrec demo` as a user runs them:
separate processes on a free port, talked to over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

TIMEOUT = 240.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(*args: str, data: Path | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "socialrec"] + (["--data", str(data)] if data else []) + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _wait_ready(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the service exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"not ready within {TIMEOUT} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        return -9


def test_serve_command_end_to_end_with_keys_created_listed_and_revoked(tmp_path: Path) -> None:
    state, port = tmp_path / "state", _free_port()
    created = _cli("keys", "create", "--scopes", "read,write", "--name", "app", "--state-dir", str(state))
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    key_id, secret = key.split("_", 2)[1:]
    assert "only its hash is kept" in created.stderr
    log = tmp_path / "serve.out"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "socialrec", "serve", "--dataset", "synthetic", "--model", "ease",
                                 "--state-dir", str(state), "--port", str(port)], stdout=out, stderr=subprocess.STDOUT)
    url, h = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {key}"}
    try:
        _wait_ready(url, proc, log)
        r = httpx.get(f"{url}/v1/users/user_0001/recommendations?k=5&explain=true", headers=h, timeout=30)
        assert r.status_code == 200 and len(r.json()["items"]) == 5
        assert r.json()["items"][0]["reasons"]
        seen = [it["item_id"] for it in r.json()["items"]]
        posted = httpx.post(f"{url}/v1/events", headers=h, timeout=30, json={"events": [
            {"event_id": "e2e-1", "user_id": "user_0001", "kind": "purchase", "item_id": seen[0]}]})
        assert posted.status_code in (200, 202) and posted.json()["accepted"] == 1
        after = httpx.get(f"{url}/v1/users/user_0001/recommendations?k=5", headers=h, timeout=30).json()["items"]
        assert seen[0] not in [it["item_id"] for it in after]  # what the user just bought is not offered again
        assert httpx.get(f"{url}/v1/users/user_0001/recommendations", timeout=30).status_code == 401

        listed = _cli("keys", "list", "--state-dir", str(state))
        assert listed.returncode == 0
        assert f"{key_id}  scopes=read,write  rate=None  active  app" in listed.stdout
        assert secret not in listed.stdout + listed.stderr
        revoked = _cli("keys", "revoke", key_id, "--state-dir", str(state))
        assert revoked.returncode == 0 and f"revoked {key_id}" in revoked.stdout
        assert "revoked  app" in _cli("keys", "list", "--state-dir", str(state)).stdout
        time.sleep(1.0)  # the server re-reads a cached key after 0.5 s
        r = httpx.get(f"{url}/v1/users/user_0001/recommendations", headers=h, timeout=30)
        assert r.status_code == 401 and "revoked" in r.json()["detail"]
        unknown = _cli("keys", "revoke", "deadbeef", "--state-dir", str(state))
        assert unknown.returncode == 2 and "no key with id 'deadbeef'" in unknown.stderr
    finally:
        code = _stop(proc)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it so a supervisor sees why it ended
    assert code in (0, -signal.SIGTERM), log.read_text()[-3000:]
    assert "Traceback" not in log.read_text()


def test_the_demo_serves_what_it_trained_and_prints_a_working_key(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "socialrec", "--data", str(tmp_path / "no-data"), "demo", "--users", "1",
           "--report", str(tmp_path / "demo.html"), "--output", str(tmp_path / "demo.json"),
           "--port", str(port), "--state-dir", str(tmp_path / "state")]
    log = tmp_path / "demo.out"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + TIMEOUT
        while "dashboard: " not in log.read_text():
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        text = log.read_text()
        assert "synthetic social platform instead" in text
        key = text.split("#key=")[1].split()[0]
        curl = next(line for line in text.splitlines() if line.startswith("try:"))
        user = curl.split("/v1/users/")[1].split("/")[0]
        _wait_ready(url, proc, log)
        r = httpx.get(f"{url}/v1/users/{user}/recommendations?k=10&explain=true",
                      headers={"Authorization": f"Bearer {key}"}, timeout=30)
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert len(items) == 10 and all(it["reasons"] for it in items)
        assert httpx.get(f"{url}/", timeout=10).status_code == 200  # the dashboard page
    finally:
        _stop(proc)


@pytest.mark.parametrize("args, message", [
    (["serve", "--dataset", "nosuch"], "unknown dataset 'nosuch'"),
    (["keys", "create", "--scopes", "root"], "unknown or missing scope"),
])
def test_bad_serve_and_keys_arguments_say_what_is_wrong(tmp_path: Path, args, message) -> None:
    done = _cli(*args, "--state-dir", str(tmp_path / "s"))
    assert done.returncode == 2 and message in done.stderr, done.stderr
