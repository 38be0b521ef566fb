"""Experiments: tune each model on validation, then touch the test set once.

Keeps split, metrics and models apart and joins them here (as cornac's `Experiment` does).

On big problems the grid is searched by successive halving (`Halving`): every point is judged on
a small sample of validation users first, and only the better half goes on to a sample twice
as large; a model that can resume its training (`fit_to`: ALS's iterations) is trained in the
first rungs with a fraction of its budget and continued, never refitted, as it survives.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from socialrec.engine import Engine, LocalEngine
from socialrec.evaluate.engine_tasks import SharedSplit, engine_ranker, share_split
from socialrec.evaluate.protocol import EvalResult, cold_user_curve, evaluate
from socialrec.ingest.split import Split
from socialrec.retrieve.base import BaseRecommender

# Successive halving is on by default ("auto") when one validation pass scores more (user, item)
# pairs than this: on LastFM (1.9k validation users x 17.6k items) every point is judged on all
# validation users as before; on a 300k-item catalogue a full pass per grid point costs minutes.
HALVING_ABOVE = 1_000_000_000


@dataclass(frozen=True)
class ModelSpec:
    """A model to evaluate: a constructor with default hyperparameters and a small search grid."""

    name: str
    make: Callable[..., BaseRecommender]
    grid: Mapping[str, Sequence[Any]] = field(default_factory=dict)

    def candidates(self) -> list[dict[str, Any]]:
        keys = list(self.grid)
        return [dict(zip(keys, values)) for values in itertools.product(*(self.grid[k] for k in keys))] or [{}]


@dataclass(frozen=True)
class Halving:
    """Successive halving over a grid (Jamieson & Talwalkar 2016), judged on validation.

    eta: each rung keeps the best ``ceil(n / eta)`` of its ``n`` points (>= 2).
    first_users: validation users of the first rung; rung r judges on ``first_users * eta**r``
        users (a fixed random order of the validation users drawn from the seed, capped at all
        of them). A point that survives is judged on the users it has not been judged on yet
        only, unless its training went on (then on all of them anew).
    Models with ``budget_param`` and ``fit_to(train, budget)`` (resumable training, e.g. ALS's
    iterations) train rung r to ``budget * eta**(r - R)`` of their budget (R: the last rung,
    where the one point left trains to its full budget), continuing from the previous rung.
    The chosen point's validation score is the one of the last rung that judged it.
    """

    eta: int = 2
    first_users: int = 1000

    def __post_init__(self) -> None:
        if self.eta < 2:
            raise ValueError(f"Halving.eta must be >= 2, got {self.eta}")
        if self.first_users < 1:
            raise ValueError(f"Halving.first_users must be >= 1, got {self.first_users}")


def auto_halving(split: Split, n_points: int) -> Halving | None:
    """The default: `Halving()` when the grid has more than one point and one validation pass
    scores more than `HALVING_ABOVE` (user, item) pairs, else None (every point on every user).
    With two points the loser is judged on `Halving.first_users` users only and the winner on
    twice as many: the graph models' two temperatures on a 300k-item catalogue were judged on
    20,000 users each before."""
    if n_points < 2:
        return None
    n_valid_users = int((np.diff(split.matrix("valid").indptr) > 0).sum())
    return Halving() if n_valid_users * split.dataset.n_items > HALVING_ABOVE else None


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


TEST_HISTORIES = ("train", "train+valid")


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
    choices = _choices(model)
    if choices is not None:
        entry["fit_choices"] = choices
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
    halving: Halving | None | str = "auto",
    test_history: str = "train",
) -> ModelOutcome:
    """Fit every grid point on training, choose by ``select_by`` on validation, and evaluate the
    chosen model on test once. Without validation data the first grid point is used.

    ``halving``: a `Halving`, None (every point fitted fully and judged on every validation user),
    or "auto" (`auto_halving`). ``test_history``: what the chosen model reads of each test user,
    "train" (the fitted rows: the validation items are hidden from the input as from the
    ranking) or "train+valid" (the user's validation items are folded in first, through the
    model's ``partial_fit_users``, no refit; a model that cannot fold in is refitted on training
    + validation): the input a served model has when the next event comes, and the leave-one-out
    protocol of SASRec and RecBole, whose test input ends at the validation item. Either way the
    validation items are masked from the test ranking. ``engine`` (default: this process) runs
    the grid points, and the chosen model's test ranking in chunks of users, on its workers;
    successive halving's rungs
    depend on each other's results, so they run in this process on any engine. ``shared`` is the
    split already shared with the engine (`engine_tasks.share_split`, once per experiment). The
    results do not depend on the engine.
    """
    if test_history not in TEST_HISTORIES:
        raise ValueError(f"test_history must be one of {TEST_HISTORIES}, got {test_history!r}")
    engine = engine if engine is not None else LocalEngine()
    local = isinstance(engine, LocalEngine)
    if test_history != "train" and not local:
        raise ValueError(f"test_history {test_history!r} folds the validation items into the chosen model in this "
                         "process: run it with the local engine (drop --engine)")
    if shared is None:
        shared = SharedSplit(split, None) if local else share_split(engine, split)
    has_valid = len(split.valid) > 0
    candidates = spec.candidates() if has_valid else spec.candidates()[:1]
    if isinstance(halving, str):
        if halving != "auto":
            raise ValueError(f"halving must be a Halving, None or 'auto', got {halving!r}")
        halving = auto_halving(split, len(candidates))
    if halving is not None and len(candidates) > 1:
        score, params, model, fit_seconds, tuning = _successive_halving(
            spec, split, candidates, halving, select_by=select_by, seed=seed, progress=progress)
        if not local:
            model = engine.share(model)
    else:
        score, params, model, fit_seconds, tuning = _full_grid(
            spec, shared.split, candidates, ks, engine, has_valid=has_valid, select_by=select_by, seed=seed,
            progress=progress)
    if test_history == "train+valid" and has_valid:
        model = with_validation_history(model, spec, params, split)
    if local:
        test = evaluate(model, split, part="test", ks=ks, seed=seed, item_categories=item_categories)
    else:
        ranker = engine_ranker(engine, model, shared.test_mask, max(ks), seed)
        test = evaluate(None, split, part="test", ks=ks, seed=seed, item_categories=item_categories,
                        rank_chunks=ranker)
    curve = None
    if split.protocol == "cold-user":
        # The curve folds users in, so it runs where the model is (this process or a worker).
        curve = next(iter(engine.imap(_cold_user_curve, [model], shared.split, ks, seed)))
    return ModelOutcome(spec.name, params, score, test, fit_seconds, tuning, curve)


def with_validation_history(model: BaseRecommender, spec: ModelSpec, params: dict[str, Any],
                            split: Split) -> BaseRecommender:
    """``model`` reading each user's training and validation items: the validation items folded
    in (``partial_fit_users``: a sequential model's newest item, an item-item model's row, a
    factor model's re-solved vector), or, for a model that cannot fold users in, ``spec`` with
    ``params`` refitted on training + validation."""
    valid = split.matrix("valid")
    users = np.flatnonzero(np.diff(valid.indptr) > 0)
    if getattr(model, "fold_in", None) is None:
        refit = spec.make(**params)
        refit.fit(split.train_data(include_valid=True))
        return refit
    rows = (split.matrix("train") + valid).tocsr()[users]
    return model.partial_fit_users(users, rows)


def _cold_user_curve(model: BaseRecommender, split: Split, ks: Sequence[int], seed: int) -> dict[int, dict[str, float]]:
    return cold_user_curve(model, split, ks=ks, seed=seed)


def _full_grid(spec: ModelSpec, split: Any, candidates: list[dict[str, Any]], ks: tuple[int, ...], engine: Engine, *,
               has_valid: bool, select_by: str, seed: int, progress: bool
               ) -> tuple[float, dict[str, Any], Any, float, list[dict[str, Any]]]:
    """Every grid point fitted (on the engine's workers; ``split`` is the engine's handle) and
    judged on all validation users. Returns (score, params, fitted model or its handle, fit
    seconds, tuning entries)."""
    select_k = int(select_by.split("@")[1])
    valid_ks = tuple(sorted(set(ks) | {select_k}))
    points = [GridPoint(spec, params, select_by, valid_ks, seed, has_valid) for params in candidates]
    tuning: list[dict[str, Any]] = []
    best: tuple[float, dict[str, Any], Any, float] | None = None
    for entry, model in tqdm(engine.imap_keep(fit_point, points, split), total=len(points),
                             desc=f"tuning {spec.name}", disable=not progress or len(candidates) == 1, leave=False):
        tuning.append(entry)
        score = entry[select_by]
        if best is None or score > best[0]:
            best = (score, entry["params"], model, entry["fit_seconds"])
        del model  # only the best model so far is kept (on a Ray engine, in its object store)
    if best is None:  # pragma: no cover - candidates is never empty
        raise ValueError(f"model {spec.name!r} has no grid point to fit")
    return (*best, tuning)


def _choices(model: BaseRecommender) -> dict[str, Any] | None:
    # What the model chose inside fit on validation (best epoch, blend weight), when it says.
    choices = getattr(model, "fit_choices", None)
    return choices() if callable(choices) else None


def _successive_halving(spec: ModelSpec, split: Split, candidates: list[dict[str, Any]], halving: Halving, *,
                        select_by: str, seed: int, progress: bool
                        ) -> tuple[float, dict[str, Any], BaseRecommender, float, list[dict[str, Any]]]:
    """See `Halving`. Returns (score, params, fitted model, fit seconds, tuning entries)."""
    train = split.train_data()
    select_k = int(select_by.split("@")[1])
    truth = split.matrix("valid")
    valid_users = np.flatnonzero(np.diff(truth.indptr) > 0)
    order = np.random.default_rng((seed, 1)).permutation(valid_users)
    n_points = len(candidates)
    last = math.ceil(math.log(n_points, halving.eta))  # rungs 0..last; one point is left at the last
    models: list[Any] = [spec.make(**p) for p in candidates]
    resumable = [getattr(m, "budget_param", None) is not None and callable(getattr(m, "fit_to", None))
                 for m in models]
    full_budget = [int(getattr(m, m.budget_param)) if r else 0 for m, r in zip(models, resumable)]  # type: ignore[arg-type]
    trained_to = [0] * n_points
    fit_seconds = [0.0] * n_points
    judged: list[np.ndarray] = [np.empty(0, dtype=np.float64) for _ in range(n_points)]  # per-user scores
    entries: list[dict[str, Any]] = [{"params": p, "rungs": []} for p in candidates]
    alive = list(range(n_points))
    for rung in range(last + 1):
        n_users = min(len(order), halving.first_users * halving.eta ** rung)
        for i in tqdm(alive, desc=f"tuning {spec.name} (rung {rung})", disable=not progress, leave=False):
            start = time.perf_counter()
            if resumable[i]:
                budget = full_budget[i] if rung == last else max(1, round(full_budget[i] * halving.eta ** (rung - last)))
                if budget > trained_to[i]:
                    models[i].fit_to(train, budget)  # type: ignore[attr-defined]
                    trained_to[i] = budget
                    judged[i] = judged[i][:0]  # the model moved: judge it anew
            elif rung == 0:
                models[i].fit(train)
            fit_seconds[i] += time.perf_counter() - start
            done = len(judged[i])
            if n_users > done:
                res = evaluate(models[i], split, part="valid", ks=(select_k,), seed=seed, users=np.sort(order[done:n_users]))
                per_user = dict(zip(res.users.tolist(), res.per_user[select_by].tolist()))
                judged[i] = np.concatenate([judged[i], [per_user[u] for u in order[done:n_users].tolist()]])
            score = float(judged[i].mean())
            entries[i]["rungs"].append({"rung": rung, "valid_users": int(n_users), select_by: score,
                                        **({"budget": trained_to[i]} if resumable[i] else {})})
            entries[i][select_by] = score
        if rung < last:
            keep = math.ceil(len(alive) / halving.eta)
            # Stable: among equal scores the earlier grid point survives, as in the full grid.
            survivors = sorted(sorted(alive, key=lambda j: -entries[j][select_by])[:keep])
            for i in set(alive) - set(survivors):
                _close_entry(entries[i], models[i], fit_seconds[i])
                models[i] = None  # an eliminated point's model is not kept
            alive = survivors
    best = max(alive, key=lambda j: entries[j][select_by])
    for i in alive:
        _close_entry(entries[i], models[i], fit_seconds[i])
    return entries[best][select_by], candidates[best], models[best], fit_seconds[best], entries


def _close_entry(entry: dict[str, Any], model: BaseRecommender, fit_seconds: float) -> None:
    entry["fit_seconds"] = fit_seconds
    entry["stopped_at_rung"] = len(entry["rungs"]) - 1
    choices = _choices(model)
    if choices is not None:
        entry["fit_choices"] = choices


def results_document(dataset: str, protocol: str, seed: int, outcomes: Sequence[ModelOutcome],
                     test_history: str = "train") -> dict[str, Any]:
    """The JSON shape of `socialrec evaluate --output` (``test_history`` is recorded when it is not
    the default "train")."""
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
        if len(o.tuning) > 1:  # the grid: each point's validation score, so the choice can be checked
            entry["tuning"] = json.loads(json.dumps(
                [{k: (round(v, 6) if isinstance(v, float) else v) for k, v in t.items() if k != "fit_choices"}
                 for t in o.tuning], default=str))
        entry["ci95"] = {k: [round(a, 6), round(b, 6)] for k, (a, b) in o.test.confidence_intervals().items()
                         if k.startswith(("recall", "ndcg"))}
        models[o.name] = entry
    doc: dict[str, Any] = {"dataset": dataset, "protocol": protocol, "seed": seed}
    if test_history != "train":
        doc["test_history"] = test_history
    doc["models"] = models
    return doc
