"""Re-ranking edge cases with exact, hand-worked orders: defaults, boundaries (k = 0, empty lists,
equal scores, the category cap below one item), integer inputs, zero vectors, unknown categories,
the numerical span tolerance of DPP, the routing of `rerank`, and `calibrate_weight`'s results and
messages (matched whole)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from socialrec.rank.rerank import calibrate_weight, dpp, mmr, rerank
from tests.rank.test_rerank import _greedy_determinant


def whole(message: str) -> str:
    return f"^{re.escape(message)}$"


# Items 0 and 1 point the same way, item 2 is orthogonal to both.
DUP = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])


# --------------------------------------------------------------------------- mmr


def test_mmr_relevance_is_min_max_scaled_within_the_list() -> None:
    # Scores 3, 2, 1 scale to 1, .5, 0 (so do 103, 102, 101). With diversity .25 the second pick
    # compares .75 * .5 - .25 * 1 = .125 (item 1, a copy of item 0) with .75 * 0 - 0 = 0 (item 2).
    for scores in ([3.0, 2.0, 1.0], [103.0, 102.0, 101.0]):
        assert mmr(np.arange(3), np.array(scores), 3, diversity=0.25, item_vectors=DUP).tolist() == [0, 1, 2]
    # diversity .5: .5 * .5 - .5 * 1 < 0, the orthogonal item comes second.
    assert mmr(np.arange(3), np.array([3.0, 2.0, 1.0]), 3, diversity=0.5, item_vectors=DUP).tolist() == [0, 2, 1]


def test_mmr_with_equal_scores_diversifies_and_keeps_the_given_order() -> None:
    same = np.array([5.0, 5.0, 5.0])
    # All relevances are 1: the first item, then the orthogonal one, then the copy.
    assert mmr(np.arange(3), same, 3, diversity=0.5, item_vectors=DUP).tolist() == [0, 2, 1]
    assert mmr(np.arange(3), same, 2).tolist() == [0, 1]


def test_mmr_reads_small_integer_scores_as_numbers() -> None:
    # int8 scores: -100 .. 100 spans 200, more than int8 holds.
    scores = np.array([-100, 100, 0], dtype=np.int8)
    assert mmr(np.arange(3), scores, 3).tolist() == [1, 2, 0]
    assert mmr(np.arange(3), scores, 3, diversity=0.5, item_vectors=DUP).tolist() == [1, 2, 0]


def test_mmr_takes_integer_item_vectors() -> None:
    ints = np.array([[1, 0], [1, 0], [0, 1]])
    assert mmr(np.arange(3), np.array([3.0, 2.0, 1.0]), 3, diversity=0.5, item_vectors=ints).tolist() == [0, 2, 1]


def test_mmr_treats_a_zero_vector_as_unlike_everything() -> None:
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    # Relevance 1, .5, 0; diversity .5: item 1 gains .25 - .5 < 0, the zero-vector item 0.
    assert mmr(np.arange(3), np.array([3.0, 2.0, 1.0]), 3, diversity=0.5, item_vectors=vectors).tolist() == [0, 2, 1]


def test_mmr_of_nothing_usable_or_of_k_zero_is_empty() -> None:
    assert mmr(np.array([-1, -1]), np.array([1.0, 2.0]), 2, diversity=0.5, item_vectors=DUP).tolist() == []
    assert mmr(np.array([0, 1]), np.array([np.nan, -np.inf]), 2).tolist() == []
    assert mmr(np.arange(3), np.array([3.0, 2.0, 1.0]), 0, diversity=0.5, item_vectors=DUP).tolist() == []
    assert mmr(np.array([0]), np.array([1.0]), 0).tolist() == []


def test_a_cap_below_one_item_still_allows_one_per_category_and_may_shorten_the_list() -> None:
    cats = np.array([0, 0, 1, 1, 2, 2])
    scores = np.array([6.0, 5.0, 4.0, 3.0, 2.0, 1.0])
    # 0.2 * 4 = 0.8 items: the cap is one per category; three categories give three items.
    assert mmr(np.arange(6), scores, 4, item_categories=cats, max_category_share=0.2).tolist() == [0, 2, 4]
    # 0.5 * 4 = 2 per category.
    assert mmr(np.arange(6), scores, 4, item_categories=cats, max_category_share=0.5).tolist() == [0, 1, 2, 3]


def test_ties_keep_the_given_order_in_long_lists() -> None:
    # 40 candidates with two score levels: ties must keep their input order (a stable sort).
    scores = np.array([1.0, 0.0] * 20)
    expected = list(range(0, 40, 2)) + list(range(1, 40, 2))
    assert mmr(np.arange(40), scores, 40).tolist() == expected
    assert dpp(np.arange(40), scores, 40).tolist() == expected
    # One category: DPP takes the best, then everything else lies in its span and comes by score.
    assert dpp(np.arange(40), scores, 40, diversity=0.5, item_categories=np.zeros(40, dtype=np.int64)).tolist() == expected


def test_mmr_cap_message() -> None:
    with pytest.raises(ValueError, match=whole("max_category_share needs item_categories")):
        mmr(np.array([0]), np.array([1.0]), 1, max_category_share=0.5)


# --------------------------------------------------------------------------- dpp


def test_dpp_default_is_no_diversity() -> None:
    assert dpp(np.arange(3), np.array([1.0, 0.9, 0.0]), 3, item_vectors=DUP).tolist() == [0, 1, 2]


def test_dpp_reads_small_integer_scores_as_numbers() -> None:
    scores = np.array([-100, 100, 0], dtype=np.int8)
    assert dpp(np.arange(3), scores, 3).tolist() == [1, 2, 0]
    assert dpp(np.arange(3), scores, 3, diversity=0.5, item_vectors=DUP).tolist() == [1, 2, 0]


def test_dpp_takes_integer_item_vectors() -> None:
    ints = np.array([[1, 0], [1, 0], [0, 1]])
    assert dpp(np.arange(3), np.array([1.0, 0.9, 0.0]), 3, diversity=0.5, item_vectors=ints).tolist() == [0, 2, 1]


def test_dpp_of_nothing_usable_or_of_k_zero_is_empty() -> None:
    assert dpp(np.array([-1, -1]), np.array([1.0, 2.0]), 2, diversity=0.5, item_vectors=DUP).tolist() == []
    assert dpp(np.arange(3), np.array([1.0, 0.9, 0.0]), 0, diversity=0.5, item_vectors=DUP).tolist() == []


def test_dpp_with_equal_scores_is_pure_diversity() -> None:
    # Equal qualities: the first item, the orthogonal one, then the copy (in the span: by score).
    assert dpp(np.arange(3), np.array([5.0, 5.0, 5.0]), 3, diversity=0.5, item_vectors=DUP).tolist() == [0, 2, 1]


def test_dpp_score_scale_takes_large_scores_without_overflow() -> None:
    # Scores 400, 399, 398 shift to 0, -1, -2; diversity .2 gives alpha 2, qualities 1, e^-2, e^-4:
    # item 1 copies item 0 (gain 0), item 2 is orthogonal (gain e^-4 > 0).
    got = dpp(np.arange(3), np.array([400.0, 399.0, 398.0]), 3, diversity=0.2, item_vectors=DUP, scale="score")
    assert got.tolist() == [0, 2, 1]


def test_dpp_treats_a_zero_vector_as_a_direction_of_its_own() -> None:
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    # Relevance 1, .8, .2, 0; diversity .5 so squared qualities are e^r: 2.72, 2.23, 1.22, 1.
    # Item 1 copies item 0 (gain 0 after it); item 3 (zero vector) has self-similarity 1 and
    # shares nothing: gain 1 < 1.22 of item 2. Then item 1 by score.
    got = dpp(np.arange(4), np.array([1.0, 0.9, 0.6, 0.5]), 4, diversity=0.5, item_vectors=vectors)
    assert got.tolist() == [0, 2, 3, 1]


def test_dpp_counts_each_unknown_category_as_its_own() -> None:
    # Unknown (-1) items 0 and 1 are two categories of one item each, not one category and not
    # any known category: one item per category by score (0, 1, 2, 4), then item 3 (category 0 again).
    cats = np.array([-1, -1, 0, 0, 1])
    got = dpp(np.arange(5), np.array([5.0, 4.0, 3.0, 2.0, 1.0]), 5, diversity=0.5, item_categories=cats)
    assert got.tolist() == [0, 1, 2, 4, 3]


def test_dpp_candidates_within_the_numerical_span_come_by_score() -> None:
    # Diversity .04: alpha 12, squared quality e^(24 r), the best e^24 = 2.6e10; a candidate whose
    # remaining gain is under 1e-12 of that (0.026) counts as lying in the span of the picked.
    # Item 2 is orthogonal (gain 1); items 1 (r .5, 1e-4 rad off item 0: gain e^12 * 1e-8 = 1.6e-3)
    # and 3 (r .4, 1e-3 rad off: gain e^9.6 * 1e-6 = 1.5e-2) are near-copies of item 0: they
    # follow by score, 1 before 3, not by their (noise-sized) gains.
    vectors = np.array([[1.0, 0.0, 0.0], [1.0, 1e-4, 0.0], [0.0, 0.0, 1.0], [1.0, -1e-3, 0.0]])
    got = dpp(np.arange(4), np.array([1.0, 0.5, 0.0, 0.4]), 4, diversity=0.04, item_vectors=vectors)
    assert got.tolist() == [0, 2, 1, 3]
    # An orthogonal candidate of the lowest score (gain 1 > 0.026) is still a diverse pick.
    assert dpp(np.arange(3), np.array([1.0, 0.9, 0.0]), 3, diversity=0.04, item_vectors=DUP).tolist() == [0, 2, 1]


def test_dpp_score_scale_equals_brute_force_greedy_determinant_maximisation() -> None:
    # Scores at or below the best (qualities at most 1): every marginal gain is below 1.
    rng = np.random.default_rng(7)
    for diversity in (0.2, 0.5, 0.8):
        vectors = rng.normal(size=(10, 5))
        scores = -3.0 * rng.random(10)
        quality = np.exp((1 - diversity) / (2 * diversity) * (scores - scores.max()))
        unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        got = dpp(np.arange(10), scores, 5, diversity=diversity, item_vectors=vectors, scale="score")
        assert got.tolist() == _greedy_determinant(quality, unit, 5)


def test_dpp_messages() -> None:
    with pytest.raises(ValueError, match=whole("dpp with diversity > 0 needs exactly one of item_vectors and item_categories")):
        dpp(np.arange(3), np.ones(3), 2, diversity=0.5)
    with pytest.raises(ValueError, match=whole("dpp with diversity > 0 needs exactly one of item_vectors and item_categories")):
        dpp(np.arange(3), np.ones(3), 2, diversity=0.5, item_vectors=DUP, item_categories=np.zeros(3, dtype=int))


# --------------------------------------------------------------------------- rerank


def test_rerank_defaults_to_mmr_without_diversity() -> None:
    scores = np.array([1.0, 0.9, 0.0])
    assert rerank(np.arange(3), scores, 3, item_vectors=DUP).tolist() == [0, 1, 2]
    # MMR at .5: item 1 gains .5 * .9 - .5 < 0, item 2 gains 0.
    assert rerank(np.arange(3), scores, 3, diversity=0.5, item_vectors=DUP).tolist() == [0, 2, 1]
    assert rerank(np.arange(3), scores, 3, diversity=0.5, item_vectors=DUP).tolist() == \
        mmr(np.arange(3), scores, 3, diversity=0.5, item_vectors=DUP).tolist()


def test_rerank_mmr_takes_similarity_from_categories_when_there_are_no_vectors() -> None:
    cats = np.array([0, 0, 1, 1])
    assert rerank(np.arange(4), np.array([4.0, 3.0, 2.0, 1.0]), 2, diversity=0.6, item_categories=cats).tolist() == [0, 2]


def test_rerank_mmr_with_vectors_still_applies_the_category_cap() -> None:
    vectors = np.eye(6)
    cats = np.array([0, 0, 0, 0, 1, 2])
    scores = np.array([6.0, 5.0, 4.0, 3.0, 2.0, 1.0])
    got = rerank(np.arange(6), scores, 4, item_vectors=vectors, item_categories=cats, max_category_share=0.5)
    assert got.tolist() == [0, 1, 4, 5]


def test_rerank_dpp_routes_categories_vectors_and_scale() -> None:
    cats = np.array([0, 0, 0, 1, 1, 2])
    scores = np.array([0.9, 0.8, 0.7, 0.5, 0.4, 0.1])
    # Categories alone: one per category by score, then the rest by score.
    assert rerank(np.arange(6), scores, 5, method="dpp", diversity=0.2, item_categories=cats).tolist() == [0, 3, 5, 1, 2]
    # Vectors and categories: similarity from the vectors (all orthogonal: score order), the
    # categories only for the cap (half of 4: two per category).
    got = rerank(np.arange(6), scores, 4, method="dpp", diversity=0.2, item_vectors=np.eye(6), item_categories=cats)
    assert got.tolist() == [0, 1, 2, 3]
    got = rerank(np.arange(6), scores, 4, method="dpp", diversity=0.2, item_vectors=np.eye(6), item_categories=cats,
                 max_category_share=0.5)
    assert got.tolist() == [0, 1, 3, 4]
    # scale reaches dpp: the outlier -50 squeezes the min-max range, not the score scale.
    vectors = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.6, -0.8]])
    scores = np.array([3.0, 2.9, 2.0, -50.0])
    assert rerank(np.arange(4), scores, 2, method="dpp", diversity=0.2, item_vectors=vectors, scale="score").tolist() == [0, 1]
    assert rerank(np.arange(4), scores, 2, method="dpp", diversity=0.2, item_vectors=vectors).tolist() == [0, 2]


def test_rerank_messages() -> None:
    with pytest.raises(ValueError, match=whole("unknown re-ranking method 'xquad'; use one of mmr, dpp")):
        rerank(np.arange(3), np.ones(3), 2, method="xquad")
    with pytest.raises(ValueError, match=whole("max_category_share needs item_categories")):
        rerank(np.arange(3), np.ones(3), 2, method="dpp", max_category_share=0.5)


# --------------------------------------------------------------------------- calibrate_weight

CAL_VECTORS = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def test_dpp_calibration_stops_at_the_span_tolerance() -> None:
    # Items 0, 1 share a direction; 2 and 3 each have their own. Top 3 by score {0, 1, 2}: ILD 2/3;
    # DPP takes {0, 2, 3} (ILD 1, +50%) while item 3 (relevance 0) still counts as a new
    # direction: its squared quality relative to the best, e^(-(1 - d) / d), above 1e-12, i.e.
    # d > 1 / (1 + 12 ln 10) = 0.03493. Bisection from 0.95 in 12 halvings, rounded up: 0.036.
    lists = [(np.arange(4), np.array([1.0, 0.9, 0.8, 0.0]))]
    found = calibrate_weight(lists, 0.25, 3, method="dpp", item_vectors=CAL_VECTORS)
    assert (found.method, found.weight, found.reached, found.n_lists) == ("dpp", 0.036, True, 1)
    assert found.gain == pytest.approx(0.5) and found.base_ild == pytest.approx(2 / 3)
    assert found.trace[0] == (0.95, pytest.approx(0.5)) and len(found.trace) == 14
    # scale="score" on scores 2, 1.8, 1.6, 0: item 3 is 2 below the best, so d > 1 / (1 + 6 ln 10) = 0.06749.
    lists = [(np.arange(4), np.array([2.0, 1.8, 1.6, 0.0]))]
    assert calibrate_weight(lists, 0.25, 3, method="dpp", item_vectors=CAL_VECTORS, scale="score").weight == 0.068
    assert calibrate_weight(lists, 0.25, 3, method="dpp", item_vectors=CAL_VECTORS).weight == 0.036


def test_calibration_over_categories_reaches_a_target_met_exactly() -> None:
    # List A is already diverse at k = 2 (ILD 1); list B's top 2 share a category (ILD 0): base .5.
    # MMR over B takes item 1 (relevance 0, other category) over item 2 (.8, same category) once
    # (1 - w) .8 < w, i.e. w > 4/9: ILD 1 for both, a gain of exactly 1.0 = the target.
    cats = np.array([0, 1, 0, 1])
    lists = [(np.array([0, 1]), np.array([1.0, 0.5])), (np.array([0, 2, 1]), np.array([1.0, 0.8, 0.0]))]
    found = calibrate_weight(lists, 1.0, 2, item_categories=cats)
    assert (found.method, found.weight, found.target, found.gain, found.base_ild, found.reached, found.n_lists) == \
        ("mmr", 0.445, 1.0, 1.0, 0.5, True, 2)
    assert found.trace[0] == (1.0, 1.0) and found.trace[-1] == (0.445, 1.0)


def test_an_unreachable_calibration_reports_everything_it_found() -> None:
    lists = [(np.arange(4), np.array([1.0, 0.9, 0.8, 0.0]))]
    found = calibrate_weight(lists, 0.8, 3, method="mmr", item_vectors=CAL_VECTORS)
    assert found.method == "mmr" and found.weight == 1.0 and found.target == 0.8 and found.reached is False
    assert found.gain == pytest.approx(0.5) and found.base_ild == pytest.approx(2 / 3) and found.n_lists == 1
    assert found.trace == ((1.0, pytest.approx(0.5)),)


def test_calibration_messages() -> None:
    lists = [(np.arange(4), np.array([1.0, 0.9, 0.8, 0.0]))]
    with pytest.raises(ValueError, match=whole("unknown re-ranking method 'xquad'; use one of mmr, dpp")):
        calibrate_weight(lists, 0.2, 3, method="xquad", item_vectors=CAL_VECTORS)
    with pytest.raises(ValueError, match=whole("calibrate_weight needs at least one candidate list")):
        calibrate_weight([], 0.2, 3, item_vectors=CAL_VECTORS)
    with pytest.raises(ValueError, match=whole("give exactly one of item_vectors and item_categories")):
        calibrate_weight(lists, 0.2, 3)
    # Two usable candidates for k = 3, both in category 0: the top lists are not padded with a
    # real item, so there is no diversity to raise.
    no_diversity = ("the score-ordered lists have no diversity to raise (ILD 0 or undefined): "
                    "check that the item space separates the candidates")
    with pytest.raises(ValueError, match=whole(no_diversity)):
        calibrate_weight([(np.array([0, 2, -1]), np.array([1.0, 0.5, 0.3]))], 0.2, 3,
                         item_categories=np.array([0, 1, 0, 1]))


def test_dpp_with_a_tiny_diversity_is_relevance_order_and_does_not_overflow() -> None:
    """(1 - d) / 2d exceeds exp's range for d < 0.0014 on min-max scaled scores."""
    from socialrec.rank.rerank import dpp

    rng = np.random.default_rng(0)
    relevance = rng.random(30)
    vectors = rng.normal(size=(30, 4))
    picked = dpp(np.arange(30), relevance, 10, diversity=1e-4, item_vectors=vectors)
    assert picked.tolist() == np.argsort(-relevance)[:10].tolist()
