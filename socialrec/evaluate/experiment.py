"""Experiments: tune each model on validation, then touch the test set once.

Keeps split, metrics and models apart and joins them here (as cornac's `Experiment` does).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from socialrec.evaluate.protocol import EvalResult, evaluate
from socialrec.ingest.split import Split
from socialrec.retrieve.base import BaseRecommender


@dataclass(frozen=True)
class ModelSpec:
    """A model to evaluate: a constructor with default hyperparameters and a small search grid."""

    name: str
    make: Callable[..., BaseRecommender]
    grid: Mapping[str, Sequence[Any]] = field(default_factory=dict)

    def candidates(self) -> list[dict[str, Any]]:
        keys = list(self.grid)
        return [dict(zip(keys, values)) for values in itertools.product(*(self.grid[k] for k in keys))] or [{}]


@dataclass
class ModelOutcome:
    name: str
    params: dict[str, Any]
    valid_score: float
    test: EvalResult
    fit_seconds: float
    tuning: list[dict[str, Any]]


def tune_and_test(
    spec: ModelSpec,
    split: Split,
    *,
    ks: tuple[int, ...] = (10, 20),
    select_by: str = "ndcg@10",
    seed: int = 0,
    item_categories: np.ndarray | None = None,
    progress: bool = True,
) -> ModelOutcome:
    """Fit every grid point on training, choose by ``select_by`` on validation, and evaluate the
    chosen model on test once. Without validation data the first grid point is used."""
    train = split.train_data()
    has_valid = len(split.valid) > 0
    tuning: list[dict[str, Any]] = []
    best: tuple[float, dict[str, Any], BaseRecommender, float] | None = None
    candidates = spec.candidates() if has_valid else spec.candidates()[:1]
    for params in tqdm(candidates, desc=f"tuning {spec.name}", disable=not progress or len(candidates) == 1, leave=False):
        model = spec.make(**params)
        start = time.perf_counter()
        model.fit(train)
        fit_seconds = time.perf_counter() - start
        score = float("nan")
        if has_valid:
            select_k = int(select_by.split("@")[1])
            res = evaluate(model, split, part="valid", ks=tuple(sorted(set(ks) | {select_k})), seed=seed)
            score = res.mean()[select_by]
        entry = {"params": params, select_by: score, "fit_seconds": fit_seconds}
        # What the model chose inside fit on validation (best epoch, blend weight), when it says.
        choices = getattr(model, "fit_choices", None)
        if callable(choices):
            entry["fit_choices"] = choices()
        tuning.append(entry)
        if best is None or score > best[0]:
            best = (score, params, model, fit_seconds)
    assert best is not None  # candidates is never empty
    score, params, model, fit_seconds = best
    test = evaluate(model, split, part="test", ks=ks, seed=seed, item_categories=item_categories)
    return ModelOutcome(spec.name, params, score, test, fit_seconds, tuning)


def results_document(dataset: str, protocol: str, seed: int, outcomes: Sequence[ModelOutcome]) -> dict[str, Any]:
    """The JSON shape of `socialrec evaluate --output`."""
    models: dict[str, Any] = {}
    for o in outcomes:
        entry: dict[str, Any] = {k: round(v, 6) for k, v in o.test.mean().items()}
        entry["params"] = o.params
        entry["fit_seconds"] = round(o.fit_seconds, 3)
        entry["valid_ndcg@10"] = None if np.isnan(o.valid_score) else round(o.valid_score, 6)
        entry["n_test_users"] = int(len(o.test.users))
        # What the chosen model picked inside fit on validation (a weight, an epoch), when it says.
        chosen = [t["fit_choices"] for t in o.tuning if "fit_choices" in t and t["params"] == o.params]
        if chosen:
            entry["fit_choices"] = json.loads(json.dumps(chosen[0], default=str))  # numpy values as JSON
        entry["ci95"] = {k: [round(a, 6), round(b, 6)] for k, (a, b) in o.test.confidence_intervals().items()
                         if k.startswith(("recall", "ndcg"))}
        models[o.name] = entry
    return {"dataset": dataset, "protocol": protocol, "seed": seed, "models": models}
