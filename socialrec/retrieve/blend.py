"""A weighted sum of several recommenders' per-user standardised scores.

Scores of different models live on different scales (EASE's regression weights, ALS dot
products, cosines), so each model's row of scores is standardised per user (mean 0, standard
deviation 1 over all items) before the weighted sum.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from socialrec.retrieve.base import BaseRecommender, TrainData


def standardize_rows(scores: np.ndarray) -> np.ndarray:
    """Each row shifted to mean 0 and scaled to standard deviation 1 (float64; a constant row
    becomes all zeros). Non-finite entries are left out of the statistics and kept as they are."""
    s = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(s)
    n = np.maximum(finite.sum(axis=1, keepdims=True), 1)
    filled = np.where(finite, s, 0.0)
    mean = filled.sum(axis=1, keepdims=True) / n
    var = (np.where(finite, s - mean, 0.0) ** 2).sum(axis=1, keepdims=True) / n
    std = np.sqrt(var)
    std[std == 0] = 1.0
    return np.where(finite, (s - mean) / std, s)


class Blend(BaseRecommender):
    """sum_i weights[i] * standardise(components[i].score(u)).

    components: unfitted recommenders (each is cloned and fitted on the same training data).
    weights: one non-negative weight per component.

    Fold-in: `partial_fit_users` folds the users into every component (see ``fold_in``). A
    blend made by `from_fitted` shares its models: folding into it folds into them.
    """

    def __init__(self, components: Sequence[BaseRecommender], weights: Sequence[float]) -> None:
        self.components = components
        self.weights = weights

    @classmethod
    def from_fitted(cls, models: Sequence[BaseRecommender], weights: Sequence[float] | None = None) -> "Blend":
        """The blend of models that are already fitted on the same users and items (no refit),
        e.g. a hybrid's channels. ``weights`` default to 1 each."""
        weights = [1.0] * len(models) if weights is None else list(weights)
        blend = cls(components=list(models), weights=weights)
        blend._check_weights()
        for m in models:
            m._check_fitted("Blend.from_fitted")
        shapes = {m.user_items_.shape for m in models}
        if len(shapes) != 1:
            raise ValueError(f"Blend.from_fitted needs models fitted on the same users and items, got shapes {sorted(shapes)}")
        blend._set_training_matrix(models[0].user_items_)
        blend.models_ = list(models)
        return blend

    def _check_weights(self) -> None:
        if len(self.components) == 0 or len(self.components) != len(self.weights):
            raise ValueError(f"Blend needs one weight per component, got {len(self.components)} component(s) "
                             f"and {len(self.weights)} weight(s)")
        if min(self.weights) < 0:
            raise ValueError(f"Blend weights must be >= 0, got {list(self.weights)}")

    def _fit(self, train: TrainData) -> None:
        self._check_weights()
        self.models_ = [c.clone().fit(train) for c in self.components]

    @property
    def fold_in(self) -> str | None:  # type: ignore[override]
        """Folds users into every component: None when one of them cannot, "history" when all
        read the stored rows, else the first other kind among them ("solve" or "aggregate")."""
        kinds = [m.fold_in for m in getattr(self, "models_", self.components)]
        if any(k is None for k in kinds):
            return None
        return next((k for k in kinds if k != "history"), "history")

    def _fold_in_users(self, users: np.ndarray, social: sp.csr_matrix | None) -> None:
        rows = self.user_items_[users]
        for m in self.models_:
            m.partial_fit_users(users, rows, social=social)

    def _score(self, users: np.ndarray) -> np.ndarray:
        total = np.zeros((len(users), self.n_items_), dtype=np.float64)
        for w, m in zip(self.weights, self.models_):
            if w:
                total += w * standardize_rows(m.score(users))
        return total.astype(np.float32)

    def _similar_scores(self, items: np.ndarray) -> np.ndarray:
        total = np.zeros((len(items), self.n_items_), dtype=np.float64)
        for w, m in zip(self.weights, self.models_):
            if w:
                s = np.asarray(m._similar_scores(items), dtype=np.float64)
                total += w * standardize_rows(s)
        return total.astype(np.float32)
