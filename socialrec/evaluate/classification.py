"""Binary-classification metrics: pure numpy functions (`roc_auc` lives in the ground module
`socialrec.stats`, which the layers below evaluate use too)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from socialrec.stats import roc_auc

__all__ = ["roc_auc", "brier_score", "expected_calibration_error"]


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
