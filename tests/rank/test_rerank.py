"""MMR and the category cap on lists whose right order is worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from socialrec.rank.rerank import mmr

# Items 0 and 1 point the same way; item 2 is orthogonal to them; item 3 is padding.
VECTORS = np.array([[1.0, 0.0], [0.99, 0.141], [0.0, 1.0], [1.0, 1.0]])


def test_no_diversity_is_score_order() -> None:
    picked = mmr(np.array([0, 1, 2]), np.array([0.9, 0.8, 0.1]), 3, diversity=0.0, item_vectors=VECTORS)
    np.testing.assert_array_equal(picked, [0, 1, 2])


def test_diversity_pulls_the_dissimilar_item_up() -> None:
    # Relevance scaled to [0, 1]: 1, 0.875, 0. With diversity 0.5 the second pick compares
    # 0.5*0.875 - 0.5*0.99 (item 1, almost a copy of item 0) with 0.5*0 - 0.5*0 (item 2).
    picked = mmr(np.array([0, 1, 2]), np.array([0.9, 0.8, 0.1]), 2, diversity=0.5, item_vectors=VECTORS)
    np.testing.assert_array_equal(picked, [0, 2])
    # A little diversity is not enough to pass over the much more relevant near-copy.
    picked = mmr(np.array([0, 1, 2]), np.array([0.9, 0.8, 0.1]), 2, diversity=0.05, item_vectors=VECTORS)
    np.testing.assert_array_equal(picked, [0, 1])


def test_padding_and_non_finite_scores_are_never_picked() -> None:
    picked = mmr(np.array([0, -1, 2, 1]), np.array([0.5, 9.0, -np.inf, 0.4]), 4, diversity=0.3, item_vectors=VECTORS)
    assert set(picked.tolist()) == {0, 3}


def test_category_cap_limits_each_category_share() -> None:
    items = np.arange(6)
    categories = np.array([0, 0, 0, 0, 1, 2])
    picked = mmr(items, np.array([6, 5, 4, 3, 2, 1.0]), 4, item_categories=categories, max_category_share=0.5)
    chosen = items[picked]
    assert np.bincount(categories[chosen]).max() <= 2
    np.testing.assert_array_equal(chosen, [0, 1, 4, 5])


def test_category_similarity_without_vectors() -> None:
    items = np.arange(4)
    categories = np.array([0, 0, 1, 1])
    picked = mmr(items, np.array([4, 3, 2, 1.0]), 2, diversity=0.6, item_categories=categories)
    np.testing.assert_array_equal(items[picked], [0, 2])


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="diversity must be in"):
        mmr(np.array([0]), np.array([1.0]), 1, diversity=1.5)
    with pytest.raises(ValueError, match="needs item_categories"):
        mmr(np.array([0]), np.array([1.0]), 1, max_category_share=0.5)
