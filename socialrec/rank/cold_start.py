"""Short histories: how far the hybrid leans on popularity for a user who has few interactions.

The hybrid's ranker learns from users with their whole training history (their validation or
held-out items are the labels). A user who has just arrived, with no items or a handful folded in
online, is outside what it saw: on MovieLens-100k's cold users (`--protocol cold-user`) it
ranked far below plain popularity at every history length measured (0 to 5 items). Rather than
guess a threshold, `calibrate` measures it during `fit`: users with labels are given the first
``n`` of their training items only (a copy of the fitted model folds them in, exactly as a new
user is folded in online), and for each history length ``n`` in `COLD_HISTORIES` the prior weight
``w`` in `PRIOR_WEIGHTS` whose blend ranks their labels best (NDCG@10) is kept (the smallest
weight within 1% of the best one, so that noise does not move the ranker's order):

    blended(i) = (1 - w) / (RRF_OFFSET + rank_ranker(i)) + w / (RRF_OFFSET + rank_popularity(i))

(weighted reciprocal-rank fusion, ranks from 1 among the user's candidates; w = 0 is the ranker
alone, w = 1 popularity alone). The labels are items the fitted channels never saw and the rest
of each user's training items are masked, so nothing the model learnt from the user is counted
as a hit; the model's item side did see the user's full history, which is the simulation's one
difference from a truly new user. A user with ``n`` items gets the weight of the largest
measured length <= ``n``; longer histories than the last measured length get 0 (the ranker's
own ground: it learnt from full histories).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from socialrec.topk import hits_matrix, rank_top_k
from socialrec.topk import ndcg_at_k as topk_ndcg

# History lengths measured (a user's weight is that of the largest one <= their item count).
COLD_HISTORIES = (0, 1, 2, 3, 5, 8, 13, 21, 34)
PRIOR_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
RRF_OFFSET = 10.0
# Relative NDCG@10 within which a smaller prior weight is preferred to the best one.
TOLERANCE = 0.01
# Fewer simulated users than this at a history length: it keeps the previous length's weight.
MIN_USERS = 30


@dataclass(frozen=True)
class ColdStartBlend:
    """Prior weight per history length (``histories`` ascending, ``weights`` beside them) and
    each item's position in the popularity order (``prior_rank``, 1 = most popular).
    ``evidence``: per measured length, the simulated users and each weight's NDCG@10."""

    histories: tuple[int, ...]
    weights: tuple[float, ...]
    prior_rank: np.ndarray
    evidence: dict[int, dict[str, object]] = field(default_factory=dict)

    def weight_for(self, lengths: np.ndarray) -> np.ndarray:
        """The prior weight of users with these history lengths."""
        lengths = np.asarray(lengths, dtype=np.int64)
        out = np.zeros(len(lengths))
        if not self.histories:
            return out
        pos = np.searchsorted(np.asarray(self.histories), lengths, side="right") - 1
        inside = (pos >= 0) & (lengths <= self.histories[-1])
        out[inside] = np.asarray(self.weights)[pos[inside]]
        return out

    def blend(self, items: np.ndarray, scores: np.ndarray, w: np.ndarray) -> np.ndarray:
        """``scores`` (n, m) of candidate ``items`` (n, m; -1 pads, score -inf) re-scored for the
        rows whose prior weight ``w`` (`weight_for`) is above 0; other rows are returned unchanged."""
        out = np.array(scores, dtype=np.float32, copy=True)
        for weight in np.unique(w[w > 0]):
            rows = np.flatnonzero(w == weight)
            out[rows] = blended_scores(items[rows], scores[rows], self.prior_rank, float(weight))
        return out

    def summary(self) -> dict[str, object]:
        return {"histories": list(self.histories), "weights": list(self.weights),
                "evidence": {str(k): v for k, v in self.evidence.items()}}


def popularity_rank(user_items: sp.csr_matrix) -> np.ndarray:
    """Each item's position (1 = most interactions; ties by index) in the training popularity."""
    counts = np.diff(sp.csc_matrix(user_items).indptr)
    order = np.argsort(-counts, kind="stable")
    rank = np.empty(len(counts), dtype=np.float64)
    rank[order] = np.arange(1, len(counts) + 1)
    return rank


def blended_scores(items: np.ndarray, scores: np.ndarray, prior_rank: np.ndarray, weight: float) -> np.ndarray:
    """Candidates re-scored by weighted reciprocal-rank fusion of the ranker's order and the
    popularity order (see the module docstring), both counted from 1 among each row's candidates
    (ties in the order given); ``items`` and ``scores`` are one row (m,) or rows (n, m), padding
    (-1 items, -inf scores) stays -inf."""
    items, scores = np.asarray(items), np.asarray(scores, dtype=np.float32)
    if items.ndim == 1:
        return blended_scores(items[None, :], scores[None, :], prior_rank, weight)[0]
    ok = (items >= 0) & np.isfinite(scores)
    steps = np.broadcast_to(np.arange(1, items.shape[1] + 1, dtype=np.float64), items.shape)
    own = np.empty(items.shape)
    np.put_along_axis(own, np.argsort(np.where(ok, -scores, np.inf), axis=1, kind="stable"), steps, axis=1)
    prior = np.empty(items.shape)
    by_prior = np.where(ok, prior_rank[np.maximum(items, 0)], np.inf)
    np.put_along_axis(prior, np.argsort(by_prior, axis=1, kind="stable"), steps, axis=1)
    fused = (1.0 - weight) / (RRF_OFFSET + own) + weight / (RRF_OFFSET + prior)
    return np.where(ok, fused, -np.inf).astype(np.float32)


def candidate_ndcg(items: np.ndarray, scores: np.ndarray, truth: sp.csr_matrix, seen: sp.csr_matrix,
                   k: int = 10) -> np.ndarray:
    """Per-row NDCG@k of candidate lists (``items`` (n, m), -1 pads; ``scores`` -inf on padding)
    against ``truth`` rows (every row holds at least one item), ``seen`` items masked."""
    rows = np.arange(len(items))
    masked = np.where(hits_matrix(items, seen, rows), -np.inf, scores)
    # Candidates in item order, so that ties go to the lower item index, as served lists break them.
    order = np.argsort(np.where(items >= 0, items, np.iinfo(np.int64).max), axis=1, kind="stable")
    items, masked = np.take_along_axis(items, order, axis=1), np.take_along_axis(masked, order, axis=1)
    pos = rank_top_k(masked, k)
    top = np.where(pos >= 0, np.take_along_axis(items, np.maximum(pos, 0), axis=1), -1)
    return topk_ndcg(hits_matrix(top, truth, rows), np.diff(sp.csr_matrix(truth).indptr), min(k, top.shape[1]))


def calibrate(fold_in: Callable[[np.ndarray, sp.csr_matrix], None],
              ranked: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
              rows: sp.csr_matrix, position: np.ndarray, labels: sp.csr_matrix | None, users: np.ndarray,
              prior_rank: np.ndarray, histories: tuple[int, ...] = COLD_HISTORIES,
              weights: tuple[float, ...] = PRIOR_WEIGHTS, k: int = 10) -> ColdStartBlend:
    """Choose the prior weight per history length on simulated short histories.

    fold_in(users, rows): replaces these users' histories in a copy of the fitted model.
    ranked(users): that copy's candidates (n, m; -1 pads) and ranker scores (-inf on padding).
    rows: the training rows the model was fitted on; ``position``: each stored entry's position
    from its user's oldest item (0 first). labels: held-out items of ``users``, which the model's
    channels did not see; their training items other than the revealed ones are masked. None:
    ``rows`` are items the model never saw (a cold-user split's validation users), and each
    user's items after the revealed ones are the truth, as the cold-user protocol counts it.
    """
    rows = sp.csr_matrix(rows)
    counts = np.diff(rows.indptr)
    # Each stored entry's age rank from 1 (oldest), in rows' own structure: rows[users] keeps it.
    age = rows.copy()
    age.data = np.asarray(position, dtype=np.float64) + 1.0
    chosen: list[float] = []
    measured: list[int] = []
    evidence: dict[int, dict[str, object]] = {}
    last = 0.0
    for n in sorted(histories):
        sim = users[counts[users] > n]
        if len(sim) < MIN_USERS:
            measured.append(n)
            chosen.append(last)
            continue
        revealed = age[sim]
        revealed.data = (revealed.data <= n).astype(np.float32)
        revealed.eliminate_zeros()
        fold_in(sim, revealed)
        items, scores = ranked(sim)
        if labels is None:
            truth = sp.csr_matrix(rows[sim] - rows[sim].multiply(revealed > 0))
            truth.eliminate_zeros()
            seen = revealed
        else:
            truth, seen = sp.csr_matrix(labels[sim]), rows[sim]
        ndcg = {}
        for w in weights:
            s = scores if w == 0 else blended_scores(items, scores, prior_rank, w)
            ndcg[w] = float(candidate_ndcg(items, s, truth, seen, k).mean())
        # The least change to the ranker's order that scores within TOLERANCE of the best: a
        # weight that wins by less than that is noise on a few hundred users.
        top = max(ndcg.values())
        last = float(min(w for w in weights if ndcg[w] >= (1.0 - TOLERANCE) * top))
        measured.append(n)
        chosen.append(last)
        evidence[n] = {"n_users": int(len(sim)), f"ndcg@{k}": {str(w): round(v, 5) for w, v in ndcg.items()}}
    return ColdStartBlend(tuple(measured), tuple(chosen), prior_rank, evidence)
