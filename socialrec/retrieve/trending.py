"""Trending items and the exposure channel for new items.

`Trending` is popularity with exponential time decay: an interaction ``d`` days older than the
newest training interaction counts ``0.5 ** (d / half_life_days)``. Without timestamps (or when
they are sequence positions rather than times, see ``time_unit``) it is plain popularity.

`NewItems` gives new and rarely seen items a place in the candidate set: it ranks the items
with at most ``max_interactions`` training interactions by a base model's score (by default
text similarity, the only signal such items have) and scores every other item below them.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from socialrec.retrieve.base import BaseRecommender, TrainData


class Trending(BaseRecommender):
    """Recency-decayed popularity.

    half_life_days: decay half-life; None gives plain popularity.
    time_unit: seconds per timestamp unit (86,400 if timestamps are days).
    min_user_history: users with fewer items than this count for nothing (each user counts at
        most once per item anyway): a burst of fresh accounts posting once each cannot make an
        item trend.

    Fold-in ("history"): the trend is re-summed from each user's stored weights. A folded-in
    user's pairs that were already in their row keep their decayed weight; new pairs count as
    the newest interactions (weight 1: a fold-in happens now); pairs no longer in their row stop
    counting. Without timestamps this is exactly the popularity of a refit.
    """

    fold_in = "history"

    def __init__(self, half_life_days: float | None = 7.0, time_unit: float = 1.0, min_user_history: int = 1) -> None:
        self.half_life_days = half_life_days
        self.time_unit = time_unit
        self.min_user_history = min_user_history

    def _fit(self, train: TrainData) -> None:
        x = train.user_items.tocsr()
        weights = self._decayed_weights(train, x)
        self.weights_ = weights.tocsr()  # per (user, item): what a fold-in replaces
        self._sum_weights()

    def _sum_weights(self) -> None:
        counted = (np.diff(self.user_items_.indptr) >= self.min_user_history).astype(np.float32)
        weights = sp.diags(counted) @ self.weights_
        self.trend_ = np.asarray(weights.sum(axis=0)).ravel().astype(np.float32)
        self.recent_counts_ = np.asarray((weights >= 0.5).sum(axis=0)).ravel().astype(np.int64)

    def _fold_in_users(self, users: np.ndarray, social: object) -> None:
        from socialrec.retrieve.fold_in import rows_of
        from socialrec.sparse import replace_rows

        new = self.user_items_[users].astype(np.float32)
        new.data[:] = 1.0
        kept = rows_of(self.weights_, users).multiply(new).tocsr()  # pairs still there keep their weight
        fresh = new - new.multiply(kept > 0)  # new pairs count as the newest: weight 1
        self.weights_ = replace_rows(self.weights_, users, (kept + fresh).tocsr())
        self._sum_weights()

    def _decayed_weights(self, train: TrainData, x: sp.csr_matrix) -> sp.csr_matrix:
        binary = x.copy()
        binary.data[:] = 1.0
        ds = train.dataset
        if self.half_life_days is None or ds is None or ds.interactions["timestamp"].isna().all():
            return binary
        inter = ds.interactions
        users, items = inter["user"].to_numpy(), inter["item"].to_numpy()
        in_train = np.asarray(x[users, items]).ravel() > 0
        ts = inter["timestamp"].to_numpy(np.float64)[in_train]
        if not np.isfinite(ts).any():
            return binary
        latest = np.nanmax(ts)
        age_days = (latest - np.nan_to_num(ts, nan=latest)) * self.time_unit / 86400.0
        w = np.power(0.5, age_days / self.half_life_days).astype(np.float32)
        m = sp.csr_matrix((w, (users[in_train], items[in_train])), shape=x.shape)
        # A pair seen several times counts once, at its most recent weight.
        m.sum_duplicates()
        m.data = np.minimum(m.data, 1.0)
        return m

    def _score(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.trend_, (len(users), self.n_items_))


class NewItems(BaseRecommender):
    """Exposure for new items: the base model's ranking restricted to items with at most
    ``max_interactions`` training interactions (all others score below every new item).

    base: a recommender (unfitted) that can score items nobody interacted with, e.g. the
        content model; fitted together with this one.
    """

    def __init__(self, base: BaseRecommender, max_interactions: int = 2) -> None:
        self.base = base
        self.max_interactions = max_interactions

    @property
    def fold_in(self) -> str | None:  # type: ignore[override]
        """The base model's fold-in; which items are new is recounted from the stored rows."""
        base = getattr(self, "base_", self.base)
        return base.fold_in

    def _fit(self, train: TrainData) -> None:
        self.base_ = self.base.clone().fit(train)
        counts = np.diff(train.user_items.tocsc().indptr)
        self.is_new_ = counts <= self.max_interactions

    def _fold_in_users(self, users: np.ndarray, social: sp.csr_matrix | None) -> None:
        self.base_.partial_fit_users(users, self.user_items_[users], social=social)
        counts = np.bincount(self.user_items_.indices, minlength=self.n_items_)
        self.is_new_ = counts <= self.max_interactions

    def _score(self, users: np.ndarray) -> np.ndarray:
        s = np.asarray(self.base_.score(users), dtype=np.float32).copy()
        # Per row, so that a user's scores do not depend on who else is in the batch.
        floor = s.min(axis=1, keepdims=True) - 1.0
        return np.where(self.is_new_[None, :], s, floor).astype(np.float32)
