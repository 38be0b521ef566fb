"""Mood-congruent recommendation: I(u, c) = f(u, c) + g(E(u), c).

f is a base recommender's score, standardised per user; g(E(u), c) = weight * E(u) * s(c), where
E(u) is the user's mood (recency-weighted mean sentiment of their own texts) and s(c) the
item's sentiment (mean sentiment of the reviews about it), both in [-1, 1] and 0 where unknown
(`socialrec.represent.sentiment.sentiment_features`, computed from training reviews only). A
cheerful user is nudged towards well-reviewed items, a gloomy one away from them; ``weight=0``
returns the base model's scores unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from socialrec.retrieve.base import BaseRecommender, TrainData
from socialrec.retrieve.blend import standardize_rows


def _base_models() -> dict[str, Callable[..., BaseRecommender]]:
    from socialrec.retrieve.ease import EASE
    from socialrec.retrieve.implicit_models import ALS
    from socialrec.retrieve.knn import ItemKNN
    from socialrec.retrieve.popular import MostPopular

    def content(**params: Any) -> BaseRecommender:
        from socialrec.retrieve.content import ContentRecommender  # needs the `text` extra

        return ContentRecommender(**params)

    return {"ease": EASE, "itemknn": ItemKNN, "als": ALS, "pop": MostPopular, "content": content}


class SentimentAware(BaseRecommender):
    """A base recommender plus weight * E(u) * s(c) (see the module docstring).

    base: "ease", "itemknn", "als", "pop" or "content"; base_params: its hyperparameters;
    base_model: an unfitted recommender to use instead (cloned at fit). weight: strength of the
    mood term (0 = the base model exactly). half_life_days: recency weighting of the user's
    texts for E(u) (None: a plain mean).
    """

    def __init__(self, base: str = "ease", base_params: Mapping[str, Any] | None = None,
                 base_model: BaseRecommender | None = None, weight: float = 0.5,
                 half_life_days: float | None = 180.0) -> None:
        self.base = base
        self.base_params = base_params
        self.base_model = base_model
        self.weight = weight
        self.half_life_days = half_life_days

    def _make_base(self) -> BaseRecommender:
        if self.base_model is not None:
            return self.base_model.clone()
        models = _base_models()
        if self.base not in models:
            raise ValueError(f"unknown base model {self.base!r}; use one of {sorted(models)} or pass base_model")
        return models[self.base](**dict(self.base_params or {}))

    def _fit(self, train: TrainData) -> None:
        if not np.isfinite(self.weight):
            raise ValueError(f"weight must be a finite number, got {self.weight}")
        self.base_ = self._make_base().fit(train)
        self.user_mood_ = np.zeros(self.n_users_, dtype=np.float64)
        self.item_sentiment_ = np.zeros(self.n_items_, dtype=np.float64)
        if self.weight and train.dataset is not None and len(train.dataset.texts):
            from socialrec.represent.sentiment import sentiment_features

            f = sentiment_features(train.dataset, train.user_items, half_life_days=self.half_life_days)
            self.user_mood_ = f.user_mood.astype(np.float64)
            self.item_sentiment_ = f.item_sentiment.astype(np.float64)

    @property
    def fold_in(self) -> str | None:  # type: ignore[override]
        """The base model's fold-in (see `_fold_in_users` for the mood)."""
        base = getattr(self, "base_", None)
        if base is None:
            try:
                base = self._make_base()
            except ValueError:  # an unknown base name: fit says so
                return None
        return base.fold_in

    def _fold_in_users(self, users: np.ndarray, social: Any) -> None:
        """The base model folds the users in; their mood, from texts that a fold-in does not
        carry, stays what fit found (0, neutral, for new users) until the next `fit`."""
        from socialrec.retrieve.fold_in import grow_rows

        self.base_.partial_fit_users(users, self.user_items_[users], social=social)
        self.user_mood_ = grow_rows(self.user_mood_, self.n_users_)

    def _score(self, users: np.ndarray) -> np.ndarray:
        f = self.base_.score(users)
        if not self.weight:
            return f
        mood = self.weight * self.user_mood_[users][:, None] * self.item_sentiment_[None, :]
        return (standardize_rows(f) + mood).astype(np.float32)

    def _similar_scores(self, items: np.ndarray) -> np.ndarray:
        # The mood term depends on the user only: item-to-item similarity is the base model's.
        return self.base_._similar_scores(items)
