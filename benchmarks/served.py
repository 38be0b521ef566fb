"""What the service serves, measured through HTTP only, beside what `socialrec evaluate` reports.

Three parts, each against a real `socialrec serve` child process on a free loopback port (the
default model: the hybrid pipeline), serving a holdout (`--holdout`, the same split code as
`socialrec evaluate`):

- ranking: lastfm (HetRec) random-811 seed 0; each test user's top 20 is asked once with
  explanations (one request per user, nothing cached: the "first" latency), then again (the
  "repeat" latency); NDCG@10/20 against the held-out pairs, beside `socialrec evaluate
  --models hybrid` on the same split (run here as a subprocess unless --evaluate-json gives its
  output);
- friends: the same split with 20% of each user's edges masked (`--friends-masked 0.2`);
  served friend suggestions (the learned pymk) against the masked edges, beside Adamic-Adar and
  pymk fitted in-process on the same training edges (`evaluate_friends`);
- replay: movielens-100k temporal; `socialrec replay`'s loop (each held-out event in time
  order: ask the user's list, then post the event) for the live service and the same lists
  frozen before the stream.

Writes benchmarks/results/served.json and the "Served quality" section of benchmarks/README.md.

    nice .venv/bin/python benchmarks/served.py [--skip-ranking] [--skip-friends] [--skip-replay]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe  # noqa: E402
from _readme import replace_section  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "served.json"


def ranking(dataset: str, protocol: str, seed: int, evaluate_json: Path | None,
            state_dir: Path | None = None) -> dict[str, Any]:
    from socialrec.cli.serve_cmd import LocalService
    from socialrec.evaluate.holdout import served_part
    from socialrec.evaluate.served import Client, served_ranking
    from socialrec.ingest.datasets import load

    ds = load(dataset)
    part = served_part(ds, protocol, seed=seed)
    pairs = list(zip(ds.users.to_external(part.test[:, 0]), ds.items.to_external(part.test[:, 1])))
    out: dict[str, Any] = {"dataset": ds.name, "protocol": protocol, "seed": seed}
    with tempfile.TemporaryDirectory(prefix="socialrec-served-") as fresh:
        # A --state-dir that already holds a version trained on this holdout is served as it is
        # (the service refuses one trained on other data); else a fresh one trains first.
        state = state_dir if state_dir is not None else Path(fresh)
        start = time.perf_counter()
        with LocalService(["--dataset", dataset, "--holdout", protocol, "--seed", str(seed)], Path(state)) as svc:
            client = Client(svc.url, svc.key)
            out["ready"] = client.wait_ready()
            out["startup_and_train_s"] = round(time.perf_counter() - start, 1)
            if state_dir is not None:
                out["startup_note"] = f" (state reused from {state_dir}: a saved version loads instead of training)"
            out["served"] = served_ranking(client, pairs, ks=(10, 20), explain=True)
    print(f"[ranking] served {json.dumps(out['served'])}", flush=True)
    if evaluate_json is None:
        evaluate_json = HERE / "results" / f"evaluate-{dataset}-{protocol}-hybrid.json"
        cmd = [sys.executable, "-m", "socialrec", "evaluate", "--dataset", dataset, "--protocol", protocol,
               "--models", "hybrid", "--k", "10,20", "--seed", str(seed), "--output", str(evaluate_json)]
        print("[ranking] " + " ".join(cmd[2:]), flush=True)
        subprocess.run(cmd, check=True)
    elif not evaluate_json.exists():
        print(f"[ranking] waiting for {evaluate_json} (a running `socialrec evaluate`)", flush=True)
        while not evaluate_json.exists():
            time.sleep(30)
    kept = HERE / "results" / f"evaluate-{dataset}-{protocol}-hybrid.json"
    if evaluate_json.resolve() != kept.resolve():
        kept.write_text(evaluate_json.read_text())
        evaluate_json = kept
    offline = json.loads(evaluate_json.read_text())["models"]["hybrid"]
    out["offline"] = {k: offline[k] for k in ("ndcg@10", "ndcg@20", "recall@10", "recall@20") if k in offline}
    out["offline_source"] = str(evaluate_json.relative_to(HERE.parent)) if evaluate_json.is_relative_to(HERE.parent) \
        else str(evaluate_json)
    out["served_over_offline_ndcg10"] = round(out["served"]["ndcg@10"] / out["offline"]["ndcg@10"], 4)
    return out


def friends(dataset: str, protocol: str, seed: int, share: float) -> dict[str, Any]:
    from socialrec.cli.serve_cmd import LocalService
    from socialrec.evaluate.friends import evaluate_friends, friend_models
    from socialrec.evaluate.holdout import served_part
    from socialrec.evaluate.served import Client, served_friends
    from socialrec.ingest.datasets import load

    ds = load(dataset)
    part = served_part(ds, protocol, seed=seed, friends_masked=share)
    test = part.friends_test.tocoo()
    edges = list(zip(ds.users.to_external(test.row), ds.users.to_external(test.col)))
    out: dict[str, Any] = {"dataset": ds.name, "protocol": f"{protocol} + masked-edges-{int(share * 100)}",
                           "seed": seed, "hidden_edges": int(test.nnz)}
    # The item model does not change friend suggestions (pymk is fitted on the graph and the
    # interactions): ALS keeps this service's start-up short.
    with tempfile.TemporaryDirectory(prefix="socialrec-served-") as state:
        args = ["--dataset", dataset, "--holdout", protocol, "--seed", str(seed), "--friends-masked", str(share),
                "--model", "als"]
        with LocalService(args, Path(state)) as svc:
            client = Client(svc.url, svc.key)
            client.wait_ready()
            out["served_pymk"] = served_friends(client, edges, ks=(10, 20))
    x = part.dataset.user_item_matrix()
    table = friend_models()
    for name in ("adamic-adar", "pymk"):
        model = table[name]().fit(part.friends_train, x)
        out[f"offline_{name}"] = evaluate_friends(model, part.friends_train, part.friends_test, ks=(10, 20), seed=seed)
    out["served_over_adamic_adar_ndcg10"] = round(out["served_pymk"]["ndcg@10"] / out["offline_adamic-adar"]["ndcg@10"], 4)
    print(f"[friends] {json.dumps(out)}", flush=True)
    return out


def replay_part(dataset: str, protocol: str, seed: int, max_events: int | None) -> dict[str, Any]:
    out_file = HERE / "results" / f"replay-{dataset}-{protocol}.json"
    cmd = [sys.executable, "-m", "socialrec", "replay", "--dataset", dataset, "--protocol", protocol,
           "--seed", str(seed), "--output", str(out_file)]
    if max_events:
        cmd += ["--max-events", str(max_events)]
    print("[replay] " + " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True)
    return json.loads(out_file.read_text())


def table(doc: dict[str, Any]) -> str:
    lines = [f"Machine: {doc['machine']}. Rerun: `nice .venv/bin/python benchmarks/served.py`.", ""]
    r = doc.get("ranking")
    if r:
        s, o = r["served"], r["offline"]
        lat = s["latency_ms"]
        lines += [f"**Ranking** ({r['dataset']}, {r['protocol']}, seed {r['seed']}; {s['users']} test users, one "
                  "explained request each, through HTTP):", "",
                  "| | NDCG@10 | NDCG@20 | Recall@20 |", "|---|---|---|---|",
                  f"| served (`socialrec serve --holdout`) | {s['ndcg@10']:.4f} | {s['ndcg@20']:.4f} | {s['recall@20']:.4f} |",
                  f"| offline (`socialrec evaluate --models hybrid`) | {o['ndcg@10']:.4f} | {o.get('ndcg@20', float('nan')):.4f} "
                  f"| {o.get('recall@20', float('nan')):.4f} |", "",
                  f"Served / offline NDCG@10: {r['served_over_offline_ndcg10']:.3f}. Latency of an explained list of 20: "
                  f"first request per user p50 {lat['first_p50']:.1f} ms, p99 {lat['first_p99']:.1f} ms; repeated "
                  f"p50 {lat['repeat_p50']:.1f} ms, p99 {lat['repeat_p99']:.1f} ms (client and server share the 2 cores). "
                  f"Start-up until ready: {r['startup_and_train_s']:.0f} s{r.get('startup_note', '')}.", ""]
    f = doc.get("friends")
    if f:
        lines += [f"**Friend suggestions** ({f['dataset']}, {f['protocol']}, {f['hidden_edges']} hidden edges):", "",
                  "| | NDCG@10 | Recall@20 |", "|---|---|---|",
                  f"| served pymk (HTTP) | {f['served_pymk']['ndcg@10']:.4f} | {f['served_pymk']['recall@20']:.4f} |",
                  f"| pymk, in-process | {f['offline_pymk']['ndcg@10']:.4f} | {f['offline_pymk']['recall@20']:.4f} |",
                  f"| Adamic-Adar, in-process | {f['offline_adamic-adar']['ndcg@10']:.4f} | "
                  f"{f['offline_adamic-adar']['recall@20']:.4f} |", "",
                  f"Served / Adamic-Adar NDCG@10: {f['served_over_adamic_adar_ndcg10']:.3f}.", ""]
    p = doc.get("replay")
    if p:
        lines += [f"**Replay** ({p['dataset']}, {p['protocol']}; {p['events']} held-out events of {p['users']} users "
                  "in time order, each asked for before it is posted):", "",
                  "| | HR@10 | NDCG@10 |", "|---|---|---|",
                  f"| live (events folded in) | {p['live']['hr@10']:.4f} | {p['live']['ndcg@10']:.4f} |",
                  f"| frozen (lists before the stream) | {p['frozen']['hr@10']:.4f} | {p['frozen']['ndcg@10']:.4f} |", "",
                  f"Live / frozen HR@10: {p['live_over_frozen_hr']:.2f} ({p['seconds']:.0f} s for the stream).", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="lastfm")
    parser.add_argument("--protocol", default="random-811")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--evaluate-json", type=Path, default=None,
                        help="results of `socialrec evaluate --models hybrid` on the same split (else it is run)")
    parser.add_argument("--state-dir", type=Path, default=None,
                        help="serve the ranking part from this state directory (a saved version trained on the holdout "
                             "is reused; kept after the run)")
    parser.add_argument("--replay-dataset", default="movielens-100k")
    parser.add_argument("--max-events", type=int, default=None)
    parser.add_argument("--skip-ranking", action="store_true")
    parser.add_argument("--skip-friends", action="store_true")
    parser.add_argument("--skip-replay", action="store_true")
    parser.add_argument("--readme-only", action="store_true", help="rewrite the README section from the results file")
    args = parser.parse_args()
    doc: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if not args.readme_only:
        doc["machine"] = describe()
        if not args.skip_ranking:
            doc["ranking"] = ranking(args.dataset, args.protocol, args.seed, args.evaluate_json, args.state_dir)
        if not args.skip_friends:
            doc["friends"] = friends(args.dataset, args.protocol, args.seed, 0.2)
        if not args.skip_replay:
            doc["replay"] = replay_part(args.replay_dataset, "temporal", args.seed, args.max_events)
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(doc, indent=2, default=float))
    replace_section("SERVED", "Served quality: what `socialrec serve` returns, through HTTP", table(doc))
    print(table(doc))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
