"""Scale: a catalogue of hundreds of thousands of items on one machine (issue 27, part 1).

Targets, on ``synthetic:n_users=20000,n_items=300000,interactions_per_user=50,seed=0`` (1M
interactions over 300k items), each reached by the default `socialrec evaluate` command:
popularity evaluated in under 30 s; ALS with its default grid fitted and evaluated in under 3
minutes; `lightgcn` and `social` each in under 10 minutes; full-ranking evaluation (scoring,
masking, top-k) at >= 50% of the machine's floor, a plain numpy reference measured in the same
run: the user-block x item-factor product (float32) and ``argpartition`` top-k, nothing else.
On LastFM, which stays below the sampled-softmax threshold, `lightgcn` and `social` keep their
exact-softmax numbers; the ``lastfm-sampled`` part forces the sampled softmax there for comparison.

    .venv/bin/python benchmarks/scale.py [--parts generate,throughput,pop,als,lightgcn,social]
        [--dataset synthetic:n_users=...] [--throughput-users 4000]
    .venv/bin/python benchmarks/scale.py --parts lastfm-sampled

Each part writes benchmarks/results/scale-<part>.json; the README section is rebuilt from every
scale-*.json there, so parts can run separately (the machine is shared: run long parts alone).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from _machine import describe  # noqa: E402
from _readme import replace_section  # noqa: E402

DATASET = "synthetic:n_users=20000,n_items=300000,interactions_per_user=50,seed=0"
TARGETS = {"pop": 30.0, "als": 180.0, "lightgcn": 600.0, "social": 600.0}  # wall seconds
PARTS = ("generate", "throughput", "pop", "als", "lightgcn", "social", "lastfm-sampled")
K = 20


def _load_avg() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return float("nan")


def _write(part: str, doc: dict) -> None:
    doc = {"part": part, "machine": describe(), "load_average_at_end": _load_avg(), **doc}
    (HERE / "results" / f"scale-{part}.json").write_text(json.dumps(doc, indent=2, default=str))
    print(json.dumps(doc, indent=2, default=str)[:2000])


def part_generate(dataset: str) -> None:
    from socialrec.ingest.datasets import load

    start = time.perf_counter()
    ds = load(dataset)
    seconds = time.perf_counter() - start
    _write("generate", {"dataset": dataset, "seconds": round(seconds, 2), "users": ds.n_users, "items": ds.n_items,
                        "interactions": len(ds.interactions), "social_edges": len(ds.social)})


def _floor(user_factors: np.ndarray, item_factors: np.ndarray, users: np.ndarray, rows: int, threads: int) -> float:
    """The reference: float32 block product and argpartition top-k per chunk; seconds."""
    items_t = np.ascontiguousarray(item_factors.T, dtype=np.float32)
    m = items_t.shape[1]
    out = np.empty((len(users), K), dtype=np.int64)

    def block(start: int) -> None:
        s = user_factors[users[start:start + rows]].astype(np.float32) @ items_t
        out[start:start + rows] = np.argpartition(s, m - K, axis=1)[:, m - K:]

    starts = range(0, len(users), rows)
    t0 = time.perf_counter()
    if threads == 1:
        for start in starts:
            block(start)
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(block, starts))
    return time.perf_counter() - t0


def part_throughput(dataset: str, n_users: int) -> None:
    """Users ranked per second by the evaluation (`evaluate.protocol.rank_users`: the model's
    own scores, masking of training and validation items, seeded random tie-breaking, top-k on a
    thread pool) against the floor, on the same users and the same fitted ALS, in this run."""
    from socialrec.evaluate.protocol import chunk_rows, default_threads, masks_for, rank_users
    from socialrec.ingest.datasets import load
    from socialrec.ingest.split import make_split
    from socialrec.retrieve.implicit_models import ALS

    ds = load(dataset)
    split = make_split(ds, "random-811", seed=0)
    model = ALS().fit(split.train_data())
    mask = masks_for(split, "test")
    users = np.flatnonzero(np.diff(split.matrix("test").indptr) > 0)[:n_users]
    rows = chunk_rows(ds.n_items)
    threads = default_threads()
    timings: dict[str, float] = {}
    for repeat in range(2):  # the best of two: the machine is shared
        for name, run in (
            ("floor_1_thread", lambda: _floor(model.user_factors_, model.item_factors_, users, rows, 1)),
            (f"floor_{threads}_threads", lambda: _floor(model.user_factors_, model.item_factors_, users, rows, threads)),
            ("product", lambda: _timed(lambda: rank_users(model, users, mask, K, seed=0))),
            ("product_1_thread", lambda: _timed(lambda: rank_users(model, users, mask, K, seed=0, threads=1))),
        ):
            seconds = run()
            timings[name] = min(timings.get(name, np.inf), seconds)
    floor = min(v for k, v in timings.items() if k.startswith("floor"))
    per_second = {k: round(len(users) / v, 1) for k, v in timings.items()}
    _write("throughput", {
        "dataset": dataset, "model": "als (default hyperparameters)", "users": int(len(users)), "k": K,
        "chunk_users": rows, "threads": threads, "seconds": {k: round(v, 3) for k, v in timings.items()},
        "users_per_second": per_second, "floor_users_per_second": round(len(users) / floor, 1),
        "product_vs_floor": round(floor / timings["product"], 3)})


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def part_cli(model: str, dataset: str) -> None:
    """The default command, timed from the outside (start-up, loading and splitting included)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "results.json"
        cmd = [sys.executable, "-m", "socialrec", "evaluate", "--dataset", dataset, "--protocol", "random-811",
               "--models", model, "--k", "10,20", "--seed", "0", "--output", str(out)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=HERE.parent, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
        result = json.loads(out.read_text())
    entry = result["models"][model]
    _write(model, {"dataset": dataset, "command": " ".join(["socialrec", *cmd[3:-2]]), "wall_seconds": round(seconds, 1),
                   "target_seconds": TARGETS[model], "met": seconds < TARGETS[model], "result": entry,
                   "log_tail": proc.stdout[-1500:]})


def part_lastfm_sampled(models: list[str]) -> None:
    """LastFM with the sampled softmax forced (sampled_above=0) at the hyperparameters the exact
    softmax chose there (results/social-lastfm-recbole.json: no grid, to keep the run short on the
    shared machine), with the exact run's user batches and epochs so that only the loss differs;
    the same runner as `socialrec evaluate` (early stopping on validation, test scored once)."""
    from socialrec.evaluate.experiment import ModelSpec, tune_and_test
    from socialrec.evaluate.suite import model_specs
    from socialrec.ingest.datasets import load
    from socialrec.ingest.split import make_split

    ds = load("lastfm-recbole")
    split = make_split(ds, "random-811", seed=0)
    exact = json.loads((HERE / "results" / "social-lastfm-recbole.json").read_text())
    previous = HERE / "results" / "scale-lastfm-sampled.json"
    out = json.loads(previous.read_text())["models"] if previous.exists() else {}  # models run before
    for name in models:
        spec = model_specs()[name]
        chosen = exact["models"][name]["params"]
        chosen = {k: tuple(v) if isinstance(v, list) else v for k, v in chosen.items()}

        def make(_make=spec.make, _chosen=chosen):  # type: ignore[no-untyped-def]
            # The exact run's patience (5) too: the sampled default (2) is for big catalogues.
            return _make(sampled_above=0, sampled_batch_size=256, sampled_epochs=300, sampled_patience=5, **_chosen)

        t0 = time.perf_counter()
        o = tune_and_test(ModelSpec(name, make), split, ks=(10, 20), seed=0, progress=False)
        m = o.test.mean()
        ref = _exact_ndcg(exact, name)
        out[name] = {"ndcg@10": round(m["ndcg@10"], 4), "recall@10": round(m["recall@10"], 4),
                     "exact_ndcg@10": ref, "relative_to_exact": round(m["ndcg@10"] / ref - 1, 4) if ref else None,
                     "params": chosen, "fit_choices": o.tuning[0].get("fit_choices"),
                     "seconds": round(time.perf_counter() - t0, 1)}
    _write("lastfm-sampled", {"dataset": "lastfm-recbole", "models": out})


def _exact_ndcg(doc: dict, name: str) -> float | None:
    models = doc.get("models", doc)
    entry = models.get(name) if isinstance(models, dict) else None
    return None if not isinstance(entry, dict) or "ndcg@10" not in entry else round(float(entry["ndcg@10"]), 4)


def readme() -> None:
    docs = {p.stem.removeprefix("scale-"): json.loads(p.read_text()) for p in sorted((HERE / "results").glob("scale-*.json"))}
    if not docs:
        return
    machine = next(iter(docs.values()))["machine"]
    lines = [f"Machine: {machine}, shared with other engineers' jobs (load average at the end of each part "
             "in its results file). Command: `.venv/bin/python benchmarks/scale.py`; each row is the default "
             "`socialrec evaluate` command timed from the outside (start-up, generation, split, grid, test).", "",
             "| target | measured | goal | met | results |", "|---|---|---|---|---|"]
    if "generate" in docs:
        g = docs["generate"]
        lines.append(f"| generate `{g['dataset']}` | {g['seconds']:.1f} s | fast | | results/scale-generate.json |")
    for name in ("pop", "als", "lightgcn", "social"):
        if name in docs:
            d = docs[name]
            r = d["result"]
            lines.append(f"| `{name}` evaluate (NDCG@10 {r['ndcg@10']:.4f}) | {d['wall_seconds']:.1f} s | "
                         f"< {d['target_seconds']:.0f} s | {'yes' if d['met'] else 'no'} | results/scale-{name}.json |")
    if "throughput" in docs:
        t = docs["throughput"]
        lines.append(f"| evaluation throughput vs floor (ALS, {t['users']} users) | {t['product_vs_floor']:.3f}x "
                     f"({t['users_per_second']['product']:.1f} vs {t['floor_users_per_second']:.1f} users/s) | >= 0.5x | "
                     f"{'yes' if t['product_vs_floor'] >= 0.5 else 'no'} | results/scale-throughput.json |")
    if "lastfm-sampled" in docs:
        for name, m in docs["lastfm-sampled"]["models"].items():
            lines.append(f"| LastFM `{name}` with the sampled softmax forced: NDCG@10 | {m['ndcg@10']:.4f} "
                         f"(exact {m['exact_ndcg@10']}) | within 3 percent of exact | "
                         f"{'yes' if m['relative_to_exact'] is not None and m['relative_to_exact'] >= -0.03 else 'no'} "
                         f"| results/scale-lastfm-sampled.json |")
    lines += ["", NOTES]
    replace_section("SCALE", "Scale: a 300k-item catalogue on one machine", "\n".join(lines))


NOTES = """How: the evaluation ranks users in chunks of about 16M scores (`evaluate.protocol.rank_users`); the
model scores one chunk at a time while a thread pool selects the top-k of the chunks already scored
(`topk.top_k_masked`: the k-th best allowed score among every 16th item bounds the row's k-th best
from below, one comparison pass keeps the items at or above it, ties included, and only those are
ordered; masked items are left out by index, the score matrix is neither copied nor sorted; a
broadcast row such as popularity is ranked once). Each chunk draws its ties from its own seeded
generator, so lists do not depend on the number of threads. The floor is the float32 product of
the chunk's user factors with the item factors plus `np.argpartition`, nothing else (best of one
thread and a thread pool). Grids are searched by successive halving (`Halving`, on automatically
above 10^9 scored pairs per validation pass and for any grid of two or more points): ALS resumes
its training from rung to rung; the graph models' two temperatures are each fitted once, the loser
judged on 1,000 validation users and the winner on 2,000, instead of all 20,000 each.

Graph models switch to the sampled softmax above 100,000 items (below it, LastFM, their code path
and numbers are unchanged). What made them fit in 10 minutes: (1) the propagation runs on scipy's
CSR product in both passes (a custom autograd function; the backward is the transposed product),
faster than torch's sparse COO product forward and backward on the CPU;
(2) accidental hits of the sampled negatives are looked up per stored item among the sorted draws
instead of per draw among the items; (3) `sampled_patience=2`: on this catalogue (and a 60k-item
one) validation NDCG@10 peaks after the first epoch's ten steps and falls in each later epoch, so
the fit stops after two epochs without progress instead of five; (4) the social model's seven
neighbourhood weights share one score product per chunk of validation users. Their NDCG@10 here is
below ALS's for `lightgcn` (the learned embeddings barely train on under three training interactions
per item) and above it for `social`, whose parameter-free neighbourhood term (weight chosen on
validation) carries the signal. The lastfm-sampled rows force the sampled softmax on LastFM at the
exact run's chosen settings and patience: slightly below the exact softmax there, which is why
LastFM-sized catalogues keep it. Rows and the load average each ran under are in the results
files."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="generate,throughput,pop,als,lightgcn,social")
    parser.add_argument("--dataset", default=DATASET)
    parser.add_argument("--throughput-users", type=int, default=4000)
    parser.add_argument("--lastfm-models", default="lightgcn,social", help="models of the lastfm-sampled part")
    args = parser.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise SystemExit(f"unknown part(s) {unknown}; known: {', '.join(PARTS)}")
    for part in parts:
        if part == "generate":
            part_generate(args.dataset)
        elif part == "throughput":
            part_throughput(args.dataset, args.throughput_users)
        elif part == "lastfm-sampled":
            part_lastfm_sampled([m.strip() for m in args.lastfm_models.split(",") if m.strip()])
        else:
            part_cli(part, args.dataset)
        readme()


if __name__ == "__main__":
    main()
