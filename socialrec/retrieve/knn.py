"""Neighbourhood models: item-based and user-based k-nearest neighbours with cosine similarity.

Similarity is cosine with shrinkage, ``s_ij = x_i . x_j / (|x_i| |x_j| + shrink)``, so pairs
supported by few co-occurrences are damped; only the top ``neighbors`` per item (or user) are
kept, which both regularises and keeps the similarity matrix sparse.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from socialrec.retrieve.base import BaseRecommender, TrainData


def cosine_topk(x: sp.csr_matrix, *, neighbors: int, shrink: float, chunk: int = 2048) -> sp.csr_matrix:
    """Column-column cosine similarity of ``x`` with shrinkage, keeping the top ``neighbors`` per
    column (rows of the result), diagonal removed. Computed in chunks of columns to bound memory."""
    xc = x.tocsc().astype(np.float32)
    n = xc.shape[1]
    norms = np.sqrt(np.asarray(xc.multiply(xc).sum(axis=0)).ravel()).astype(np.float32)
    xt = xc.T.tocsr()
    rows, cols, vals = [], [], []
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        block = (xt[start:stop] @ xc).toarray()  # (chunk, n) co-occurrence
        block /= norms[start:stop, None] * norms[None, :] + shrink + 1e-12
        block[np.arange(stop - start), np.arange(start, stop)] = 0.0
        kk = min(neighbors, n - 1)
        if kk <= 0:
            continue
        top = np.argpartition(-block, kk - 1, axis=1)[:, :kk]
        top_vals = np.take_along_axis(block, top, axis=1)
        keep = top_vals > 0
        r = np.repeat(np.arange(start, stop), kk).reshape(-1, kk)
        rows.append(r[keep])
        cols.append(top[keep])
        vals.append(top_vals[keep])
    if not rows:
        return sp.csr_matrix((n, n), dtype=np.float32)
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n), dtype=np.float32
    )


def cosine_topk_rows(x: sp.csr_matrix, rows: np.ndarray, *, neighbors: int, shrink: float) -> sp.csr_matrix:
    """The rows ``rows`` of ``cosine_topk(x.T, ...)`` (row-row cosine with shrinkage, top
    ``neighbors`` per row, itself excluded) without computing the others: (len(rows), n_rows)."""
    x = sp.csr_matrix(x, dtype=np.float32)
    n = x.shape[0]
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel()).astype(np.float32)
    block = (x[rows] @ x.T).toarray().astype(np.float32)
    block /= norms[rows, None] * norms[None, :] + shrink + 1e-12
    block[np.arange(len(rows)), rows] = 0.0
    kk = min(neighbors, n - 1)
    if kk <= 0:
        return sp.csr_matrix((len(rows), n), dtype=np.float32)
    top = np.argpartition(-block, kk - 1, axis=1)[:, :kk]
    top_vals = np.take_along_axis(block, top, axis=1)
    keep = top_vals > 0
    r = np.repeat(np.arange(len(rows)), kk).reshape(-1, kk)
    return sp.csr_matrix((top_vals[keep], (r[keep], top[keep])), shape=(len(rows), n), dtype=np.float32)


class ItemKNN(BaseRecommender):
    """Item-based kNN: a user's score for item j sums the similarities of j to the user's items.

    neighbors: similar items kept per item. shrink: cosine shrinkage. idf: weight users by
    inverse frequency before computing similarities. normalize: divide each similarity row by
    its sum (turns scores into weighted averages; usually off for top-N ranking).

    Fold-in ("history"): a user's scores are their stored row times the item similarities, so
    a folded-in user is served from their new row at once; the similarities (which every
    user's row shaped a little) are recomputed by the next `fit`.
    """

    fold_in = "history"

    def __init__(self, neighbors: int = 100, shrink: float = 10.0, idf: bool = False,
                 normalize: bool = False) -> None:
        self.neighbors = neighbors
        self.shrink = shrink
        self.idf = idf
        self.normalize = normalize

    def _fit(self, train: TrainData) -> None:
        if self.neighbors < 1:
            raise ValueError(f"neighbors must be >= 1, got {self.neighbors}")
        x = train.user_items.astype(np.float32)
        if self.idf:
            w = np.log(x.shape[1] / np.maximum(np.diff(x.indptr), 1.0)).astype(np.float32)
            x = sp.diags(w) @ x
        sim = cosine_topk(sp.csr_matrix(x), neighbors=self.neighbors, shrink=self.shrink)
        if self.normalize:
            sums = np.asarray(sim.sum(axis=1)).ravel()
            sums[sums == 0] = 1.0
            sim = sp.diags(1.0 / sums) @ sim
        # Row i holds item i's neighbours, so a user's score for j sums sim(i, j) over the
        # user's items i that count j among their neighbours: X @ S.
        self.similarity_ = sim

    def _score(self, users: np.ndarray) -> np.ndarray:
        return (self.user_items_[users] @ self.similarity_).toarray()

    def _similar_scores(self, items: np.ndarray) -> np.ndarray:
        return self.similarity_[items].toarray()


class UserKNN(BaseRecommender):
    """User-based kNN: items are scored by how many similar users interacted with them.

    neighbors: similar users kept per user. shrink: cosine shrinkage.

    Fold-in ("solve"): a folded-in user's neighbours are found anew, by the same cosine with
    shrinkage against every other user's stored row: the row a refit would give them. Other
    users keep their neighbour lists (and the weight they gave this user) until the next `fit`,
    but read the folded-in user's new items through them.
    """

    fold_in = "solve"

    def __init__(self, neighbors: int = 100, shrink: float = 10.0) -> None:
        self.neighbors = neighbors
        self.shrink = shrink

    def _fit(self, train: TrainData) -> None:
        if self.neighbors < 1:
            raise ValueError(f"neighbors must be >= 1, got {self.neighbors}")
        x = train.user_items.astype(np.float32)
        self.user_similarity_ = cosine_topk(sp.csr_matrix(x.T), neighbors=self.neighbors, shrink=self.shrink)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return (self.user_similarity_[users] @ self.user_items_).toarray()

    def _fold_in_users(self, users: np.ndarray, social: object) -> None:
        from socialrec.retrieve.fold_in import grow_square
        from socialrec.sparse import replace_rows

        rows = cosine_topk_rows(self.user_items_.astype(np.float32), users, neighbors=self.neighbors,
                                shrink=self.shrink)
        self.user_similarity_ = replace_rows(grow_square(self.user_similarity_, self.n_users_), users, rows)
