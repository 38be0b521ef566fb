"""Evaluation on fixed per-user candidate lists (the LLMRank protocol and others like it).

Each evaluated user has a fixed list of candidate items, some marked relevant; a model scores
all items (`score`), and only the candidates are ranked. Ties are broken at random with a
seeded generator (a model that scores every candidate alike gets a random order, so a relevant
item placed first in the list gains nothing). Items the user had before the evaluated part
(``mask``) are ranked last; a relevant item among them is a leakage error.

`llmrank_task` builds LLMRank's task (Hou et al., "Large Language Models are Zero-Shot Rankers
for Recommender Systems"): on amazon-games, the 200 users of ``Games.random``; per user 20
candidates = the held-out item + the first 19 of the user's line in ``Games.random`` (item ids
equal to the held-out item are skipped; none are in the shipped file). NDCG@10 is reported x100
in the paper.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from socialrec.errors import DataError, LeakageError
from socialrec.evaluate import metrics as M
from socialrec.evaluate.experiment import ModelOutcome
from socialrec.evaluate.protocol import EvalResult
from socialrec.ingest.schema import Dataset
from socialrec.types import Recommender

CANDIDATE_PROTOCOLS = ("llmrank",)
DEFAULT_KS = (1, 5, 10, 20)
CANDIDATE_METRICS = ("ndcg", "hit", "mrr", "recall")


@dataclass(frozen=True)
class CandidateTask:
    """users (n,), candidates (n, c) item indices, relevant (n, c) bool (at least one per row)."""

    name: str
    users: np.ndarray
    candidates: np.ndarray
    relevant: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.users)
        if self.candidates.ndim != 2 or self.candidates.shape[0] != n or self.relevant.shape != self.candidates.shape:
            raise ValueError(f"{self.name}: users {self.users.shape}, candidates {self.candidates.shape} and "
                             f"relevant {self.relevant.shape} do not line up: need (n,), (n, c), (n, c)")
        if n and not self.relevant.any(axis=1).all():
            row = int(np.flatnonzero(~self.relevant.any(axis=1))[0])
            raise ValueError(f"{self.name}: user index {self.users[row]} has no relevant candidate")


def expected_random_ndcg(n_candidates: int, k: int) -> float:
    """Expected NDCG@k of a uniformly random order of ``n_candidates`` with one relevant item:
    (1 / n) * sum_{r=1}^{min(k, n)} 1 / log2(r + 1)."""
    r = np.arange(1, min(k, n_candidates) + 1)
    return float((1.0 / np.log2(r + 1)).sum() / n_candidates)


def evaluate_candidates(
    model: Recommender,
    task: CandidateTask,
    *,
    mask: sp.csr_matrix | None = None,
    ks: tuple[int, ...] = DEFAULT_KS,
    metrics: tuple[str, ...] = CANDIDATE_METRICS,
    seed: int = 0,
) -> EvalResult:
    """Rank each user's candidates by the model's scores; metrics at ``ks`` (k <= the list length).

    mask: (n_users, n_items) items known before the evaluated part; masked candidates rank last.
    ``top_items`` of the result holds the ranked candidate item indices, best first.
    """
    n_cand = task.candidates.shape[1]
    if max(ks) > n_cand:
        raise ValueError(f"k={max(ks)} exceeds the {n_cand} candidates per user")
    rows = np.arange(len(task.users))[:, None]
    if hasattr(model, "score_items"):
        # Rankers that score given candidates directly (the hybrid's learned ranker).
        scores = np.asarray(model.score_items(task.users, task.candidates), dtype=np.float64)
    else:
        scores = np.asarray(model.score(task.users), dtype=np.float64)[rows, task.candidates]
    if mask is not None:
        flat = mask.tocsr()[np.repeat(task.users, n_cand), task.candidates.ravel()]
        known = np.asarray(flat).reshape(task.candidates.shape) > 0
        if (known & task.relevant).any():
            r = int(np.flatnonzero((known & task.relevant).any(axis=1))[0])
            raise LeakageError(f"{task.name}: a relevant candidate of user index {task.users[r]} is among the "
                               f"items the model was trained on: the split and the candidates disagree")
        scores = np.where(known, -np.inf, scores)
    scores = np.where(np.isnan(scores), -np.inf, scores)
    # Masked candidates rank below every scored one, in random order among themselves.
    finite_min = np.where(np.isfinite(scores), scores, np.inf).min(axis=1, initial=np.inf)
    floor = np.where(np.isfinite(finite_min), finite_min - 1.0, 0.0)
    scores = np.where(np.isneginf(scores), floor[:, None], scores)
    order = M.rank_top_k(scores, n_cand, rng=np.random.default_rng(seed))
    hits = np.take_along_axis(task.relevant, order, axis=1)
    n_rel = task.relevant.sum(axis=1)
    per_user = {f"{name}@{k}": M.METRICS[name](hits, n_rel, k) for k in ks for name in metrics}
    top_items = np.take_along_axis(task.candidates, order, axis=1)
    n_items = int(getattr(model, "n_items_", int(task.candidates.max()) + 1))
    return EvalResult(users=task.users, per_user=per_user, top_items=top_items, n_items=n_items)


def llmrank_task(
    dataset: Dataset,
    random_lists: Mapping[str, Sequence[str]],
    truth: sp.csr_matrix,
    *,
    n_negatives: int = 19,
    name: str = "llmrank",
) -> CandidateTask:
    """LLMRank candidates: per user of ``random_lists`` (external user id -> item ids), the user's
    held-out item in ``truth`` (exactly one per user) plus the first ``n_negatives`` listed items."""
    ext_users = list(random_lists)
    users = np.asarray(dataset.users.to_index(ext_users), dtype=np.int64)
    truth = truth.tocsr()
    counts = np.diff(truth.indptr)[users]
    if (counts != 1).any():
        bad = int(np.flatnonzero(counts != 1)[0])
        raise DataError(f"user {ext_users[bad]!r} has {counts[bad]} held-out items; the LLMRank protocol needs "
                        f"exactly one", fix="Use the leave-one-out split the amazon-games loader ships (fixed)")
    targets = truth.indices[truth.indptr[users]]
    cands = np.empty((len(users), n_negatives + 1), dtype=np.int64)
    for row, (u, t) in enumerate(zip(ext_users, targets)):
        listed = np.asarray(dataset.items.to_index(list(random_lists[u])), dtype=np.int64)
        negatives = listed[listed != t][:n_negatives]
        if len(negatives) < n_negatives:
            raise DataError(f"user {u!r} lists only {len(negatives)} candidate items besides the held-out one; "
                            f"{n_negatives} are needed")
        cands[row, 0] = t
        cands[row, 1:] = negatives
    relevant = np.zeros(cands.shape, dtype=bool)
    relevant[:, 0] = True
    return CandidateTask(name=name, users=users, candidates=cands, relevant=relevant)


def tune_and_test_candidates(
    spec: Any,
    split: Any,
    valid_task: CandidateTask,
    test_task: CandidateTask,
    *,
    ks: tuple[int, ...] = DEFAULT_KS,
    select_by: str = "ndcg@10",
    seed: int = 0,
    refit_with_valid: bool = True,
) -> ModelOutcome:
    """Fit each grid point of ``spec`` (a `ModelSpec`) on training, pick by ``select_by`` on the
    validation candidates, then test once. With ``refit_with_valid`` the chosen model is refitted
    on training + validation before the test (the validation item is part of the test history,
    as in LLMRank's prompts)."""
    train = split.train_data()
    train_mask = split.matrix("train")
    tuning: list[dict[str, Any]] = []
    best: tuple[float, dict[str, Any], Any, float] | None = None
    for params in spec.candidates():
        model = spec.make(**params)
        start = time.perf_counter()
        model.fit(train)
        secs = time.perf_counter() - start
        score = evaluate_candidates(model, valid_task, mask=train_mask, ks=ks, seed=seed).mean()[select_by]
        tuning.append({"params": params, select_by: score, "fit_seconds": secs})
        if best is None or score > best[0]:
            best = (score, params, model, secs)
    if best is None:  # a spec always has at least one grid point
        raise ValueError(f"model spec {spec.name!r} has an empty grid")
    score, params, model, secs = best
    test_mask = train_mask
    if refit_with_valid:
        model = spec.make(**params)
        start = time.perf_counter()
        model.fit(split.train_data(include_valid=True))
        secs = time.perf_counter() - start
        test_mask = (train_mask + split.matrix("valid")).tocsr()
    test = evaluate_candidates(model, test_task, mask=test_mask, ks=ks, seed=seed)
    return ModelOutcome(spec.name, params, score, test, secs, tuning)


def llmrank_tasks(dataset: Dataset, split: Any, random_lists: Mapping[str, Sequence[str]],
                  tuning_lists: Mapping[str, Sequence[str]] | None = None) -> tuple[CandidateTask, CandidateTask]:
    """The validation task and the test task (``random_lists``' users: their test item + the first
    19 listed). Validation ranks each user's validation item among the first 19 of
    ``tuning_lists`` (amazon-games' ``Games-6k.random``: 6,000 users, so that a choice made on
    validation is not decided by 200 users' noise), or of ``random_lists`` when None."""
    lists = random_lists if tuning_lists is None else tuning_lists
    return (llmrank_task(dataset, lists, split.matrix("valid"), name="llmrank-valid"),
            llmrank_task(dataset, random_lists, split.matrix("test"), name="llmrank-test"))
