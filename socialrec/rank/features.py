"""Features of (user, candidate) pairs for the learned ranker.

Per channel: the raw score, the score standardised over the user's whole catalog row (so that
channels on different scales compare), and the candidate's rank in that channel's list (log).
Beside them: item popularity, user activity, how many friends interacted with the item and how
strongly tied they are, similarity of the item to the user's most recent items, the user's
affinity to the item's category and tags (`represent.tag_profiles`), item sentiment and the
user's mood (when text exists), and whether the item is new.

Each feature is a small `Feature` object: its name, the explanation signal group it belongs to,
its monotone direction for the ranker, whether the fitted data supports it, and how its column
is computed. `FeatureBuilder.features_` is the list in column order; names, groups and monotone
constraints are read from it, never parsed from names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from socialrec.ingest.schema import Dataset
from socialrec.represent.profiles import recency_order
from socialrec.represent.tag_profiles import TagProfiles
from socialrec.retrieve.channel_table import channel_kind
from socialrec.retrieve.channels import Candidates
from socialrec.sparse import replace_rows



@dataclass
class Batch:
    """What a feature's column is computed from: the users, their candidates (``safe``: the
    candidate items with padding at 0) and a per-batch memo for parts that features share."""

    users: np.ndarray
    cands: Candidates
    safe: np.ndarray
    memo: dict[str, Any] = field(default_factory=dict)

    def shared(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self.memo:
            self.memo[key] = compute()
        return self.memo[key]


@dataclass(frozen=True)
class Feature:
    """One ranker feature.

    name: its column name ("group:what" or "channel:what").
    group: the explanation signal group its contribution counts for (collaborative, social,
        content, trending, new, popular, sentiment, item, user).
    monotone: +1 where more of it must never lower an item's score (a channel's score,
        similarity, friends who interacted, affinities), -1 where more must never raise it (a
        rank), 0 unconstrained. With the few held-out positives of sparse data, unconstrained
        trees learn noise.
    applies: whether the fitted builder has the data this feature needs.
    column: (builder, batch) -> (n_users, n_candidates) values.
    """

    name: str
    group: str
    monotone: int
    applies: Callable[["FeatureBuilder"], bool]
    column: Callable[["FeatureBuilder", Batch], np.ndarray]


def _always(_b: "FeatureBuilder") -> bool:
    return True


@dataclass(frozen=True)
class ChannelColumn:
    """A channel feature's column: ``part`` is "score" (raw), "z" (standardised over the user's
    whole catalog row) or "log_rank" (of the candidate in the channel's list). A class rather
    than a closure so that fitted models pickle."""

    channel: str
    part: str

    def _stats(self, x: Batch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        def compute() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            full = x.cands.scores[self.channel]
            finite = np.isfinite(full)
            vals = np.where(finite, full, 0.0).astype(np.float64)
            n_fin = np.maximum(finite.sum(axis=1, keepdims=True), 1)
            mean = vals.sum(axis=1, keepdims=True) / n_fin
            var = (np.where(finite, (vals - mean) ** 2, 0.0)).sum(axis=1, keepdims=True) / n_fin
            raw = np.take_along_axis(full, x.safe, axis=1)
            return np.where(np.isfinite(raw), raw, 0.0), mean, np.sqrt(var) + 1e-9
        return x.shared(f"channel:{self.channel}", compute)  # type: ignore[no-any-return]

    def __call__(self, b: "FeatureBuilder", x: Batch) -> np.ndarray:
        if self.part == "log_rank":
            return np.log1p(x.cands.ranks[self.channel].astype(np.float32))
        raw, mean, std = self._stats(x)
        return raw if self.part == "score" else (raw - mean) / std


def channel_features(name: str) -> list[Feature]:
    """The three features of one channel: raw score, per-user z-score and log rank."""
    group = channel_kind(name).group
    return [Feature(f"{name}:score", group, 1, _always, ChannelColumn(name, "score")),
            Feature(f"{name}:z", group, 1, _always, ChannelColumn(name, "z")),
            Feature(f"{name}:log_rank", group, -1, _always, ChannelColumn(name, "log_rank"))]


def _friends_liked(b: "FeatureBuilder", x: Batch) -> tuple[np.ndarray, np.ndarray]:
    def compute() -> tuple[np.ndarray, np.ndarray]:
        f = b.friends_[x.users]  # type: ignore[index]
        n_friends = np.asarray(f.sum(axis=1)).ravel()
        liked = (f @ b.user_items_).toarray()  # friends who interacted with each item
        return np.take_along_axis(liked, x.safe, axis=1), n_friends
    return x.shared("friends_liked", compute)  # type: ignore[no-any-return]


def _text_sim_recent(b: "FeatureBuilder", x: Batch) -> np.ndarray:
    # Cosine of the candidate's text to the mean text of the user's most recent items.
    v = b.item_text_vectors_
    recent = np.asarray(b.recent_[x.users] @ v)
    recent /= np.maximum(np.linalg.norm(recent, axis=1, keepdims=True), 1e-9)
    return np.einsum("nd,nkd->nk", recent, v[x.safe])  # type: ignore[index]


def _category_affinity(b: "FeatureBuilder", x: Batch) -> np.ndarray:
    cat = b.categories_[x.safe]  # type: ignore[index]
    aff = np.take_along_axis(b.category_share_[x.users], np.maximum(cat, 0), axis=1)
    return np.where(cat >= 0, aff, 0.0)


def _has_sentiment(b: "FeatureBuilder") -> bool:
    return b.item_sentiment_ is not None and b.user_mood_ is not None


def _has_friends(b: "FeatureBuilder") -> bool:
    return b.friends_ is not None


def _has_similarity(b: "FeatureBuilder") -> bool:
    return b.item_similarity_ is not None


def _has_text(b: "FeatureBuilder") -> bool:
    return b.item_text_vectors_ is not None


def _has_categories(b: "FeatureBuilder") -> bool:
    return b.categories_ is not None


def _has_tags(b: "FeatureBuilder") -> bool:
    return b.tag_profiles_ is not None


def _log_popularity(b: "FeatureBuilder", x: Batch) -> np.ndarray:
    return b.log_popularity_[x.safe]


def _is_new(b: "FeatureBuilder", x: Batch) -> np.ndarray:
    return b.is_new_[x.safe]


def _log_activity(b: "FeatureBuilder", x: Batch) -> np.ndarray:
    return np.repeat(b.log_activity_[x.users, None], x.safe.shape[1], 1)


def _friends_interacted(b: "FeatureBuilder", x: Batch) -> np.ndarray:
    return _friends_liked(b, x)[0]


def _friend_share(b: "FeatureBuilder", x: Batch) -> np.ndarray:
    count, n_friends = _friends_liked(b, x)
    return count / np.maximum(n_friends, 1.0)[:, None]


def _sim_recent(b: "FeatureBuilder", x: Batch) -> np.ndarray:
    return np.take_along_axis((b.recent_[x.users] @ b.item_similarity_).toarray(), x.safe, axis=1)


def _tag_affinity(b: "FeatureBuilder", x: Batch) -> np.ndarray:
    return b.tag_profiles_.affinity(x.users, x.safe)  # type: ignore[union-attr]


def _item_sentiment(b: "FeatureBuilder", x: Batch) -> np.ndarray:
    return b.item_sentiment_[x.safe]  # type: ignore[index]


def _mood_x_item(b: "FeatureBuilder", x: Batch) -> np.ndarray:
    return b.item_sentiment_[x.safe] * b.user_mood_[x.users, None]  # type: ignore[index]


@dataclass(frozen=True)
class ModalityColumn:
    """Cosine of the candidate's vector in one modality (image, audio...) to the mean vector of
    the user's training items in it ("looks like / sounds like what you liked"). A class rather
    than a closure so that fitted models pickle."""

    modality: str

    def __call__(self, b: "FeatureBuilder", x: Batch) -> np.ndarray:
        v = b.item_modalities_[self.modality]  # type: ignore[index]
        profile = np.asarray(b.user_items_[x.users] @ v, dtype=np.float64)
        profile /= np.maximum(np.linalg.norm(profile, axis=1, keepdims=True), 1e-9)
        return np.einsum("nd,nkd->nk", profile, v[x.safe])


def modality_features(modalities: list[str]) -> list[Feature]:
    """One "content:<name>_sim_profile" feature per item modality (explanation group content)."""
    return [Feature(f"content:{m}_sim_profile", "content", 1, _always, ModalityColumn(m)) for m in modalities]


def unit_modalities(dataset: Dataset | None) -> dict[str, np.ndarray]:
    """The dataset's item modality vectors, centred and unit-normalised (zero rows stay zero)."""
    out: dict[str, np.ndarray] = {}
    from socialrec.retrieve.multimodal import centred_unit_rows, present_mean

    for name, m in ({} if dataset is None else dataset.item_features).items():
        m = np.asarray(m, dtype=np.float32)
        out[name] = centred_unit_rows(m, present_mean(m))
    return out


# The side-information features, in column order after the channels' (an explicit list).
SIDE_FEATURES = (
    Feature("item:log_popularity", "item", 0, _always, _log_popularity),
    Feature("item:is_new", "item", 0, _always, _is_new),
    Feature("user:log_activity", "user", 0, _always, _log_activity),
    Feature("social:friends_interacted", "social", 1, _has_friends, _friends_interacted),
    Feature("social:friend_share", "social", 1, _has_friends, _friend_share),
    Feature("collaborative:sim_recent", "collaborative", 1, _has_similarity, _sim_recent),
    Feature("content:text_sim_recent", "content", 1, _has_text, _text_sim_recent),
    Feature("content:category_affinity", "content", 1, _has_categories, _category_affinity),
    Feature("content:tag_affinity", "content", 1, _has_tags, _tag_affinity),
    Feature("sentiment:item", "sentiment", 0, _has_sentiment, _item_sentiment),
    Feature("sentiment:mood_x_item", "sentiment", 0, _has_sentiment, _mood_x_item),
)


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
        self.features_ = [f for c in self.channel_names_ for f in channel_features(c)]
        self.features_ += [f for f in SIDE_FEATURES if f.applies(self)]
        self.item_modalities_ = unit_modalities(dataset)
        self.features_ += modality_features(list(self.item_modalities_))
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

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features_]

    @property
    def monotone(self) -> list[int]:
        """The ranker's monotone constraint of each column (see `Feature.monotone`)."""
        return [f.monotone for f in self.features_]

    def group_of(self, name: str) -> str:
        """The explanation signal a feature belongs to (collaborative, social, content, ...)."""
        for f in self.features_:
            if f.name == name:
                return f.group
        raise KeyError(f"no ranker feature {name!r}; features: {self.names}")

    def build(self, users: np.ndarray, cands: Candidates) -> FeatureMatrix:
        users = np.asarray(users, dtype=np.int64)
        items = cands.items
        valid = items >= 0
        batch = Batch(users, cands, np.maximum(items, 0))
        n_users, n = items.shape
        values = np.stack([np.asarray(f.column(self, batch), dtype=np.float32) for f in self.features_], axis=2)
        keep = valid.ravel()
        return FeatureMatrix(
            values=values.reshape(n_users * n, -1)[keep],
            users=np.repeat(users, n)[keep],
            items=items.ravel()[keep],
            groups=valid.sum(axis=1),
        )
