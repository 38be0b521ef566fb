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

from socialrec.engine import Engine, LocalEngine
from socialrec.evaluate.engine_tasks import SharedSplit, engine_scorer, share_split
from socialrec.evaluate.protocol import EvalResult, cold_user_curve, evaluate
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
    # Cold-user protocol: the test metrics as the cold users reveal their first n items online
    # (`socialrec.evaluate.protocol.cold_user_curve`), keyed by n.
    cold_user_curve: dict[int, dict[str, float]] | None = None


@dataclass(frozen=True)
class GridPoint:
    """One grid point of one model: what `fit_point` fits and how it is judged."""

    spec: ModelSpec
    params: dict[str, Any]
    select_by: str
    valid_ks: tuple[int, ...]
    seed: int
    validate: bool


def fit_point(point: GridPoint, split: Split) -> tuple[dict[str, Any], BaseRecommender]:
    """Fit one grid point on training and score it on validation: ``(tuning entry, fitted model)``.
    An engine runs it wherever its workers are (a module-level function, so Ray can ship it)."""
    model = point.spec.make(**point.params)
    start = time.perf_counter()
    model.fit(split.train_data())
    fit_seconds = time.perf_counter() - start
    score = float("nan")
    if point.validate:
        res = evaluate(model, split, part="valid", ks=point.valid_ks, seed=point.seed)
        score = res.mean()[point.select_by]
    entry: dict[str, Any] = {"params": point.params, point.select_by: score, "fit_seconds": fit_seconds}
    # What the model chose inside fit on validation (best epoch, blend weight), when it says.
    choices = getattr(model, "fit_choices", None)
    if callable(choices):
        entry["fit_choices"] = choices()
    return entry, model


def tune_and_test(
    spec: ModelSpec,
    split: Split,
    *,
    ks: tuple[int, ...] = (10, 20),
    select_by: str = "ndcg@10",
    seed: int = 0,
    item_categories: np.ndarray | None = None,
    progress: bool = True,
    engine: Engine | None = None,
    shared: SharedSplit | None = None,
) -> ModelOutcome:
    """Fit every grid point on training, choose by ``select_by`` on validation, and evaluate the
    chosen model on test once. Without validation data the first grid point is used.

    ``engine`` (default: this process) runs the grid points, and the chosen model's test
    scoring in chunks of users, on its workers; ``shared`` is the split already shared with it
    (`engine_tasks.share_split`, once per experiment). The results do not depend on the engine.
    """
    engine = engine if engine is not None else LocalEngine()
    local = isinstance(engine, LocalEngine)
    if shared is None:
        shared = SharedSplit(split, None) if local else share_split(engine, split)
    has_valid = len(split.valid) > 0
    tuning: list[dict[str, Any]] = []
    best: tuple[float, dict[str, Any], Any, float] | None = None
    candidates = spec.candidates() if has_valid else spec.candidates()[:1]
    select_k = int(select_by.split("@")[1])
    valid_ks = tuple(sorted(set(ks) | {select_k}))
    points = [GridPoint(spec, params, select_by, valid_ks, seed, has_valid) for params in candidates]
    fitted = engine.imap_keep(fit_point, points, shared.split)
    for entry, model in tqdm(fitted, total=len(points), desc=f"tuning {spec.name}",
                             disable=not progress or len(candidates) == 1, leave=False):
        tuning.append(entry)
        score = entry[select_by]
        if best is None or score > best[0]:
            best = (score, entry["params"], model, entry["fit_seconds"])
        del model  # only the best model so far is kept (on a Ray engine, in its object store)
    assert best is not None  # candidates is never empty
    score, params, model, fit_seconds = best
    if local:
        test = evaluate(model, split, part="test", ks=ks, seed=seed, item_categories=item_categories)
    else:
        scorer = engine_scorer(engine, model, shared.test_mask, max(ks))
        test = evaluate(None, split, part="test", ks=ks, seed=seed, item_categories=item_categories,
                        score_batches=scorer)
    curve = None
    if split.protocol == "cold-user":
        # The curve folds users in, so it runs where the model is (this process or a worker).
        curve = next(iter(engine.imap(_cold_user_curve, [model], shared.split, ks, seed)))
    return ModelOutcome(spec.name, params, score, test, fit_seconds, tuning, curve)


def _cold_user_curve(model: BaseRecommender, split: Split, ks: Sequence[int], seed: int) -> dict[int, dict[str, float]]:
    return cold_user_curve(model, split, ks=ks, seed=seed)


def results_document(dataset: str, protocol: str, seed: int, outcomes: Sequence[ModelOutcome]) -> dict[str, Any]:
    """The JSON shape of `socialrec evaluate --output`."""
    models: dict[str, Any] = {}
    for o in outcomes:
        entry: dict[str, Any] = {k: round(v, 6) for k, v in o.test.mean().items()}
        entry["params"] = o.params
        entry["fit_seconds"] = round(o.fit_seconds, 3)
        entry["valid_ndcg@10"] = None if np.isnan(o.valid_score) else round(o.valid_score, 6)
        entry["n_test_users"] = int(len(o.test.users))
        if o.cold_user_curve is not None:
            entry["cold_user_curve"] = {str(n): {k: round(v, 6) for k, v in row.items()}
                                        for n, row in o.cold_user_curve.items()}
        # What the chosen model picked inside fit on validation (a weight, an epoch), when it says.
        chosen = [t["fit_choices"] for t in o.tuning if "fit_choices" in t and t["params"] == o.params]
        if chosen:
            entry["fit_choices"] = json.loads(json.dumps(chosen[0], default=str))  # numpy values as JSON
        entry["ci95"] = {k: [round(a, 6), round(b, 6)] for k, (a, b) in o.test.confidence_intervals().items()
                         if k.startswith(("recall", "ndcg"))}
        models[o.name] = entry
    return {"dataset": dataset, "protocol": protocol, "seed": seed, "models": models}
