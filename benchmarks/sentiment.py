"""Sentiment on amazon-fashion-reviews: does the score separate good from bad reviews, and does the
mood term I(u, c) = f(u, c) + weight * E(u) * s(c) help recommendation?

1. AUC of the sentiment score of ``summary. reviewText`` for 4-5 star (positive) against 1-2 star
   (negative) reviews, 3 stars left out; over the 3,088 distinct reviews (variant copies merged,
   the main number), over all 3,176 records, and over distinct (reviewer, text, rating) triples
   (the 5-core export repeats one text across many products of a reviewer); and per field.
2. Ablation: leave-one-out split (per user the last item tests, the one before validates),
   full ranking over all 31 items with training items masked; each base model (EASE, ItemKNN,
   pop, and content unless --skip-content) against `SentimentAware` on it with the weight picked
   on validation NDCG@10 from WEIGHTS (0 = the base model). Test NDCG@10 of every weight is kept.

Writes benchmarks/results/sentiment.json and the README section.

    nice -n 5 .venv/bin/python benchmarks/sentiment.py [--skip-content]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe  # noqa: E402
from _readme import replace_section  # noqa: E402

from socialrec.evaluate.classification import roc_auc  # noqa: E402
from socialrec.evaluate.protocol import evaluate  # noqa: E402
from socialrec.ingest.datasets import data_dir, load  # noqa: E402
from socialrec.ingest.datasets.amazon_reviews import FILENAME, FOLDER, read_json_sequence, review_text  # noqa: E402
from socialrec.ingest.split import make_split  # noqa: E402
from socialrec.represent.sentiment import SentimentAnalyzer  # noqa: E402
from socialrec.retrieve.sentiment_aware import SentimentAware  # noqa: E402

HERE = Path(__file__).resolve().parent
WEIGHTS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)
BASES: dict[str, dict[str, Any]] = {"ease": {"l2": 100.0}, "itemknn": {"neighbors": 50, "shrink": 10.0}, "pop": {},
                                    "content": {"encoder": "minilm-onnx"}}


def auc_section(analyzer: SentimentAnalyzer) -> dict[str, Any]:
    records = pd.DataFrame.from_records(read_json_sequence(data_dir() / FOLDER / FILENAME))
    records["text"] = [review_text(s, b) for s, b in zip(records["summary"], records["reviewText"])]
    labelled = records[records["overall"] != 3]
    t0 = time.perf_counter()
    labelled = labelled.assign(score=analyzer.score(labelled["text"].tolist()))
    secs = time.perf_counter() - t0
    views = {
        "distinct reviews": labelled.drop_duplicates(["reviewerID", "asin", "unixReviewTime", "overall", "text"]),
        "all records": labelled,
        "distinct (reviewer, text, rating)": labelled.drop_duplicates(["reviewerID", "overall", "text"]),
    }
    out: dict[str, Any] = {"seconds_scoring_all_records": round(secs, 3)}
    for name, df in views.items():
        y = df["overall"] >= 4
        out[name] = {"auc": round(roc_auc(df["score"], y), 4), "n": int(len(df)), "positives": int(y.sum()),
                     "negatives": int((~y).sum())}
    df = views["distinct reviews"]
    y = df["overall"] >= 4
    for field in ("reviewText", "summary"):
        scores = analyzer.score(df[field].fillna("").astype(str).tolist())
        out[f"distinct reviews, {field} only"] = {"auc": round(roc_auc(scores, y), 4), "n": int(len(df))}
    return out


def ablation(skip: set[str]) -> dict[str, Any]:
    ds = load("amazon-fashion-reviews")
    split = make_split(ds, "loo")
    train = split.train_data()
    out: dict[str, Any] = {"split": split.sizes()}
    for base, params in BASES.items():
        if base in skip:
            continue
        rows = []
        for w in WEIGHTS:
            model = SentimentAware(base=base, base_params=params, weight=w)
            t0 = time.perf_counter()
            model.fit(train)
            secs = time.perf_counter() - t0
            v = evaluate(model, split, part="valid", ks=(10,)).mean()
            t = evaluate(model, split, part="test", ks=(10,)).mean()
            rows.append({"weight": w, "valid_ndcg@10": round(v["ndcg@10"], 4), "test_ndcg@10": round(t["ndcg@10"], 4),
                         "test_recall@10": round(t["recall@10"], 4), "fit_seconds": round(secs, 2)})
            print(f"  {base} weight={w}: valid {v['ndcg@10']:.4f} test {t['ndcg@10']:.4f}", flush=True)
        chosen = max(rows, key=lambda r: (r["valid_ndcg@10"], -r["weight"]))  # ties: the smaller weight
        out[base] = {"params": params, "by_weight": rows, "chosen_weight": chosen["weight"],
                     "base_test_ndcg@10": rows[0]["test_ndcg@10"], "chosen_test_ndcg@10": chosen["test_ndcg@10"]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-content", action="store_true", help="leave out the content base (needs the text extra)")
    args = parser.parse_args()
    t0 = time.perf_counter()
    auc = auc_section(SentimentAnalyzer(models="lexicon"))  # the lexicons, even where trained models are saved
    print(json.dumps(auc, indent=2))
    abl = ablation({"content"} if args.skip_content else set())
    doc = {"dataset": "amazon-fashion-reviews", "machine": describe(), "auc": auc, "ablation": abl,
           "seconds": round(time.perf_counter() - t0, 1)}
    out = HERE / "results" / "sentiment.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(doc, indent=2))
    print(f"results: {out}")
    replace_section("SENTIMENT", "Sentiment on amazon-fashion-reviews (AUC, mood-term ablation)", table(doc))


def table(doc: dict[str, Any]) -> str:
    auc = doc["auc"]
    lines = [
        "Sentiment of `summary. reviewText` (VADER for English, SnowNLP for Chinese; this data is English), "
        "AUC for 4-5 stars against 1-2 stars, 3 stars left out. Run: `nice -n 5 .venv/bin/python "
        f"benchmarks/sentiment.py` ({doc['seconds']:.0f}s on {doc['machine']}).",
        "",
        "| reviews | AUC | n | 4-5 stars | 1-2 stars |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, v in auc.items():
        if isinstance(v, dict):
            lines.append(f"| {name} | {v['auc']:.4f} | {v['n']:,} | {v.get('positives', '')} | {v.get('negatives', '')} |")
    abl = doc["ablation"]
    lines += [
        "",
        f"Mood term ablation: leave-one-out ({abl['split']}), full ranking over the 31 items, NDCG@10 on test; "
        "the weight of `weight * E(u) * s(c)` picked on validation (weight 0 = the base model).",
        "",
        "| base | base NDCG@10 | chosen weight | with mood term | test NDCG@10 by weight |",
        "|---|---:|---:|---:|---|",
    ]
    for base, v in abl.items():
        if base == "split":
            continue
        by = ", ".join(f"{r['weight']:g}: {r['test_ndcg@10']:.4f}" for r in v["by_weight"])
        lines.append(f"| {base} | {v['base_test_ndcg@10']:.4f} | {v['chosen_weight']:g} | "
                     f"{v['chosen_test_ndcg@10']:.4f} | {by} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
