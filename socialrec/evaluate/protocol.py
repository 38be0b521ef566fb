"""Full-ranking evaluation: every item is a candidate, the user's known items are masked.

When scoring a part, the items the user had in the parts before it are masked (training for
validation; training and validation for test). Ties are broken at random with a seeded
generator, so a model that gives many items the same score never benefits from item order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from socialrec.evaluate import metrics as M
from socialrec.ingest.split import Split, check_no_leakage
from socialrec.types import Recommender

DEFAULT_METRICS = ("recall", "ndcg", "precision", "mrr", "hit", "map")


@dataclass
class EvalResult:
    """Per-user metric values and the top lists they came from."""

    users: np.ndarray
    per_user: dict[str, np.ndarray]
    top_items: np.ndarray
    n_items: int
    extras: dict[str, float] = field(default_factory=dict)

    def mean(self) -> dict[str, float]:
        out = {name: float(v.mean()) for name, v in self.per_user.items()}
        out.update(self.extras)
        return out

    def confidence_intervals(self, *, n_boot: int = 1000, seed: int = 0) -> dict[str, tuple[float, float]]:
        return {name: M.bootstrap_ci(v, n_boot=n_boot, seed=seed)[1:] for name, v in self.per_user.items()}


def masks_for(split: Split, part: str) -> sp.csr_matrix:
    """Items to hide when scoring ``part``: everything the user had before it."""
    mask = split.matrix("train")
    if part == "test":
        mask = (mask + split.matrix("valid")).tocsr()
    mask.data[:] = 1.0
    return mask


def masked_scores(model: Recommender, mask: sp.csr_matrix, users: np.ndarray) -> np.ndarray:
    """The model's float32 scores for ``users`` with their ``mask`` items at -inf: what ranking reads."""
    scores = np.asarray(model.score(users), dtype=np.float32).copy()
    r, c = mask[users].nonzero()
    scores[r, c] = -np.inf
    return scores


# Scores batches elsewhere (on other processes): maps the list of user batches to their
# `masked_scores`, in order.
BatchScorer = Callable[[list[np.ndarray]], Iterable[np.ndarray]]


def evaluate(
    model: Recommender | None,
    split: Split,
    *,
    part: str = "test",
    ks: tuple[int, ...] = (10, 20),
    metrics: tuple[str, ...] = DEFAULT_METRICS,
    seed: int = 0,
    batch_size: int = 512,
    item_categories: np.ndarray | None = None,
    progress: bool = False,
    users: np.ndarray | None = None,
    score_batches: BatchScorer | None = None,
) -> EvalResult:
    """Rank all items for every user with held-out items in ``part``; compute metrics at ``ks``.

    Beyond-accuracy metrics at the largest k are added to ``extras``: coverage, gini, novelty,
    and intra-list diversity when ``item_categories`` are given.

    ``score_batches`` scores the user batches in place of ``model`` (which may then be None):
    for an engine that scores them on other processes. Ranking, tie-breaking and metrics stay
    here, batch by batch, so the results equal this function's with the model itself.
    """
    truth = split.matrix(part)
    mask = masks_for(split, part)
    check_no_leakage(mask, truth, what=part)
    n_relevant_all = np.diff(truth.indptr)
    eval_users = np.flatnonzero(n_relevant_all > 0) if users is None else np.asarray(users)
    eval_users = eval_users[n_relevant_all[eval_users] > 0]
    kmax = max(ks)
    rng = np.random.default_rng(seed)
    tops = np.empty((len(eval_users), kmax), dtype=np.int64)
    starts = range(0, len(eval_users), batch_size)
    batches = [eval_users[start:start + batch_size] for start in starts]
    if score_batches is None:
        if model is None:
            raise ValueError("evaluate needs a model, or score_batches to score the users elsewhere")
        scored: Iterable[np.ndarray] = (masked_scores(model, mask, batch) for batch in batches)
    else:
        scored = score_batches(batches)
    for start, batch, scores in tqdm(zip(starts, batches, scored), total=len(batches), desc=f"ranking {part}",
                                     disable=not progress, leave=False):
        tops[start:start + len(batch)] = M.rank_top_k(scores, kmax, rng=rng)
    hits = M.hits_matrix(tops, truth, eval_users)
    n_rel = n_relevant_all[eval_users]
    per_user: dict[str, np.ndarray] = {}
    for k in ks:
        for name in metrics:
            per_user[f"{name}@{k}"] = M.METRICS[name](hits, n_rel, k)
    train_pop = np.diff(split.matrix("train").tocsc().indptr)
    extras = {
        f"coverage@{kmax}": M.catalog_coverage(tops, split.dataset.n_items, kmax),
        f"gini@{kmax}": M.gini_index(tops, split.dataset.n_items, kmax),
        f"novelty@{kmax}": float(np.nanmean(M.novelty(tops, train_pop, split.dataset.n_users, kmax))),
    }
    if item_categories is not None:
        extras[f"ild@{kmax}"] = float(np.nanmean(M.intra_list_diversity(tops, kmax, item_categories=item_categories)))
    return EvalResult(users=eval_users, per_user=per_user, top_items=tops, n_items=split.dataset.n_items,
                      extras=extras)
