"""The diversity trade-off on a second sample of test users, disjoint from the one
benchmarks/hybrid.py reports, to check that the recommended re-ranking weight holds.

Fits the hybrid exactly as hybrid.py does, then runs the same DPP/MMR sweep (NDCG@10, ILD@10,
coverage@10) on ``--users`` test users drawn (seed ``--seed``) from those hybrid.py left out.
Writes benchmarks/results/diversity-<dataset>-second-sample.json.

    .venv/bin/python benchmarks/diversity.py --dataset amazon-games
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe  # noqa: E402
from _readme import replace_section  # noqa: E402
from hybrid import DEFAULT_RERANK, RESULTS, SETUPS, diversity_sweep, rounded  # noqa: E402

from socialrec.ingest.datasets import load  # noqa: E402
from socialrec.ingest.split import make_split  # noqa: E402
from socialrec.rank.hybrid import HybridRecommender  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="amazon-games", choices=sorted(SETUPS))
    ap.add_argument("--users", type=int, default=5000, help="users in the second sample")
    ap.add_argument("--first-sample", type=int, default=5000, help="hybrid.py's --users (the sample to avoid)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--table-only", action="store_true", help="rewrite the README table from saved results")
    args = ap.parse_args()
    out = RESULTS / f"diversity-{args.dataset}-second-sample.json"
    if args.table_only:
        write_readme(json.loads(out.read_text()))
        return
    setup = SETUPS[args.dataset]
    dataset = load(args.dataset)
    split = make_split(dataset, setup["protocol"], seed=0)
    test_users = np.flatnonzero(np.diff(split.matrix("test").tocsr().indptr) > 0)
    # hybrid.py's sample: the same generator and call, so the same users.
    first = np.random.default_rng(0).choice(test_users, min(args.first_sample, len(test_users)), replace=False)
    rest = np.setdiff1d(test_users, first)
    if not len(rest):
        raise SystemExit(f"{args.dataset}: hybrid.py's sample already holds every test user; nothing is left")
    users = np.sort(np.random.default_rng(args.seed).choice(rest, min(args.users, len(rest)), replace=False))
    print(f"{args.dataset}: second sample of {len(users)} test users (disjoint from hybrid.py's {len(first)})", flush=True)
    params = {n: setup["singles"][n] for n in setup["channels"] if n in setup["singles"]}
    hybrid = HybridRecommender(channels=setup["channels"], channel_params=params, n_candidates=300, seed=0)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hybrid.fit(split.train_data())
    print(f"  fitted in {time.perf_counter() - start:.0f} s", flush=True)
    sweep = diversity_sweep(hybrid, split, users)
    default = next(r for r in sweep if (r["method"], r["diversity"]) == DEFAULT_RERANK)
    doc = {"dataset": args.dataset, "machine": describe(), "users": int(len(users)), "seed": args.seed,
           "diversity_sweep": sweep, "default_rerank": default,
           "meeting_target": [f"{r['method']} {r['diversity']:g}" for r in sweep
                              if r["ild_change"] >= 0.2 and r["ndcg_change"] >= -0.03]}
    out.write_text(json.dumps(doc, indent=2))
    write_readme(doc)
    print(f"  default {DEFAULT_RERANK}: {rounded({k: v for k, v in default.items() if k != 'method'})}")
    print(f"wrote {out}")


def write_readme(doc: dict) -> None:
    first = json.loads((RESULTS / f"hybrid-{doc['dataset']}.json").read_text())["diversity_sweep"]
    by_key = {(r["method"], r["diversity"]): r for r in first}
    lines = [f"`benchmarks/diversity.py --dataset {doc['dataset']}`: the same fitted hybrid and sweep as "
             f"hybrid.py, on {doc['users']} other test users (seed {doc['seed']}, disjoint from hybrid.py's sample). "
             f"Machine: {doc['machine']}.", "",
             "| method | weight | NDCG@10 change (first / second sample) | ILD@10 change (first / second) |",
             "|---|---|---|---|"]
    for r in doc["diversity_sweep"][1:]:
        f = by_key.get((r["method"], r["diversity"]))
        fn = f"{100 * f['ndcg_change']:+.1f}%" if f else "-"
        fi = f"{100 * f['ild_change']:+.1f}%" if f else "-"
        lines.append(f"| {r['method']} | {r['diversity']:g} | {fn} / {100 * r['ndcg_change']:+.1f}% | "
                     f"{fi} / {100 * r['ild_change']:+.1f}% |")
    lines += ["", f"Settings meeting ILD +20% for at most 3% NDCG@10 loss on the second sample: "
              f"{', '.join(doc['meeting_target']) or 'none'}."]
    replace_section(f"DIVERSITY-{doc['dataset'].upper()}", f"Diversity on a second user sample: {doc['dataset']}",
                    "\n".join(lines))


if __name__ == "__main__":
    main()
