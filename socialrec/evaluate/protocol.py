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


COLD_USER_HISTORIES = (0, 1, 3, 5)


def cold_user_curve(
    model: Recommender,
    split: Split,
    *,
    histories: tuple[int, ...] = COLD_USER_HISTORIES,
    part: str = "test",
    ks: tuple[int, ...] = (10, 20),
    metrics: tuple[str, ...] = ("ndcg", "recall"),
    seed: int = 0,
    batch_size: int = 512,
) -> dict[int, dict[str, float]]:
    """How a model fitted without some users serves them as their first interactions arrive.

    For a split whose ``part`` users are absent from training (`cold_user_split`): for each
    ``n`` in ``histories``, every such user with more than ``n`` items in ``part`` reveals their
    ``n`` oldest (time order of the dataset; row order without timestamps) to a copy of the
    fitted model through ``partial_fit_users`` (online, no refit), and the rest of their items
    are the truth; revealed items are masked. A model that cannot fold users in is measured at
    ``n = 0`` only. Returns ``{n: {"ndcg@10": ..., "n_users": ...}}``; the same users are not
    used for every ``n`` (a user needs more than ``n`` items; an ``n`` nobody exceeds is left out).
    """
    import copy

    from socialrec.represent.profiles import recency_order

    truth_all = split.matrix(part)
    train = split.matrix("train")
    users_all = np.flatnonzero(np.diff(truth_all.indptr) > 0)
    warm = users_all[np.diff(train.indptr)[users_all] > 0]
    if len(warm):
        raise ValueError(f"cold_user_curve needs a split whose {part} users have no training items "
                         f"({len(warm)} have some, e.g. user {warm[0]}); use cold_user_split")
    # Each stored entry's position in its user's sequence from the oldest (0).
    newest_first = recency_order(split.dataset, truth_all)
    counts = np.diff(truth_all.indptr)
    oldest_first = np.repeat(counts, counts) - 1 - newest_first
    folded = None
    out: dict[int, dict[str, float]] = {}
    kmax = max(ks)
    for n in sorted(histories):
        if n < 0:
            raise ValueError(f"histories must be >= 0, got {n}")
        users = users_all[counts[users_all] > n]
        if not len(users):
            continue  # nobody has more than n items
        revealed = truth_all.copy()
        revealed.data = (oldest_first < n).astype(np.float32)
        revealed.eliminate_zeros()
        truth = truth_all - truth_all.multiply(revealed > 0)
        truth = sp.csr_matrix(truth)
        truth.eliminate_zeros()
        scorer = model
        if n > 0:
            if getattr(model, "fold_in", None) is None:
                continue
            if folded is None:
                folded = copy.deepcopy(model)
            folded.partial_fit_users(users, revealed[users])  # type: ignore[attr-defined]
            scorer = folded
        rng = np.random.default_rng(seed)
        tops = np.empty((len(users), kmax), dtype=np.int64)
        for start in range(0, len(users), batch_size):
            batch = users[start:start + batch_size]
            scores = np.asarray(scorer.score(batch), dtype=np.float32).copy()
            r, c = revealed[batch].nonzero()
            scores[r, c] = -np.inf
            tops[start:start + len(batch)] = M.rank_top_k(scores, kmax, rng=rng)
        hits = M.hits_matrix(tops, truth, users)
        n_rel = np.diff(truth.indptr)[users]
        row: dict[str, float] = {"n_users": float(len(users))}
        for k in ks:
            for name in metrics:
                row[f"{name}@{k}"] = float(M.METRICS[name](hits, n_rel, k).mean())
        out[n] = row
    return out
