"""Most popular items: the baseline every model must beat, and the fallback for unknown users."""

from __future__ import annotations

import numpy as np

from socialrec.retrieve.base import BaseRecommender, TrainData


class MostPopular(BaseRecommender):
    """Scores every item by the number of training users who interacted with it.

    Fold-in ("history"): the counts are recounted from the stored rows, so a folded-in user's
    new items count and their replaced ones no longer do: exactly the counts of a refit.
    """

    fold_in = "history"

    def __init__(self) -> None:
        pass

    def _fit(self, train: TrainData) -> None:
        counts = np.diff(train.user_items.tocsc().indptr).astype(np.float32)
        self.popularity_ = counts

    def _fold_in_users(self, users: np.ndarray, social: object) -> None:
        self.popularity_ = np.bincount(self.user_items_.indices, minlength=self.n_items_).astype(np.float32)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.popularity_, (len(users), self.n_items_))
