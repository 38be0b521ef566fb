"""`socialrec evaluate --engine ray --workers 2` against the single-process run: the same metrics,
and the wall time of each beside it.

Runs the product's own command twice per dataset, as a user would (`socialrec evaluate ...
--output`, once with the default local engine and once with `--engine ray --workers 2`, a local
Ray instance started by the command), and compares every metric of every model in the two
results files (the largest absolute difference; they are written to 6 decimals) and the chosen
hyperparameters. Wall time is the whole command: loading, splitting, Ray start-up, tuning and
testing. The small dataset (the built-in synthetic platform) with one cheap model states Ray's
overhead: start-up, sharing the split, shipping tasks and models.

Models: pop, itemknn, userknn and als on LastFM, and lightgcn as well on the small dataset (a
torch model: its training runs on the workers with the caller's thread counts; one LastFM fit
took 13 minutes on the shared machine, too long to run twice here). Left out: bpr (implicit's
lock-free parallel SGD: two single-process runs already differ) and ease (two 17.6k x 17.6k
inversions at once on two workers need more memory than the shared machine has to spare).

    PYTHONPATH=. .venv/bin/python benchmarks/ray_engine.py
    PYTHONPATH=. .venv/bin/python benchmarks/ray_engine.py --readme-only

Writes benchmarks/results/ray-engine.json and the "Ray engine" section of benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe  # noqa: E402
from _readme import replace_section  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
OUT = RESULTS / "ray-engine.json"
# (dataset, models) per row. The first row states Ray's fixed overhead: one model with one grid
# point and one test chunk, so nothing runs in parallel and the difference is Ray's own cost.
ROWS = (("synthetic", "pop"), ("synthetic", "pop,itemknn,userknn,als,lightgcn"),
        ("lastfm-recbole", "pop,itemknn,userknn,als"))
WORKERS = 2


def run(dataset: str, models: str, engine: str, out: Path) -> tuple[float, str]:
    """Run `socialrec evaluate` in a fresh process; its wall time in seconds and its output."""
    cmd = [sys.executable, "-m", "socialrec", "evaluate", "--dataset", dataset, "--protocol", "random-811",
           "--models", models, "--k", "10,20", "--seed", "0", "--output", str(out)]
    if engine == "ray":
        cmd += ["--engine", "ray", "--workers", str(WORKERS)]
    print("$", " ".join(cmd[2:]), flush=True)
    start = time.perf_counter()
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
    wall = time.perf_counter() - start
    print(done.stdout, flush=True)
    return wall, done.stdout


def compare(local: dict[str, Any], ray: dict[str, Any]) -> dict[str, Any]:
    """Largest absolute difference over every metric of every model, and the models whose
    chosen hyperparameters differ."""
    diff, differing = 0.0, []
    for name, m in local["models"].items():
        r = ray["models"][name]
        if m["params"] != r["params"]:
            differing.append(name)
        for key, value in m.items():
            if isinstance(value, float) and key not in ("fit_seconds",):
                diff = max(diff, abs(value - r[key]))
    return {"max_abs_metric_difference": diff, "models_with_other_params": differing}


def bench(dataset: str, models: str) -> dict[str, Any]:
    docs, walls, outputs = {}, {}, {}
    for engine in ("local", "ray"):
        path = RESULTS / f"ray-engine-{dataset}-{engine}.json"
        walls[engine], outputs[engine] = run(dataset, models, engine, path)
        docs[engine] = json.loads(path.read_text())
        path.unlink()  # the comparison below keeps what matters
    started = re.search(r"started in ([\d.]+)s; split shared in ([\d.]+)s", outputs["ray"])
    row = {"dataset": dataset, "models": models.split(","), "workers": WORKERS,
           "ray_start_s": float(started.group(1)) if started else None,
           "split_share_s": float(started.group(2)) if started else None,
           "local_wall_s": round(walls["local"], 1), "ray_wall_s": round(walls["ray"], 1),
           "ray_overhead_s": round(walls["ray"] - walls["local"], 1),
           "ray_over_local": round(walls["ray"] / walls["local"], 2),
           **compare(docs["local"], docs["ray"]),
           "ndcg@10": {n: m["ndcg@10"] for n, m in docs["local"]["models"].items()},
           "ray_ndcg@10": {n: m["ndcg@10"] for n, m in docs["ray"]["models"].items()},
           "params": {n: m["params"] for n, m in docs["local"]["models"].items()}}
    print(json.dumps(row, indent=1), flush=True)
    return row


def write_readme(doc: dict[str, Any]) -> None:
    lines = [f"`benchmarks/ray_engine.py` on {doc['machine']} (shared with other heavy jobs: wall times are "
             "noisy; compare the two columns of one row). Each row runs `socialrec evaluate --protocol random-811 "
             "--seed 0` twice in fresh processes, with the default local engine and with `--engine ray --workers "
             "2` (a local Ray instance started by the command); results in `results/ray-engine.json`.", "",
             "| dataset | models | local wall | ray wall (2 workers) | ray / local | largest metric difference "
             "| other hyperparameters chosen |", "|---|---|---|---|---|---|---|"]
    for r in doc["rows"]:
        lines.append(f"| {r['dataset']} | {', '.join(r['models'])} | {r['local_wall_s']} s | {r['ray_wall_s']} s | "
                     f"{r['ray_over_local']}x | {r['max_abs_metric_difference']:g} | "
                     f"{', '.join(r['models_with_other_params']) or 'none'} |")
    small = doc["rows"][0]
    lines += ["", f"Ray's overhead on a small dataset (synthetic, 600 users and 400 items, `pop`: one grid point "
                  f"and one test chunk, nothing to run in parallel): {small['ray_overhead_s']} s more than the "
                  f"local run, of which {small['ray_start_s']} s start the local Ray instance and "
                  f"{small['split_share_s']} s put the split in its object store; the rest starts the worker "
                  "processes and ships the tasks. The machine has 2 cores, so 2 workers cannot beat one "
                  "process here; the engine is for clusters, where each worker has its own cores."]
    lines += ["", "Every metric of every model is the same in both runs (they are written to 6 decimals) and "
                  "the same hyperparameters are chosen: grid points are fitted on the workers with the "
                  "caller's BLAS, OpenMP and torch thread counts, and the chosen model's test users are "
                  "scored there in chunks but ranked here, in user order, with the run's one seeded "
                  "tie-breaking generator."]
    replace_section("RAY-ENGINE", "Ray engine: the same evaluation on Ray workers", "\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme-only", action="store_true")
    args = parser.parse_args()
    if args.readme_only:
        write_readme(json.loads(OUT.read_text()))
        return
    doc: dict[str, Any] = {"machine": describe(), "rows": []}
    for dataset, models in ROWS:
        doc["rows"].append(bench(dataset, models))
        RESULTS.mkdir(exist_ok=True)
        OUT.write_text(json.dumps(doc, indent=2))
    write_readme(doc)


if __name__ == "__main__":
    main()
