"""How long GET /v1/users/{id}/export takes, through HTTP, on a service holding a real dataset.

A `socialrec serve --dataset lastfm --model als` child process (stored text encrypted: a fresh
SOCIALREC_DATA_KEY) is given every tag assignment of Last.fm HetRec 2011
(``user_taggedartists.dat``: 186k (user, artist, tag, date) rows) as comment events whose text is
the tag, through POST /v1/events in batches of 1000. Then the export of the median user and of
the heaviest user (by stored events plus base-dataset interactions) is asked ``--repeats`` times
each; the first call and the median and maximum of all are reported with the document's size.

Writes benchmarks/results/export-lastfm.json.

    nice .venv/bin/python benchmarks/export.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "export-lastfm.json"


def tag_events(root: Path) -> list[dict[str, Any]]:
    tags = pd.read_csv(root / "tags.dat", sep="\t", encoding="latin-1", index_col=0)["tagValue"]
    rows = pd.read_csv(root / "user_taggedartists.dat", sep="\t")
    out = []
    for n, (u, a, t, d, m, y) in enumerate(rows.itertuples(index=False)):
        try:
            ts = dt.datetime(int(y), int(m), int(d), tzinfo=dt.timezone.utc).timestamp()
        except ValueError:
            ts = None  # a few rows carry impossible dates
        e = {"event_id": f"tag-{n}", "user_id": str(u), "kind": "comment", "item_id": str(a), "text": str(tags.get(t, ""))}
        if ts is not None and ts > 0:
            e["timestamp"] = ts
        out.append(e)
    return out


def main() -> int:
    import httpx
    from cryptography.fernet import Fernet

    from socialrec.cli.serve_cmd import LocalService
    from socialrec.ingest.datasets import load
    from socialrec.serve.auth import KeyStore

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--data", default=None)
    args = parser.parse_args()
    ds = load("lastfm", args.data)
    root = Path(args.data or os.environ.get("SOCIALREC_DATA") or HERE.parent.parent / "shared" / "data") / "lastfm-hetrec2011"
    events = tag_events(root)
    os.environ["SOCIALREC_DATA_KEY"] = Fernet.generate_key().decode()
    out: dict[str, Any] = {"dataset": ds.name, "machine": describe(), "model": "als", "text_encrypted": True}
    with tempfile.TemporaryDirectory(prefix="socialrec-export-") as state:
        keys = KeyStore(state)
        exporter = {"Authorization": f"Bearer {keys.create(['export'], name='bench')}"}
        keys.close()
        with LocalService(["--dataset", "lastfm", "--model", "als"], Path(state), args.data) as svc:
            writer = {"Authorization": f"Bearer {svc.key}"}
            with httpx.Client(base_url=svc.url, timeout=600) as client:
                start = time.perf_counter()
                while True:
                    try:
                        if client.get("/readyz").status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.perf_counter() - start > 1800:
                        raise RuntimeError("the service did not become ready")
                    time.sleep(1)
                out["train_seconds"] = round(time.perf_counter() - start, 1)
                start = time.perf_counter()
                accepted = 0
                for i in range(0, len(events), 1000):
                    r = client.post("/v1/events", json={"events": events[i:i + 1000]}, headers=writer)
                    r.raise_for_status()
                    accepted += r.json()["accepted"]
                out["events_posted"] = len(events)
                out["events_stored"] = accepted
                out["ingest_seconds"] = round(time.perf_counter() - start, 1)
                stored = pd.Series([e["user_id"] for e in events]).value_counts()
                base = pd.Series(ds.users.to_external(ds.interactions["user"].to_numpy())).astype(str).value_counts()
                held = stored.add(base, fill_value=0).sort_values(kind="stable")
                users = {"median": str(held.index[len(held) // 2]), "heaviest": str(held.index[-1])}
                for name, user in users.items():
                    times, size, n_events = [], 0, 0
                    for _ in range(args.repeats):
                        t0 = time.perf_counter()
                        r = client.get(f"/v1/users/{user}/export", headers=exporter)
                        times.append(time.perf_counter() - t0)
                        r.raise_for_status()
                        size, n_events = len(r.content), len(r.json()["events"])
                    out[name] = {"user_id": user, "stored_events": n_events, "dataset_interactions": int(base.get(user, 0)),
                                 "bytes": size, "first_ms": round(times[0] * 1000, 1),
                                 "median_ms": round(float(np.median(times)) * 1000, 1),
                                 "max_ms": round(max(times) * 1000, 1), "repeats": args.repeats}
                    print(name, out[name], flush=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
