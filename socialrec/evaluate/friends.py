"""Evaluation of friend recommenders: hide a share of each user's edges, rank every non-friend.

Protocol "masked-edges-20" (`mask_edges`, `evaluate_friends`):

- Per user, ``round(share * degree)`` edges are hidden (round half up), but never all of them:
  a user keeps at least one training edge, so users with one edge hide nothing and users with
  two hide nothing at share 0.2 (round(0.4) = 0).
- Directed graphs: each user's *outgoing* edges are sampled, and the task is to predict whom the
  user will follow / trust. Hiding u -> v keeps v -> u when it exists (reciprocity is a fair signal).
- Symmetric graphs: a friendship is hidden in both directions together. Pairs are visited in a
  seeded random order and a pair is hidden only while *both* endpoints are under their quota, so
  no user loses more than their share; the realised share is a little under ``share`` overall.
- A graph stored as directed but holding every edge in both directions (Ciao as split by
  RecDiff) is evaluated as symmetric: hiding u -> v while training on v -> u would give the
  answer away.
- Every user with at least one hidden edge is evaluated; all users except the user themself and
  their training friends are candidates; ties are broken at random (seeded).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp

from socialrec.errors import LeakageError
from socialrec.evaluate import metrics as M
from socialrec.ingest.schema import SPLIT_TEST, Dataset
from socialrec.retrieve import friends as F
from socialrec.retrieve.friends import as_adjacency

PROTOCOL = "masked-edges-20"
DEFAULT_FRIEND_METRICS = ("recall", "ndcg", "precision", "hit", "mrr")


class FriendScorer(Protocol):
    """What `evaluate_friends` needs: raw scores of every user for each given user."""

    def score(self, users: np.ndarray) -> np.ndarray: ...


def _quota(degree: np.ndarray, share: float) -> np.ndarray:
    # Round half up (not numpy's half-to-even), and always keep one edge.
    q = np.floor(share * degree + 0.5).astype(np.int64)
    return np.minimum(q, np.maximum(degree - 1, 0))


def mask_edges(adj: sp.spmatrix, share: float = 0.2, seed: int = 0, *,
               directed: bool | None = None) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Split an adjacency into (train, hidden) 0/1 float32 CSR matrices; see the module docstring.

    ``directed=None`` treats the graph as directed unless it is symmetric; ``directed=False``
    symmetrises the graph first. A symmetric graph yields symmetric train and hidden matrices.
    """
    if not 0 <= share < 1:
        raise ValueError(f"share must be in [0, 1), got {share}")
    a = as_adjacency(adj)
    n = a.shape[0]
    if directed is None:
        directed = not F.is_symmetric(a)
    rng = np.random.default_rng(seed)
    if directed:
        coo = a.tocoo()
        rows, cols = coo.row.astype(np.int64), coo.col.astype(np.int64)
        order = np.lexsort((rng.random(len(rows)), rows))  # shuffled within each user
        sorted_rows = rows[order]
        deg = np.bincount(rows, minlength=n)
        starts = np.r_[0, np.cumsum(deg)[:-1]]
        pos = np.arange(len(order)) - starts[sorted_rows]
        hide = np.zeros(len(rows), dtype=bool)
        hide[order] = pos < _quota(deg, share)[sorted_rows]
        hr, hc = rows[hide], cols[hide]
    else:
        a = a.maximum(a.T).tocsr()
        upper = sp.triu(a, k=1).tocoo()
        pu, pv = upper.row.astype(np.int64), upper.col.astype(np.int64)
        quota = _quota(np.diff(a.indptr), share)
        used = np.zeros(n, dtype=np.int64)
        hidden_pairs = []
        # A greedy pass over pairs in random order: sequential by nature, O(edges) cheap steps.
        for p in rng.permutation(len(pu)).tolist():
            u, v = pu[p], pv[p]
            if used[u] < quota[u] and used[v] < quota[v]:
                used[u] += 1
                used[v] += 1
                hidden_pairs.append(p)
        idx = np.asarray(hidden_pairs, dtype=np.int64)
        hr = np.r_[pu[idx], pv[idx]]
        hc = np.r_[pv[idx], pu[idx]]
    hidden = sp.csr_matrix((np.ones(len(hr), dtype=np.float32), (hr, hc)), shape=(n, n))
    train = (a - a.multiply(hidden)).tocsr()
    train.eliminate_zeros()
    return train, hidden


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
    directed = bool(dataset.social_directed) and not F.is_symmetric(adj)
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
