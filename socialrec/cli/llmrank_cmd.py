"""`socialrec evaluate --protocol llmrank`: rank fixed candidate lists (LLMRank on amazon-games)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


def run_candidate_evaluation(dataset_name: str, protocol: str, model_names: list[str], seed: int, *,
                             data: str | None, quick: bool, output: Path | None) -> dict[str, Any]:
    """Tune each model on the validation candidates, refit with validation, rank the test candidates.
    Prints NDCG@10 x100 (as LLMRank reports it) and writes the JSON document."""
    from socialrec.errors import ConfigError
    from socialrec.evaluate.candidates import expected_random_ndcg, llmrank_tasks, tune_and_test_candidates
    from socialrec.evaluate.suite import resolve
    from socialrec.ingest.datasets import data_dir, load
    from socialrec.ingest.datasets.amazon import load_llmrank_candidates, load_llmrank_tuning_candidates
    from socialrec.ingest.split import make_split

    if protocol != "llmrank" or dataset_name != "amazon-games":
        raise ConfigError(f"protocol {protocol!r} is defined for dataset amazon-games only (its Games.random "
                          f"candidate lists), not {dataset_name!r}")
    specs = resolve(model_names, quick=quick)
    start = time.perf_counter()
    ds = load(dataset_name, data)
    split = make_split(ds, "fixed", seed=seed)
    tuning_lists = load_llmrank_tuning_candidates(data_dir(data))
    valid, test = llmrank_tasks(ds, split, load_llmrank_candidates(data_dir(data)), tuning_lists)
    n_cand = test.candidates.shape[1]
    print(f"loaded {ds.name} ({time.perf_counter() - start:.1f}s); llmrank: {len(test.users)} users x "
          f"{n_cand} candidates (test item + the first {n_cand - 1} of Games.random); tuned on "
          + (f"{len(valid.users):,} users' validation item + the first {n_cand - 1} of Games-6k.random"
             if tuning_lists is not None else "the same users' validation item (Games-6k.random is missing)"))
    models: dict[str, Any] = {}
    for spec in specs:
        t0 = time.perf_counter()
        o = tune_and_test_candidates(spec, split, valid, test, seed=seed)
        m = o.test.mean()
        models[spec.name] = {"ndcg@10_x100": round(100 * m["ndcg@10"], 2), **{k: round(v, 6) for k, v in m.items()},
                             "params": o.params, "valid_ndcg@10": round(o.valid_score, 6),
                             "valid_users": int(len(valid.users)),
                             "fit_seconds": round(o.fit_seconds, 3)}
        print(f"  {spec.name:<13} NDCG@10 x100 = {100 * m['ndcg@10']:6.2f}  HR@1 = {m['hit@1']:.3f}  "
              f"params={o.params} ({time.perf_counter() - t0:.1f}s with tuning)")
    rnd = 100 * expected_random_ndcg(n_cand, 10)
    print(f"  {'random':<13} NDCG@10 x100 = {rnd:6.2f}  (exact expectation)")
    print("  published (LLMRank): BM25 34.61, UniSRec 40.71, ChatGPT 50.31, GPT-4 62.88 (NDCG@10 x100)")
    doc = {"dataset": ds.name, "protocol": protocol, "seed": seed, "metric_scale": "ndcg@10_x100 is NDCG@10 x 100",
           "expected_random_ndcg@10_x100": round(rnd, 4), "models": models}
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(doc, indent=2))
        print(f"results: {output}")
    return doc
