"""Top-K recommendation metrics: pure, vectorised numpy functions.

Conventions (they matter when comparing with published numbers):

* Ranks are 1-based; ``top_items`` rows are item indices best first, ``-1`` is padding
  ("no item") and is never a hit, never covered, never counted as exposure.
* Accuracy metrics take ``hits`` (bool ``(n, K)``, from :func:`hits_matrix`), ``n_relevant``
  (number of held-out items per user, must be ``>= 1``) and ``k`` (only the first ``k``
  columns are used). They return one float64 per user; average them yourself.
* ``precision@k`` = hits / k (the denominator is ``k`` even when the list is padded).
* ``recall@k`` = hits / |relevant| (RecBole, Cornac convention; *not* hits / min(|relevant|, k)).
* ``ndcg@k``: binary relevance, discount ``1 / log2(rank + 1)``, IDCG over the
  ``min(|relevant|, k)`` ideal positions (RecBole convention).
* ``map@k``: sum over hit ranks of precision@rank, divided by ``min(|relevant|, k)``
  (RecBole convention).
* ``mrr@k``: 1 / rank of the first hit within k, 0 if none. ``hit@k``: 1 if any hit within k.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

__all__ = [
    "METRICS",
    "bootstrap_ci",
    "catalog_coverage",
    "f1_at_k",
    "gini_index",
    "hit_rate_at_k",
    "hits_matrix",
    "intra_list_diversity",
    "map_at_k",
    "mrr_at_k",
    "ndcg_at_k",
    "novelty",
    "precision_at_k",
    "rank_top_k",
    "recall_at_k",
]

# Bound on the number of elements of the temporary arrays built per chunk.
_CHUNK_ELEMENTS = 4_000_000


# --------------------------------------------------------------------------- ranking / hits


def rank_top_k(scores: np.ndarray, k: int, *, rng: np.random.Generator | None = None) -> np.ndarray:
    """Indices of the ``k`` best-scored items per row, best first; ``(n, n_items) -> (n, k)`` int64.

    ``-inf`` (and NaN) means excluded: such items never appear; rows with fewer than ``k``
    allowed items are padded with ``-1``. Ties: with ``rng`` they are broken uniformly at
    random, independently per row (both which tied items make the cut and their order), so a
    held-out item never benefits from its index; with ``rng=None`` the lower item index wins
    (deterministic, for serving). O(n_items) per row (partition, no full sort).
    """
    s = np.asarray(scores)
    if s.ndim != 2:
        raise ValueError(f"scores must be 2-D (n_users, n_items), got shape {s.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if not np.issubdtype(s.dtype, np.floating):
        s = s.astype(np.float64)
    n, m = s.shape
    out = np.full((n, k), -1, dtype=np.int64)
    if n == 0 or m == 0:
        return out
    nan = np.isnan(s)
    if nan.any():
        s = np.where(nan, -np.inf, s)
    kk = min(k, m)
    # t = kk-th largest score per row: everything above is in, ties at t fill the remaining slots.
    t = np.partition(s, m - kk, axis=1)[:, m - kk]
    gt = s > t[:, None]
    eq = s == t[:, None]
    need = kk - gt.sum(axis=1)  # >= 1 by construction
    n_eq = eq.sum(axis=1)
    ambiguous = n_eq > need
    if ambiguous.any():
        # Rows whose threshold is -inf only pick padding among the ties: any choice will do.
        rand_rows = ambiguous & np.isfinite(t) if rng is not None else np.zeros(n, dtype=bool)
        det_rows = np.flatnonzero(ambiguous & ~rand_rows)
        if det_rows.size:  # lowest indices among ties
            sub = eq[det_rows]
            csum = np.cumsum(sub, axis=1, dtype=np.int32)
            eq[det_rows] = sub & (csum <= need[det_rows, None])
        rows = np.flatnonzero(rand_rows)
        if rows.size:  # a uniformly random subset of `need` ties per row
            assert rng is not None
            sub = eq[rows]
            keys = rng.random(sub.shape)
            keys[~sub] = 2.0  # non-ties sort after every tie
            max_need = int(need[rows].max())
            cand = np.argpartition(keys, max_need - 1, axis=1)[:, :max_need]
            order = np.argsort(np.take_along_axis(keys, cand, axis=1), axis=1, kind="stable")
            cand = np.take_along_axis(cand, order, axis=1)
            take = np.arange(max_need)[None, :] < need[rows, None]
            chosen = np.zeros_like(sub)
            r_idx = np.broadcast_to(np.arange(rows.size)[:, None], cand.shape)
            chosen[r_idx[take], cand[take]] = True
            eq[rows] = chosen
    selected = gt | eq  # exactly kk per row
    cols = np.nonzero(selected)[1].reshape(n, kk)  # ascending item index within each row
    vals = np.take_along_axis(s, cols, axis=1)
    if rng is None:
        order = np.argsort(-vals, axis=1, kind="stable")  # ties: lower index first
    else:
        order = np.lexsort((rng.random(vals.shape), -vals), axis=-1)  # ties: random order
    top = np.take_along_axis(cols, order, axis=1)
    top[np.take_along_axis(vals, order, axis=1) == -np.inf] = -1
    out[:, :kk] = top
    return out


def hits_matrix(top_items: np.ndarray, truth: sp.csr_matrix, users: np.ndarray) -> np.ndarray:
    """Bool ``(n, K)``: whether ``top_items[u, r]`` is a held-out item of user ``users[u]``.

    ``truth`` is the ``(n_users_total, n_items)`` sparse matrix of held-out items (stored
    non-zeros count); ``-1`` padding is never a hit. Vectorised: the rows of ``truth`` are
    flattened to sorted keys ``row * n_items + item`` and the lists looked up with searchsorted.
    """
    top = np.asarray(top_items)
    users = np.asarray(users)
    if top.ndim != 2:
        raise ValueError(f"top_items must be 2-D, got shape {top.shape}")
    if users.shape != (top.shape[0],):
        raise ValueError(f"users has shape {users.shape}, expected ({top.shape[0]},)")
    n, n_items = top.shape[0], truth.shape[1]
    if top.size and (top.min() < -1 or top.max() >= n_items):
        raise ValueError(f"top_items must be item indices in [0, {n_items}) or -1 padding")
    sub = sp.csr_matrix(truth[users], copy=True)
    sub.eliminate_zeros()
    sub.sum_duplicates()  # also sorts the indices within each row
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(sub.indptr))
    keys = rows * n_items + sub.indices.astype(np.int64)
    valid = top >= 0
    if keys.size == 0:
        return np.zeros(top.shape, dtype=bool)
    query = np.arange(n, dtype=np.int64)[:, None] * n_items + np.where(valid, top, 0).astype(np.int64)
    pos = np.minimum(np.searchsorted(keys, query), keys.size - 1)
    return valid & (keys[pos] == query)


# --------------------------------------------------------------------------- accuracy


def _prepare(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    h = np.asarray(hits, dtype=bool)
    if h.ndim != 2:
        raise ValueError(f"hits must be 2-D (n, K), got shape {h.shape}")
    if not 1 <= k <= h.shape[1]:
        raise ValueError(f"k must be in [1, {h.shape[1]}] (columns of hits), got {k}")
    n_rel = np.asarray(n_relevant)
    if n_rel.shape != (h.shape[0],):
        raise ValueError(f"n_relevant has shape {n_rel.shape}, expected ({h.shape[0]},)")
    if n_rel.size and n_rel.min() <= 0:
        raise ValueError("n_relevant must be >= 1 for every user: leave users without held-out items out")
    return h[:, :k], n_rel.astype(np.float64)


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def precision_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """hits in the first k / k."""
    h, _ = _prepare(hits, n_relevant, k)
    return h.sum(axis=1) / float(k)


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """hits in the first k / |relevant| (RecBole: the denominator is not capped at k)."""
    h, n_rel = _prepare(hits, n_relevant, k)
    return h.sum(axis=1) / n_rel


def f1_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Harmonic mean of precision@k and recall@k (0 when both are 0)."""
    p = precision_at_k(hits, n_relevant, k)
    r = recall_at_k(hits, n_relevant, k)
    denom = p + r
    return np.divide(2.0 * p * r, denom, out=np.zeros_like(denom), where=denom > 0)


def ndcg_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Binary-relevance NDCG: DCG = sum_hits 1/log2(rank+1); IDCG over min(|relevant|, k) positions."""
    h, n_rel = _prepare(hits, n_relevant, k)
    disc = _discounts(k)
    dcg = h @ disc
    ideal = np.cumsum(disc)[np.minimum(n_rel, k).astype(np.int64) - 1]
    return dcg / ideal


def mrr_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """1 / rank of the first hit within k; 0 if none."""
    h, _ = _prepare(hits, n_relevant, k)
    first = np.argmax(h, axis=1)
    return np.where(h.any(axis=1), 1.0 / (first + 1.0), 0.0)


def hit_rate_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """1.0 if any of the first k items is relevant, else 0.0."""
    h, _ = _prepare(hits, n_relevant, k)
    return h.any(axis=1).astype(np.float64)


def map_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Average precision truncated at k: sum_{hit ranks r<=k} precision@r / min(|relevant|, k) (RecBole)."""
    h, n_rel = _prepare(hits, n_relevant, k)
    prec = np.cumsum(h, axis=1) / np.arange(1, k + 1, dtype=np.float64)
    return (prec * h).sum(axis=1) / np.minimum(n_rel, k)


METRICS: dict[str, Callable[[np.ndarray, np.ndarray, int], np.ndarray]] = {
    "precision": precision_at_k,
    "recall": recall_at_k,
    "f1": f1_at_k,
    "ndcg": ndcg_at_k,
    "mrr": mrr_at_k,
    "hit": hit_rate_at_k,
    "map": map_at_k,
}


# --------------------------------------------------------------------------- beyond accuracy


def _first_k(top_items: np.ndarray, k: int) -> np.ndarray:
    top = np.asarray(top_items)
    if top.ndim != 2:
        raise ValueError(f"top_items must be 2-D, got shape {top.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return top[:, :k]


def _exposure(top_items: np.ndarray, n_items: int, k: int) -> np.ndarray:
    if n_items < 1:
        raise ValueError(f"n_items must be >= 1, got {n_items}")
    top = _first_k(top_items, k)
    items = top[top >= 0]
    if items.size and items.max() >= n_items:
        raise ValueError(f"top_items holds item {items.max()} >= n_items={n_items}")
    return np.bincount(items, minlength=n_items)


def catalog_coverage(top_items: np.ndarray, n_items: int, k: int) -> float:
    """Share of the n_items catalog that appears in at least one list (first k, -1 ignored)."""
    return float(np.count_nonzero(_exposure(top_items, n_items, k)) / n_items)


def gini_index(top_items: np.ndarray, n_items: int, k: int) -> float:
    """Gini coefficient of exposure counts over all n_items (never-recommended items count as 0).

    G = sum_i (2i - n - 1) x_(i) / (n * sum x), x sorted ascending, i = 1..n. 0 = every item
    equally exposed; (n - 1)/n = all exposure on one item. NaN if nothing is recommended.
    """
    x = np.sort(_exposure(top_items, n_items, k)).astype(np.float64)
    total = x.sum()
    if total == 0:
        return float("nan")
    n = x.size
    coef = 2.0 * np.arange(1, n + 1) - n - 1
    return float(coef @ x / (n * total))


def intra_list_diversity(
    top_items: np.ndarray,
    k: int,
    *,
    item_vectors: np.ndarray | None = None,
    item_categories: np.ndarray | None = None,
) -> np.ndarray:
    """Per user, mean pairwise dissimilarity of the first k items; ``(n,)`` float64.

    With ``item_vectors``: 1 - cosine similarity (pairs with a zero vector are left out).
    With ``item_categories`` (int, -1 = unknown): share of pairs in different categories,
    pairs with an unknown category left out. Padding (-1) is left out; NaN where no pair is
    left. Exactly one of the two must be given.
    """
    if (item_vectors is None) == (item_categories is None):
        raise ValueError("give exactly one of item_vectors and item_categories")
    top = _first_k(top_items, k)
    n, kk = top.shape
    out = np.full(n, np.nan)
    if n == 0 or kk < 2:
        return out
    upper = np.triu(np.ones((kk, kk), dtype=bool), 1)
    if item_vectors is not None:
        vecs = np.asarray(item_vectors, dtype=np.float64)
        norms = np.linalg.norm(vecs, axis=1)
        unit = np.divide(vecs, norms[:, None], out=np.zeros_like(vecs), where=norms[:, None] > 0)
        known = norms > 0
        width = max(kk, vecs.shape[1])
    else:
        cats = np.asarray(item_categories)
        known = cats >= 0
        width = kk
    chunk = max(1, _CHUNK_ELEMENTS // (kk * width))
    for start in range(0, n, chunk):
        t = top[start:start + chunk]
        safe = np.where(t >= 0, t, 0)
        ok = (t >= 0) & known[safe]
        pairs = upper & ok[:, :, None] & ok[:, None, :]
        if item_vectors is not None:
            x = unit[safe]
            dis = 1.0 - x @ np.swapaxes(x, 1, 2)
        else:
            c = cats[safe]
            dis = (c[:, :, None] != c[:, None, :]).astype(np.float64)
        count = pairs.sum(axis=(1, 2))
        total = np.where(pairs, dis, 0.0).sum(axis=(1, 2))
        out[start:start + chunk] = np.divide(total, count, out=np.full(len(t), np.nan), where=count > 0)
    return out


def novelty(top_items: np.ndarray, item_popularity: np.ndarray, n_users: int, k: int) -> np.ndarray:
    """Per user, mean self-information -log2(pop_i / n_users) of the first k items; ``(n,)``.

    ``pop_i`` = number of training users who interacted with item i; items with pop 0 are
    given pop 1 (otherwise the information is infinite). Padding is ignored; NaN for an
    empty list.
    """
    if n_users < 1:
        raise ValueError(f"n_users must be >= 1, got {n_users}")
    top = _first_k(top_items, k)
    pop = np.maximum(np.asarray(item_popularity, dtype=np.float64), 1.0)
    info = -np.log2(pop / n_users)
    valid = top >= 0
    per_item = np.where(valid, info[np.where(valid, top, 0)], 0.0)
    count = valid.sum(axis=1)
    return np.divide(per_item.sum(axis=1), count, out=np.full(top.shape[0], np.nan), where=count > 0)


# --------------------------------------------------------------------------- uncertainty


def bootstrap_ci(
    values: np.ndarray, *, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, low, high): the mean of ``values`` and a percentile-bootstrap (1 - alpha) interval.

    Resamples users with replacement ``n_boot`` times, in chunks of index matrices of bounded
    size; deterministic for a given seed.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    rng = np.random.default_rng(seed)
    n = v.size
    means = np.empty(n_boot)
    chunk = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        means[start:start + b] = v[rng.integers(0, n, size=(b, n))].mean(axis=1)
    low, high = np.percentile(means, [100.0 * alpha / 2.0, 100.0 * (1.0 - alpha / 2.0)])
    return float(v.mean()), float(low), float(high)
