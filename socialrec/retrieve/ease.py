"""EASE (Steck, 2019): a closed-form linear item-item model, B = I - P / diag(P), P = (X'X + lI)^-1.

It needs a dense (n_items x n_items) matrix. When the catalog is larger than ``max_items`` it
is fitted on the ``max_items`` most popular items (a warning says so) and the rest score zero.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from scipy.linalg import lapack

from socialrec.retrieve.base import BaseRecommender, TrainData


def _spd_inverse(a: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive definite float32 (or float64) matrix through its Cholesky
    factor (about twice as fast as a general inverse; float32 is half the memory of float64)."""
    potrf, potri = lapack.get_lapack_funcs(("potrf", "potri"), (a,))
    chol, info = potrf(a, lower=False, overwrite_a=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE: the regularised Gram matrix is not positive definite (LAPACK info {info}); increase l2")
    inv, info = potri(chol, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE: inverting the Gram matrix failed (LAPACK info {info}); increase l2")
    upper = np.triu(inv)
    upper += np.triu(inv, 1).T
    return upper


def ease_weights(gram: np.ndarray, l2: float, dropout: float = 0.0) -> np.ndarray:
    """EASE's closed form from an item-item Gram matrix (overwritten): B = I - P / diag(P) with
    P = (gram + L)^-1, and diag(B) = 0. L = l2 I, plus with ``dropout`` p > 0 EDLAE's emphasised
    denoising (Steck, NeurIPS 2020): p / (1 - p) * diag(gram) added to each item's ridge, so an
    item is regularised in proportion to its own count, as dropping each input with probability p
    would in expectation."""
    diagonal = np.diag_indices_from(gram)
    if dropout > 0.0:
        gram[diagonal] += dropout / (1.0 - dropout) * np.maximum(gram[diagonal], 0.0)
    gram[diagonal] += l2
    p = _spd_inverse(gram)
    weights = p / (-np.diag(p))[None, :]
    weights[np.diag_indices_from(weights)] = 0.0
    return weights


class CostlyComputationWarning(UserWarning):
    """The library is doing expensive work, or cutting a corner, on the caller's behalf."""


class EASE(BaseRecommender):
    """EASE with L2 regularisation ``l2``.

    max_items: the largest item count fitted exactly (memory grows with its square:
    20,000 items need about 1.6 GB per float32 copy).

    Fold-in ("history"): scores are the user's stored row times the item-item weights, so a
    folded-in user scores as their new row says at once; the weights, which every user's row
    shaped a little, are refitted by the next `fit`.
    """

    fold_in = "history"

    def __init__(self, l2: float = 100.0, max_items: int = 20_000) -> None:
        self.l2 = l2
        self.max_items = max_items

    def _fit(self, train: TrainData) -> None:
        if self.l2 <= 0:
            raise ValueError(f"l2 must be > 0, got {self.l2}")
        x = train.user_items.tocsc().astype(np.float32)
        popularity = np.diff(x.indptr)
        active = np.flatnonzero(popularity > 0)
        if len(active) > self.max_items:
            active = np.sort(np.argsort(-popularity, kind="stable")[: self.max_items])
            warnings.warn(
                f"EASE: {np.count_nonzero(popularity)} items with interactions exceed max_items="
                f"{self.max_items}; fitting on the {self.max_items} most popular "
                f"(raise max_items if memory allows: it needs {4 * np.count_nonzero(popularity) ** 2 / 1e9:.1f} GB per copy)",
                CostlyComputationWarning, stacklevel=3)
        xa = x[:, active]
        start = time.perf_counter()
        gram = (xa.T @ xa).toarray().astype(np.float32)
        self.weights_ = ease_weights(gram, self.l2)
        self.fit_seconds_ = time.perf_counter() - start
        self.active_items_ = active

    def _score(self, users: np.ndarray) -> np.ndarray:
        xa = self.user_items_[users][:, self.active_items_]
        out = np.zeros((len(users), self.n_items_), dtype=np.float32)
        out[:, self.active_items_] = xa @ self.weights_
        return out

    def _similar_scores(self, items: np.ndarray) -> np.ndarray:
        out = np.zeros((len(items), self.n_items_), dtype=np.float32)
        pos = np.full(self.n_items_, -1)
        pos[self.active_items_] = np.arange(len(self.active_items_))
        rows = pos[items]
        ok = rows >= 0
        out[np.ix_(np.flatnonzero(ok), self.active_items_)] = self.weights_[rows[ok]]
        return out
