"""The LLMRank protocol on amazon-games: our models beside the published LLM rankers.

Protocol (`socialrec.evaluate.candidates`): the 200 users of ``Games.random``; per user 20
candidates = the held-out test item + the first 19 items of the user's line in
``Games.random``; NDCG@10 over those 20, x100. Models train on the loader's leave-one-out
split (histories without the validation and test items, all 50,546 users), pick their
hyperparameters on the validation item of ``Games-6k.random``'s 6,000 users (validation item +
the first 19 items of their line there; the 200 test users are among them), then are refitted
on training + validation (the validation item is part of the test history, as in LLMRank's
prompts) and rank the test candidates once. Blends: per-user
standardised scores of two fitted models, the second's weight picked on validation.

Published (RUCAIBox/LLMRank, same files): BM25 34.61, UniSRec 40.71, ChatGPT 50.31, GPT-4 62.88.
Random: the exact expectation of NDCG@10 for one relevant item among 20 in random order, plus
a measured all-tied model (ties broken at random).

Writes benchmarks/results/llmrank-amazon-games.json and the README section.

    nice -n 5 .venv/bin/python benchmarks/llmrank.py [--skip ease]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe  # noqa: E402
from _readme import replace_section  # noqa: E402

from socialrec.evaluate.candidates import (  # noqa: E402
    CandidateTask, evaluate_candidates, expected_random_ndcg, llmrank_tasks)
from socialrec.evaluate.experiment import ModelSpec  # noqa: E402
from socialrec.ingest.datasets import data_dir, load  # noqa: E402
from socialrec.ingest.datasets.amazon import load_llmrank_candidates, load_llmrank_tuning_candidates  # noqa: E402
from socialrec.ingest.split import make_split  # noqa: E402
from socialrec.retrieve.blend import standardize_rows  # noqa: E402
from socialrec.retrieve.content import ContentRecommender  # noqa: E402
from socialrec.retrieve.ease import EASE, CostlyComputationWarning  # noqa: E402
from socialrec.retrieve.implicit_models import ALS, BPR  # noqa: E402
from socialrec.retrieve.knn import ItemKNN, UserKNN  # noqa: E402
from socialrec.retrieve.popular import MostPopular  # noqa: E402

HERE = Path(__file__).resolve().parent
KS = (1, 5, 10, 20)
PUBLISHED = {"BM25": 34.61, "UniSRec": 40.71, "ChatGPT": 50.31, "GPT-4": 62.88}
BLEND_WEIGHTS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)


class Tied:
    """Every item scores the same: the order is the random tie-breaking."""

    def __init__(self, n_items: int) -> None:
        self.n_items_ = n_items

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.zeros((len(users), self.n_items_), dtype=np.float32)


class Frozen:
    """A weighted sum of fitted models' standardised scores (for tuning blend weights without refits)."""

    def __init__(self, models: list[Any], weights: list[float]) -> None:
        self.models, self.weights = models, weights
        self.n_items_ = models[0].n_items_

    def score(self, users: np.ndarray) -> np.ndarray:
        return sum(w * standardize_rows(m.score(users)) for w, m in zip(self.weights, self.models)).astype(np.float32)


def hybrid(**params: Any) -> Any:
    from socialrec.rank.hybrid import HybridRecommender

    return HybridRecommender(**params)


def specs() -> list[ModelSpec]:
    return [
        # The hybrid pipeline: its LambdaRank ranker scores the 20 given candidates (score_items).
        ModelSpec("hybrid", hybrid, {"channels": [("ease", "itemknn", "als", "bpr", "content", "trending")],
                                     "channel_params": [{"ease": {"l2": 500.0}, "content": {"recency_half_life": 3.0}}],
                                     # Refitted on train+valid for the test, it learns to rank each
                                     # user's last item from the rest: the valid item, as in tuning.
                                     "holdout": ["last"], "progress": [True]}),
        ModelSpec("pop", MostPopular),
        ModelSpec("itemknn", ItemKNN, {"neighbors": [50, 200], "shrink": [0.0, 10.0]}),
        ModelSpec("userknn", UserKNN, {"neighbors": [50, 200]}),
        ModelSpec("als", ALS, {"factors": [64, 128], "regularization": [0.05, 1.0], "alpha": [1.0, 10.0]}),
        ModelSpec("bpr", BPR, {"factors": [64], "learning_rate": [0.01, 0.05]}),
        ModelSpec("ease", EASE, {"l2": [100.0, 500.0]}),
        ModelSpec("content", ContentRecommender, {"encoder": ["minilm-onnx"], "recency_half_life": [1.0, 3.0, 10.0],
                                                  "progress": [True]}),
    ]


def run_model(spec: ModelSpec, split: Any, valid: CandidateTask, test: CandidateTask,
              masks: tuple[Any, Any]) -> tuple[dict[str, Any], Any, Any]:
    """Tune on validation, refit on train+valid, test. Returns the entry and both fitted models."""
    train, train_valid = split.train_data(), split.train_data(include_valid=True)
    tuning, best = [], None
    for params in spec.candidates():
        model = spec.make(**params)
        t0 = time.perf_counter()
        model.fit(train)
        secs = time.perf_counter() - t0
        score = evaluate_candidates(model, valid, mask=masks[0], ks=KS).mean()["ndcg@10"]
        tuning.append({"params": {k: v for k, v in params.items() if k != "progress"}, "valid_ndcg@10": round(score, 4),
                       "fit_seconds": round(secs, 2)})
        print(f"    {spec.name} {params}: valid ndcg@10 {score:.4f} ({secs:.1f}s)", flush=True)
        if best is None or score > best[0]:
            best = (score, params, model)
    assert best is not None
    score, params, valid_model = best
    final = spec.make(**params)
    t0 = time.perf_counter()
    final.fit(train_valid)
    secs = time.perf_counter() - t0
    res = evaluate_candidates(final, test, mask=masks[1], ks=KS)
    entry = entry_of(res, score)
    entry.update(params={k: v for k, v in params.items() if k != "progress"}, fit_seconds=round(secs, 2), tuning=tuning)
    return entry, valid_model, final


def entry_of(res: Any, valid_score: float | None) -> dict[str, Any]:
    m = res.mean()
    ndcg = res.per_user["ndcg@10"]
    boot = np.random.default_rng(0).choice(ndcg, size=(1000, len(ndcg))).mean(axis=1)
    return {"ndcg@10_x100": round(100 * m["ndcg@10"], 2),
            "ci95_x100": [round(100 * float(np.quantile(boot, q)), 2) for q in (0.025, 0.975)],
            **{k: round(v, 4) for k, v in m.items()},
            "valid_ndcg@10": None if valid_score is None else round(valid_score, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip", default="", help="comma-separated model names to leave out")
    parser.add_argument("--only", default="", help="run only these models and merge them into the existing results")
    args = parser.parse_args()
    skip = {s for s in args.skip.split(",") if s}
    only = {s for s in args.only.split(",") if s}
    if only:
        skip |= {spec.name for spec in specs()} - only
    warnings.simplefilter("ignore", CostlyComputationWarning)

    t0 = time.perf_counter()
    ds = load("amazon-games")
    split = make_split(ds, "fixed")
    lists = load_llmrank_candidates(data_dir())
    valid, test = llmrank_tasks(ds, split, lists, load_llmrank_tuning_candidates(data_dir()))
    masks = (split.matrix("train"), (split.matrix("train") + split.matrix("valid")).tocsr())
    print(f"loaded in {time.perf_counter() - t0:.1f}s; {len(test.users)} users x {test.candidates.shape[1]} candidates")

    models: dict[str, Any] = {}
    fitted: dict[str, tuple[Any, Any]] = {}
    rnd = evaluate_candidates(Tied(ds.n_items), test, mask=masks[1], ks=KS)
    models["random (all tied)"] = entry_of(rnd, None)
    for spec in specs():
        if spec.name in skip:
            continue
        print(f"  {spec.name}", flush=True)
        entry, valid_model, final = run_model(spec, split, valid, test, masks)
        models[spec.name] = entry
        fitted[spec.name] = (valid_model, final)
        print(f"  {spec.name}: test NDCG@10 x100 = {entry['ndcg@10_x100']}", flush=True)

    # Blends of content with each CF model (and of the two best CF models), weight on validation.
    cf = [n for n in fitted if n != "content"]
    pairs = [("content", n) for n in cf if "content" in fitted]
    best_cf = sorted(cf, key=lambda n: -models[n]["valid_ndcg@10"])[:2]
    if len(best_cf) == 2:
        pairs.append((best_cf[0], best_cf[1]))
    for a, b in pairs:
        scores = {w: evaluate_candidates(Frozen([fitted[a][0], fitted[b][0]], [1.0, w]), valid, mask=masks[0],
                                         ks=KS).mean()["ndcg@10"] for w in BLEND_WEIGHTS}
        w = max(scores, key=lambda x: scores[x])
        res = evaluate_candidates(Frozen([fitted[a][1], fitted[b][1]], [1.0, w]), test, mask=masks[1], ks=KS)
        entry = entry_of(res, scores[w])
        entry.update(params={"weights": [1.0, w]}, tuning={str(k): round(v, 4) for k, v in scores.items()})
        models[f"blend {a} + {b}"] = entry
        print(f"  blend {a} + {b} (w={w}): test NDCG@10 x100 = {entry['ndcg@10_x100']}", flush=True)

    doc = {"dataset": "amazon-games", "protocol": "llmrank: 200 users of Games.random, 20 candidates "
           "(test item + first 19 listed), models refitted on train+valid after tuning on the valid item",
           "tuning": f"validation item + the first 19 listed, {len(valid.users):,} users", "machine": describe(),
           "n_users": int(len(test.users)), "n_candidates": int(test.candidates.shape[1]),
           "expected_random_ndcg@10_x100": round(100 * expected_random_ndcg(20, 10), 4),
           "published_ndcg@10_x100": PUBLISHED, "models": models,
           "seconds": round(time.perf_counter() - t0, 1)}
    out = HERE / "results" / "llmrank-amazon-games.json"
    out.parent.mkdir(exist_ok=True)
    if only and out.exists():
        # Keep the other models' numbers from the last full run.
        previous = json.loads(out.read_text())
        doc["models"] = {**previous["models"], **{k: v for k, v in models.items() if k in only}}
    out.write_text(json.dumps(doc, indent=2))
    print(f"results: {out}")
    replace_section("LLMRANK", "LLMRank protocol on amazon-games (20 candidates, NDCG@10 x100)", table(doc))


def table(doc: dict[str, Any]) -> str:
    lines = [
        "200 users of `Games.random`, 20 candidates each (test item + the first 19 listed), NDCG@10 **x100**. "
        "Models train on the leave-one-out training part of all 50,546 users, are tuned on "
        + (f"the {doc['tuning']} of `Games-6k.random` (the 200 test users are among them)" if "tuning" in doc
           else "the same users' validation item")
        + f", then refitted with it. Run: `nice -n 5 .venv/bin/python benchmarks/llmrank.py` "
        f"({doc['seconds']:.0f}s on {doc['machine']}). 95% bootstrap interval over users.",
        "",
        "| model | NDCG@10 x100 | 95% CI | HR@1 | HR@5 | valid NDCG@10 x100 | params |",
        "|---|---:|---|---:|---:|---:|---|",
    ]
    lines.append(f"| random (expected, exact) | {doc['expected_random_ndcg@10_x100']:.2f} | | 5.00 | 25.00 | | |")
    for name, m in sorted(doc["models"].items(), key=lambda kv: kv[1]["ndcg@10_x100"]):
        v = "" if m.get("valid_ndcg@10") is None else f"{100 * m['valid_ndcg@10']:.2f}"
        lines.append(f"| {name} | {m['ndcg@10_x100']:.2f} | {m['ci95_x100'][0]:.1f}-{m['ci95_x100'][1]:.1f} | "
                     f"{100 * m['hit@1']:.1f} | {100 * m['hit@5']:.1f} | {v} | {m.get('params', '')} |")
    for name, value in doc["published_ndcg@10_x100"].items():
        lines.append(f"| {name} (published, LLMRank) | {value:.2f} | | | | | |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
