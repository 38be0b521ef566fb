"""Serving throughput and latency on loopback, against the framework's own ceiling.

Each configuration starts the service as a separate process (uvicorn, one worker, as
`socialrec serve` runs it) on a free loopback port, waits until the trained model serves, and
loads it with `wrk` (one thread, ``--connections`` connections, ``--seconds`` per run, a Lua
script that picks a random known user per request). Measured:

- ceiling: GET /bench/fixed, a fixed 20-item JSON from the same app (auth and middleware
  included, no model): the most this process can answer;
- recommendations, k=20, explain off and on, on lastfm-recbole and on a synthetic catalog of
  100,000 items (5,000 users);
- event ingestion: a Python load generator (httpx, threads, separate process from the server)
  posting batches of 100 events, with SQLite synchronous=FULL and NORMAL.

The content encoder is switched off here (``encoder="none"``) so that runs stay bounded: it only
changes the scoring of items added after training, not the request path measured. wrk shares the
2 cores with the server, so absolute numbers are pessimistic; ratios to the ceiling are what
compare. Writes benchmarks/results/serving.json and a section of benchmarks/README.md.

    .venv/bin/python benchmarks/serving.py [--seconds 8] [--connections 4] [--skip-lastfm] [--skip-100k]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe  # noqa: E402
from _readme import replace_section  # noqa: E402

HERE = Path(__file__).resolve().parent
SERVER = textwrap.dedent("""
    import json, sys, uvicorn
    import numpy, scipy.linalg
    from threadpoolctl import threadpool_limits
    from socialrec.serve.app import create_app
    threadpool_limits(1, "blas")  # as socialrec serve does (after numpy and scipy have loaded their BLAS)
    from socialrec.serve.settings import ServeSettings
    opts = json.loads(sys.argv[3])
    settings = ServeSettings(state_dir=sys.argv[1], encoder="none", log_requests=False,
                             rate_per_second=1e9, rate_burst=1e9, **opts)
    uvicorn.run(create_app(settings, ceiling_endpoint=True), host="127.0.0.1", port=int(sys.argv[2]),
                access_log=False, log_level="warning")
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, **opts: Any) -> None:
        import httpx

        self.state = Path(tempfile.mkdtemp(prefix="socialrec-bench-"))
        from socialrec.serve.auth import KeyStore

        ks = KeyStore(self.state)
        self.key = ks.create(["read", "write", "admin"])
        ks.close()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(self.state / "stderr.txt", "wb")
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER, str(self.state), str(self.port), json.dumps(opts)],
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        self.headers = {"Authorization": f"Bearer {self.key}"}
        deadline = time.time() + 900
        while time.time() < deadline:
            try:
                r = httpx.get(f"{self.url}/v1/admin/models", headers=self.headers, timeout=2)
                if r.status_code == 200 and r.json()["serving"] not in (None, "popularity"):
                    self.models = r.json()
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.5)
        self.close()
        raise RuntimeError(f"server did not become ready: {(self.state / 'stderr.txt').read_text()[-2000:]}")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)
        self.log.close()
        shutil.rmtree(self.state, ignore_errors=True)


def wrk(url: str, key: str, path_lua: str, seconds: int, connections: int) -> dict[str, float]:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(path_lua.replace("KEY", key))
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    script.unlink()

    def ms(text: str) -> float:
        value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    pct = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
            "p50_ms": ms(pct["50"]), "p90_ms": ms(pct["90"]), "p99_ms": ms(pct["99"]),
            "requests": int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
            "non_2xx": int(non2xx.group(1)) if non2xx else 0}


def lua(paths: list[str]) -> str:
    listed = ",".join(json.dumps(p) for p in paths)
    return textwrap.dedent(f"""
        local paths = {{{listed}}}
        math.randomseed(1)
        request = function()
          return wrk.format("GET", paths[math.random(#paths)], {{["Authorization"] = "Bearer KEY"}})
        end
    """)


def user_ids(server: Server, n: int = 500) -> list[str]:
    import numpy as np

    from socialrec.serve.bundle import Bundle

    # read from the model the server trained: ids exactly as served
    version = server.models["serving"]
    users = Bundle.load(server.state / "models" / version).user_ids
    rng = np.random.default_rng(0)
    return [str(u) for u in rng.choice(users, size=min(n, len(users)), replace=False)]


def bench_recommendations(name: str, opts: dict[str, Any], seconds: int, connections: int) -> dict[str, Any]:
    print(f"[{name}] starting and training ...", flush=True)
    t0 = time.perf_counter()
    server = Server(**opts)
    try:
        startup = time.perf_counter() - t0
        users = user_ids(server)
        out: dict[str, Any] = {"startup_and_train_s": round(startup, 1), "model": server.models["versions"][-1]}
        out["ceiling"] = wrk(server.url, server.key, lua(["/bench/fixed"]), seconds, connections)
        out["ceiling_auth"] = wrk(server.url, server.key, lua(["/bench/fixed-auth"]), seconds, connections)
        for explain in ("false", "true"):
            paths = [f"/v1/users/{u}/recommendations?k=20&explain={explain}" for u in users]
            out[f"recs_explain_{explain}"] = wrk(server.url, server.key, lua(paths), seconds, connections)
        for key in ("recs_explain_false", "recs_explain_true"):
            out[key]["ratio_to_ceiling"] = round(out[key]["rps"] / out["ceiling"]["rps"], 3)
            out[key]["ratio_to_auth_ceiling"] = round(out[key]["rps"] / out["ceiling_auth"]["rps"], 3)
        print(f"[{name}] {json.dumps({k: v for k, v in out.items() if k != 'model'})}", flush=True)
        return out
    finally:
        server.close()


def bench_ingestion(synchronous: str, seconds: float, threads: int = 4, batch: int = 100) -> dict[str, Any]:
    import httpx

    server = Server(dataset="synthetic", synchronous=synchronous, als_iterations=3)
    try:
        kinds = ("view", "click", "like", "share")
        done = {"events": 0, "errors": 0}
        latencies: list[float] = []
        lock = threading.Lock()
        stop = time.perf_counter() + seconds

        def work(seed: int) -> None:
            rng = random.Random(seed)
            with httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as client:
                while time.perf_counter() < stop:
                    events = [{"event_id": uuid.uuid4().hex, "user_id": f"user_{rng.randrange(600):04d}",
                               "kind": rng.choice(kinds), "item_id": f"item_{rng.randrange(400):04d}"}
                              for _ in range(batch)]
                    t = time.perf_counter()
                    r = client.post("/v1/events", json={"events": events})
                    with lock:
                        latencies.append(time.perf_counter() - t)
                        if r.status_code == 200 and r.json()["accepted"] == batch:
                            done["events"] += batch
                        else:
                            done["errors"] += 1

        start = time.perf_counter()
        workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        elapsed = time.perf_counter() - start
        latencies.sort()
        out = {"synchronous": synchronous, "events_per_s": round(done["events"] / elapsed, 1),
               "batches": len(latencies), "errors": done["errors"], "batch_size": batch, "client_threads": threads,
               "batch_p50_ms": round(1000 * latencies[len(latencies) // 2], 2),
               "batch_p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 2)}
        print(f"[ingest {synchronous}] {out}", flush=True)
        return out
    finally:
        server.close()


def table(doc: dict[str, Any]) -> str:
    lines = [f"Machine: {doc['machine']}. Load: wrk, 1 thread, {doc['connections']} connections, "
             f"{doc['seconds']} s per row, on the same 2 cores as the server (one uvicorn worker). "
             f"Targets: recommendations >= 50% of the ceiling's requests/s, p99 < 30 ms (explain off), "
             f"< 60 ms (explain on); ingestion >= 5,000 events/s in batches of 100.", "",
             "| catalog | endpoint | req/s | ratio to ceiling | p50 ms | p99 ms | non-2xx |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for name, r in doc["recommendations"].items():
        lines.append(f"| {name} | ceiling (fixed 20-item JSON) | {r['ceiling']['rps']:,.0f} | 1.00 | "
                     f"{r['ceiling']['p50_ms']:.2f} | {r['ceiling']['p99_ms']:.2f} | {r['ceiling']['non_2xx']} |")
        for key, label in (("recs_explain_false", "recommendations k=20"),
                           ("recs_explain_true", "recommendations k=20, explain")):
            x = r[key]
            lines.append(f"| {name} | {label} | {x['rps']:,.0f} | {x['ratio_to_ceiling']:.2f} | {x['p50_ms']:.2f} | "
                         f"{x['p99_ms']:.2f} | {x['non_2xx']} |")
    lines += ["", "| event ingestion (batches of 100, 4 client threads) | events/s | batch p50 ms | batch p99 ms | errors |",
              "|---|---:|---:|---:|---:|"]
    for r in doc["ingestion"]:
        lines.append(f"| synchronous={r['synchronous']} | {r['events_per_s']:,.0f} | {r['batch_p50_ms']} | "
                     f"{r['batch_p99_ms']} | {r['errors']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--ingest-seconds", type=float, default=8.0)
    parser.add_argument("--skip-lastfm", action="store_true")
    parser.add_argument("--skip-100k", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    doc: dict[str, Any] = {"machine": describe(), "seconds": args.seconds, "connections": args.connections,
                           "load_generator": "wrk (HTTP reads); httpx threads in a separate process (ingestion)",
                           "recommendations": {}, "ingestion": []}
    if not args.skip_lastfm:
        doc["recommendations"]["lastfm-recbole"] = bench_recommendations(
            "lastfm-recbole", {"dataset": "lastfm-recbole"}, args.seconds, args.connections)
    if not args.skip_100k:
        doc["recommendations"]["synthetic 100k items"] = bench_recommendations(
            "synthetic-100k", {"dataset": "synthetic", "dataset_options": [["n_items", 100_000], ["n_users", 5_000]],
                               "als_iterations": 5}, args.seconds, args.connections)
    for sync in ("FULL", "NORMAL"):
        doc["ingestion"].append(bench_ingestion(sync, args.ingest_seconds))
    out = HERE / "results" / "serving.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(doc, indent=2))
    text = table(doc)
    print(text)
    replace_section("SERVING", "Serving (benchmarks/serving.py)", text)
    print(f"results: {out}")


if __name__ == "__main__":
    main()
