"""Shared pieces of folding users into fitted recommenders (`BaseRecommender.partial_fit_users`).

A fold-in recomputes the state of some users against the fitted, fixed item side. The models
need three kinds of help: growing their per-user arrays when new users arrive (`grow_rows`,
`grow_square`), reading the social rows a caller passes (`social_rows`), and solving one user's
vector against fixed item factors (`solve_bpr_users` for BPR-trained factors; `aggregate_users`
for the propagation models, whose user vector is an aggregate of their items' vectors).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from socialrec.sparse import replace_rows


def grow_rows(array: np.ndarray, n: int, fill: float = 0.0) -> np.ndarray:
    """``array`` with rows appended (filled with ``fill``) up to ``n`` rows; itself when it has
    them already."""
    if array.shape[0] >= n:
        return array
    pad = np.full((n - array.shape[0], *array.shape[1:]), fill, dtype=array.dtype)
    return np.concatenate([array, pad], axis=0)


def rows_of(matrix: sp.spmatrix, rows: np.ndarray) -> sp.csr_matrix:
    """``matrix[rows]``, with empty rows for indices past its end (users new to the model)."""
    m = sp.csr_matrix(matrix)
    n = int(rows.max()) + 1 if len(rows) else 0
    if n > m.shape[0]:
        m = sp.csr_matrix((m.data, m.indices, np.r_[m.indptr, np.full(n - m.shape[0], m.indptr[-1])]),
                          shape=(n, m.shape[1]))
    return m[rows]


def grow_square(matrix: sp.spmatrix, n: int) -> sp.csr_matrix:
    """A square sparse (users x users) matrix padded with empty rows and columns to ``n`` x ``n``."""
    m = sp.csr_matrix(matrix)
    if m.shape[0] >= n:
        return m
    m = sp.csr_matrix((m.data, m.indices, np.r_[m.indptr, np.full(n - m.shape[0], m.indptr[-1])]),
                      shape=(n, m.shape[1]))
    m.resize((n, n))
    return m


def grow_columns(matrix: sp.spmatrix, n: int) -> sp.csr_matrix:
    """A sparse matrix with empty columns appended up to ``n`` columns (new items)."""
    m = sp.csr_matrix(matrix)
    if m.shape[1] < n:
        m = sp.csr_matrix((m.data, m.indices, m.indptr), shape=(m.shape[0], n))
    return m


def social_rows(social: sp.csr_matrix, n_users: int) -> sp.csr_matrix:
    """The social rows given to `partial_fit_users`, binary, over ``n_users`` columns (a row that
    is narrower, from before new users arrived, is padded; a user index beyond the model's users
    is refused), the self-loops dropped as ingest drops them."""
    s = sp.csr_matrix(social, dtype=np.float32)
    if s.shape[1] > n_users:
        raise ValueError(f"social rows have {s.shape[1]} columns but the model has {n_users} users; fold in "
                         "the friends first (or in the same call), then their edges")
    s = grow_columns(s, n_users)
    s.data[:] = 1.0
    s.eliminate_zeros()
    return s


def replace_social_rows(social: sp.csr_matrix, users: np.ndarray, rows: sp.csr_matrix | None) -> sp.csr_matrix:
    """The stored (users x users) social matrix grown to the model's users and, when ``rows`` is
    given, with these users' rows replaced (their out-edges; other users' rows are kept, so an
    edge another user holds to them stays until that user is folded in or the model refitted).
    Self-loops are dropped."""
    n = max(social.shape[0], int(users.max()) + 1 if len(users) else 0)
    if rows is not None:
        n = max(n, rows.shape[1])
    out = grow_square(social, n)
    if rows is None:
        return out
    r = sp.csr_matrix(rows).tolil()
    for j, u in enumerate(users):
        if u < r.shape[1]:
            r[j, u] = 0.0
    return replace_rows(out, users, grow_columns(sp.csr_matrix(r), n))


def undirected_rows(social: sp.csr_matrix, users: np.ndarray) -> sp.csr_matrix:
    """Each user's friends as a symmetric model reads them: out-edges (their row) and in-edges
    (their column), binary."""
    s = sp.csr_matrix(social)
    rows = s[users] + s.T.tocsr()[users]
    rows = sp.csr_matrix(rows, dtype=np.float32)
    rows.data[:] = 1.0
    return rows


def solve_bpr_users(item_factors: np.ndarray, item_bias: np.ndarray | None, rows: sp.csr_matrix, *,
                    regularization: float, prior: np.ndarray | None = None, prior_weight: float = 0.0,
                    max_negatives: int = 2048, seed: int = 0, tol: float = 1e-8, max_steps: int = 50) -> np.ndarray:
    """Each row's user vector minimising the BPR objective with the item side fixed:

        mean over (positive i, negative j) of log(1 + exp(-(s_i - s_j)))
          + regularization / 2 * |u|^2 + prior_weight * |u - prior|^2,  s = item_factors @ u + item_bias

    which is the stationary point of BPR's per-sample SGD (a gradient step on one sampled pair
    plus ``regularization * u``). The negatives are every item the user did not interact with,
    or ``max_negatives`` of them sampled with a seed per row for large catalogs. The objective
    is strictly convex in u: Newton's method with a backtracking line search, from the prior
    (zero without one), until the Newton decrement is below ``tol`` (a handful of steps).
    Returns float32 (n_rows, n_factors); an empty row gives the prior."""
    rows = sp.csr_matrix(rows)
    n_items, dim = item_factors.shape
    bias = np.zeros(n_items) if item_bias is None else np.asarray(item_bias)
    out = np.zeros((rows.shape[0], dim), dtype=np.float32)
    ridge = (regularization + 2.0 * prior_weight) * np.eye(dim)
    for r in range(rows.shape[0]):
        pos = np.unique(rows.indices[rows.indptr[r]:rows.indptr[r + 1]])
        target = np.zeros(dim) if prior is None else np.asarray(prior[r], dtype=np.float64)
        neg = np.setdiff1d(np.arange(n_items), pos, assume_unique=True)
        if len(pos) == 0 or len(neg) == 0:
            out[r] = target
            continue
        if len(neg) > max_negatives:
            neg = np.sort(np.random.default_rng([seed, r]).choice(neg, max_negatives, replace=False))
        vp, vn = item_factors[pos].astype(np.float64), item_factors[neg].astype(np.float64)
        bp, bn = bias[pos].astype(np.float64), bias[neg].astype(np.float64)
        scale = 1.0 / (len(pos) * len(neg))

        def loss(u: np.ndarray) -> tuple[float, np.ndarray]:
            d = (vn @ u + bn)[None, :] - (vp @ u + bp)[:, None]  # s_j - s_i, (pos, neg)
            gap = u - target
            return (float(np.logaddexp(0.0, d).sum() * scale + 0.5 * regularization * u @ u
                          + prior_weight * gap @ gap), d)

        u = target.copy()
        value, d = loss(u)
        for _ in range(max_steps):
            sig = expit(d)
            g = sig * scale
            w = g * (1.0 - sig)  # the loss's second derivative per pair (times scale)
            grad = vn.T @ g.sum(axis=0) - vp.T @ g.sum(axis=1) + regularization * u + 2.0 * prior_weight * (u - target)
            cross = vp.T @ w @ vn
            hess = ((vn.T * w.sum(axis=0)) @ vn + (vp.T * w.sum(axis=1)) @ vp - cross - cross.T) + ridge
            step = np.linalg.solve(hess, grad)
            decrement = float(grad @ step)
            if decrement / 2.0 <= tol:
                break
            t = 1.0
            while True:  # backtracking (Armijo): the objective is convex, so this ends
                new_value, new_d = loss(u - t * step)
                if new_value <= value - 0.25 * t * decrement or t < 1e-8:
                    break
                t *= 0.5
            u, value, d = u - t * step, new_value, new_d
        out[r] = u
    return out


def aggregate_users(item_vectors: np.ndarray, rows: sp.csr_matrix, item_degree: np.ndarray,
                    friend_vectors: np.ndarray | None = None, friends: sp.csr_matrix | None = None,
                    friend_degree: np.ndarray | None = None, friend_weight: float = 0.0) -> np.ndarray:
    """LightGCN's one-step aggregate, read off the fitted (final) vectors: for each row,
    sum_i v_i / sqrt(d_i) over its items, plus ``friend_weight`` * sum_f w_f / sqrt(d_f) over its
    friends (the joint user-item-user graph of the social models). Not normalised: the caller
    scales it (a user's ranking does not depend on the scale of their vector). float64."""
    deg = np.maximum(np.asarray(item_degree, dtype=np.float64), 1.0)
    w = sp.csr_matrix(rows, dtype=np.float64) @ sp.diags(deg ** -0.5)
    out = w @ np.asarray(item_vectors, dtype=np.float64)
    if friends is not None and friend_vectors is not None and friend_weight and friends.nnz:
        fdeg = np.maximum(np.asarray(friend_degree, dtype=np.float64), 1e-12)
        f = sp.csr_matrix(friends, dtype=np.float64) @ sp.diags(fdeg ** -0.5)
        out = out + friend_weight * (f @ np.asarray(friend_vectors, dtype=np.float64))
    return np.asarray(out)


def check_new_items(model: Any, item_ids: Sequence[str], texts: Sequence[str], placer: str) -> tuple[list[str], list[str]]:
    """The arguments of a `partial_fit_items`, checked: one non-empty text per new item id, each
    id new to the model. ``placer`` names what places items (in the error)."""
    model._check_fitted("partial_fit_items")
    ids, texts = [str(i) for i in item_ids], list(texts)
    if len(ids) != len(texts) or not ids:
        raise ValueError(f"partial_fit_items needs one text per item id, got {len(ids)} id(s) and {len(texts)} text(s)")
    if len(set(ids)) != len(ids) or set(ids) & set(getattr(model, "added_items_", {})):
        raise ValueError("partial_fit_items got an item id twice (or one added before); place each new item once")
    empty = [i for i, t in zip(ids, texts) if not isinstance(t, str) or not t.strip()]
    if empty:
        raise ValueError(f"items {empty[:5]} have no text: {placer} places an item only from its text")
    return ids, texts


def append_items(model: Any, ids: list[str], vectors: np.ndarray) -> np.ndarray:
    """Give new items the next indices: their vectors join ``item_vectors_``, the training
    matrix grows by empty columns, ``added_items_`` maps their ids. Returns the indices."""
    start = model.n_items_
    index = np.arange(start, start + len(ids))
    model.item_vectors_ = np.concatenate([model.item_vectors_, vectors.astype(model.item_vectors_.dtype)])
    model.n_items_ = model.item_vectors_.shape[0]
    model.user_items_ = grow_columns(model.user_items_, model.n_items_)
    model.added_items_ = {**getattr(model, "added_items_", {}), **dict(zip(ids, index.tolist()))}
    return index
