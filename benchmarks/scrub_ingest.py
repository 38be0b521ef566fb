"""What scrubbing personal data costs at ingestion: 1,000 comment events through POST /v1/events
(one event per request, then batches of 100), with ``scrub_pii`` on and off, on two services
that are the same otherwise (synthetic platform, ALS, no encryption key). The comments are the
synthetic platform's own texts (reviews and posts, some with planted emails and phone numbers).
Each event goes to both services in turn, alternating which goes first, so that both share the
machine's noise; medians per event. Also times ``Service.ingest`` alone (store and fold-in, no HTTP).

    PYTHONPATH=. .venv/bin/python benchmarks/scrub_ingest.py [--events 1000] [--output FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path


def make(state: Path, scrub: bool, synchronous: str = "FULL"):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from socialrec.serve.app import create_app
    from socialrec.serve.engine import ModelConfig
    from socialrec.serve.service import Service
    from socialrec.serve.settings import ServeSettings

    settings = ServeSettings(dataset="synthetic", state_dir=str(state), train_on_start=False, model=ModelConfig("als"),
                             scrub_pii=scrub, log_requests=True, synchronous=synchronous, rate_per_second=1e6, rate_burst=1e6)
    svc = Service(settings, environ={})
    svc.retrain()
    client = TestClient(create_app(settings, service=svc))
    client.__enter__()
    key = svc.keys.create(["read", "write"])
    return svc, client, {"Authorization": f"Bearer {key}"}


def summary(on: list[float], off: list[float]) -> dict[str, float]:
    """Medians in ms per event, the overhead and the ratio."""
    a, b = statistics.median(on) * 1000, statistics.median(off) * 1000
    return {"ms_per_event_scrub_on": round(a, 4), "ms_per_event_scrub_off": round(b, 4),
            "overhead_ms_per_event": round(a - b, 4), "ratio": round(a / b, 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--output", type=Path, default=None)
    ap.add_argument("--synchronous", default="FULL", choices=("FULL", "NORMAL"),
                    help="the event store's fsync policy (NORMAL takes the disk's fsync noise out)")
    args = ap.parse_args()
    from socialrec.ingest.datasets import load

    ds = load("synthetic")
    texts = ds.texts["text"].astype(str).tolist()
    items = [str(i) for i in ds.items.external_ids]
    users = [str(u) for u in ds.users.external_ids]
    n = args.events
    chosen = [texts[(i * 7919) % len(texts)] for i in range(n)]

    def events(count: int) -> list[dict]:
        return [{"event_id": uuid.uuid4().hex, "user_id": users[i % len(users)], "kind": "comment",
                 "item_id": items[i % len(items)], "text": chosen[i % n]} for i in range(count)]

    times: dict[str, dict[str, list[float]]] = {k: {"on": [], "off": []} for k in ("http", "http_batch", "ingest")}
    with tempfile.TemporaryDirectory() as on_dir, tempfile.TemporaryDirectory() as off_dir:
        services = {"on": make(Path(on_dir), True, args.synchronous), "off": make(Path(off_dir), False, args.synchronous)}
        # Each event goes to both services in turn (order alternating), so both see the same noise.
        for i, (e_on, e_off) in enumerate(zip(events(n), events(n))):
            order = ("on", "off") if i % 2 else ("off", "on")
            for mode in order:
                _svc, client, h = services[mode]
                start = time.perf_counter()
                assert client.post("/v1/events", json={"events": [e_on if mode == "on" else e_off]},
                                   headers=h).status_code == 200
                times["http"][mode].append(time.perf_counter() - start)
        for b in range(n // 100):
            for mode in (("on", "off") if b % 2 else ("off", "on")):
                _svc, client, h = services[mode]
                start = time.perf_counter()
                assert client.post("/v1/events", json={"events": events(100)}, headers=h).status_code == 200
                times["http_batch"][mode].append((time.perf_counter() - start) / 100)
        # The service's ingest call alone (what the route calls after validation): store + fold-in.
        for i, (e_on, e_off) in enumerate(zip(events(n), events(n))):
            for mode in (("on", "off") if i % 2 else ("off", "on")):
                svc = services[mode][0]
                start = time.perf_counter()
                svc.ingest([e_on if mode == "on" else e_off])
                times["ingest"][mode].append(time.perf_counter() - start)
        for _svc, client, _h in services.values():
            client.__exit__(None, None, None)
    result = {"events": n, "synchronous": args.synchronous, "mean_comment_chars": round(statistics.mean(len(t) for t in chosen), 1),
              "one_event_per_request": summary(**times["http"]),
              "batches_of_100": summary(**times["http_batch"]),
              "service_ingest_one_event": summary(**times["ingest"])}
    print(json.dumps(result, indent=2))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
