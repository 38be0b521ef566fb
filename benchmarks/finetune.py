"""Fine-tuning the language model on feedback: two-tower frozen (zero-shot) vs LoRA vs full.

Protocol: amazon-games, leave-one-out (`make_split(ds, "loo")`): every user's last item is the
test target, the one before it the validation target, the rest trains. Every test user has a
training history (warm users). Full ranking over all 16,859 items, training and validation
items masked. Test metrics on a fixed sample of ``--test-users`` users (seed 0; the same sample
for every mode); early stopping uses validation NDCG@10 (the target before the test one) of
``--valid-users`` sampled users.

Modes (socialrec.retrieve.two_tower.TwoTowerRecommender):
- frozen: MiniLM as is (zero-shot), titles only, 32 tokens, user = recency-weighted history mean;
- lora: LoRA adapters (rank ``--rank``) on query/value of the top ``--train-layers`` layers;
- full: every weight of the top ``--train-layers`` layers.
lora and full also train a linear projection after the pooling (384 x 384, identity at start).
The lower layers are computed once for all items (the cache) and not trained in any mode.
``--probe-all-layers`` also times a few training steps with all 6 layers trainable (truly full
fine-tuning, embeddings frozen) and extrapolates its epoch time.

Writes benchmarks/results/finetune-amazon-games.json and the README section "finetune".

    nice -n 5 .venv/bin/python benchmarks/finetune.py [--epochs 2] [--steps 150] [--test-users 5000] [--probe-all-layers]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe  # noqa: E402
from _readme import replace_section  # noqa: E402

from socialrec.evaluate.protocol import evaluate  # noqa: E402
from socialrec.ingest.datasets import load  # noqa: E402
from socialrec.ingest.split import make_split  # noqa: E402
from socialrec.retrieve.two_tower import TwoTowerRecommender, shared_minilm  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULT = HERE / "results" / "finetune-amazon-games.json"


def probe_all_layers(split: Any, steps: int, batch: int, steps_per_epoch: int) -> dict[str, Any]:
    """Seconds per training step with all 6 layers trainable (no full run: see the README)."""
    import torch

    from socialrec.represent import finetune as ft
    from socialrec.represent.profiles import item_profiles

    texts = item_profiles(split.dataset)
    t0 = time.perf_counter()
    tower = ft.build_item_tower(shared_minilm(), texts, ft.TowerConfig(mode="full", train_layers=6))
    cache_s = time.perf_counter() - t0
    opt = torch.optim.AdamW([p for p in tower.parameters() if p.requires_grad], lr=1e-4)
    rng = np.random.default_rng(0)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        v = tower(torch.from_numpy(rng.integers(0, len(texts), batch)))
        loss = torch.logsumexp(v @ v.T / 0.05, dim=1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    t = time.perf_counter()
    tower.encode_all()
    refresh_s = time.perf_counter() - t
    step_s = float(np.median(times))
    return {"train_layers": 6, "cache_seconds": round(cache_s, 1), "step_seconds_median": round(step_s, 2),
            "refresh_seconds": round(refresh_s, 1), "steps_timed": steps,
            "projected_epoch_seconds": round(step_s * steps_per_epoch + refresh_s, 1),
            "trainable_parameters": int(sum(p.numel() for p in tower.parameters() if p.requires_grad))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--modes", default="frozen,lora,full")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--steps", type=int, default=150, help="training steps per epoch")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--train-layers", type=int, default=2)
    ap.add_argument("--lr-lora", type=float, default=None)
    ap.add_argument("--lr-full", type=float, default=None)
    ap.add_argument("--test-users", type=int, default=5000)
    ap.add_argument("--valid-users", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: best on a busy shared machine)")
    ap.add_argument("--probe-all-layers", action="store_true")
    ap.add_argument("--no-readme", action="store_true")
    ap.add_argument("--output", type=Path, default=RESULT, help="results JSON path")
    ap.add_argument("--readme-only", action="store_true", help="rewrite the README table from the results file")
    ap.add_argument("--keep", action="store_true",
                    help="keep the results of modes not run now from the existing results file")
    args = ap.parse_args()

    if args.readme_only:
        replace_section("finetune", "Fine-tuning the language model (two-tower, amazon-games)",
                        _table(json.loads(args.output.read_text())))
        return
    ds = load("amazon-games")
    split = make_split(ds, "loo")
    test_users = np.flatnonzero(np.diff(split.matrix("test").indptr) > 0)
    n_test_all = len(test_users)
    if args.test_users < len(test_users):
        test_users = np.sort(np.random.default_rng(0).choice(test_users, args.test_users, replace=False))
    train = split.train_data()
    results: dict[str, Any] = {}
    if args.keep and args.output.exists():
        old = json.loads(args.output.read_text())
        if old.get("n_test_users_total") == n_test_all and old["args"]["test_users"] == args.test_users:
            results = {m: r for m, r in old["models"].items() if m not in args.modes.split(",")}
    for mode in args.modes.split(","):
        lr = {"lora": args.lr_lora, "full": args.lr_full}.get(mode)
        model = TwoTowerRecommender(mode=mode, lora_rank=args.rank, train_layers=args.train_layers,
                                    epochs=args.epochs, steps_per_epoch=args.steps, batch_size=args.batch, lr=lr,
                                    valid_users=args.valid_users, threads=args.threads, verbose=True)
        shared_minilm()  # loading the model is not part of any mode's fit time
        t0 = time.perf_counter()
        model.fit(train)
        fit_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        res = evaluate(model, split, part="test", ks=(10, 20), metrics=("ndcg", "recall"), users=test_users)
        eval_s = time.perf_counter() - t1
        means = {k: round(v, 6) for k, v in res.mean().items() if k in ("ndcg@10", "recall@10", "ndcg@20", "recall@20")}
        epochs = model.training_log_.epochs
        trainable = sum(p.numel() for p in model.tower_.parameters() if p.requires_grad)
        results[mode] = {
            "params": {k: v for k, v in model.get_params().items() if k not in ("backbone", "verbose")},
            "lr_used": model.train_config().lr if mode != "frozen" else None,
            "trainable_parameters": int(trainable),
            "test": means, "n_test_users": int(len(res.users)),
            "test_ndcg@10_standard_error": round(float(res.per_user["ndcg@10"].std() / np.sqrt(len(res.users))), 6),
            "fit_seconds": round(fit_s, 1), "eval_seconds": round(eval_s, 1),
            "epochs": epochs, "best_epoch": model.training_log_.best_epoch,
            "best_valid_ndcg@10": None if mode == "frozen" else round(model.training_log_.best_valid_ndcg, 6),
            "mean_epoch_seconds": round(float(np.mean([e["epoch_seconds"] for e in epochs])), 1) if epochs else None,
        }
        print(f"{mode}: {json.dumps(results[mode]['test'])} fit {fit_s:.0f}s", flush=True)
        _write(args, split, n_test_all, results, None)
    import torch

    torch.set_num_threads(args.threads)
    probe = probe_all_layers(split, 5, args.batch, args.steps) if args.probe_all_layers else None
    _write(args, split, n_test_all, results, probe)


def _write(args: argparse.Namespace, split: Any, n_test_all: int, results: dict[str, Any],
           probe: dict[str, Any] | None) -> None:
    gains = {}
    if "frozen" in results:
        base = results["frozen"]["test"]["ndcg@10"]
        for mode in ("lora", "full"):
            if mode in results and base > 0:
                gains[f"{mode}_vs_frozen_ndcg@10"] = round(results[mode]["test"]["ndcg@10"] / base - 1, 4)
    doc = {"dataset": "amazon-games", "protocol": "loo (warm users, full ranking over all items)",
           "machine": describe(), "split_sizes": split.sizes(), "n_test_users_total": n_test_all,
           "args": vars(args), "models": results, "relative_gain": gains, "all_layers_probe": probe}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=2, default=str))
    if not args.no_readme:
        replace_section("finetune", "Fine-tuning the language model (two-tower, amazon-games)", _table(doc))


def _table(doc: dict[str, Any]) -> str:
    lines = [f"Machine: {doc['machine']}. Leave-one-out, full ranking over all 16,859 items, "
             f"{next(iter(doc['models'].values()))['n_test_users']:,} sampled test users of "
             f"{doc['n_test_users_total']:,} (same sample for every mode). "
             f"Run: `nice -n 5 .venv/bin/python benchmarks/finetune.py` (raw numbers: results/finetune-amazon-games.json).",
             "", "| mode | trainable params | NDCG@10 | Recall@10 | NDCG@20 | vs frozen (NDCG@10) | epochs run (best) "
             "| s / epoch | fit s |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    base = doc["models"].get("frozen", {}).get("test", {}).get("ndcg@10")
    for mode, r in doc["models"].items():
        t = r["test"]
        gain = f"{t['ndcg@10'] / base - 1:+.1%}" if base else ""
        label = mode if mode == "frozen" else f"{mode} (top {r['params']['train_layers']} layers" + (
            f", rank {r['params']['lora_rank']})" if mode == "lora" else ")")
        ep = f"{len(r['epochs'])} ({r['best_epoch']})" if r["epochs"] else "-"
        lines.append(f"| {label} | {r['trainable_parameters']:,} | {t['ndcg@10']:.4f} | {t['recall@10']:.4f} | "
                     f"{t['ndcg@20']:.4f} | {gain} | {ep} | {r['mean_epoch_seconds'] or '-'} | {r['fit_seconds']} |")
    trained = [r for r in doc["models"].values() if r["epochs"]]
    still_rising = bool(trained) and all(r["best_epoch"] == len(r["epochs"]) for r in trained)
    lines += ["", "lora and full also train a 384 x 384 projection after the pooling (counted above); the "
              "lower layers are cached, so `s / epoch` is the top layers' forward and backward plus one "
              "refresh of all item vectors. Training examples seen: epochs x steps x batch = "
              f"{doc['args']['epochs']} x {doc['args']['steps']} x {doc['args']['batch']}, a fraction of the "
              f"about {doc['split_sizes']['train'] - doc['n_test_users_total']:,} (history, next item) pairs"
              + ("; validation NDCG was still rising at the last epoch of every trained mode." if still_rising
                 else ".")]
    p = doc.get("all_layers_probe")
    if p:
        lines += ["", f"All 6 layers trainable (truly full fine-tuning, token embeddings frozen): "
                  f"{p['trainable_parameters']:,} parameters, {p['step_seconds_median']} s per step of "
                  f"{doc['args']['batch']} (median of {p['steps_timed']}), catalog refresh {p['refresh_seconds']} s: "
                  f"about {p['projected_epoch_seconds']} s per epoch of {doc['args']['steps']} steps (timed, not trained)."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
