"""Evaluation of friend recommenders: hide a share of each user's edges, rank every non-friend.

Protocol "masked-edges-20": `socialrec.ingest.split.mask_edges` hides 20% of each user's edges
(its docstring gives the rules: per-user quotas, outgoing edges of directed graphs, friendships
hidden in both directions), then `evaluate_friends` ranks for every user with at least one hidden
edge all users except the user themself and their training friends; ties are broken at random
(seeded).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp

from socialrec.errors import LeakageError
from socialrec.evaluate import metrics as M
from socialrec.ingest.schema import SPLIT_TEST, Dataset, as_adjacency, is_symmetric
from socialrec.ingest.split import mask_edges  # part of this module's API
from socialrec.retrieve import friends as F

PROTOCOL = "masked-edges-20"
DEFAULT_FRIEND_METRICS = ("recall", "ndcg", "precision", "hit", "mrr")


class FriendScorer(Protocol):
    """What `evaluate_friends` needs: raw scores of every user for each given user."""

    def score(self, users: np.ndarray) -> np.ndarray: ...


def evaluate_friends(
    model: FriendScorer,
    train_adj: sp.spmatrix,
    test_adj: sp.spmatrix,
    ks: Sequence[int] = (10, 20),
    seed: int = 0,
    *,
    metrics: Sequence[str] = DEFAULT_FRIEND_METRICS,
    batch_size: int = 256,
) -> dict[str, float]:
    """Mean metrics of a friend recommender fitted on ``train_adj``, over users with hidden edges.

    Each user ranks every other user except themself and their training friends (row of
    ``train_adj``); ``test_adj`` rows are the hidden edges to find. Adds ``users`` (how many
    were evaluated).
    """
    train = as_adjacency(train_adj)
    truth = as_adjacency(test_adj)
    overlap = train.multiply(truth)
    overlap.eliminate_zeros()
    if overlap.nnz:
        r, c = overlap.nonzero()
        raise LeakageError(f"the hidden edges share {overlap.nnz} edge(s) with training (first: {r[0]} -> {c[0]})")
    n_rel_all = np.diff(truth.indptr)
    users = np.flatnonzero(n_rel_all > 0)
    kmax = max(ks)
    rng = np.random.default_rng(seed)
    tops = np.empty((len(users), kmax), dtype=np.int64)
    for start in range(0, len(users), batch_size):
        batch = users[start:start + batch_size]
        scores = np.asarray(model.score(batch), dtype=np.float32).copy()
        scores[np.arange(len(batch)), batch] = -np.inf
        r, c = train[batch].nonzero()
        scores[r, c] = -np.inf
        tops[start:start + len(batch)] = M.rank_top_k(scores, kmax, rng=rng)
    hits = M.hits_matrix(tops, truth, users)
    n_rel = n_rel_all[users]
    out: dict[str, float] = {}
    for k in ks:
        for name in metrics:
            out[f"{name}@{k}"] = float(np.mean(M.METRICS[name](hits, n_rel, k))) if len(users) else float("nan")
    out["users"] = float(len(users))
    return out


def friend_models() -> dict[str, Callable[[], F.BaseFriendRecommender]]:
    """The friend recommenders `run_friend_evaluation` knows, by name (an explicit table)."""
    return {
        "common-neighbors": F.CommonNeighbors,
        "adamic-adar": F.AdamicAdar,
        "jaccard": F.Jaccard,
        "ppr": F.PersonalizedPageRank,
        "interest": F.InterestSimilarity,
        "pymk": F.LearnedFriendRanker,
    }


def run_friend_evaluation(dataset: Dataset, model_names: Sequence[str], ks: Sequence[int] = (10, 20),
                          seed: int = 0) -> dict[str, Any]:
    """Mask 20% of each user's edges of ``dataset``'s social graph, fit and evaluate each model.

    The users' interactions (all but the dataset's own test rows) are side information for the
    interest-based models; they never contain the hidden edges.
    """
    table = friend_models()
    unknown = [m for m in model_names if m not in table]
    if unknown:
        raise ValueError(f"unknown friend model(s) {unknown}; known: {list(table)}")
    adj = dataset.social_matrix()
    if adj.nnz == 0:
        raise ValueError(f"dataset {dataset.name!r} has no social edges to evaluate friend recommendation on")
    directed = bool(dataset.social_directed) and not is_symmetric(adj)
    train, hidden = mask_edges(adj, 0.2, seed, directed=directed)
    split = dataset.interactions["split"].to_numpy()
    user_items = dataset.user_item_matrix(split != SPLIT_TEST)
    results: dict[str, dict[str, float]] = {}
    for name in model_names:
        model = table[name]()
        start = time.perf_counter()
        model.fit(train, user_items)
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        scores = evaluate_friends(model, train, hidden, ks=ks, seed=seed)
        scores["fit_seconds"] = fit_seconds
        scores["eval_seconds"] = time.perf_counter() - start
        results[name] = scores
    return {
        "dataset": dataset.name,
        "protocol": PROTOCOL,
        "seed": seed,
        "directed": directed,
        "hidden_edges": int(hidden.nnz),
        "train_edges": int(train.nnz),
        "models": results,
    }
