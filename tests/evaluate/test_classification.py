from __future__ import annotations

import numpy as np
import pytest

from socialrec.evaluate.classification import roc_auc


def test_auc_on_a_hand_computed_example() -> None:
    # Positives score 0.9, 0.4, 0.4; negatives 0.4, 0.1. Pairs (pos, neg): (0.9,0.4) 1, (0.9,0.1) 1,
    # (0.4,0.4) 1/2 twice, (0.4,0.1) 1 twice: (1 + 1 + 0.5 + 0.5 + 1 + 1) / 6 = 5/6.
    assert roc_auc([0.9, 0.4, 0.4, 0.4, 0.1], [1, 1, 1, 0, 0]) == pytest.approx(5 / 6)
    assert roc_auc([3, 2, 1], [1, 1, 0]) == 1.0
    assert roc_auc([1, 2, 3], [1, 1, 0]) == 0.0
    assert roc_auc([1, 1, 1, 1], [1, 0, 1, 0]) == 0.5


def test_auc_matches_sklearn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    s = np.round(rng.normal(size=500), 1)  # rounding makes ties
    y = rng.random(500) < 0.3
    assert roc_auc(s, y) == pytest.approx(metrics.roc_auc_score(y, s), abs=1e-12)


def test_auc_needs_both_classes() -> None:
    with pytest.raises(ValueError, match="both classes"):
        roc_auc([0.1, 0.2], [1, 1])
