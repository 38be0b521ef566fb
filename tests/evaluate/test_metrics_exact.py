"""Metric edge cases with hand-worked values: F1 below one, one-item catalogs and one-user
training sets, items outside the catalog, padding next to a one-item catalog, and the bootstrap's
defaults, boundaries, percentile positions and messages (matched whole)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from socialrec.evaluate.metrics import bootstrap_ci, catalog_coverage, f1_at_k, gini_index, novelty


def whole(message: str) -> str:
    return f"^{re.escape(message)}$"


def test_f1_of_small_precision_and_recall_and_of_no_hit() -> None:
    hits = np.array([[True, False, False, False], [False, False, False, False], [True, True, False, False]])
    # user 0: p = 1/4, r = 1/2, F1 = 2 (1/8) / (3/4) = 1/3; user 1: 0; user 2: p = 1/2, r = 1, F1 = 2/3.
    np.testing.assert_allclose(f1_at_k(hits, np.array([2, 3, 2]), 4), [1 / 3, 0.0, 2 / 3])
    np.testing.assert_array_equal(f1_at_k(np.zeros((3, 2), dtype=bool), np.array([1, 1, 1]), 2), [0.0, 0.0, 0.0])


def test_a_one_item_catalog_is_a_valid_catalog() -> None:
    top = np.array([[0, -1], [-1, -1]])
    assert catalog_coverage(top, 1, 2) == 1.0
    assert gini_index(top, 1, 2) == 0.0


def test_an_item_outside_the_catalog_is_refused() -> None:
    top = np.array([[0, 3]])
    with pytest.raises(ValueError, match=whole("top_items holds item 3 >= n_items=3")):
        catalog_coverage(top, 3, 2)
    with pytest.raises(ValueError, match=whole("top_items holds item 3 >= n_items=3")):
        gini_index(top, 3, 2)
    assert catalog_coverage(top, 4, 2) == 0.5


def test_an_empty_catalog_is_refused() -> None:
    with pytest.raises(ValueError, match=whole("n_items must be >= 1, got 0")):
        catalog_coverage(np.array([[-1]]), 0, 1)


def test_novelty_with_one_training_user_and_a_one_item_catalog() -> None:
    # pop 1 of 1 user: -log2(1) = 0 bits; the padding next to it is ignored.
    np.testing.assert_array_equal(novelty(np.array([[0, -1]]), np.array([1]), 1, 2), [0.0])
    # pop 1 of 4 users: 2 bits; pop 0 is read as 1.
    np.testing.assert_array_equal(novelty(np.array([[1, -1, 0]]), np.array([1, 0]), 4, 3), [2.0])
    with pytest.raises(ValueError, match=whole("n_users must be >= 1, got 0")):
        novelty(np.array([[0]]), np.array([1]), 0, 1)


def test_bootstrap_of_two_values_spans_both() -> None:
    # Resamples of [0, 1] have mean 0 (a quarter of them), .5 or 1 (a quarter): the 2.5% and
    # 97.5% percentiles of 1000 resample means are 0 and 1.
    assert bootstrap_ci(np.array([0.0, 1.0])) == (0.5, 0.0, 1.0)
    # A 70% interval: the 15th and 85th percentiles, 0 and 1 again; a 10% interval: .5 and .5.
    assert bootstrap_ci(np.array([0.0, 1.0]), alpha=0.3) == (0.5, 0.0, 1.0)
    assert bootstrap_ci(np.array([0.0, 1.0]), alpha=0.9) == (0.5, 0.5, 0.5)


def test_bootstrap_defaults_are_a_thousand_resamples_a_95_percent_interval_and_seed_0() -> None:
    values = np.sqrt(np.arange(1.0, 11.0))  # resample means all distinct: any other draw shows
    explicit = bootstrap_ci(values, n_boot=1000, alpha=0.05, seed=0)
    assert bootstrap_ci(values) == explicit
    assert bootstrap_ci(values, seed=1) != explicit and bootstrap_ci(values, n_boot=1001) != explicit


def test_bootstrap_is_reproducible_from_its_seed() -> None:
    # The resamples are the rows of default_rng(seed).integers(0, n, size=(n_boot, n)), drawn in
    # order: published intervals can be recomputed exactly.
    values = np.sqrt(np.arange(1.0, 11.0))
    means = values[np.random.default_rng(4).integers(0, 10, size=(300, 10))].mean(axis=1)
    low, high = np.percentile(means, [5.0, 95.0])
    assert bootstrap_ci(values, n_boot=300, alpha=0.1, seed=4) == (float(values.mean()), float(low), float(high))


def test_bootstrap_takes_a_single_resample_and_a_narrow_alpha() -> None:
    assert bootstrap_ci(np.array([3.0]), n_boot=1) == (3.0, 3.0, 3.0)
    assert bootstrap_ci(np.array([3.0, 3.0]), alpha=0.01) == (3.0, 3.0, 3.0)
    assert bootstrap_ci([1, 2, 3], n_boot=5) == bootstrap_ci(np.array([1.0, 2.0, 3.0]), n_boot=5)


def test_bootstrap_averages_float32_values_in_float64() -> None:
    values = np.array([0.1, 0.2, 0.7, 0.3, 0.9], dtype=np.float32)
    assert bootstrap_ci(values, n_boot=50) == bootstrap_ci(values.astype(np.float64), n_boot=50)


def test_bootstrap_interval_is_the_alpha_half_percentiles_of_the_resample_means() -> None:
    # With two resamples (means m0 <= m1, d = m1 - m0) linear interpolation puts the interval at
    # m0 + d alpha/2 and m0 + d (1 - alpha/2); alpha .5 gives m0 + d/4 and m0 + 3d/4.
    values = np.arange(10.0)
    _, low, high = bootstrap_ci(values, n_boot=2, alpha=0.5, seed=0)
    d = 2.0 * (high - low)
    m0 = low - d / 4.0
    assert d > 0
    for alpha in (0.02, 0.1, 0.9):
        _, low, high = bootstrap_ci(values, n_boot=2, alpha=alpha, seed=0)
        assert low == pytest.approx(m0 + d * alpha / 2.0, abs=1e-12)
        assert high == pytest.approx(m0 + d * (1.0 - alpha / 2.0), abs=1e-12)


def test_bootstrap_messages() -> None:
    with pytest.raises(ValueError, match=whole("bootstrap_ci needs at least one value")):
        bootstrap_ci(np.array([]))
    with pytest.raises(ValueError, match=whole("n_boot must be >= 1, got 0")):
        bootstrap_ci(np.array([1.0]), n_boot=0)
    for alpha in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match=whole(f"alpha must be in (0, 1), got {alpha}")):
            bootstrap_ci(np.array([1.0]), alpha=alpha)
