"""Vectorised graph utilities on scipy.sparse matrices.

Rows are sources and columns targets: ``adj[u, v] != 0`` is an edge u -> v. Nothing here loops
over nodes in Python; walks over many sources run as one sparse-times-dense product per step.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp


def _square_csr(adj: sp.spmatrix | npt.ArrayLike, what: str = "adj") -> sp.csr_matrix:
    m = sp.csr_matrix(adj)
    if m.shape[0] != m.shape[1]:
        raise ValueError(f"{what} must be square, got shape {m.shape}")
    return m


def _sources(sources: npt.ArrayLike, n: int) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(sources))
    if arr.size and arr.dtype.kind not in "iu":
        raise TypeError(f"source indices must be integers, got {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        raise IndexError(f"source index out of range 0..{n - 1}")
    return arr


def bipartite_adjacency(user_items: sp.spmatrix) -> sp.csr_matrix:
    """The symmetric (n_users + n_items) square adjacency [[0, R], [R^T, 0]] of a user-item matrix.

    Users take indices 0..n_users-1 and items n_users..n_users+n_items-1; values are kept.
    """
    r = sp.csr_matrix(user_items)
    return sp.bmat([[None, r], [r.T, None]], format="csr", dtype=r.dtype)


def _inverse_power(deg: np.ndarray, power: float) -> np.ndarray:
    # Zero-degree nodes get 0 (their rows and columns stay empty) instead of inf.
    out = np.zeros(deg.shape, dtype=np.float64)
    nz = deg > 0
    out[nz] = deg[nz] ** power
    return out


def degrees(adj: sp.spmatrix) -> np.ndarray:
    """Weighted out-degree (row sums) as float64."""
    return np.asarray(sp.csr_matrix(adj).sum(axis=1), dtype=np.float64).ravel()


def normalize_symmetric(adj: sp.spmatrix) -> sp.csr_matrix:
    """D^-1/2 A D^-1/2 with D the row sums; zero-degree nodes stay zero (no division by zero)."""
    a = _square_csr(adj)
    d = sp.diags(_inverse_power(degrees(a), -0.5))
    return (d @ a @ d).tocsr().astype(a.dtype if a.dtype.kind == "f" else np.float64)


def normalize_rows(adj: sp.spmatrix) -> sp.csr_matrix:
    """D^-1 A: each non-empty row sums to 1 (a random-walk transition matrix); empty rows stay empty."""
    a = sp.csr_matrix(adj)
    d = sp.diags(_inverse_power(degrees(a), -1.0))
    return (d @ a).tocsr().astype(a.dtype if a.dtype.kind == "f" else np.float64)


def k_hop(adj: sp.spmatrix, sources: npt.ArrayLike, k: int) -> sp.csr_matrix:
    """Boolean (len(sources), n) CSR: True where a node is reachable from the source in 1..k hops
    along edge direction (rows -> columns). The source itself is excluded, even on a cycle."""
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    a = _square_csr(adj).astype(np.float32)
    a.data[:] = 1.0
    n = a.shape[0]
    src = _sources(sources, n)
    m = len(src)
    start = sp.csr_matrix((np.ones(m, dtype=np.float32), (np.arange(m), src)), shape=(m, n))
    reached = sp.csr_matrix((m, n), dtype=np.float32)
    frontier = start
    for _ in range(k):
        # Expand only the new frontier (BFS by levels): each node is expanded once per source.
        nxt = (frontier @ a).tocsr()
        nxt.data[:] = 1.0
        nxt = (nxt - nxt.multiply(reached)).tocsr()  # drop nodes already reached
        nxt.eliminate_zeros()
        if nxt.nnz == 0:
            break
        reached = (reached + nxt).tocsr()
        frontier = nxt
    reached = (reached - reached.multiply(start)).tocsr()  # the source is not its own neighbour
    reached.eliminate_zeros()
    return reached.astype(bool)


def personalized_pagerank(
    adj: sp.spmatrix,
    sources: npt.ArrayLike,
    *,
    alpha: float = 0.15,
    iterations: int = 30,
    tol: float = 1e-6,
) -> np.ndarray:
    """Random walk with restart from each source: float64 (len(sources), n), rows sum to 1.

    At each step the walker restarts at its source with probability ``alpha``, otherwise follows
    an out-edge chosen in proportion to its weight (the row-normalised transition matrix P).
    A walker on a node with no out-edges (dangling) restarts at its source, so no mass leaks.
    Power iteration r <- alpha e + (1 - alpha) (r P + dangling(r) e) runs for all sources at
    once as a matrix; each source stops after ``iterations`` steps or once its largest change
    is < ``tol`` (per source, so a source's result does not depend on the batch it came in).
    Without dangling nodes the fixed point is alpha (I - (1 - alpha) P^T)^-1 e.
    """
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    a = _square_csr(adj)
    n = a.shape[0]
    src = _sources(sources, n)
    m = len(src)
    p_t = normalize_rows(a).astype(np.float64).T.tocsr()  # column form: x <- P^T x
    dangling = degrees(a) <= 0
    # State as (n, m) so every step is one CSR @ dense product.
    x = np.zeros((n, m), dtype=np.float64)
    x[src, np.arange(m)] = 1.0
    active = np.arange(m)  # sources still changing: each stops on its own, so batches equal singles
    for _ in range(iterations):
        if active.size == 0:
            break
        xa = x[:, active]
        lost = xa[dangling].sum(axis=0)  # mass sitting on dangling nodes, per source
        new = (1.0 - alpha) * (p_t @ xa)
        new[src[active], np.arange(active.size)] += alpha + (1.0 - alpha) * lost
        delta = np.abs(new - xa).max(axis=0)
        x[:, active] = new
        active = active[delta >= tol]
    return np.ascontiguousarray(x.T)
