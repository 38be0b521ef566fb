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

Each configuration names the library model the service fits (``model``: "hybrid", the default
of `socialrec serve`, or "als"; see `ServeSettings.model`). wrk shares the
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
    settings = ServeSettings.from_dict({"state_dir": sys.argv[1], "log_requests": False,
                                        "rate_per_second": 1e9, "rate_burst": 1e9, **opts})
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
                kind = httpx.get(f"{self.url}/readyz", timeout=2).json().get("model_kind") or ""
                if r.status_code == 200 and r.json()["serving"] not in (None, "popularity") and kind:
                    self.models = r.json()
                    self.kind = kind
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

    from socialrec.serve.registry import ModelRegistry

    # read from the model the server trained: ids exactly as served
    served = ModelRegistry(server.state).load(server.models["serving"])
    users = served.dataset.users.external_ids
    rng = np.random.default_rng(0)
    return [str(u) for u in rng.choice(users, size=min(n, len(users)), replace=False)]


def bench_recommendations(name: str, opts: dict[str, Any], seconds: int, connections: int) -> dict[str, Any]:
    print(f"[{name}] starting and training ...", flush=True)
    t0 = time.perf_counter()
    server = Server(**opts)
    try:
        startup = time.perf_counter() - t0
        users = user_ids(server)
        out: dict[str, Any] = {"startup_and_train_s": round(startup, 1), "model": server.models["versions"][-1],
                               "serving_model": server.kind}
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


def breakdown(opts: dict[str, Any], n_users: int = 300) -> dict[str, float]:
    """Microseconds per request in this process, without network or load generator: the app
    called directly as ASGI (framework, auth, middleware, serialisation included) and the model
    alone, on first (cold: candidate rows computed) and later (warm: cached rows) requests."""
    import asyncio

    import numpy as np
    import scipy.linalg  # noqa: F401
    from threadpoolctl import threadpool_limits

    from socialrec.serve.app import create_app
    from socialrec.serve.service import Service
    from socialrec.serve.settings import ServeSettings

    threadpool_limits(1, "blas")
    state = tempfile.mkdtemp(prefix="socialrec-bench-")
    settings = ServeSettings.from_dict({"state_dir": state, "log_requests": False, "rate_per_second": 1e9,
                                        "rate_burst": 1e9, "train_on_start": False,
                                        **{k: tuple(map(tuple, v)) if k == "dataset_options" else v
                                           for k, v in opts.items()}})
    svc = Service(settings)
    try:
        served = svc.retrain()
        app = create_app(settings, service=svc, ceiling_endpoint=True)
        key = svc.keys.create(["read"])
        users = [str(u) for u in np.random.default_rng(1).choice(served.dataset.users.external_ids, n_users, replace=False)]
        model = svc.model

        async def call(path: str, query: bytes) -> None:
            scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                     "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query, "root_path": "",
                     "headers": [(b"host", b"x"), (b"authorization", f"Bearer {key}".encode())],
                     "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
            sent: list[dict[str, Any]] = []

            async def receive() -> dict[str, Any]:
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(message: dict[str, Any]) -> None:
                sent.append(message)

            await app(scope, receive, send)
            if sent[0]["status"] != 200:
                raise RuntimeError(f"{path}: status {sent[0]['status']}")

        def timed(fn: Any, items: list[Any]) -> float:
            t = time.perf_counter()
            for x in items:
                fn(x)
            return round((time.perf_counter() - t) / len(items) * 1e6, 1)

        out = {"model_cold_us": timed(lambda u: model.recommend(u, 20), users),
               "model_warm_us": timed(lambda u: model.recommend(u, 20), users),
               "model_explain_cold_us": timed(lambda u: model.recommend(u, 20, explain=True), users),
               "model_explain_warm_us": timed(lambda u: model.recommend(u, 20, explain=True), users)}
        # One event loop per call would dominate: run each batch inside one loop.
        async def batch(paths: list[tuple[str, bytes]]) -> float:
            t = time.perf_counter()
            for p, q in paths:
                await call(p, q)
            return round((time.perf_counter() - t) / len(paths) * 1e6, 1)

        recs = [(f"/v1/users/{u}/recommendations", b"k=20") for u in users]
        explained = [(f"/v1/users/{u}/recommendations", b"k=20&explain=true") for u in users]
        out["app_fixed_us"] = asyncio.run(batch([("/bench/fixed", b"")] * n_users))
        out["app_fixed_auth_us"] = asyncio.run(batch([("/bench/fixed-auth", b"")] * n_users))
        out["app_recs_warm_us"] = asyncio.run(batch(recs))
        out["app_recs_explain_warm_us"] = asyncio.run(batch(explained))
        print(f"[breakdown {opts.get('dataset')} {opts.get('model', 'live')}] {out}", flush=True)
        return out
    finally:
        svc.stop()
        shutil.rmtree(state, ignore_errors=True)


def bench_ingestion(synchronous: str, seconds: float, threads: int = 4, batch: int = 100) -> dict[str, Any]:
    import httpx

    # The default served model (the hybrid): events queue at ingestion and its learner folds them in.
    server = Server(dataset="synthetic", synchronous=synchronous)
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
             f"< 60 ms (explain on); ingestion >= 5,000 events/s in batches of 100. Ceilings: a fixed "
             f"20-item JSON from the same app, without and with the API-key check.", "",
             "| catalog | model | endpoint | req/s | ratio to ceiling (auth ceiling) | p50 ms | p99 ms | non-2xx |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for name, r in doc["recommendations"].items():
        model = r.get("serving_model", "live")
        for key, label in (("ceiling", "ceiling (fixed JSON)"), ("ceiling_auth", "ceiling with auth")):
            if key in r:
                c = r[key]
                lines.append(f"| {name} | - | {label} | {c['rps']:,.0f} | 1.00 | {c['p50_ms']:.2f} | "
                             f"{c['p99_ms']:.2f} | {c['non_2xx']} |")
        for key, label in (("recs_explain_false", "recommendations k=20"),
                           ("recs_explain_true", "recommendations k=20, explain")):
            x = r[key]
            ratio = f"{x['ratio_to_ceiling']:.2f}"
            if "ratio_to_auth_ceiling" in x:
                ratio += f" ({x['ratio_to_auth_ceiling']:.2f})"
            lines.append(f"| {name} | {model} | {label} | {x['rps']:,.0f} | {ratio} | {x['p50_ms']:.2f} | "
                         f"{x['p99_ms']:.2f} | {x['non_2xx']} |")
    if doc.get("breakdown"):
        lines += ["", "In-process microseconds per request (no network, no load generator; 300 users; cold = the "
                  "user's first request, candidate rows computed; warm = cached rows):", "",
                  "| catalog | model | app: fixed JSON | app: fixed + auth | app: recs warm | app: recs explain warm | "
                  "model cold | model warm | model explain cold | model explain warm |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for label, b in doc["breakdown"].items():
            name, _, model = label.partition(" | ")
            lines.append(f"| {name} | {model} | {b['app_fixed_us']} | {b['app_fixed_auth_us']} | {b['app_recs_warm_us']} | "
                         f"{b['app_recs_explain_warm_us']} | {b['model_cold_us']} | {b['model_warm_us']} | "
                         f"{b['model_explain_cold_us']} | {b['model_explain_warm_us']} |")
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
    parser.add_argument("--models", default="hybrid,als", help="library models served on LastFM (hybrid, als, ...)")
    parser.add_argument("--models-100k", default="als", help="library models served on the 100k catalog")
    parser.add_argument("--skip-lastfm", action="store_true")
    parser.add_argument("--skip-100k", action="store_true")
    parser.add_argument("--skip-breakdown", action="store_true")
    args = parser.parse_args()
    def parse_models(text: str, flag: str) -> list[str]:
        models = [m.strip() for m in text.split(",") if m.strip()]
        from socialrec.evaluate.suite import model_specs

        unknown = set(models) - set(model_specs(quick=True))
        if unknown:
            raise SystemExit(f"{flag}: unknown models {sorted(unknown)}")
        return models

    models = {"lastfm-recbole": parse_models(args.models, "--models"),
              "synthetic 100k items": parse_models(args.models_100k, "--models-100k")}
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    doc: dict[str, Any] = {"machine": describe(), "seconds": args.seconds, "connections": args.connections,
                           "load_generator": "wrk (HTTP reads); httpx threads in a separate process (ingestion)",
                           "recommendations": {}, "breakdown": {}, "ingestion": []}
    catalogs: list[tuple[str, dict[str, Any]]] = []
    if not args.skip_lastfm:
        catalogs.append(("lastfm-recbole", {"dataset": "lastfm-recbole"}))
    if not args.skip_100k:
        catalogs.append(("synthetic 100k items", {"dataset": "synthetic",
                                                  "dataset_options": [["n_items", 100_000], ["n_users", 5_000]]}))
    for name, opts in catalogs:
        for model in models[name]:
            label = f"{name} ({model})"
            doc["recommendations"][label] = bench_recommendations(label, {**opts, "model": {"name": model}},
                                                                  args.seconds, args.connections)
            if not args.skip_breakdown:
                doc["breakdown"][f"{name} | {model}"] = breakdown({**opts, "model": {"name": model}})
    for sync in ("FULL", "NORMAL"):
        doc["ingestion"].append(bench_ingestion(sync, args.ingest_seconds))
    out = HERE / "results" / "serving.json"
    out.parent.mkdir(exist_ok=True)
    previous = json.loads(out.read_text()) if out.exists() else None
    if previous is not None:
        doc["previous"] = {k: v for k, v in previous.items() if k != "previous"}
    out.write_text(json.dumps(doc, indent=2))
    text = table(doc)
    print(text)
    replace_section("SERVING", "Serving (benchmarks/serving.py)", text)
    print(f"results: {out}")


if __name__ == "__main__":
    main()
