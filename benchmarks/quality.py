"""Baseline quality on the real datasets, beside the published numbers.

Runs the baseline suite (tuned on validation NDCG@10, tested once, full ranking, training and
validation items masked, random tie-breaking) on:
  - lastfm-recbole, random 8:1:1 per user (RecBole-GNN's protocol);
  - ciao-recdiff, its fixed split;
  - movielens-100k, random 8:1:1 per user (Microsoft Recommenders uses a global 75/25 split:
    the numbers are shown for orientation, not as a like-for-like comparison).
Writes raw numbers to benchmarks/results/quality-<dataset>.json and the table to
benchmarks/README.md (between the QUALITY markers).

    .venv/bin/python benchmarks/quality.py [--datasets lastfm-recbole,ciao-recdiff,movielens-100k] [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe  # noqa: E402
from _readme import replace_section  # noqa: E402

from socialrec.evaluate.experiment import results_document, tune_and_test  # noqa: E402
from socialrec.evaluate.suite import BASELINES, resolve  # noqa: E402
from socialrec.ingest.datasets import load  # noqa: E402
from socialrec.ingest.split import make_split  # noqa: E402

HERE = Path(__file__).resolve().parent
RUNS = {
    "lastfm-recbole": ("random-811", (10, 20)),
    "ciao-recdiff": ("fixed", (10, 20)),
    "movielens-100k": ("random-811", (10, 20)),
}
PUBLISHED = {
    "lastfm-recbole": ("recall@10", "ndcg@10", {
        "BPR": (.1761, .1674), "NGCF": (.1960, .1898), "LightGCN": (.2064, .1972),
        "DiffNet": (.1757, .1694), "MHCN": (.2123, .2068), "SEPT": (.2127, .2057)}),
    "ciao-recdiff": ("recall@20", "ndcg@20", {
        "TrustMF": (.0539, .0343), "DiffNet": (.0528, .0328), "MHCN": (.0621, .0378),
        "DSL": (.0606, .0389), "RecDiff (epoch picked on test)": (.0712, .0419)}),
    "movielens-100k": ("recall@10", "ndcg@10", {
        "LightGCN (75/25 global split)": (None, .420), "BPR (75/25)": (None, .442), "BiVAE (75/25)": (None, .475)}),
}


def run(dataset_name: str, quick: bool) -> dict:
    protocol, ks = RUNS[dataset_name]
    ds = load(dataset_name)
    split = make_split(ds, protocol, seed=0)
    outcomes = []
    for spec in resolve(list(BASELINES), quick=quick):
        t0 = time.perf_counter()
        outcome = tune_and_test(spec, split, ks=ks, seed=0)
        m = outcome.test.mean()
        print(f"{dataset_name:<15} {spec.name:<8} recall@{ks[0]}={m[f'recall@{ks[0]}']:.4f} "
              f"ndcg@{ks[0]}={m[f'ndcg@{ks[0]}']:.4f} recall@{ks[1]}={m[f'recall@{ks[1]}']:.4f} "
              f"ndcg@{ks[1]}={m[f'ndcg@{ks[1]}']:.4f} {outcome.params} ({time.perf_counter() - t0:.0f}s)", flush=True)
        outcomes.append(outcome)
    doc = results_document(dataset_name, protocol, 0, outcomes)
    doc["machine"] = describe()
    doc["split_sizes"] = split.sizes()
    doc["tuning"] = {o.name: o.tuning for o in outcomes}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / f"quality-{dataset_name}.json").write_text(json.dumps(doc, indent=2, default=str))
    return doc


def table(doc: dict) -> str:
    name = doc["dataset"]
    rk, nk, published = PUBLISHED[name]
    other = "20" if rk.endswith("@10") else "10"
    ork, onk = f"recall@{other}", f"ndcg@{other}"
    lines = [f"### {name} ({doc['protocol']}, full ranking; split {doc.get('split_sizes')})", "",
             f"| model | {rk} | {nk} | {ork} | {onk} | coverage@20 | fit s | chosen hyperparameters |",
             "|---|---|---|---|---|---|---|---|"]
    for model, m in doc["models"].items():
        lines.append(f"| socialrec {model} | {m[rk]:.4f} | {m[nk]:.4f} | {m[ork]:.4f} | {m[onk]:.4f} "
                     f"| {m.get('coverage@20', float('nan')):.3f} | {m['fit_seconds']:.1f} | `{m['params']}` |")
    for model, (r, n) in published.items():
        rs = f"{r:.4f}" if r is not None else "-"
        lines.append(f"| published {model} | {rs} | {n:.4f} | | | | | |")
    return "\n".join(lines)


def write_readme(docs: list[dict]) -> None:
    machine = docs[0]["machine"] if docs else ""
    block = "\n\n".join([f"Machine: {machine}. Command: `.venv/bin/python benchmarks/quality.py`.", *map(table, docs)])
    replace_section("QUALITY", "Baseline quality", block)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(RUNS))
    parser.add_argument("--quick", action="store_true", help="default hyperparameters only")
    parser.add_argument("--table-only", action="store_true", help="rewrite the README table from saved results")
    args = parser.parse_args()
    docs = []
    if args.table_only:
        args.datasets = ""
    for name in filter(None, args.datasets.split(",")):
        docs.append(run(name, args.quick))
    # Keep the tables of datasets not rerun now.
    for name in RUNS:
        if name not in args.datasets.split(","):
            path = HERE / "results" / f"quality-{name}.json"
            if path.exists():
                docs.append(json.loads(path.read_text()))
    docs.sort(key=lambda d: list(RUNS).index(d["dataset"]))
    write_readme(docs)


if __name__ == "__main__":
    main()
