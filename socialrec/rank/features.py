"""Features of (user, candidate) pairs for the learned ranker.

Per channel: the raw score, the score standardised over the user's whole catalog row (so that
channels on different scales compare), and the candidate's rank in that channel's list (log).
Beside them: item popularity, user activity, how many friends interacted with the item and how
strongly tied they are, similarity of the item to the user's most recent items, the user's
affinity to the item's category and tags (`represent.tag_profiles`), item sentiment and the user's mood (when text exists), and
whether the item is new. Every feature is a column of a float32 matrix named in
`FeatureBuilder.names`, and each name belongs to a signal group used by the explanations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from socialrec.ingest.schema import Dataset
from socialrec.represent.profiles import recency_order
from socialrec.represent.tag_profiles import TagProfiles
from socialrec.retrieve.channels import Candidates
from socialrec.sparse import replace_rows

# Which explanation signal each channel's features belong to.
CHANNEL_GROUPS = {
    "ease": "collaborative", "itemknn": "collaborative", "userknn": "collaborative", "als": "collaborative",
    "bpr": "collaborative", "lightgcn": "collaborative", "social": "social", "socialmf": "social",
    "social-proof": "social", "content": "content", "trending": "trending", "pop": "popular",
    "new": "new", "sentiment": "sentiment",
}


@dataclass(frozen=True)
class FeatureMatrix:
    """Rows are (user, candidate) pairs in user-major order; ``groups`` counts rows per user."""

    values: np.ndarray
    users: np.ndarray
    items: np.ndarray
    groups: np.ndarray


class FeatureBuilder:
    """Builds the feature matrix from retrieved candidates and side information.

    recent_items: how many of the user's most recent items the "similar to recent" feature uses.
    new_max_interactions: an item with at most this many training interactions counts as new.
    """

    def __init__(self, recent_items: int = 3, new_max_interactions: int = 2) -> None:
        self.recent_items = recent_items
        self.new_max_interactions = new_max_interactions

    def fit(self, user_items: sp.csr_matrix, dataset: Dataset | None, channel_names: list[str],
            item_similarity: sp.csr_matrix | None = None, item_text_vectors: np.ndarray | None = None,
            item_sentiment: np.ndarray | None = None, user_mood: np.ndarray | None = None) -> "FeatureBuilder":
        x = user_items.tocsr().astype(np.float32)
        x.data[:] = 1.0
        self.user_items_ = x
        self.channel_names_ = list(channel_names)
        n_users, n_items = x.shape
        counts = np.diff(x.tocsc().indptr).astype(np.float32)
        self.log_popularity_ = np.log1p(counts)
        self.is_new_ = (counts <= self.new_max_interactions).astype(np.float32)
        self.log_activity_ = np.log1p(np.diff(x.indptr).astype(np.float32))
        self.friends_: sp.csr_matrix | None = None
        if dataset is not None and len(dataset.social):
            f = dataset.social_matrix().tocsr().astype(np.float32)
            f.data[:] = 1.0
            self.friends_ = f
        # The user's most recent items (by timestamp when the data has them).
        rank = recency_order(dataset, x)
        recent = x.copy()
        recent.data = (rank < self.recent_items).astype(np.float32)
        recent.eliminate_zeros()
        self.recent_ = recent.tocsr()
        self.item_similarity_ = item_similarity.tocsr() if item_similarity is not None else None
        self.item_text_vectors_ = item_text_vectors
        self.categories_: np.ndarray | None = None
        if dataset is not None and dataset.item_table is not None and "category" in dataset.item_table.columns:
            codes, labels = pd.factorize(dataset.item_table["category"], use_na_sentinel=True)
            self.category_labels_ = [str(v) for v in labels]
            codes = np.asarray(codes, dtype=np.int64)
            n_cat = int(codes.max()) + 1 if len(codes) and codes.max() >= 0 else 0
            if n_cat > 1:
                ok = codes >= 0
                onehot = sp.csr_matrix((np.ones(ok.sum(), np.float32), (np.flatnonzero(ok), codes[ok])),
                                       shape=(n_items, n_cat))
                prof = (x @ onehot).toarray()
                self.category_share_ = prof / np.maximum(prof.sum(axis=1, keepdims=True), 1.0)
                self.categories_ = codes
        self.tag_profiles_: TagProfiles | None = None
        if dataset is not None and len(dataset.tag_assignments):
            self.tag_profiles_ = TagProfiles().fit(dataset.tag_assignments, x)
        self.item_sentiment_ = item_sentiment
        self.user_mood_ = user_mood
        self.names = self._names()
        return self

    def partial_fit_users(self, users: np.ndarray, user_items: sp.csr_matrix,
                          social: sp.csr_matrix | None = None) -> "FeatureBuilder":
        """Fold in changed or new users: their history, activity, recent items, category and tag
        profiles, friends (``social``: their new out-edge rows, when given) and mood (0 for new
        users) are recomputed from ``user_items`` (the full, possibly grown matrix). The item
        side (popularity, newness, similarities) stays as fitted. A user's items that were not
        in their previous row count as their most recent."""
        users = np.asarray(users, dtype=np.int64)
        x = user_items.tocsr().astype(np.float32)
        x.data[:] = 1.0
        old = self.user_items_
        n_users = x.shape[0]
        grow = n_users - old.shape[0]
        rows = x[users]
        self.user_items_ = replace_rows(old, users, rows)
        self.log_activity_ = np.r_[self.log_activity_, np.zeros(max(grow, 0), np.float32)]
        self.log_activity_[users] = np.log1p(np.diff(rows.indptr).astype(np.float32))
        recent_rows = []
        old_recent = self.recent_
        for j, u in enumerate(users):
            now = rows.indices[rows.indptr[j]:rows.indptr[j + 1]]
            before = old.indices[old.indptr[u]:old.indptr[u + 1]] if u < old.shape[0] else np.zeros(0, np.int32)
            added = np.setdiff1d(now, before)
            kept = old_recent.indices[old_recent.indptr[u]:old_recent.indptr[u + 1]] if u < old_recent.shape[0] else []
            kept = np.intersect1d(kept, now)
            chosen = np.r_[added[::-1], kept][:self.recent_items].astype(np.int64)
            recent_rows.append(chosen)
        recent = sp.csr_matrix((np.ones(sum(map(len, recent_rows)), np.float32),
                                (np.repeat(np.arange(len(users)), [len(r) for r in recent_rows]),
                                 np.concatenate(recent_rows) if recent_rows else np.zeros(0, np.int64))),
                               shape=(len(users), x.shape[1]))
        self.recent_ = replace_rows(old_recent, users, recent)
        if self.friends_ is not None:
            f = self.friends_
            if n_users > f.shape[1]:
                f = sp.hstack([f, sp.csr_matrix((f.shape[0], n_users - f.shape[1]), dtype=np.float32)], format="csr")
            if social is not None:
                new = sp.csr_matrix(social, dtype=np.float32)
                if new.shape[1] < n_users:
                    new = sp.hstack([new, sp.csr_matrix((new.shape[0], n_users - new.shape[1]), dtype=np.float32)],
                                    format="csr")
                new.data[:] = 1.0
                f = replace_rows(f, users, new[:, :n_users])
            elif n_users > f.shape[0]:
                f = replace_rows(f, np.arange(f.shape[0], n_users), sp.csr_matrix((n_users - f.shape[0], n_users),
                                                                                   dtype=np.float32))
            self.friends_ = f.tocsr()
        if self.categories_ is not None:
            share = self.category_share_
            if grow > 0:
                share = np.vstack([share, np.zeros((grow, share.shape[1]))])
            n_cat = share.shape[1]
            ok = self.categories_ >= 0
            onehot = sp.csr_matrix((np.ones(ok.sum(), np.float32), (np.flatnonzero(ok), self.categories_[ok])),
                                   shape=(x.shape[1], n_cat))
            prof = (rows @ onehot).toarray()
            share[users] = prof / np.maximum(prof.sum(axis=1, keepdims=True), 1.0)
            self.category_share_ = share
        if self.tag_profiles_ is not None:
            self.tag_profiles_.partial_fit_users(users, self.user_items_)
        if self.user_mood_ is not None and grow > 0:
            self.user_mood_ = np.r_[self.user_mood_, np.zeros(grow, dtype=np.asarray(self.user_mood_).dtype)]
        return self

    def _names(self) -> list[str]:
        names = []
        for c in self.channel_names_:
            names += [f"{c}:score", f"{c}:z", f"{c}:log_rank"]
        names += ["item:log_popularity", "item:is_new", "user:log_activity"]
        if self.friends_ is not None:
            names += ["social:friends_interacted", "social:friend_share"]
        if self.item_similarity_ is not None:
            names += ["collaborative:sim_recent"]
        if self.item_text_vectors_ is not None:
            names += ["content:text_sim_recent"]
        if self.categories_ is not None:
            names += ["content:category_affinity"]
        if self.tag_profiles_ is not None:
            names += ["content:tag_affinity"]
        if self.item_sentiment_ is not None and self.user_mood_ is not None:
            names += ["sentiment:item", "sentiment:mood_x_item"]
        return names

    def group_of(self, name: str) -> str:
        """The explanation signal a feature belongs to (collaborative, social, content, ...)."""
        prefix = name.split(":")[0].partition("#")[0]  # a replica (lightgcn#1) is its model's signal
        return CHANNEL_GROUPS.get(prefix, {"item": "item", "user": "user"}.get(prefix, prefix))

    def build(self, users: np.ndarray, cands: Candidates) -> FeatureMatrix:
        users = np.asarray(users, dtype=np.int64)
        items = cands.items
        valid = items >= 0
        safe = np.maximum(items, 0)
        cols: list[np.ndarray] = []
        for c in self.channel_names_:
            full = cands.scores[c]
            finite = np.isfinite(full)
            vals = np.where(finite, full, 0.0).astype(np.float64)
            n_fin = np.maximum(finite.sum(axis=1, keepdims=True), 1)
            mean = vals.sum(axis=1, keepdims=True) / n_fin
            var = (np.where(finite, (vals - mean) ** 2, 0.0)).sum(axis=1, keepdims=True) / n_fin
            std = np.sqrt(var) + 1e-9
            raw = np.take_along_axis(full, safe, axis=1)
            raw = np.where(np.isfinite(raw), raw, 0.0)
            cols += [raw, (raw - mean) / std, np.log1p(cands.ranks[c].astype(np.float32))]
        n_users, n = items.shape
        cols += [self.log_popularity_[safe], self.is_new_[safe], np.repeat(self.log_activity_[users, None], n, 1)]
        if self.friends_ is not None:
            f = self.friends_[users]
            n_friends = np.asarray(f.sum(axis=1)).ravel()
            liked = (f @ self.user_items_).toarray()  # friends who interacted with each item
            cnt = np.take_along_axis(liked, safe, axis=1)
            cols += [cnt, cnt / np.maximum(n_friends, 1.0)[:, None]]
        if self.item_similarity_ is not None:
            sim_recent = (self.recent_[users] @ self.item_similarity_).toarray()
            cols.append(np.take_along_axis(sim_recent, safe, axis=1))
        if self.item_text_vectors_ is not None:
            # Cosine of the candidate's text to the mean text of the user's most recent items.
            v = self.item_text_vectors_
            recent = np.asarray(self.recent_[users] @ v)
            recent /= np.maximum(np.linalg.norm(recent, axis=1, keepdims=True), 1e-9)
            cols.append(np.einsum("nd,nkd->nk", recent, v[safe]))
        if self.categories_ is not None:
            cat = self.categories_[safe]
            share = self.category_share_[users]
            aff = np.take_along_axis(share, np.maximum(cat, 0), axis=1)
            cols.append(np.where(cat >= 0, aff, 0.0))
        if self.tag_profiles_ is not None:
            cols.append(self.tag_profiles_.affinity(users, safe))
        if self.item_sentiment_ is not None and self.user_mood_ is not None:
            s = self.item_sentiment_[safe]
            cols += [s, s * self.user_mood_[users, None]]
        values = np.stack([np.asarray(c, dtype=np.float32) for c in cols], axis=2)
        keep = valid.ravel()
        return FeatureMatrix(
            values=values.reshape(n_users * n, -1)[keep],
            users=np.repeat(users, n)[keep],
            items=items.ravel()[keep],
            groups=valid.sum(axis=1),
        )
