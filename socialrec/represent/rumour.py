"""A text classifier for rumours: L2-regularised logistic regression on TF-IDF vectors of a
post's words (jieba for Chinese) and character n-grams, optionally with the words its readers
wrote about it (comments in the training period), fitted with L-BFGS (scipy).

`time_split_posts` gives the protocol the issue asks for: train on the earlier posts, measure
on the later ones. `RumourClassifier.predict_proba` returns the probability that a text is a
rumour; `rank.rumour` turns it into a ranking policy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from socialrec.errors import NotFittedError
from socialrec.params import HasParams
from socialrec.represent.lexical import TfidfText


class RumourClassifier(HasParams):
    """P(rumour | text).

    l2: weight of the L2 penalty on the coefficients (per training text: the loss is the mean
        log-loss plus ``l2 / 2 * |w|^2``).
    char_ngrams, min_df: as `represent.lexical.TfidfText`.
    class_weight: "balanced" weighs each class by the inverse of its frequency; None weighs
        every text alike.
    max_iter: L-BFGS iterations.
    """

    def __init__(self, l2: float = 1e-4, char_ngrams: tuple[int, int] | None = (2, 3), min_df: int = 2,
                 class_weight: str | None = "balanced", max_iter: int = 500) -> None:
        self.l2 = l2
        self.char_ngrams = char_ngrams
        self.min_df = min_df
        self.class_weight = class_weight
        self.max_iter = max_iter

    def fit(self, texts: Sequence[str], labels: Sequence[int] | np.ndarray) -> "RumourClassifier":
        from scipy.optimize import minimize

        y = np.asarray(labels, dtype=np.float64)
        if len(y) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(y)} labels")
        if set(np.unique(y)) != {0.0, 1.0}:
            raise ValueError("labels must hold both classes, 1 (rumour) and 0 (not), and nothing else")
        if self.l2 <= 0:
            raise ValueError(f"l2 must be > 0, got {self.l2}")
        if self.class_weight not in (None, "balanced"):
            raise ValueError(f"class_weight must be None or 'balanced', got {self.class_weight!r}")
        self.vectorizer_ = TfidfText(char_ngrams=self.char_ngrams, min_df=self.min_df).fit(texts)
        x = sp.hstack([self.vectorizer_.transform(texts), np.ones((len(y), 1))], format="csr").astype(np.float64)
        w_obs = np.ones(len(y))
        if self.class_weight == "balanced":
            pos = y.mean()
            w_obs = np.where(y == 1, 0.5 / pos, 0.5 / (1 - pos))
        w_obs = w_obs / w_obs.sum()
        n_feat = x.shape[1]

        def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
            z = x @ w
            # log(1 + exp(-s z)) with s = 2y - 1, computed stably
            s = 2 * y - 1
            m = -s * z
            value = np.logaddexp(0.0, m)
            p = 1.0 / (1.0 + np.exp(-m))  # d value / d m
            grad = x.T @ (w_obs * p * -s)
            reg = w.copy()
            reg[-1] = 0.0  # no penalty on the intercept
            return float(w_obs @ value + 0.5 * self.l2 * reg @ reg), grad + self.l2 * reg

        res = minimize(loss, np.zeros(n_feat), jac=True, method="L-BFGS-B", options={"maxiter": self.max_iter})
        self.coef_ = res.x[:-1].astype(np.float64)
        self.intercept_ = float(res.x[-1])
        self.converged_ = bool(res.success)
        return self

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        if not hasattr(self, "coef_"):
            raise NotFittedError("RumourClassifier is not fitted: call fit(texts, labels) first")
        return np.asarray(self.vectorizer_.transform(texts) @ self.coef_).ravel() + self.intercept_

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """P(rumour) per text, float64 in (0, 1)."""
        return 1.0 / (1.0 + np.exp(-self.decision_function(texts)))

    def top_terms(self, n: int = 20) -> tuple[list[str], list[str]]:
        """The ``n`` terms that most raise and most lower the rumour probability."""
        terms = self.vectorizer_.terms()
        order = np.argsort(self.coef_)
        return [terms[i] for i in order[::-1][:n]], [terms[i] for i in order[:n]]


def time_split_posts(times: np.ndarray, share: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the earliest ``share`` of posts by time (ties by index) and of the rest."""
    if not 0 < share < 1:
        raise ValueError(f"share must be in (0, 1), got {share}")
    order = np.argsort(np.asarray(times, dtype=np.float64), kind="stable")
    cut = int(round(share * len(order)))
    return np.sort(order[:cut]), np.sort(order[cut:])
