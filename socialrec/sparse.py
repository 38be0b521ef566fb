"""Sparse-matrix row surgery shared by every layer (online updates replace users' rows)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def replace_rows(matrix: sp.csr_matrix, rows: np.ndarray, new_rows: sp.csr_matrix) -> sp.csr_matrix:
    """``matrix`` with the given rows replaced by ``new_rows`` (growing it with empty rows when
    a row index is past its end). Returns a new CSR matrix; ``matrix`` is not changed."""
    n = max(matrix.shape[0], int(rows.max()) + 1 if len(rows) else 0)
    m = matrix.tocsr()
    if n > m.shape[0]:
        m = sp.vstack([m, sp.csr_matrix((n - m.shape[0], m.shape[1]), dtype=m.dtype)], format="csr")
    keep = np.ones(n, dtype=bool)
    keep[rows] = False
    kept = sp.diags(keep.astype(m.dtype)) @ m
    placed = sp.csr_matrix((np.ones(len(rows), dtype=m.dtype), (rows, np.arange(len(rows)))),
                           shape=(n, len(rows))) @ new_rows.astype(m.dtype)
    out = (kept + placed).tocsr()
    out.eliminate_zeros()
    out.sort_indices()
    return out
