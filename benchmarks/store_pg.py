"""The shared event store (issue 27, part 3): ingestion on SQLite vs PostgreSQL, and how fast an
event posted to one service process changes the recommendations another one serves.

Everything goes through the product: `socialrec serve` processes (started as a user would, by
`LocalService`) on the synthetic dataset serving `--model itemknn`, a throwaway PostgreSQL server
(`socialrec.serve.pg_local`, fsync on), HTTP requests with an API key.

- Ingestion: POST /v1/events (the HTTP batch endpoint) in batches of 100 events (likes, views and
  clicks of catalog items by dataset users, no text), from 1 client and from 4 concurrent
  clients, against one service process on the SQLite store and one on the PostgreSQL store, then
  against `--workers 2` (two processes on one port and one store); events per second of
  acknowledged (committed) events.
- Propagation: two services on one PostgreSQL store, separate state directories (as two hosts).
  Per trial a fresh user likes 6 items of one planted community through service A; service B is
  asked for that user's list every 10 ms until it differs from the anonymous list it gave
  before; the time from sending the batch to that answer. p50 and max over the trials.

    PYTHONPATH=. .venv/bin/python benchmarks/store_pg.py [--trials 20] [--batches 100]

Writes benchmarks/results/store-pg.json and a README section.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe  # noqa: E402
from _readme import replace_section  # noqa: E402

from socialrec.cli.serve_cmd import LocalService  # noqa: E402
from socialrec.serve.pg_local import LocalPostgres  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SERVE_ARGS = ["--dataset", "synthetic", "--model", "itemknn"]
BATCH = 100


def _wait_ready(service: LocalService, timeout: float = 600.0, workers: int = 1) -> None:
    """Until /readyz answers 200 (with several workers on the port: 10 times in a row)."""
    import httpx

    deadline = time.time() + timeout
    in_a_row = 0
    while time.time() < deadline:
        try:
            in_a_row = in_a_row + 1 if httpx.get(f"{service.url}/readyz", timeout=2).status_code == 200 else 0
            if in_a_row >= (1 if workers == 1 else 10):
                return
            continue
        except httpx.HTTPError:
            pass
        if service.proc.poll() is not None:
            raise RuntimeError(f"the service exited: {(service.state_dir / 'child.log').read_text()[-2000:]}")
        time.sleep(0.5)
    raise TimeoutError("the service did not become ready")


def _batches(prefix: str, n: int) -> list[list[dict[str, Any]]]:
    rng = np.random.default_rng(0)
    kinds = ("view", "like", "click")
    return [[{"event_id": f"{prefix}-{b}-{i}", "user_id": f"user_{int(rng.integers(600)):04d}",
              "kind": kinds[i % 3], "item_id": f"item_{int(rng.integers(400)):04d}"} for i in range(BATCH)]
            for b in range(n)]


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a process and its children so far (0 without one)."""
    import psutil

    if pid is None:
        return 0.0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def ingestion(service: LocalService, n_batches: int, clients: int, prefix: str,
              postmaster: int | None = None) -> dict[str, float]:
    """Events per second through POST /v1/events from ``clients`` concurrent clients, and the CPU
    seconds the service processes (and the PostgreSQL server) spent meanwhile."""
    import httpx

    batches = _batches(prefix, n_batches)
    shares = [batches[c::clients] for c in range(clients)]
    accepted = [0] * clients
    headers = {"Authorization": f"Bearer {service.key}"}

    def send(c: int) -> None:
        with httpx.Client(base_url=service.url, headers=headers, timeout=30) as client:
            for batch in shares[c]:
                r = client.post("/v1/events", json={"events": batch})
                r.raise_for_status()
                accepted[c] += r.json()["accepted"]

    threads = [threading.Thread(target=send, args=(c,)) for c in range(clients)]
    cpu_service, cpu_db = _cpu_seconds(service.proc.pid), _cpu_seconds(postmaster)
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    cpu_service, cpu_db = _cpu_seconds(service.proc.pid) - cpu_service, _cpu_seconds(postmaster) - cpu_db
    if sum(accepted) != n_batches * BATCH:
        raise RuntimeError(f"accepted {sum(accepted)} of {n_batches * BATCH} events")
    events = n_batches * BATCH
    return {"clients": clients, "events": events, "seconds": round(seconds, 3),
            "events_per_s": round(events / seconds, 1), "service_cpu_s": round(cpu_service, 3),
            "postgres_cpu_s": round(cpu_db, 3),
            "events_per_cpu_s": round(events / max(cpu_service + cpu_db, 1e-9), 1)}


def erasure(service: LocalService) -> dict[str, float]:
    """Seconds for DELETE /v1/users/{id} (the store's part rewrites the tables on PostgreSQL)."""
    import httpx

    headers = {"Authorization": f"Bearer {service.key}"}
    start = time.perf_counter()
    r = httpx.delete(f"{service.url}/v1/users/user_0001", headers=headers, timeout=120)
    r.raise_for_status()
    return {"seconds": round(time.perf_counter() - start, 3), "events_deleted": r.json()["events_deleted"]}


def propagation(a: LocalService, b: LocalService, trials: int) -> list[float]:
    """Seconds from posting likes to A until B serves a changed list, per trial."""
    import httpx

    from socialrec.ingest.datasets.synthetic import load_synthetic, synthetic_truth

    ds = load_synthetic()
    truth = synthetic_truth(ds)
    headers = {"Authorization": f"Bearer {a.key}"}
    out = []
    with httpx.Client(base_url=a.url, headers=headers, timeout=30) as ca, \
            httpx.Client(base_url=b.url, headers=headers, timeout=30) as cb:
        for t in range(trials):
            user = f"propagation-user-{t}"
            topic_items = np.flatnonzero(truth.item_topic == t % int(truth.item_topic.max() + 1))
            liked = ds.items.to_external(topic_items[:6]).tolist()

            def listed() -> list[str]:
                r = cb.get(f"/v1/users/{user}/recommendations", params={"k": 10})
                r.raise_for_status()
                return [x["item_id"] for x in r.json()["items"]]

            before = listed()
            sent = time.perf_counter()
            r = ca.post("/v1/events", json={"events": [{"event_id": f"p{t}-{n}", "user_id": user, "kind": "like",
                                                        "item_id": i} for n, i in enumerate(liked)]})
            r.raise_for_status()
            while listed() == before:
                if time.perf_counter() - sent > 30:
                    raise TimeoutError(f"trial {t}: B did not change its list in 30 s")
                time.sleep(0.01)
            out.append(round(time.perf_counter() - sent, 4))
    return out


def table(result: dict[str, Any]) -> str:
    ing = result["ingestion"]
    rows = ["| store | service processes (`--workers`) | clients | events | seconds | events/s | CPU s (service + PostgreSQL) "
            "| events per CPU second |", "|---|---|---|---|---|---|---|---|"]
    for backend in ("sqlite", "postgresql"):
        for run in ing[backend]:
            rows.append(f"| {backend} | {run['workers']} | {run['clients']} | {run['events']} | {run['seconds']:.2f} "
                        f"| {run['events_per_s']:.0f} | {run['service_cpu_s']:.2f} + {run['postgres_cpu_s']:.2f} "
                        f"| {run['events_per_cpu_s']:.0f} |")
    p = result["propagation"]
    load = result.get("load_average_1min", {"start": "?", "end": "?"})
    return "\n".join([
        f"Machine: {result['machine']}, shared with other jobs (1-minute load average {load['start']} at the start, "
        f"{load['end']} at the end, on {os.cpu_count()} cores): absolute numbers are noisy, compare within the run; the CPU "
        "seconds (user + system of the service processes and of the PostgreSQL server) are what the work itself costs.",
        "Command: `PYTHONPATH=. .venv/bin/python benchmarks/store_pg.py` (raw numbers: results/store-pg.json). "
        "Services: `socialrec serve --dataset synthetic --model itemknn`, on the SQLite store or "
        "`--store postgresql://...` (a throwaway local PostgreSQL 15 server, fsync on).",
        "",
        "Ingestion through the HTTP batch endpoint (POST /v1/events, batches of 100, each acknowledged after its commit):",
        "",
        *rows,
        "",
        "Erasure of one user (DELETE /v1/users/{id}, after the runs above; on PostgreSQL it rewrites the event "
        "table, `VACUUM FULL`): " + ", ".join(f"{b} {result['erasure'][b]['seconds']:.2f} s" for b in ("sqlite", "postgresql"))
        + ".",
        "",
        f"Cross-worker propagation: two services on one PostgreSQL store (separate state directories, as two "
        f"hosts; each folds in the other's events every {result['sync_interval_s']} s). An event batch posted to "
        f"A changed B's next list after p50 {p['p50_s']:.3f} s, max {p['max_s']:.3f} s over {p['trials']} trials "
        f"(target: within {p['target_s']:g} s).",
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--batches", type=int, default=100, help="batches of 100 events per ingestion run")
    parser.add_argument("--readme-only", action="store_true")
    args = parser.parse_args()
    path = RESULTS / "store-pg.json"
    if args.readme_only:
        replace_section("STORE-PG", "Shared event store on PostgreSQL (issue 27)", table(json.loads(path.read_text())))
        return 0
    from socialrec.serve.settings import ServeSettings

    sync = ServeSettings(store="postgresql://localhost/db").sync_every
    result: dict[str, Any] = {"machine": describe(), "batch": BATCH, "sync_interval_s": sync, "target_events_per_s": 5000,
                              "ingestion": {}, "erasure": {}, "propagation": {},
                              "load_average_1min": {"start": round(os.getloadavg()[0], 1)}}
    with LocalPostgres(fsync=True) as pg, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        postmaster = int((pg.data_dir / "postmaster.pid").read_text().split()[0])
        for backend in ("sqlite", "postgresql"):
            result["ingestion"][backend] = []
            for workers in (1, 2):
                store = pg.create_database(f"ingest{workers}") if backend == "postgresql" else None
                state = root / f"{backend}-{workers}"
                state.mkdir()
                with LocalService(SERVE_ARGS + ["--workers", str(workers)], state, store=store) as service:
                    _wait_ready(service, workers=workers)
                    ingestion(service, 10, 4, f"warm-{backend}")
                    for clients in ((1, 4) if workers == 1 else (4,)):
                        run = ingestion(service, args.batches, clients, f"{backend}-{workers}-{clients}",
                                        postmaster if backend == "postgresql" else None)
                        result["ingestion"][backend].append({"workers": workers, **run})
                    if workers == 1:
                        result["erasure"][backend] = erasure(service)
                print(backend, result["ingestion"][backend], flush=True)
        # keys live in the shared store: A's key works on B too
        url = pg.create_database("shared")
        (root / "a").mkdir()
        (root / "b").mkdir()
        with LocalService(SERVE_ARGS, root / "a", store=url) as a, LocalService(SERVE_ARGS, root / "b", store=url) as b:
            _wait_ready(a)
            _wait_ready(b)
            seconds = propagation(a, b, args.trials)
        result["propagation"] = {"trials": len(seconds), "target_s": 2.0, "p50_s": float(np.median(seconds)),
                                 "max_s": float(np.max(seconds)), "seconds": seconds}
        print(result["propagation"], flush=True)
    result["load_average_1min"]["end"] = round(os.getloadavg()[0], 1)
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    replace_section("STORE-PG", "Shared event store on PostgreSQL (issue 27)", table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
