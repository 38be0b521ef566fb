"""Tag profiles: what tags describe an item, and which tags a user's history leans to.

An item's profile is the tf-idf vector of the tags users gave it (a tag on every item says
little; a rare one says much). A user's profile is the mean of their training items' unit
profiles. Affinity is the cosine of the two.

The tagger's own rows need care. A user who tagged an item has met it: in Last.fm 22% of the
held-out (user, artist) pairs are artists the same user tagged. So for an item outside the
user's training history, the profile used for that user leaves out that user's own
assignments on it. Otherwise the feature would mostly say "you tagged this", which is close to
the label. Other users' tags, and the user's tags on their training items, stay in.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from socialrec.sparse import replace_rows


def _unit_rows(m: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    return (sp.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ m).tocsr().astype(np.float32)


class TagProfiles:
    """Fitted from a `Dataset.tag_assignments` table and the training user-item matrix."""

    def fit(self, tag_assignments: pd.DataFrame, user_items: sp.csr_matrix) -> "TagProfiles":
        x = user_items.tocsr().astype(np.float32)
        x.data[:] = 1.0
        n_users, n_items = x.shape
        codes, names = pd.factorize(tag_assignments["tag"])
        self.tag_names_ = np.asarray(names, dtype=object)
        items = tag_assignments["item"].to_numpy(dtype=np.int64)
        users = tag_assignments["user"].to_numpy(dtype=np.int64)
        n_tags = len(names)
        counts = sp.csr_matrix((np.ones(len(codes), np.float32), (items, codes)), shape=(n_items, n_tags))
        counts.sum_duplicates()
        items_per_tag = np.diff(counts.tocsc().indptr)
        self.idf_ = np.log((n_items + 1.0) / (items_per_tag + 1.0)).astype(np.float32)
        self.counts_ = counts
        item_unit = _unit_rows((counts @ sp.diags(self.idf_)).tocsr())
        self.item_unit_t_ = item_unit.T.tocsr()
        self.user_profile_ = _unit_rows((x @ item_unit).tocsr())
        # The user's own assignments on items outside their training history: one row of
        # own_counts_ per (user, item) pair, found through own_row_ (row + 1; 0 = no such pair).
        own = (users >= 0) & (np.asarray(x[np.maximum(users, 0), items]).ravel() == 0)
        pairs = pd.DataFrame({"u": users[own], "i": items[own], "t": codes[own]})
        rows = pairs.groupby(["u", "i"], sort=False).ngroup().to_numpy()
        keys = pairs.groupby(rows, sort=True)[["u", "i"]].first()
        self.own_counts_ = sp.csr_matrix((np.ones(len(pairs), np.float32), (rows, pairs["t"].to_numpy())),
                                         shape=(len(keys), n_tags))
        self.own_counts_.sum_duplicates()
        self.own_row_ = sp.csr_matrix((np.arange(1, len(keys) + 1, dtype=np.int64), (keys["u"], keys["i"])),
                                      shape=(n_users, n_items))
        others = ((counts[keys["i"].to_numpy()] - self.own_counts_) @ sp.diags(self.idf_)).tocsr()
        others.eliminate_zeros()
        prof = self.user_profile_[keys["u"].to_numpy()]
        cos = np.asarray(_unit_rows(others).multiply(prof).sum(axis=1)).ravel()
        self.own_affinity_ = np.r_[0.0, cos].astype(np.float32)  # indexed by own_row_ (0 unused)
        return self

    def partial_fit_users(self, users: np.ndarray, user_items: sp.csr_matrix) -> "TagProfiles":
        """Recompute the tag profiles of these users from their new rows of ``user_items`` (the
        full, possibly grown matrix); their own tag assignments are kept (new users have none)."""
        x = user_items.tocsr()
        grow = x.shape[0] - self.user_profile_.shape[0]
        if grow > 0:
            self.own_row_ = sp.vstack([self.own_row_, sp.csr_matrix((grow, self.own_row_.shape[1]), dtype=self.own_row_.dtype)],
                                      format="csr")
            self.own_counts_ = sp.vstack([self.own_counts_, sp.csr_matrix((grow, self.own_counts_.shape[1]),
                                                                          dtype=self.own_counts_.dtype)], format="csr")
        profile = _unit_rows((x[users] @ self.item_unit_t_.T).tocsr())
        self.user_profile_ = replace_rows(self.user_profile_.tocsr(), users, profile)
        return self

    def item_embedding(self, dim: int = 128, seed: int = 0) -> np.ndarray:
        """Dense item vectors whose cosines approximate those of the tf-idf tag profiles (a
        truncated SVD, i.e. latent semantic analysis): the genre-like space that re-ranking
        diversifies in when the data has tags. Untagged items get the zero vector (no similarity
        to anything). (n_items, min(dim, n_tags - 1)) float32."""
        from scipy.sparse.linalg import svds

        unit = self.item_unit_t_.T.tocsr().astype(np.float64)
        rank = int(min(dim, min(unit.shape) - 1))
        if rank < 1:
            return np.zeros((unit.shape[0], 1), dtype=np.float32)
        left, sing, _ = svds(unit, k=rank, random_state=seed)
        return (left * sing).astype(np.float32)

    def affinity(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Cosine of each user's profile to each item's profile (the user's own tags on items
        outside their history left out). ``items``: (len(users), n) indices >= 0."""
        full = (self.user_profile_[users] @ self.item_unit_t_).toarray()
        out = np.take_along_axis(full, items, axis=1)
        own = np.take_along_axis(self.own_row_[users].toarray(), items, axis=1)
        return np.where(own > 0, self.own_affinity_[own], out).astype(np.float32)

    def shared_tags(self, user: int, item: int, k: int = 3) -> list[str]:
        """The tags that contribute most to the user's affinity to the item, strongest first
        (computed from the same profiles as `affinity`)."""
        row = self.counts_[item].toarray().ravel()
        own = int(self.own_row_[user, item])
        if own:
            row = row - self.own_counts_[own - 1].toarray().ravel()
        contrib = row * self.idf_ * self.user_profile_[user].toarray().ravel()
        top = np.argsort(-contrib, kind="stable")[:k]
        return [str(self.tag_names_[t]) for t in top if contrib[t] > 0]
