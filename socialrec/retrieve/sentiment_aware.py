"""Mood-congruent recommendation: I(u, c) = f(u, c) + g(E(u), c).

f is a base recommender's score, standardised per user; g(E(u), c) = weight * E(u) * s(c), where
E(u) is the user's mood (recency-weighted mean sentiment of their own texts) and s(c) the
item's sentiment (mean sentiment of the reviews about it; for posts, of the post and its
comments), both in [-1, 1] and 0 where unknown (`socialrec.represent.sentiment.sentiment_features`,
computed from training texts only). A cheerful user is nudged towards well-reviewed items, a
gloomy one away from them; ``weight=0`` returns the base model's scores unchanged.

With a ``weight_grid``, the weight is chosen inside fit on validation NDCG@10 (the fitted base
model is scored once per weight, not refitted), like the social model's neighbourhood weight.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from socialrec.retrieve.base import BaseRecommender, TrainData
from socialrec.retrieve.blend import standardize_rows
from socialrec.retrieve.graph_models import validation_ndcg_of


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
    mood term (0 = the base model exactly). weight_grid: further weights; with validation items
    (``TrainData.valid_items``) the one of ``weight`` and ``weight_grid`` with the best
    validation NDCG@10 is used (`weight_` after fit; the scores per weight in
    `fit_choices`). half_life_days: recency weighting of the user's texts for E(u) (None: a
    plain mean).
    """

    def __init__(self, base: str = "ease", base_params: Mapping[str, Any] | None = None,
                 base_model: BaseRecommender | None = None, weight: float = 0.5,
                 weight_grid: tuple[float, ...] = (), half_life_days: float | None = 180.0) -> None:
        self.base = base
        self.base_params = base_params
        self.base_model = base_model
        self.weight = weight
        self.weight_grid = weight_grid
        self.half_life_days = half_life_days

    def _make_base(self) -> BaseRecommender:
        if self.base_model is not None:
            return self.base_model.clone()
        models = _base_models()
        if self.base not in models:
            raise ValueError(f"unknown base model {self.base!r}; use one of {sorted(models)} or pass base_model")
        return models[self.base](**dict(self.base_params or {}))

    def _fit(self, train: TrainData) -> None:
        weights = (float(self.weight), *map(float, self.weight_grid))
        if not np.all(np.isfinite(weights)):
            raise ValueError(f"weight and weight_grid must hold finite numbers, got {weights}")
        self.base_ = self._make_base().fit(train)
        self.weight_ = weights[0]
        self.validation_: dict[float, float] | None = None
        self.user_mood_ = np.zeros(self.n_users_, dtype=np.float64)
        self.item_sentiment_ = np.zeros(self.n_items_, dtype=np.float64)
        if any(weights) and train.dataset is not None and len(train.dataset.texts):
            from socialrec.represent.sentiment import sentiment_features

            f = sentiment_features(train.dataset, train.user_items, half_life_days=self.half_life_days)
            self.user_mood_ = f.user_mood.astype(np.float64)
            self.item_sentiment_ = f.item_sentiment.astype(np.float64)
        valid = train.valid_items
        if len(set(weights)) > 1 and valid is not None and valid.nnz:
            # Chosen on validation NDCG@10 after fitting the base once (ties: the first tried).
            self.validation_ = {}
            for w in dict.fromkeys(weights):
                self.weight_ = w
                # A copy: the scorer masks training items in place, and a base may return a view.
                self.validation_[w] = validation_ndcg_of(lambda b: np.array(self._score(b), dtype=np.float32),
                                                         train.user_items, valid)
            self.weight_ = max(self.validation_, key=self.validation_.get)  # type: ignore[arg-type]

    def fit_choices(self) -> dict[str, Any]:
        """What fit chose on validation: the weight, and each weight's validation NDCG@10 when a
        grid was tried (None otherwise)."""
        self._check_fitted("fit_choices")
        return {"weight": self.weight_, "validation_ndcg@10": self.validation_}

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
        if not self.weight_:
            return f
        mood = self.weight_ * self.user_mood_[users][:, None] * self.item_sentiment_[None, :]
        return (standardize_rows(f) + mood).astype(np.float32)

    def _similar_scores(self, items: np.ndarray) -> np.ndarray:
        # The mood term depends on the user only: item-to-item similarity is the base model's.
        return self.base_._similar_scores(items)
