"""The learned rankers recover a planted relevance rule, and their contributions add up."""

from __future__ import annotations

import numpy as np
import pytest

from socialrec.rank.ranker import LambdaRanker, LinearRanker, make_ranker


def planted(n_groups: int = 300, size: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feature 0 decides relevance (the top item of each group is relevant); feature 1 is noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_groups * size, 2)).astype(np.float32)
    y = np.zeros(n_groups * size, dtype=np.float32)
    for g in range(n_groups):
        rows = slice(g * size, (g + 1) * size)
        y[rows][np.argmax(x[rows, 0])] = 1.0
    return x, y, np.full(n_groups, size)


def first_hit_rate(model: LambdaRanker | LinearRanker, x: np.ndarray, y: np.ndarray, size: int) -> float:
    scores = model.predict(x).reshape(-1, size)
    return float(np.mean(y.reshape(-1, size)[np.arange(scores.shape[0]), scores.argmax(axis=1)]))


@pytest.mark.parametrize("ranker", [LambdaRanker(n_estimators=60, min_child_samples=10), LinearRanker()])
def test_ranker_learns_the_planted_rule(ranker: LambdaRanker | LinearRanker) -> None:
    x, y, groups = planted()
    xt, yt, _ = planted(seed=1)
    ranker.fit(x, y, groups, feature_names=["signal", "noise"])
    assert first_hit_rate(ranker, xt, yt, 20) >= 0.8  # random would be 0.05
    importance = ranker.feature_importance()
    assert importance["signal"] > importance["noise"]


@pytest.mark.parametrize("ranker", [LambdaRanker(n_estimators=30, min_child_samples=10), LinearRanker()])
def test_contributions_sum_to_the_prediction(ranker: LambdaRanker | LinearRanker) -> None:
    x, y, groups = planted(n_groups=100)
    ranker.fit(x, y, groups)
    contrib = ranker.contributions(x[:50])
    assert contrib.shape == (50, 3)
    np.testing.assert_allclose(contrib.sum(axis=1), ranker.predict(x[:50]), rtol=1e-4, atol=1e-4)
    # The signal feature's contribution follows the signal.
    assert np.corrcoef(contrib[:, 0], x[:50, 0])[0, 1] > 0.6


def test_early_stopping_uses_the_validation_groups() -> None:
    x, y, groups = planted()
    xv, yv, gv = planted(n_groups=100, seed=2)
    ranker = LambdaRanker(n_estimators=500, early_stopping_rounds=10, min_child_samples=10).fit(x, y, groups, xv, yv, gv)
    assert ranker.best_iteration_ < 500


def test_make_ranker_names() -> None:
    assert isinstance(make_ranker("linear"), LinearRanker)
    assert isinstance(make_ranker("lightgbm"), LambdaRanker)
    with pytest.raises(ValueError, match="unknown ranker"):
        make_ranker("xgboost")


def test_group_ndcg_by_hand() -> None:
    from socialrec.rank.ranker import group_ndcg

    # Group 1: the relevant row ranks second -> 1/log2(3); group 2: first -> 1; group 3: no relevant row, left out.
    scores = np.array([0.9, 0.5, 0.1, 0.8, 0.2, 0.3, 0.1])
    labels = np.array([0, 1, 0, 1, 0, 0, 0])
    assert group_ndcg(scores, labels, np.array([3, 2, 2]), k=10) == pytest.approx((1 / np.log2(3) + 1) / 2)


def test_single_feature_ranker_orders_by_its_feature() -> None:
    from socialrec.rank.ranker import SingleFeatureRanker

    x = np.array([[1.0, 5.0], [2.0, 1.0], [3.0, 0.0]], dtype=np.float32)
    r = SingleFeatureRanker("b").fit(x, np.zeros(3), np.array([3]), feature_names=["a", "b"])
    np.testing.assert_array_equal(r.predict(x), [5.0, 1.0, 0.0])
    np.testing.assert_allclose(r.contributions(x).sum(axis=1), r.predict(x), rtol=1e-6)
    with pytest.raises(ValueError, match="not among"):
        SingleFeatureRanker("c").fit(x, np.zeros(3), np.array([3]), feature_names=["a", "b"])


def test_bagged_ranker_is_the_mean_of_its_members() -> None:
    from socialrec.rank.ranker import BaggedRanker

    x, y, groups = planted(n_groups=120)
    members = [LambdaRanker(n_estimators=20 + 10 * k, min_child_samples=10, seed=k).fit(x, y, groups, feature_names=["signal", "noise"])
               for k in range(3)]
    bag = BaggedRanker(members)
    np.testing.assert_allclose(bag.predict(x[:40]), np.mean([m.predict(x[:40]) for m in members], axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bag.contributions(x[:40]).sum(axis=1), bag.predict(x[:40]), rtol=1e-4, atol=1e-4)
    importance = bag.feature_importance()
    assert importance["signal"] > importance["noise"]
    assert abs(sum(importance.values()) - 1.0) < 1e-6
    with pytest.raises(ValueError, match="at least one"):
        BaggedRanker([])


def test_lambdarank_monotone_constraint_is_applied() -> None:
    """Labels fall as feature 0 rises; constrained to +1, the prediction never falls with it."""
    import numpy as np
    import pytest

    pytest.importorskip("lightgbm")
    from socialrec.rank.ranker import LambdaRanker

    rng = np.random.default_rng(0)
    n_groups, per = 200, 10
    x = rng.random((n_groups * per, 2)).astype(np.float32)
    y = (x[:, 0] < 0.3).astype(np.float32)  # the relevant items have a LOW feature 0
    groups = np.full(n_groups, per)
    free = LambdaRanker(n_estimators=50, min_child_samples=5).fit(x, y, groups, feature_names=["a", "b"])
    tied = LambdaRanker(n_estimators=50, min_child_samples=5).fit(x, y, groups, feature_names=["a", "b"],
                                                                  monotone_constraints=[1, 0])
    grid = np.column_stack([np.linspace(0, 1, 50), np.full(50, 0.5)]).astype(np.float32)
    assert np.all(np.diff(tied.predict(grid)) >= -1e-9)
    assert np.any(np.diff(free.predict(grid)) < -1e-3)  # without the constraint it learns the fall
