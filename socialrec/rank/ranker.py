"""Learned rankers over candidate features: LightGBM LambdaRank, and a linear fallback.

Both expose ``fit(X, y, groups, X_valid, y_valid, groups_valid)``, ``predict(X)`` and
``contributions(X)`` (per-feature additive contributions of each prediction, the last column
being the bias), which is what the explanations use to name the signals that truly produced a
recommendation. LightGBM is optional (extra ``rank``); without it `make_ranker("auto")` gives the
linear blend.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from socialrec.errors import MissingDependencyError
from socialrec.params import HasParams


def _lightgbm() -> Any:
    try:
        import lightgbm
    except ImportError as exc:
        raise MissingDependencyError("lightgbm", "rank", "the LambdaRank ranker") from exc
    return lightgbm


def has_lightgbm() -> bool:
    try:
        _lightgbm()
    except MissingDependencyError:
        return False
    return True


class LambdaRanker(HasParams):
    """LightGBM LambdaRank, optimising NDCG@``eval_at`` with early stopping on the validation groups.

    Trees are built with one thread and a fixed seed, so a fit is reproducible.
    monotone: apply the ``monotone_constraints`` given to `fit` (+1: the prediction never falls
        as the feature rises, -1: never rises, 0: free; the hybrid passes each `Feature`'s): with
        few held-out positives (sparse data) the trees otherwise learn noise.
    """

    def __init__(self, n_estimators: int = 400, learning_rate: float = 0.05, num_leaves: int = 31,
                 min_child_samples: int = 50, subsample: float = 0.8, colsample_bytree: float = 0.9,
                 eval_at: int = 10, early_stopping_rounds: int = 40, monotone: bool = True, seed: int = 0) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.eval_at = eval_at
        self.early_stopping_rounds = early_stopping_rounds
        self.monotone = monotone
        self.seed = seed

    def fit(self, x: np.ndarray, y: np.ndarray, groups: np.ndarray, x_valid: np.ndarray | None = None,
            y_valid: np.ndarray | None = None, groups_valid: np.ndarray | None = None,
            feature_names: list[str] | None = None, monotone_constraints: list[int] | None = None) -> "LambdaRanker":
        lgb = _lightgbm()
        self.booster_params_ = {
            "objective": "lambdarank", "metric": "ndcg", "eval_at": [self.eval_at],
            "learning_rate": self.learning_rate, "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_child_samples, "bagging_fraction": self.subsample, "bagging_freq": 1,
            "feature_fraction": self.colsample_bytree, "seed": self.seed, "num_threads": 1,
            "deterministic": True, "force_row_wise": True, "verbosity": -1,
            "lambdarank_truncation_level": max(20, 2 * self.eval_at),
        }
        names = feature_names or [f"f{i}" for i in range(x.shape[1])]
        if self.monotone and monotone_constraints is not None:
            if len(monotone_constraints) != x.shape[1]:
                raise ValueError(f"monotone_constraints has {len(monotone_constraints)} entries for {x.shape[1]} features")
            self.booster_params_["monotone_constraints"] = [int(d) for d in monotone_constraints]
            self.booster_params_["monotone_constraints_method"] = "advanced"
        train_set = lgb.Dataset(x, label=y, group=groups, feature_name=[_safe(n) for n in names], free_raw_data=True)
        valid_sets, callbacks = [], []
        if x_valid is not None and len(x_valid):
            valid_sets = [lgb.Dataset(x_valid, label=y_valid, group=groups_valid, reference=train_set)]
            callbacks = [lgb.early_stopping(self.early_stopping_rounds, verbose=False)]
        self.booster_ = lgb.train(self.booster_params_, train_set, num_boost_round=self.n_estimators,
                                  valid_sets=valid_sets, callbacks=callbacks)
        self.best_iteration_ = int(self.booster_.best_iteration or self.n_estimators)
        self.feature_names_ = list(names)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.booster_.predict(x, num_iteration=self.best_iteration_, num_threads=1).astype(np.float32)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """SHAP values from the trees: (n, n_features + 1), rows sum to `predict`."""
        return np.asarray(self.booster_.predict(x, num_iteration=self.best_iteration_, pred_contrib=True,
                                                num_threads=1), dtype=np.float32)

    def feature_importance(self) -> dict[str, float]:
        gain = self.booster_.feature_importance(importance_type="gain", iteration=self.best_iteration_)
        total = float(gain.sum()) or 1.0
        return {n: float(g) / total for n, g in zip(self.feature_names_, gain)}


class BaggedRanker:
    """The mean of rankers fitted on folds of the ranker's users (each early-stopped on the fold
    it left out). With a few thousand held-out positives one early-stopping split is noisy (the
    chosen tree count swings from a handful to hundreds between seeds); averaging the folds'
    models removes most of that variance. Predictions, SHAP contributions (additive, so the mean
    of the members' is the mean model's) and gain importances are the members' means."""

    def __init__(self, members: list[LambdaRanker]) -> None:
        if not members:
            raise ValueError("BaggedRanker needs at least one fitted member")
        self.members = list(members)
        self.feature_names_ = list(members[0].feature_names_)
        self.best_iteration_ = int(round(np.mean([m.best_iteration_ for m in members])))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.mean([m.predict(x) for m in self.members], axis=0).astype(np.float32)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        return np.mean([m.contributions(x) for m in self.members], axis=0).astype(np.float32)

    def feature_importance(self) -> dict[str, float]:
        each = [m.feature_importance() for m in self.members]
        return {n: float(np.mean([e[n] for e in each])) for n in self.feature_names_}


class LinearRanker(HasParams):
    """Logistic regression on standardised features (pointwise), the fallback without LightGBM.

    l2: ridge penalty; epochs of full-batch Newton steps (few features, so each is cheap).
    """

    def __init__(self, l2: float = 1.0, steps: int = 25) -> None:
        self.l2 = l2
        self.steps = steps

    def fit(self, x: np.ndarray, y: np.ndarray, groups: np.ndarray, x_valid: np.ndarray | None = None,
            y_valid: np.ndarray | None = None, groups_valid: np.ndarray | None = None,
            feature_names: list[str] | None = None, monotone_constraints: list[int] | None = None) -> "LinearRanker":
        x64 = x.astype(np.float64)
        self.mean_ = x64.mean(axis=0)
        self.scale_ = x64.std(axis=0) + 1e-9
        z = np.hstack([(x64 - self.mean_) / self.scale_, np.ones((len(x64), 1))])
        w = np.zeros(z.shape[1])
        t = (y > 0).astype(np.float64)
        reg = self.l2 * np.eye(z.shape[1])
        reg[-1, -1] = 0.0
        for _ in range(self.steps):
            p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -30, 30)))
            grad = z.T @ (p - t) + reg @ w
            hess = (z * (p * (1 - p))[:, None]).T @ z + reg + 1e-6 * np.eye(len(w))
            w -= np.linalg.solve(hess, grad)
        self.weights_ = w
        self.feature_names_ = list(feature_names or [f"f{i}" for i in range(x.shape[1])])
        return self

    def contributions(self, x: np.ndarray) -> np.ndarray:
        z = (x.astype(np.float64) - self.mean_) / self.scale_
        contrib = z * self.weights_[:-1]
        return np.hstack([contrib, np.full((len(x), 1), self.weights_[-1])]).astype(np.float32)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.contributions(x).sum(axis=1)

    def feature_importance(self) -> dict[str, float]:
        w = np.abs(self.weights_[:-1])
        total = float(w.sum()) or 1.0
        return {n: float(v) / total for n, v in zip(self.feature_names_, w)}


class SingleFeatureRanker(HasParams):
    """Orders candidates by one feature (a channel's score): what the hybrid falls back to when
    the learned ranker does worse than its best channel on held-out users (sparse data)."""

    def __init__(self, feature: str = "") -> None:
        self.feature = feature

    def fit(self, x: np.ndarray, y: np.ndarray, groups: np.ndarray, x_valid: np.ndarray | None = None,
            y_valid: np.ndarray | None = None, groups_valid: np.ndarray | None = None,
            feature_names: list[str] | None = None, monotone_constraints: list[int] | None = None) -> "SingleFeatureRanker":
        names = list(feature_names or [])
        if self.feature not in names:
            raise ValueError(f"SingleFeatureRanker: feature {self.feature!r} is not among {names}")
        self.index_ = names.index(self.feature)
        self.mean_ = float(x[:, self.index_].mean()) if len(x) else 0.0
        self.feature_names_ = names
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return x[:, self.index_].astype(np.float32)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        out = np.zeros((len(x), x.shape[1] + 1), dtype=np.float32)
        out[:, self.index_] = x[:, self.index_] - self.mean_
        out[:, -1] = self.mean_
        return out

    def feature_importance(self) -> dict[str, float]:
        return {n: float(i == self.index_) for i, n in enumerate(self.feature_names_)}


def group_ndcg(scores: np.ndarray, labels: np.ndarray, groups: np.ndarray, k: int = 10) -> float:
    """Mean NDCG@k over groups of rows (binary labels; ties broken by row order)."""
    out, start = [], 0
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    for g in groups:
        s, y = scores[start:start + g], labels[start:start + g]
        start += g
        n_rel = int((y > 0).sum())
        if n_rel == 0:
            continue
        top = np.argsort(-s, kind="stable")[:k]
        dcg = float(((y[top] > 0) * disc[:len(top)]).sum())
        out.append(dcg / float(disc[:min(n_rel, k)].sum()))
    return float(np.mean(out)) if out else 0.0


def make_ranker(kind: str = "auto", seed: int = 0) -> LambdaRanker | LinearRanker:
    """"lightgbm", "linear", or "auto" (LightGBM when installed)."""
    if kind == "lightgbm" or (kind == "auto" and has_lightgbm()):
        return LambdaRanker(seed=seed)
    if kind in ("linear", "auto"):
        return LinearRanker()
    raise ValueError(f"unknown ranker {kind!r}; use 'lightgbm', 'linear' or 'auto'")


def _safe(name: str) -> str:
    # LightGBM refuses some characters in feature names (JSON special characters).
    return name.replace(":", "__").replace("-", "_")
