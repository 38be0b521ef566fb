"""The social-proof channel: items that a user's friends (or trusted users) interacted with,
weighted by how strong each tie is.

Tie strength of u -> v is ``1 + overlap_weight * jaccard(items(u), items(v))`` (friends with
the same taste count more); an interaction counts more when it is recent (exponential decay
with ``half_life_days`` over the interaction's age relative to the newest one in training,
when timestamps exist). The score of item i for u is the sum over friends v who interacted
with i of strength(u, v) * recency(v, i). `friend_evidence` tells which friends liked an item,
for explanations ("3 friends liked this") and for the hybrid ranker's features.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from socialrec.retrieve.base import BaseRecommender, TrainData


class SocialProof(BaseRecommender):
    """Recommends what friends interacted with (see module docstring).

    overlap_weight: how much taste overlap strengthens a tie (0 = all friends equal).
    half_life_days: recency half-life of a friend's interaction (None = no decay).
    popularity_weight: small tie-breaker towards popular items for users whose friends
        interacted with few items (0 disables).

    Fold-in ("history"): scores read the friends' stored rows, so nothing is solved. A
    folded-in user's out-edges become the ``social`` rows when given (else they keep theirs; a
    new user without them has no friends); the strength of every tie to or from them is
    recomputed from their new items, their pairs' recency kept where the pair was already there
    (new pairs count as the newest), and the item popularity is recounted: what a refit on the
    same rows and graph gives. Their friends see their new items at once.
    """

    fold_in = "history"

    def __init__(self, overlap_weight: float = 4.0, half_life_days: float | None = None,
                 popularity_weight: float = 1e-3) -> None:
        self.overlap_weight = overlap_weight
        self.half_life_days = half_life_days
        self.popularity_weight = popularity_weight

    def _fit(self, train: TrainData) -> None:
        if train.dataset is None or len(train.dataset.social) == 0:
            raise ValueError("SocialProof needs a social graph: fit it with TrainData whose dataset has social edges "
                             "(Split.train_data() passes the dataset along)")
        x = train.user_items.astype(np.float32).tocsr()
        x.data[:] = 1.0
        follows = train.dataset.social_matrix()  # u -> v: u follows/trusts/is friends with v
        # Jaccard overlap of item sets, only on existing edges (cheap: one sparse product masked by the graph).
        co = follows.multiply(x @ x.T).tocsr()
        sizes = np.diff(x.indptr).astype(np.float32)
        coo = co.tocoo()
        jac = np.zeros(follows.nnz, dtype=np.float32)
        f = follows.tocoo()
        key_f = f.row.astype(np.int64) * follows.shape[1] + f.col
        key_c = coo.row.astype(np.int64) * follows.shape[1] + coo.col
        pos = np.searchsorted(key_f, key_c)
        union = sizes[coo.row] + sizes[coo.col] - coo.data
        jac[pos] = coo.data / np.maximum(union, 1.0)
        self.tie_strength_ = sp.csr_matrix((1.0 + self.overlap_weight * jac, (f.row, f.col)), shape=follows.shape)
        self.recency_ = self._recency(train, x)
        self.popularity_ = np.asarray(x.sum(axis=0)).ravel() / max(1, x.shape[0])

    def _fold_in_users(self, users: np.ndarray, social: sp.csr_matrix | None) -> None:
        from socialrec.retrieve.fold_in import grow_square, replace_social_rows, rows_of, social_rows
        from socialrec.sparse import replace_rows

        n = self.n_users_
        x = self.user_items_.astype(np.float32).tocsr()
        x.data[:] = 1.0
        ties = grow_square(self.tie_strength_, n)
        if social is not None:  # these users' out-edges, strengths recomputed below
            ties = replace_social_rows(ties, users, social_rows(social, n))
        t = ties.tocoo()
        touched = np.isin(t.row, users) | np.isin(t.col, users)
        a, b = t.row[touched], t.col[touched]
        co = np.asarray(x[a].multiply(x[b]).sum(axis=1)).ravel()
        sizes = np.diff(x.indptr).astype(np.float32)
        jac = co / np.maximum(sizes[a] + sizes[b] - co, 1.0)
        data = t.data.astype(np.float32).copy()
        data[touched] = 1.0 + self.overlap_weight * jac
        self.tie_strength_ = sp.csr_matrix((data, (t.row, t.col)), shape=(n, n))
        new = x[users]
        kept = rows_of(self.recency_, users).multiply(new).tocsr()  # pairs still there keep their recency
        fresh = new - new.multiply(kept > 0)  # new pairs are the newest
        self.recency_ = replace_rows(sp.csr_matrix(self.recency_, dtype=np.float32), users, (kept + fresh).tocsr())
        self.popularity_ = np.asarray(x.sum(axis=0)).ravel() / max(1, n)

    def _recency(self, train: TrainData, x: sp.csr_matrix) -> sp.csr_matrix:
        """(user, item) -> recency weight in (0, 1] of the latest training interaction."""
        if self.half_life_days is None or train.dataset is None:
            return x
        inter = train.dataset.interactions
        users, items = inter["user"].to_numpy(), inter["item"].to_numpy()
        in_train = np.asarray(x[users, items]).ravel() > 0  # the dataset also holds held-out rows
        ts = inter["timestamp"].to_numpy()[in_train]
        if ts.size == 0 or np.isnan(ts).all():
            return x
        latest = np.nanmax(ts)
        weight = np.power(0.5, (latest - np.nan_to_num(ts, nan=latest)) / 86400.0 / self.half_life_days)
        pairs = pd.DataFrame({"u": users[in_train], "i": items[in_train], "w": weight})
        pairs = pairs.groupby(["u", "i"], as_index=False)["w"].max()
        return sp.csr_matrix((pairs["w"].to_numpy(np.float32), (pairs["u"], pairs["i"])), shape=x.shape)

    def _score(self, users: np.ndarray) -> np.ndarray:
        s = (self.tie_strength_[users] @ self.recency_).toarray().astype(np.float32)
        return s + self.popularity_weight * self.popularity_[None, :]

    def friend_evidence(self, user: int, item: int) -> list[tuple[int, float]]:
        """Friends of ``user`` who interacted with ``item``, with their tie strength, strongest first."""
        self._check_fitted("friend_evidence")
        row = self.tie_strength_[user]
        friends, strength = row.indices, row.data
        liked = np.asarray(self.user_items_[friends, item].todense()).ravel() > 0
        order = np.argsort(-strength[liked], kind="stable")
        return [(int(f), float(s)) for f, s in zip(friends[liked][order], strength[liked][order])]
