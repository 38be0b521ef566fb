"""Sentiment models trained on labelled reviews against the lexicons, on held-out reviews.

Runs the product's commands: (with --train) ``socialrec sentiment-train`` for both languages,
then ``socialrec sentiment-eval``, which scores the test split of each corpus (English clothing
reviews 4-5 vs 1-2 stars; Chinese reviews-zh) with the saved models and with VADER / SnowNLP.
Writes benchmarks/results/sentiment-models.json (the eval document plus the machine and the
commands) and the README section.

    nice -n 5 .venv/bin/python benchmarks/sentiment_models.py [--train] [--threads 1] [--model-dir DIR]
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

from socialrec.cli.main import main as socialrec  # noqa: E402

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "sentiment-models.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", action="store_true", help="train both models first (sentiment-train)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for the English model's training")
    parser.add_argument("--model-dir", default=None, help="saved models (default: the cache's)")
    args = parser.parse_args()
    where = ["--model-dir", args.model_dir] if args.model_dir else []
    commands = []
    seconds: dict[str, float] = {}
    if args.train:
        train = ["sentiment-train", *where] + (["--threads", str(args.threads)] if args.threads else [])
        commands.append("socialrec " + " ".join(train))
        t0 = time.perf_counter()
        if socialrec(train) != 0:
            raise SystemExit("sentiment-train failed")
        seconds["train"] = round(time.perf_counter() - t0, 1)
    raw = OUT.with_suffix(".eval.json")
    evaluate = ["sentiment-eval", "--output", str(raw), *where]
    commands.append("socialrec " + " ".join(evaluate).replace(str(raw), "FILE"))
    t0 = time.perf_counter()
    if socialrec(evaluate) != 0:
        raise SystemExit("sentiment-eval failed")
    seconds["eval"] = round(time.perf_counter() - t0, 1)
    doc = {"machine": describe(), "commands": commands, "seconds": seconds, **json.loads(raw.read_text())}
    raw.unlink()
    OUT.write_text(json.dumps(doc, indent=2, ensure_ascii=False))
    print(f"results: {OUT}")
    replace_section("SENTIMENT-MODELS", "Sentiment models trained on labelled reviews (held-out AUC against the lexicons)",
                    table(doc))


def table(doc: dict[str, Any]) -> str:
    en, zh = doc["en"], doc["zh"]
    ten, tzh = en["training"], zh["training"]
    cfg = ten.get("config", {})
    lines = [
        "Held-out test split of each labelled corpus (fixed by seed 0; 70/10/20 train/valid/test, stratified, "
        "duplicate texts merged): English `reviews-en-clothing` (title. review; 4-5 stars positive, 1-2 negative, "
        "3 dropped), Chinese `reviews-zh` (the three corpora together). Model: the saved model of `socialrec "
        "sentiment-train`, probabilities Platt-calibrated on the validation split; lexicon: VADER's compound "
        "(English), SnowNLP's probability (Chinese), mapped to [0, 1] for Brier/ECE though not meant as "
        f"probabilities. Raw numbers: `results/sentiment-models.json`; run on {doc['machine']} (shared with other "
        "jobs: speeds are noisy, compare the ratios within a row).",
        "",
        "| language | model | model AUC | lexicon | lexicon AUC | n test | model Brier | model ECE | lexicon Brier "
        "| lexicon ECE | model texts/s | lexicon texts/s | model ms/text alone | lexicon ms/text alone |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for lang, r, lex in (("en", en, "vader"), ("zh", zh, "snownlp")):
        lines.append(
            f"| {lang} | {r['model']} | {r['model_auc']:.4f} | {lex} | {r[f'{lex}_auc']:.4f} | {r['n_test']:,} | "
            f"{r['model_brier']:.4f} | {r['model_ece']:.4f} | {r[f'{lex}_brier']:.4f} | {r[f'{lex}_ece']:.4f} | "
            f"{r['model_texts_per_second']:.1f} | {r[f'{lex}_texts_per_second']:.1f} | "
            f"{r['model_single_text_ms']:.1f} ms | {r[f'{lex}_single_text_ms']:.1f} ms |")
    lines += [
        "",
        f"Training (`socialrec sentiment-train`): English all-MiniLM-L6-v2 with LoRA (rank {cfg.get('lora_rank')}) on "
        f"the query/value projections of the top {cfg.get('lora_layers')} layers and a linear head, "
        f"{cfg.get('steps')} steps of {cfg.get('batch_size')} class-balanced texts cut to {cfg.get('max_length')} "
        f"tokens ({ten['examples_seen']:,} examples, {ten['n_train_distinct_seen']:,} distinct of the "
        f"{ten['n_train_pool']:,} training texts: a subsample), {ten['train_seconds']:.0f} s of training "
        f"with {cfg.get('threads') or 'default'} torch thread(s), validation AUC {ten['valid_auc']:.4f}. Chinese: "
        f"TF-IDF over character 1-3-grams ({tzh['n_features']:,} features) and logistic regression, C = "
        f"{tzh['chosen_C']:g} chosen on validation AUC, {tzh['n_train']:,} training texts, "
        f"{tzh['train_seconds']:.0f} s, validation AUC {tzh['valid_auc']:.4f}. Commands: "
        + "; ".join(f"`{c}`" for c in doc["commands"]) + ".",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
