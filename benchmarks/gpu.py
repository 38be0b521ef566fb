"""Training time of the graph models on the CPU and on a CUDA GPU: a short fit of LightGCN and the
social LightGCN on lastfm-recbole (random 8:1:1, seed 0), the settings social.py chose (full
softmax over items, 128 dimensions, 2 layers, temperature 0.12; social weight 0.3), a fixed
number of epochs (no early stopping: validation NDCG@10 is computed once, after the last epoch,
to show that each device's fit learned). Each device gets a one-epoch warm-up fit first (CUDA
context, kernels, allocator), not counted. The CUDA row is left out, with a note, where
``torch.cuda.is_available()`` is False. Writes benchmarks/results/gpu.json.

    .venv/bin/python benchmarks/gpu.py [--epochs 10] [--devices cpu,cuda] [--models lightgcn,social]

A CUDA generator draws another random stream than the CPU one, so the two devices start from
different embeddings: compare their NDCG@10 loosely, and their seconds per epoch.
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

from socialrec.ingest.datasets import load  # noqa: E402
from socialrec.ingest.split import make_split  # noqa: E402
from socialrec.retrieve.graph_models import LightGCN, SocialLightGCN  # noqa: E402

HERE = Path(__file__).resolve().parent
DATASET, PROTOCOL = "lastfm-recbole", "random-811"
# social.py's choices on validation (results/social-lastfm-recbole.json); the rest are defaults.
MODELS = {
    "lightgcn": (LightGCN, {"temperature": 0.12}),
    "social": (SocialLightGCN, {"temperature": 0.12, "social_weight": 0.3}),
}


def _sync(torch: Any, device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_fit(name: str, device: str, epochs: int, train: Any, torch: Any) -> dict[str, Any]:
    cls, params = MODELS[name]
    # patience > rounds and one validation round at the end: exactly ``epochs`` epochs are timed.
    fixed = dict(params, device=device, random_state=0, patience=epochs + 1)
    cls(**fixed, epochs=1, eval_every=1).fit(train)  # warm-up, not counted
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    _sync(torch, device)
    start = time.perf_counter()
    model = cls(**fixed, epochs=epochs, eval_every=epochs).fit(train)
    _sync(torch, device)
    seconds = time.perf_counter() - start
    row = {"params": {**params, "epochs": epochs}, "seconds": round(seconds, 2),
           "epochs_run": len(model.history_), "seconds_per_epoch": round(seconds / max(1, len(model.history_)), 3),
           "valid_ndcg@10": round(float(model.best_valid_ndcg_), 4)}
    if device.startswith("cuda"):
        row["peak_gpu_memory_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--devices", default="cpu,cuda")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--dataset", default=DATASET, help="another dataset name only for a quick smoke run")
    parser.add_argument("--output", default=str(HERE / "results" / "gpu.json"))
    args = parser.parse_args(argv)
    import torch

    ds = load(args.dataset)
    train = make_split(ds, PROTOCOL, seed=0).train_data()
    doc: dict[str, Any] = {
        "note": ("Training time of a fixed number of epochs (no early stopping) after a one-epoch warm-up "
                 "fit; validation NDCG@10 after the last epoch. CUDA and CPU start from different random "
                 "streams (same seed)."),
        "dataset": args.dataset, "protocol": PROTOCOL, "split_seed": 0, "machine": describe(),
        "torch": torch.__version__, "cpu_threads": torch.get_num_threads(), "devices": {},
    }
    for device in args.devices.split(","):
        if device.startswith("cuda") and not torch.cuda.is_available():
            doc["devices"][device] = {"not_measured": "no CUDA device: torch.cuda.is_available() is False"}
            print(f"{device}: not measured (no CUDA device)", flush=True)
            continue
        entry: dict[str, Any] = {}
        if device.startswith("cuda"):
            entry["gpu"] = torch.cuda.get_device_name(torch.device(device))
        for name in args.models.split(","):
            entry[name] = time_fit(name, device, args.epochs, train, torch)
            print(f"{device} {name}: {json.dumps(entry[name])}", flush=True)
        doc["devices"][device] = entry
    cpu = doc["devices"].get("cpu", {})
    for device, entry in doc["devices"].items():
        if device.startswith("cuda") and "not_measured" not in entry:
            entry["speedup_vs_cpu"] = {name: round(cpu[name]["seconds"] / entry[name]["seconds"], 2)
                                       for name in args.models.split(",") if name in cpu}
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
