"""MMR and the category cap on lists whose right order is worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from socialrec.rank.rerank import calibrate_weight, dpp, mmr, rerank

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


def _greedy_determinant(quality: np.ndarray, unit: np.ndarray, k: int) -> list[int]:
    """Greedy MAP by brute force: each step adds the item that maximises det(L_S)."""
    kernel = quality[:, None] * (unit @ unit.T) * quality[None, :]
    chosen: list[int] = []
    for _ in range(k):
        rest = [i for i in range(len(quality)) if i not in chosen]
        dets = [np.linalg.det(kernel[np.ix_(chosen + [i], chosen + [i])]) for i in rest]
        chosen.append(rest[int(np.argmax(dets))])
    return chosen


def test_dpp_equals_brute_force_greedy_determinant_maximisation() -> None:
    rng = np.random.default_rng(3)
    for trial in range(5):
        vectors = rng.normal(size=(12, 6))
        relevance = rng.random(12)
        diversity = [0.1, 0.25, 0.5, 0.7, 0.9][trial]
        r = (relevance - relevance.min()) / (relevance.max() - relevance.min())
        quality = np.exp((1 - diversity) / (2 * diversity) * r)
        unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        got = dpp(np.arange(12), relevance, 5, diversity=diversity, item_vectors=vectors)
        assert got.tolist() == _greedy_determinant(quality, unit, 5)


def test_dpp_no_diversity_is_score_order_and_skips_padding() -> None:
    items = np.array([4, -1, 2, 7, 9])
    scores = np.array([0.2, 5.0, 0.9, np.nan, 0.5])
    vectors = np.eye(10)
    assert dpp(items, scores, 3, diversity=0.0, item_vectors=vectors).tolist() == [2, 4, 0]
    assert sorted(dpp(items, scores, 5, diversity=0.5, item_vectors=vectors).tolist()) == [0, 2, 4]


def test_dpp_prefers_a_new_direction_over_a_near_duplicate() -> None:
    vectors = np.array([[1.0, 0.0], [0.99, 0.14], [0.0, 1.0]])
    scores = np.array([1.0, 0.95, 0.6])
    assert dpp(np.arange(3), scores, 2, diversity=0.0, item_vectors=vectors).tolist() == [0, 1]
    assert dpp(np.arange(3), scores, 2, diversity=0.3, item_vectors=vectors).tolist() == [0, 2]


def test_dpp_over_categories_takes_one_per_category_then_fills_by_score() -> None:
    cats = np.array([0, 0, 0, 1, 1, 2])
    scores = np.array([0.9, 0.8, 0.7, 0.5, 0.4, 0.1])
    got = dpp(np.arange(6), scores, 5, diversity=0.2, item_categories=cats).tolist()
    assert got[:3] == [0, 3, 5] and got[3:] == [1, 2]


def test_dpp_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        dpp(np.arange(3), np.ones(3), 2, diversity=1.0, item_vectors=np.eye(3))
    with pytest.raises(ValueError, match="exactly one"):
        dpp(np.arange(3), np.ones(3), 2, diversity=0.5)


def test_rerank_applies_the_category_cap_to_the_dpp_order() -> None:
    # Items 0-2 share category 0 and point the same way; 3-5 are orthogonal, one category each.
    vectors = np.array([[1.0, 0, 0, 0], [1.0, 0.05, 0, 0], [1.0, 0, 0.05, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0],
                        [0, 0, 0, 1.0]])
    cats = np.array([0, 0, 0, 1, 2, 3])
    scores = np.array([1.0, 0.99, 0.98, 0.3, 0.2, 0.1])
    assert rerank(np.arange(6), scores, 4, method="dpp", diversity=0.0).tolist() == [0, 1, 2, 3]
    capped = rerank(np.arange(6), scores, 4, method="dpp", diversity=0.0, item_categories=cats, max_category_share=0.5)
    assert capped.tolist() == [0, 1, 3, 4]
    diverse = rerank(np.arange(6), scores, 4, method="dpp", diversity=0.3, item_vectors=vectors)
    assert diverse.tolist()[:1] == [0] and set(diverse.tolist()[1:]) == {3, 4, 5}
    with pytest.raises(ValueError, match="unknown re-ranking method"):
        rerank(np.arange(6), scores, 4, method="xquad")


def test_dpp_score_scale_uses_the_scores_as_they_are() -> None:
    # Min-max scaling makes the choice depend on the worst candidate in the list; with scale
    # "score" only score gaps matter, so appending a terrible candidate changes nothing.
    vectors = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.6, -0.8]])
    scores = np.array([3.0, 2.9, 2.0, -50.0])
    with_bad = dpp(np.arange(4), scores, 2, diversity=0.2, item_vectors=vectors, scale="score")
    without = dpp(np.arange(3), scores[:3], 2, diversity=0.2, item_vectors=vectors[:3], scale="score")
    assert with_bad.tolist() == without.tolist() == [0, 1]
    # min-max: the outlier squeezes 3.0, 2.9 and 2.0 together, and diversity now takes item 2
    assert dpp(np.arange(3), scores[:3], 2, diversity=0.2, item_vectors=vectors[:3]).tolist() == [0, 1]
    assert dpp(np.arange(4), scores, 2, diversity=0.2, item_vectors=vectors).tolist() == [0, 2]
    with pytest.raises(ValueError, match="scale"):
        dpp(np.arange(3), scores[:3], 2, diversity=0.2, item_vectors=vectors[:3], scale="z")


# Items 0 and 1 share a direction, 2 and 3 each have their own; relevance 1, .9, .8, 0 (already
# in [0, 1]). MMR's top 3 by hand: the second pick is item 2 once (1 - w) .8 > (1 - w) .9 - w,
# i.e. w > 1/11; the third is item 3 (gain 0) over item 1 ((1 - w) .9 - w) once w > 9/19. ILD@3
# is 2/3 for {0, 1, 2} (the score order) and for {0, 2, 1}, and 1 for {0, 2, 3}: a +50% gain.
CAL_VECTORS = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
CAL_LIST = (np.arange(4), np.array([1.0, 0.9, 0.8, 0.0]))


def test_calibrated_weight_is_the_smallest_that_buys_the_gain() -> None:
    found = calibrate_weight([CAL_LIST], 0.25, 3, method="mmr", item_vectors=CAL_VECTORS)
    assert found.reached and found.method == "mmr"
    assert found.base_ild == pytest.approx(2 / 3)
    # 9/19 = 0.47368..., rounded up to 3 decimals.
    assert found.weight == pytest.approx(0.474) and found.gain == pytest.approx(0.5)
    below = rerank(*CAL_LIST, 3, method="mmr", diversity=0.473, item_vectors=CAL_VECTORS)
    np.testing.assert_array_equal(below, [0, 2, 1])
    assert all(w <= 1.0 for w, _ in found.trace) and len(found.trace) == 14  # the top, 12 halvings, the rounded


def test_calibration_reports_an_unreachable_gain() -> None:
    found = calibrate_weight([CAL_LIST], 0.8, 3, method="mmr", item_vectors=CAL_VECTORS)
    assert not found.reached and found.weight == 1.0 and found.gain == pytest.approx(0.5)


def test_calibration_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="positive relative ILD gain"):
        calibrate_weight([CAL_LIST], 0.0, 3, item_vectors=CAL_VECTORS)
    with pytest.raises(ValueError, match="exactly one of"):
        calibrate_weight([CAL_LIST], 0.2, 3)
    with pytest.raises(ValueError, match="unknown re-ranking method"):
        calibrate_weight([CAL_LIST], 0.2, 3, method="xquad", item_vectors=CAL_VECTORS)
    with pytest.raises(ValueError, match="no diversity to raise"):
        calibrate_weight([(np.arange(2), np.array([1.0, 0.5]))], 0.2, 2, item_vectors=CAL_VECTORS[:2])
