"""The diversity trade-off on more samples of test users, disjoint from the one
benchmarks/hybrid.py reports and from each other, to check that what the recommended (calibrated)
re-ranking weight costs and buys holds beyond one sample of test users.

Fits the hybrid exactly as hybrid.py does, then runs the same DPP/MMR sweep (NDCG@10, ILD@10,
coverage@10) on ``--samples`` samples of ``--users`` test users each (seeds ``--seed``,
``--seed`` + 1, ...), drawn from those no earlier sample holds. Writes
benchmarks/results/diversity-<dataset>-more-samples.json and a README table with hybrid.py's
sample beside them and all samples pooled (NDCG and ILD are per-user means, so pooling is the
users-weighted mean).

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
from hybrid import RESULTS, SETUPS, diversity_sweep  # noqa: E402

from socialrec.ingest.datasets import load  # noqa: E402
from socialrec.ingest.split import make_split  # noqa: E402
from socialrec.rank.hybrid import HybridRecommender  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="amazon-games", choices=sorted(SETUPS))
    ap.add_argument("--users", type=int, default=5000, help="users per sample")
    ap.add_argument("--samples", type=int, default=2, help="samples besides hybrid.py's")
    ap.add_argument("--first-sample", type=int, default=5000, help="hybrid.py's --users (the sample to avoid)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--table-only", action="store_true", help="rewrite the README table from saved results")
    args = ap.parse_args()
    out = RESULTS / f"diversity-{args.dataset}-more-samples.json"
    if args.table_only:
        write_readme(json.loads(out.read_text()))
        return
    setup = SETUPS[args.dataset]
    dataset = load(args.dataset)
    split = make_split(dataset, setup["protocol"], seed=0)
    test_users = np.flatnonzero(np.diff(split.matrix("test").tocsr().indptr) > 0)
    # hybrid.py's sample: the same generator and call, so the same users.
    first = np.random.default_rng(0).choice(test_users, min(args.first_sample, len(test_users)), replace=False)
    taken, samples = first, []
    for i in range(args.samples):
        rest = np.setdiff1d(test_users, taken)
        if len(rest) < args.users:
            raise SystemExit(f"{args.dataset}: only {len(rest)} test users left for sample {i + 2}; use fewer --samples or --users")
        drawn = np.random.default_rng(args.seed + i).choice(rest, args.users, replace=False)
        samples.append(np.sort(drawn))
        taken = np.concatenate([taken, drawn])
    print(f"{args.dataset}: {len(samples)} more samples of {args.users} test users (disjoint from hybrid.py's "
          f"{len(first)} and from each other)", flush=True)
    params = {n: setup["singles"][n] for n in setup["channels"] if n in setup["singles"]}
    hybrid = HybridRecommender(channels=setup["channels"], channel_params=params, n_candidates=300, seed=0,
                               **setup.get("hybrid_params", {}))
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hybrid.fit(split.train_data())
    print(f"  fitted in {time.perf_counter() - start:.0f} s", flush=True)
    # The same calibration as hybrid.py's (same fit, same seed): its weight is the default row.
    cal = hybrid.use_recommended_diversity().diversity_calibration_
    hybrid.diversity = 0.0
    print(f"  calibrated: {cal.method} {cal.weight:g}", flush=True)
    sweeps = [diversity_sweep(hybrid, split, users, extra=(cal.method, cal.weight)) for users in samples]
    doc = {"dataset": args.dataset, "machine": describe(), "users_per_sample": args.users, "seeds":
           [args.seed + i for i in range(len(samples))], "diversity_space": hybrid.diversity_space_,
           "default_rerank": [cal.method, cal.weight], "sweeps": sweeps}
    out.write_text(json.dumps(doc, indent=2))
    write_readme(doc)
    print(f"wrote {out}")


def write_readme(doc: dict) -> None:
    first_doc = json.loads((RESULTS / f"hybrid-{doc['dataset']}.json").read_text())
    sweeps = [first_doc["diversity_sweep"], *doc["sweeps"]]
    sizes = [first_doc["test_users"]] + [doc["users_per_sample"]] * len(doc["sweeps"])
    rows = [{(r["method"], r["diversity"]): r for r in sweep} for sweep in sweeps]
    # Only the settings every sample ran (hybrid.py's grid may have grown since).
    keys = [(r["method"], r["diversity"]) for r in sweeps[0] if all((r["method"], r["diversity"]) in row for row in rows)]
    total = sum(sizes)

    def pooled(key: tuple[str, float], metric: str) -> float:
        return sum(n * row[key][metric] for n, row in zip(sizes, rows)) / total

    base = keys[0]
    lines = [f"`benchmarks/diversity.py --dataset {doc['dataset']}`: the fitted hybrid and sweep of hybrid.py on "
             f"{len(doc['sweeps'])} more samples of {doc['users_per_sample']} test users (seeds {doc['seeds']}), disjoint "
             f"from hybrid.py's sample (first) and from each other. Machine: {doc['machine']}.", "",
             "| method | weight | NDCG@10 change per sample | ILD@10 change per sample | pooled NDCG@10 / ILD@10 change |",
             "|---|---|---|---|---|"]
    meets = []
    for key in keys[1:]:
        nd = " / ".join(f"{100 * row[key]['ndcg_change']:+.1f}%" for row in rows)
        il = " / ".join(f"{100 * row[key]['ild_change']:+.1f}%" for row in rows)
        pn = pooled(key, "ndcg@10") / pooled(base, "ndcg@10") - 1
        pi = pooled(key, "ild@10") / pooled(base, "ild@10") - 1
        if pn >= -0.03 and pi >= 0.2:
            meets.append(f"{key[0]} {key[1]:g}")
        mark = " **(default)**" if list(key) == doc["default_rerank"] else ""
        lines.append(f"| {key[0]}{mark} | {key[1]:g} | {nd} | {il} | {100 * pn:+.1f}% / {100 * pi:+.1f}% |")
    lines += ["", f"Pooled over all {total} users, settings meeting ILD +20% for at most 3% NDCG@10 loss: "
              f"{', '.join(meets) or 'none'}."]
    replace_section(f"DIVERSITY-{doc['dataset'].upper()}", f"Diversity on more user samples: {doc['dataset']}",
                    "\n".join(lines))


if __name__ == "__main__":
    main()
