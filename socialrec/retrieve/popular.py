"""Most popular items: the baseline every model must beat, and the fallback for unknown users."""

from __future__ import annotations

import numpy as np

from socialrec.retrieve.base import BaseRecommender, TrainData


class MostPopular(BaseRecommender):
    """Scores every item by the number of training users who interacted with it."""

    def __init__(self) -> None:
        pass

    def _fit(self, train: TrainData) -> None:
        counts = np.diff(train.user_items.tocsc().indptr).astype(np.float32)
        self.popularity_ = counts

    def _score(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.popularity_, (len(users), self.n_items_))
