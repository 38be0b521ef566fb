"""Top-k lists: choosing them from a score matrix, matching them against held-out items, and the
two list measures that models use while fitting (NDCG for early stopping, intra-list diversity
for calibrating re-ranking).

A ground module: the layers (retrieve, rank, represent) import it, and so does
`socialrec.evaluate.metrics`, which re-exports these functions beside the other metrics and
documents the conventions (``-1`` is padding and never a hit; ranks are 1-based; RecBole's NDCG).
It imports nothing from socialrec.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["hits_matrix", "intra_list_diversity", "ndcg_at_k", "rank_top_k", "top_k_masked"]

# Bound on the number of elements of the temporary arrays built per chunk.
_CHUNK_ELEMENTS = 4_000_000


# --------------------------------------------------------------------------- ranking / hits


def _score_matrix(scores: np.ndarray, k: int) -> np.ndarray:
    """``scores`` as a 2-D float array (integers become float64), checked together with ``k``."""
    s = np.asarray(scores)
    if s.ndim != 2:
        raise ValueError(f"scores must be 2-D (n_users, n_items), got shape {s.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return s if np.issubdtype(s.dtype, np.floating) else s.astype(np.float64)


def rank_top_k(scores: np.ndarray, k: int, *, rng: np.random.Generator | None = None) -> np.ndarray:
    """Indices of the ``k`` best-scored items per row, best first; ``(n, n_items) -> (n, k)`` int64.

    ``-inf`` (and NaN) means excluded: such items never appear; rows with fewer than ``k``
    allowed items are padded with ``-1``. Ties: with ``rng`` they are broken uniformly at
    random, independently per row (both which tied items make the cut and their order), so a
    held-out item never benefits from its index; with ``rng=None`` the lower item index wins
    (deterministic, for serving). O(n_items) per row (partition, no full sort).
    """
    s = _score_matrix(scores, k)
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


# --------------------------------------------------------------------------- list measures


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


def ndcg_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Binary-relevance NDCG: DCG = sum_hits 1/log2(rank+1); IDCG over min(|relevant|, k) positions."""
    h, n_rel = _prepare(hits, n_relevant, k)
    disc = _discounts(k)
    dcg = h @ disc
    ideal = np.cumsum(disc)[np.minimum(n_rel, k).astype(np.int64) - 1]
    return dcg / ideal


def _first_k(top_items: np.ndarray, k: int) -> np.ndarray:
    top = np.asarray(top_items)
    if top.ndim != 2:
        raise ValueError(f"top_items must be 2-D, got shape {top.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return top[:, :k]


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


# --------------------------------------------------------------------------- top-k with masking, at scale


def _masked_keys(exclude: sp.csr_matrix | None, n: int, n_items: int) -> np.ndarray:
    """Sorted keys ``row * n_items + item`` of the excluded (row, item) pairs."""
    if exclude is None or exclude.nnz == 0:
        return np.empty(0, dtype=np.int64)
    ex = sp.csr_matrix(exclude)
    if ex.shape != (n, n_items):
        raise ValueError(f"exclude must have shape ({n}, {n_items}) (one row per score row), got {ex.shape}")
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(ex.indptr))
    return np.unique(rows * n_items + ex.indices.astype(np.int64))


def _is_in(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    if sorted_keys.size == 0:
        return np.zeros(keys.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.size - 1)
    return sorted_keys[pos] == keys


def _rank_candidates(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n: int, k: int,
                     rng: np.random.Generator | None) -> np.ndarray:
    """`rank_top_k` over per-row candidate lists given as flat (row, column, value) arrays sorted by
    row then column; columns left out count as excluded. Returns (n, k) column indices."""
    counts = np.bincount(rows, minlength=n)
    width = max(int(counts.max()) if n else 0, 1)
    pos = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    dense = np.full((n, width), -np.inf, dtype=vals.dtype if np.issubdtype(vals.dtype, np.floating) else np.float64)
    dense[rows, pos] = vals
    col_of = np.full((n, width), -1, dtype=np.int64)
    col_of[rows, pos] = cols
    top = rank_top_k(dense, k, rng=rng)
    return np.where(top >= 0, np.take_along_axis(col_of, np.maximum(top, 0), axis=1), -1)


def top_k_masked(scores: np.ndarray, k: int, *, exclude: sp.csr_matrix | None = None,
                 rng: np.random.Generator | None = None, sample_every: int = 16) -> np.ndarray:
    """`rank_top_k` of ``scores`` with the stored entries of ``exclude`` (one sparse row per score
    row) excluded, without copying or fully partitioning the score matrix.

    The same lists as masking the excluded entries with ``-inf`` and calling `rank_top_k`, and the
    same tie-breaking: deterministic (lower index first) with ``rng=None``, uniformly random with
    ``rng`` (from another stream than `rank_top_k` over the full rows). How: the k-th best allowed
    score among every ``sample_every``-th column is a lower bound of the row's k-th best allowed
    score, so every item that can make the list (ties included) scores at least that; one pass
    keeps those candidates and `rank_top_k` orders them. A broadcast row (``np.broadcast_to``: every
    user scored alike, e.g. popularity) is ranked once for all rows. ``scores`` is only read.
    """
    s = _score_matrix(scores, k)
    if sample_every < 1:
        raise ValueError(f"sample_every must be >= 1, got {sample_every}")
    n, m = s.shape
    keys = _masked_keys(exclude, n, m)
    if n == 0 or m == 0:
        return np.full((n, k), -1, dtype=np.int64)
    if n > 1 and s.strides[0] == 0:
        return _top_k_shared_row(s[0], n, k, keys, rng)
    n_sample = -(-m // sample_every)
    if sample_every == 1 or n_sample <= 2 * k:
        dense = np.array(s, dtype=s.dtype)  # small catalogue: mask a copy
        dense[np.isnan(dense)] = -np.inf
        if keys.size:
            dense.ravel()[keys] = -np.inf
        return rank_top_k(dense, k, rng=rng)
    # Lower bound per row: the k-th best allowed score among the sampled columns.
    sample = np.array(s[:, ::sample_every], dtype=s.dtype)
    sample[np.isnan(sample)] = -np.inf
    if keys.size:
        r, c = np.divmod(keys, m)
        on = c % sample_every == 0
        sample[r[on], c[on] // sample_every] = -np.inf
    kk = min(k, n_sample)
    bound = np.partition(sample, n_sample - kk, axis=1)[:, n_sample - kk]
    out = np.full((n, k), -1, dtype=np.int64)
    loose = ~(bound > -np.inf)  # fewer than k allowed sampled items: the row is ranked in full
    tight = np.flatnonzero(~loose)
    if tight.size:
        part = s if tight.size == n else s[tight]  # no copy in the usual case
        rows, cols = np.nonzero(part >= bound[tight, None])
        rows = tight[rows]
        keep = ~_is_in(rows * m + cols, keys)
        rows, cols = rows[keep], cols[keep]
        out[tight] = _rank_candidates(np.searchsorted(tight, rows), cols, s[rows, cols], len(tight), k, rng)
    for row in np.flatnonzero(loose):
        dense = np.array(s[row:row + 1], dtype=s.dtype)
        dense[np.isnan(dense)] = -np.inf
        lo, hi = np.searchsorted(keys, [row * m, (row + 1) * m])
        dense[0, keys[lo:hi] - row * m] = -np.inf
        out[row] = rank_top_k(dense, k, rng=rng)[0]
    return out


def _top_k_shared_row(row: np.ndarray, n: int, k: int, keys: np.ndarray, rng: np.random.Generator | None
                      ) -> np.ndarray:
    """`top_k_masked` when every row is ``row``: only items scoring at least the
    (k + most excluded in a row)-th best can make any list, ties included."""
    m = row.shape[0]
    r = np.where(np.isnan(row), -np.inf, row)
    most = int(np.bincount(keys // m, minlength=n).max()) if keys.size else 0
    depth = min(m, k + most)
    bound = np.partition(r, m - depth)[m - depth]
    cand = np.flatnonzero(r >= bound)
    sub = np.broadcast_to(r[cand], (n, len(cand))).copy()
    if keys.size:
        kr, kc = np.divmod(keys, m)
        pos = np.searchsorted(cand, kc)
        hit = (pos < len(cand)) & (cand[np.minimum(pos, len(cand) - 1)] == kc)
        sub[kr[hit], pos[hit]] = -np.inf
    top = rank_top_k(sub, k, rng=rng)
    return np.where(top >= 0, cand[np.maximum(top, 0)], -1)
