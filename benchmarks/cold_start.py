"""Cold users: the hybrid with and without its popularity blend for short histories.

`socialrec evaluate --protocol cold-user` (`cold_user_split(share=0.2, seed=0)`: the test users
are absent from training; each model is also measured as they reveal their first 1, 3, 5 items
online, fold-in, no refit). Rows: `pop`; `hybrid` as the model table makes it (the product's
default: `cold_start=True`, the blend weight per history length measured inside fit on the
split's validation users, who are new users too); and the same hybrid with `cold_start=False`
(the ranker alone, as before `socialrec.rank.cold_start`). Every row goes through the product's
`tune_and_test`, the function behind `socialrec evaluate`.

    nice -n 5 .venv/bin/python benchmarks/cold_start.py                # movielens-100k and lastfm
    .venv/bin/python benchmarks/cold_start.py --datasets movielens-100k
    .venv/bin/python benchmarks/cold_start.py --readme-only
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe  # noqa: E402
from _readme import replace_section  # noqa: E402

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "cold-start.json"
DATASETS = ("movielens-100k", "lastfm")
ROWS = ("pop", "hybrid", "hybrid cold_start=False")


def run(dataset: str, seed: int = 0) -> dict[str, Any]:
    from socialrec.evaluate.experiment import ModelSpec, results_document, tune_and_test
    from socialrec.evaluate.suite import resolve
    from socialrec.ingest.datasets import load
    from socialrec.ingest.split import make_split

    ds = load(dataset)
    split = make_split(ds, "cold-user", seed=seed)
    print(f"{dataset} cold-user: {split.sizes()}", flush=True)
    pop, hybrid = resolve(["pop", "hybrid"])
    specs = {"pop": pop, "hybrid": hybrid,
             "hybrid cold_start=False": ModelSpec("hybrid cold_start=False",
                                                  lambda **p: hybrid.make(cold_start=False, **p), hybrid.grid)}
    out: dict[str, Any] = {"protocol": "cold-user", "seed": seed, "n_users": ds.n_users, "n_items": ds.n_items,
                           "models": {}}
    for name in ROWS:
        start = time.perf_counter()
        models: list[Any] = []
        spec = specs[name]

        def make(**p: Any) -> Any:
            models.append(spec.make(**p))
            return models[-1]

        outcome = tune_and_test(ModelSpec(name, make, spec.grid), split, ks=(10, 20), seed=seed, progress=False)
        got = results_document(ds.name, "cold-user", seed, [outcome])["models"][name]
        got["seconds"] = round(time.perf_counter() - start, 1)
        blend = getattr(models[-1], "cold_start_", None) if models else None
        if blend is not None:
            got["cold_start"] = blend.summary()
        out["models"][name] = got
        curve = got.get("cold_user_curve", {})
        print(f"  {name}: " + ", ".join(f"n={n} {v['ndcg@10']:.4f}" for n, v in curve.items()), flush=True)
    return out


def readme_block(doc: dict[str, Any]) -> str:
    lines = [f"Machine: {doc['machine']}. `nice -n 5 .venv/bin/python benchmarks/cold_start.py`; raw numbers in "
             "`results/cold-start.json`.", "",
             "`socialrec evaluate --protocol cold-user` (`cold_user_split(share=0.2, seed=0)`): the test users are absent "
             "from training and reveal their first n items online (fold-in, no refit); NDCG@10 of the rest. `hybrid` is "
             "the model table's default, which measures inside fit, on the split's validation users (new users too), how "
             "far a user with n items should lean on popularity (`socialrec.rank.cold_start`: weighted reciprocal-rank "
             "fusion of the ranker's order and the popularity order, weight chosen per history length); `hybrid "
             "cold_start=False` is the ranker alone, as the hybrid was before. Chosen weights are in the JSON "
             "(`cold_start`: 0 = the ranker alone, 1 = popularity alone).", ""]
    for dataset, d in doc["datasets"].items():
        models = d["models"]
        ns = sorted({int(n) for m in models.values() for n in m.get("cold_user_curve", {})})
        lines += [f"**{dataset}** ({d['n_users']:,} users, {d['n_items']:,} items)", "",
                  "| model | " + " | ".join(f"n={n}" for n in ns) + " | blend weights (n: w) |",
                  "|---|" + "---:|" * len(ns) + "---|"]
        for name, m in models.items():
            curve = m.get("cold_user_curve", {})
            cells = [f"{curve[str(n)]['ndcg@10']:.4f}" if str(n) in curve else "" for n in ns]
            blend = m.get("cold_start")
            weights = ", ".join(f"{h}: {w:g}" for h, w in zip(blend["histories"], blend["weights"])) if blend else ""
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {weights} |")
        users = next(iter(models.values())).get("cold_user_curve", {})
        lines += ["", "Users per n: " + ", ".join(f"n={n}: {int(v['n_users'])}" for n, v in users.items()) + ".", ""]
    return "\n".join(lines).rstrip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--readme-only", action="store_true")
    args = parser.parse_args()
    doc = json.loads(OUT.read_text()) if OUT.exists() else {"datasets": {}}
    if not args.readme_only:
        for name in args.datasets.split(","):
            doc["datasets"][name] = run(name)
        doc["machine"] = describe()
        OUT.parent.mkdir(exist_ok=True)
        OUT.write_text(json.dumps(doc, indent=2, default=str))
    replace_section("COLD-START", "Cold users: the hybrid's popularity blend for short histories", readme_block(doc))


if __name__ == "__main__":
    main()
