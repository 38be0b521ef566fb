"""Statistics every layer may use (a ground module: it imports no layer)."""

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
