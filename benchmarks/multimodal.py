"""Items described by image and audio vectors: tiktok-multimodal (DiffMM's split), beside the
published table; cold items placed from their vectors; an ablation of the modalities.

Each piece is one run of the product, written to its own results file so pieces can run in
parallel (separate processes) and the table can be assembled from them:

- ``main-<model>``: `socialrec evaluate --dataset tiktok-multimodal --protocol fixed --models
  <model> --k 20,10` (the CLI's `run_evaluation`), for lightgcn, vbpr, multimodal and hybrid;
  the document it writes is the piece (results/multimodal-tiktok-main-<model>.json).
- ``cold``: the same with ``--protocol cold-item --models modality,pop,itemknn``:
  20% of items (and every interaction with them) unseen in training, half validating, half testing.
- ``ablation-<variant>``: the fusion model's training with behaviour only (LightGCN with the
  multimodal model's settings: 64 dimensions, batches of 1,024 users, step 0.01), + image,
  + audio; "+ both" is ``main-multimodal`` (the same model and seed). Fitted by the experiment
  runner the CLI uses (`tune_and_test`: early stopping on validation, test scored once).

``--table`` assembles results/multimodal-tiktok.json and the MULTIMODAL section of
benchmarks/README.md from the pieces present.

    .venv/bin/python benchmarks/multimodal.py --pieces main-multimodal,ablation-image [--table]
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

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DATASET = "tiktok-multimodal"
KS = (20, 10)
MAIN = ("lightgcn", "vbpr", "multimodal", "hybrid")
COLD = ("modality", "pop", "itemknn")
WITHOUT_VECTORS = ("pop", "itemknn", "lightgcn")
ABLATION = {"behaviour": None, "image": ("image",), "audio": ("audio",)}
PUBLISHED = {"MF-BPR": (.0346, .0130), "LightGCN": (.0653, .0282), "VBPR": (.0380, .0134), "LATTICE": (.0843, .0367),
             "BM3": (.0957, .0404), "DiffMM": (.1129, .0456)}
PIECES = tuple(f"main-{m}" for m in MAIN) + ("cold",) + tuple(f"ablation-{v}" for v in ABLATION)


def piece_path(piece: str) -> Path:
    return RESULTS / f"multimodal-tiktok-{piece}.json"


def run_piece(piece: str, data: str | None) -> dict:
    from socialrec.cli.main import run_evaluation

    start = time.perf_counter()
    if piece.startswith("main-"):
        doc = run_evaluation(DATASET, "fixed", [piece[5:]], KS, 0, data=data, quick=False, output=None, report=None)
    elif piece == "cold":
        doc = run_evaluation(DATASET, "cold-item", list(COLD), KS, 0, data=data, quick=False, output=None, report=None)
    elif piece.startswith("ablation-"):
        doc = _ablation(piece[9:], data)
    else:
        raise SystemExit(f"unknown piece {piece!r}; pieces: {', '.join(PIECES)}")
    doc["command_seconds"] = round(time.perf_counter() - start, 1)
    doc["machine"] = describe()
    piece_path(piece).write_text(json.dumps(doc, indent=2) + "\n")
    return doc


def _ablation(variant: str, data: str | None) -> dict:
    from socialrec.evaluate.experiment import ModelSpec, results_document, tune_and_test
    from socialrec.ingest.datasets import load
    from socialrec.ingest.split import make_split
    from socialrec.retrieve.channel_table import Lazy

    split = make_split(load(DATASET, data), "fixed")
    if variant == "behaviour":
        # LightGCN with the fusion model's settings, without the item side (it stops early on
        # validation NDCG@10, the fusion models on NDCG@20).
        make = Lazy("socialrec.retrieve.graph_models", "LightGCN",
                    (("embedding_dim", 64), ("batch_size", 1024), ("learning_rate", 0.01)))
    else:
        make = Lazy("socialrec.retrieve.multimodal", "MultimodalGCN", (("modalities", ABLATION[variant]),))
    outcome = tune_and_test(ModelSpec(variant, make), split, ks=KS, seed=0, progress=False)
    return results_document(DATASET, "fixed", 0, [outcome])


def _load(piece: str) -> dict | None:
    p = piece_path(piece)
    return json.loads(p.read_text()) if p.exists() else None


def table() -> None:
    rows, main = [], {}
    for m in MAIN:
        doc = _load(f"main-{m}")
        if doc is not None:
            main[m] = doc["models"][m]
    lines = ["| model | Recall@20 | NDCG@20 | Recall@10 | NDCG@10 | source |", "|---|---|---|---|---|---|"]
    for m, r in main.items():
        lines.append(f"| {m} (ours) | {r['recall@20']:.4f} | {r['ndcg@20']:.4f} | {r['recall@10']:.4f} | "
                     f"{r['ndcg@10']:.4f} | `results/multimodal-tiktok-main-{m}.json` |")
    for name, (rec, nd) in PUBLISHED.items():
        with_text = ", with text vectors" if name not in ("MF-BPR", "LightGCN") else ""
        lines.append(f"| {name} (published{with_text}) | {rec:.4f} | {nd:.4f} | | | DiffMM's table |")
    rows.append("\n".join(lines))
    cold = _load("cold")
    summary: dict = {"main": main}
    if cold is not None:
        c = cold["models"]
        lines = ["| model (cold-item) | Recall@20 | NDCG@20 | reads vectors |", "|---|---|---|---|"]
        for m, r in c.items():
            lines.append(f"| {m} | {r['recall@20']:.4f} | {r['ndcg@20']:.4f} | {'no' if m in WITHOUT_VECTORS else 'yes'} |")
        best_plain = max(r["ndcg@20"] for m, r in c.items() if m in WITHOUT_VECTORS)
        summary["cold"] = {"modality_ndcg@20": c["modality"]["ndcg@20"], "best_without_vectors_ndcg@20": best_plain,
                           "ratio": None if best_plain == 0 else round(c["modality"]["ndcg@20"] / best_plain, 2)}
        if summary["cold"]["ratio"] is not None:
            lines.append(f"\nThe modality channel's NDCG@20 is {summary['cold']['ratio']}x that of the best model "
                         "without vectors.")
        rows.append("\n".join(lines))
    ablation = {v: _load(f"ablation-{v}") for v in ABLATION}
    if any(d is not None for d in ablation.values()) or "multimodal" in main:
        lines = ["| ablation | validation NDCG@10 | Recall@20 | NDCG@20 | Recall@10 | NDCG@10 |",
                 "|---|---|---|---|---|---|"]

        def row(label: str, r: dict) -> str:
            valid = "" if r.get("valid_ndcg@10") is None else f"{r['valid_ndcg@10']:.4f}"
            return (f"| {label} | {valid} | {r['recall@20']:.4f} | {r['ndcg@20']:.4f} | {r['recall@10']:.4f} | "
                    f"{r['ndcg@10']:.4f} |")
        for v, label in (("behaviour", "behaviour only"), ("image", "+ image"), ("audio", "+ audio")):
            d = ablation[v]
            if d is not None:
                lines.append(row(label, d["models"][v]))
        if "multimodal" in main:
            lines.append(row("+ both (`multimodal`'s default)", main["multimodal"]))
        rows.append("\n".join(lines))
    intro = (
        "TikTok micro-videos with 128-d image and audio vectors (`tiktok-multimodal`, DiffMM's train/valid/test), "
        "full ranking over all items with training (and, for test, validation) items masked. Main table: "
        "`socialrec evaluate --dataset tiktok-multimodal --protocol fixed --models <model> --k 20,10`, one "
        "process per model (`benchmarks/multimodal.py --pieces main-<model>`); the published models also used "
        "text vectors, which this data does not have. Cold items: `--protocol cold-item` (a fifth of the items "
        "unseen in training); the models without vectors can only rank those items last. Ablation: the fusion "
        "model's training on behaviour only (LightGCN with the same settings, stopped early on validation NDCG@10 where the fusion model stops on NDCG@20), with one modality, with both. "
        "The main `multimodal` row was run before the model table gave it a grid over `modalities` (all, image, "
        "audio, chosen on validation NDCG@10): it fuses all modalities; the ablation's modality rows are the "
        "grid's other points, fitted by the same runner with the same seed, so the validation column shows "
        "which one `socialrec evaluate` now picks. VBPR (BPR, 64 dimensions, step 0.01) is undertrained here "
        "next to the published VBPR. "
        f"Machine: {describe()}, shared with other engineers' jobs (load average about 16 on 2 cores), so "
        "fit times are not comparable across rows. Raw numbers: `results/multimodal-tiktok*.json`.")
    rows.insert(0, intro)
    summary["pieces"] = [p for p in PIECES if piece_path(p).exists()]
    (RESULTS / "multimodal-tiktok.json").write_text(json.dumps(summary, indent=2) + "\n")
    replace_section("MULTIMODAL", "Multimodal items (tiktok-multimodal)", "\n\n".join(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pieces", default="", help=f"comma-separated, of: {', '.join(PIECES)}")
    parser.add_argument("--data", default=None)
    parser.add_argument("--table", action="store_true", help="assemble the table from the pieces present")
    args = parser.parse_args()
    for piece in [p for p in args.pieces.split(",") if p]:
        run_piece(piece, args.data)
    if args.table:
        table()


if __name__ == "__main__":
    main()
