"""Binary-classification metrics: pure numpy functions."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.stats import rankdata


def roc_auc(scores: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Area under the ROC curve by the rank formula (Mann-Whitney U):

    AUC = (sum of the ranks of the positives - n_pos (n_pos + 1) / 2) / (n_pos n_neg),

    ranks 1-based over all scores, tied scores sharing their average rank (a tie counts 1/2):
    the probability that a random positive scores above a random negative.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel()
    if s.shape != y.shape:
        raise ValueError(f"scores has {s.size} values but labels has {y.size}")
    if np.isnan(s).any():
        raise ValueError("scores hold NaN: score every example or drop it")
    y = y.astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"AUC needs both classes; got {n_pos} positive(s) and {n_neg} negative(s)")
    ranks = rankdata(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def brier_score(probabilities: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Mean squared difference between the predicted probability of the positive class and the
    0/1 label (0 is perfect; always predicting 0.5 scores 0.25)."""
    p = np.asarray(probabilities, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel().astype(np.float64)
    if p.shape != y.shape or not p.size:
        raise ValueError(f"need as many probabilities as labels (at least one); got {p.size} and {y.size}")
    return float(np.mean((p - y) ** 2))


def expected_calibration_error(probabilities: npt.ArrayLike, labels: npt.ArrayLike, *, bins: int = 10) -> float:
    """ECE: the probabilities cut into ``bins`` equal-width bins over [0, 1] (a bin holds
    [lo, hi), the last also 1.0); per bin |mean probability - share of positives|, weighted by
    the bin's share of the examples and summed."""
    p = np.asarray(probabilities, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel().astype(np.float64)
    if p.shape != y.shape or not p.size:
        raise ValueError(f"need as many probabilities as labels (at least one); got {p.size} and {y.size}")
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    if p.min() < 0 or p.max() > 1:
        raise ValueError("probabilities must lie in [0, 1]")
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    gap = np.abs(np.bincount(which, weights=p, minlength=bins) - np.bincount(which, weights=y, minlength=bins))
    return float(gap.sum() / p.size)
