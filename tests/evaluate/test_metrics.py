"""Every metric against values worked out by hand (the working is in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from socialrec.evaluate import metrics as M

L3 = math.log2(3)  # discount at rank 2 is 1/log2(3) = 0.63093

# Three users, K = 5 columns, evaluated at k = 3.
#   user 0: hits at ranks 1 and 3, 2 relevant
#   user 1: a hit only at rank 4 (beyond k = 3), 1 relevant
#   user 2: a hit at rank 2, 1 relevant
HITS = np.array(
    [
        [1, 0, 1, 0, 0],
        [0, 0, 0, 1, 0],
        [0, 1, 0, 0, 0],
    ],
    dtype=bool,
)
N_REL = np.array([2, 1, 1])

# One user whose relevant set (5) is larger than k = 3: hits at ranks 1, 3 (and 4, beyond k).
HITS_BIG = np.array([[1, 0, 1, 1]], dtype=bool)
N_REL_BIG = np.array([5])


# --------------------------------------------------------------------------- accuracy


def test_precision() -> None:
    # user 0: 2 hits / k=3; user 1: 0/3 (rank-4 hit is cut); user 2: 1/3
    assert M.precision_at_k(HITS, N_REL, 3) == pytest.approx([2 / 3, 0.0, 1 / 3])
    # |relevant| > k: 2 hits in the first 3 -> 2/3
    assert M.precision_at_k(HITS_BIG, N_REL_BIG, 3) == pytest.approx([2 / 3])


def test_recall_uses_all_relevant_as_denominator() -> None:
    # user 0: 2/2; user 1: 0/1; user 2: 1/1
    assert M.recall_at_k(HITS, N_REL, 3) == pytest.approx([1.0, 0.0, 1.0])
    # RecBole: hits / |relevant| = 2/5, NOT 2/min(5, 3)
    assert M.recall_at_k(HITS_BIG, N_REL_BIG, 3) == pytest.approx([0.4])


def test_f1() -> None:
    # user 0: 2*(2/3)*1 / (2/3 + 1) = (4/3)/(5/3) = 0.8
    # user 1: p = r = 0 -> 0
    # user 2: 2*(1/3)*1 / (1/3 + 1) = (2/3)/(4/3) = 0.5
    assert M.f1_at_k(HITS, N_REL, 3) == pytest.approx([0.8, 0.0, 0.5])
    # p = 2/3, r = 2/5: 2*(4/15) / (16/15) = 0.5
    assert M.f1_at_k(HITS_BIG, N_REL_BIG, 3) == pytest.approx([0.5])


def test_ndcg() -> None:
    # user 0: DCG = 1/log2(2) + 1/log2(4) = 1 + 0.5 = 1.5
    #         IDCG (min(2, 3) = 2 positions) = 1/log2(2) + 1/log2(3) = 1.63093
    #         NDCG = 1.5 / 1.63093 = 0.91972
    # user 1: DCG = 0 -> 0
    # user 2: DCG = 1/log2(3) = 0.63093, IDCG = 1/log2(2) = 1 -> 0.63093
    expected = [1.5 / (1 + 1 / L3), 0.0, 1 / L3]
    assert M.ndcg_at_k(HITS, N_REL, 3) == pytest.approx(expected)
    assert expected[0] == pytest.approx(0.919720, abs=1e-6)


def test_ndcg_idcg_capped_at_k() -> None:
    # |relevant| = 5 > k = 3: IDCG over min(5, 3) = 3 positions = 1 + 1/log2(3) + 1/log2(4) = 2.13093
    # DCG = 1/log2(2) + 1/log2(4) = 1.5 -> NDCG = 1.5 / 2.13093 = 0.70392
    assert M.ndcg_at_k(HITS_BIG, N_REL_BIG, 3) == pytest.approx([1.5 / (1 + 1 / L3 + 0.5)])
    assert M.ndcg_at_k(HITS_BIG, N_REL_BIG, 3)[0] == pytest.approx(0.703918, abs=1e-6)
    # a perfect list of k hits reaches 1 even though |relevant| > k
    assert M.ndcg_at_k(np.ones((1, 3), dtype=bool), np.array([10]), 3) == pytest.approx([1.0])


def test_mrr() -> None:
    # user 0: first hit at rank 1 -> 1; user 1: none within 3 -> 0; user 2: rank 2 -> 1/2
    assert M.mrr_at_k(HITS, N_REL, 3) == pytest.approx([1.0, 0.0, 0.5])
    # with k = 4 user 1's hit at rank 4 counts: 1/4
    assert M.mrr_at_k(HITS, N_REL, 4) == pytest.approx([1.0, 0.25, 0.5])


def test_hit_rate() -> None:
    assert M.hit_rate_at_k(HITS, N_REL, 3) == pytest.approx([1.0, 0.0, 1.0])
    assert M.hit_rate_at_k(HITS, N_REL, 1) == pytest.approx([1.0, 0.0, 0.0])


def test_map() -> None:
    # user 0: precision@1 = 1 (hit), precision@3 = 2/3 (hit) -> (1 + 2/3) / min(2, 3) = 5/6
    # user 1: 0
    # user 2: precision@2 = 1/2 -> (1/2) / min(1, 3) = 0.5
    assert M.map_at_k(HITS, N_REL, 3) == pytest.approx([5 / 6, 0.0, 0.5])
    # |relevant| = 5 > k = 3: (1 + 2/3) / min(5, 3) = 5/9
    assert M.map_at_k(HITS_BIG, N_REL_BIG, 3) == pytest.approx([5 / 9])


def test_metrics_registry() -> None:
    assert set(M.METRICS) == {"precision", "recall", "f1", "ndcg", "mrr", "hit", "map"}
    for fn in M.METRICS.values():
        out = fn(HITS, N_REL, 3)
        assert out.dtype == np.float64 and out.shape == (3,)


@pytest.mark.parametrize("name", sorted(M.METRICS))
def test_users_without_relevant_items_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="n_relevant"):
        M.METRICS[name](HITS, np.array([2, 0, 1]), 3)


def test_k_larger_than_list_rejected() -> None:
    with pytest.raises(ValueError, match="k must be"):
        M.ndcg_at_k(HITS, N_REL, 6)


# --------------------------------------------------------------------------- hits_matrix


def test_padding_is_never_a_hit() -> None:
    # user 0 holds out items 0 and 2; -1 must not match anything (not even "item n_items - 1").
    truth = sp.csr_matrix(np.array([[1, 0, 1, 0], [0, 0, 0, 1]], dtype=np.float32))
    top = np.array([[2, -1, -1], [3, -1, -1]])
    hits = M.hits_matrix(top, truth, np.array([0, 1]))
    assert hits.tolist() == [[True, False, False], [True, False, False]]
    assert M.precision_at_k(hits, np.array([2, 1]), 3) == pytest.approx([1 / 3, 1 / 3])


def test_hits_matrix_matches_brute_force() -> None:
    rng = np.random.default_rng(7)
    n_users, n_items, K = 60, 40, 12
    dense = rng.random((n_users, n_items)) < 0.15
    truth = sp.csr_matrix(dense.astype(np.float32))
    users = rng.integers(0, n_users, size=90)  # repeats allowed, any order
    top = np.stack([rng.choice(n_items, size=K, replace=False) for _ in users])
    top[rng.random(top.shape) < 0.1] = -1
    got = M.hits_matrix(top, truth, users)
    expected = np.zeros(top.shape, dtype=bool)
    for i, u in enumerate(users):
        held = set(np.flatnonzero(dense[u]).tolist())
        for r in range(K):
            expected[i, r] = int(top[i, r]) in held  # -1 is never in `held`
    np.testing.assert_array_equal(got, expected)


def test_hits_matrix_empty_truth_and_bad_items() -> None:
    truth = sp.csr_matrix((2, 5), dtype=np.float32)
    assert not M.hits_matrix(np.array([[0, 1]]), truth, np.array([1])).any()
    with pytest.raises(ValueError):
        M.hits_matrix(np.array([[0, 5]]), truth, np.array([1]))


# --------------------------------------------------------------------------- rank_top_k


def test_rank_top_k_orders_excludes_and_pads() -> None:
    scores = np.array(
        [
            [0.1, 0.9, -np.inf, 0.5, 0.3],
            [-np.inf, 2.0, -np.inf, -np.inf, 1.0],  # only 2 allowed items
            [-np.inf] * 5,  # nothing allowed
        ]
    )
    expected = [[1, 3, 4], [1, 4, -1], [-1, -1, -1]]
    assert M.rank_top_k(scores, 3).tolist() == expected
    assert M.rank_top_k(scores, 3, rng=np.random.default_rng(0)).tolist() == expected
    # k larger than the catalog: padded; -inf item 2 still excluded
    assert M.rank_top_k(scores[:1], 7).tolist() == [[1, 3, 4, 0, -1, -1, -1]]


def test_rank_top_k_ties_deterministic_without_rng() -> None:
    scores = np.array([[1.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    assert M.rank_top_k(scores, 3).tolist() == [[0, 1, 2], [0, 1, 2]]


def test_rank_top_k_ties_uniform_with_rng() -> None:
    # item 0 always first; the second slot is one of the 4 tied items, each ~1/4 of the time
    rng = np.random.default_rng(1)
    scores = np.tile([1.0, 0.0, 0.0, 0.0, 0.0], (4000, 1))
    top = M.rank_top_k(scores, 2, rng=rng)
    assert (top[:, 0] == 0).all()
    freq = np.bincount(top[:, 1], minlength=5)[1:] / 4000
    assert freq == pytest.approx([0.25] * 4, abs=0.03)
    # the order of tied items inside the list is random too
    full = M.rank_top_k(scores[:4000], 5, rng=rng)
    assert np.bincount(full[:, 1], minlength=5)[1:] / 4000 == pytest.approx([0.25] * 4, abs=0.03)
    assert (np.sort(full, axis=1) == np.arange(5)).all()


def test_constant_scorer_gets_random_level_ndcg_only_with_rng() -> None:
    n_users, n_items, k = 4000, 50, 10
    # analytic: the held-out item's rank is uniform on 1..n_items ->
    # E[NDCG@10] = sum_{r=1..10} 1 / (n_items * log2(r + 1)) = 4.5436 / 50 = 0.09087
    expected = sum(1.0 / (n_items * math.log2(r + 1)) for r in range(1, k + 1))
    assert expected == pytest.approx(0.09087, abs=1e-5)
    scores = np.zeros((n_users, n_items))
    users = np.arange(n_users)
    ones = np.ones(n_users)
    n_rel = np.ones(n_users, dtype=np.int64)
    rng = np.random.default_rng(3)

    # one random held-out item per user
    random_truth = sp.csr_matrix((ones, (users, rng.integers(0, n_items, n_users))), shape=(n_users, n_items))
    top = M.rank_top_k(scores, k, rng=rng)
    ndcg = M.ndcg_at_k(M.hits_matrix(top, random_truth, users), n_rel, k).mean()
    assert ndcg == pytest.approx(expected, abs=0.015)

    # every user's held-out item is item 0: index-order tie-breaking would make it "perfect"
    lucky_truth = sp.csr_matrix((ones, (users, np.zeros(n_users, dtype=np.int64))), shape=(n_users, n_items))
    top_rng = M.rank_top_k(scores, k, rng=rng)
    ndcg_rng = M.ndcg_at_k(M.hits_matrix(top_rng, lucky_truth, users), n_rel, k).mean()
    assert ndcg_rng == pytest.approx(expected, abs=0.015)
    top_det = M.rank_top_k(scores, k)  # rng=None: ties by lower index -> item 0 always first
    ndcg_det = M.ndcg_at_k(M.hits_matrix(top_det, lucky_truth, users), n_rel, k).mean()
    assert ndcg_det == pytest.approx(1.0)


# --------------------------------------------------------------------------- beyond accuracy

# 4 items; exposures at k=2: item 0 x3, item 1 x1, item 2 x1, item 3 x0 (the -1 is padding)
TOPS = np.array([[0, 1, 3], [0, 2, 3], [0, -1, 3]])


def test_catalog_coverage() -> None:
    # k=2: items {0, 1, 2} of 4 -> 0.75; k=1: {0} -> 0.25; k=3: all 4 -> 1.0
    assert M.catalog_coverage(TOPS, 4, 2) == pytest.approx(0.75)
    assert M.catalog_coverage(TOPS, 4, 1) == pytest.approx(0.25)
    assert M.catalog_coverage(TOPS, 4, 3) == pytest.approx(1.0)
    assert M.catalog_coverage(np.full((2, 3), -1), 4, 3) == 0.0


def test_gini_hand_computed() -> None:
    # exposures sorted: x = (0, 1, 1, 3), n = 4, sum = 5
    # G = sum_i (2i - n - 1) x_i / (n sum) = (-3*0 - 1*1 + 1*1 + 3*3) / (4*5) = 9/20 = 0.45
    # check with mean absolute difference: sum_{i,j} |x_i - x_j| / (2 n sum x)
    #   unordered pair differences 1+1+3+0+2+2 = 9 -> ordered 18 -> 18 / 40 = 0.45
    assert M.gini_index(TOPS, 4, 2) == pytest.approx(0.45)


def test_gini_extremes() -> None:
    # uniform: each of 4 items shown twice -> 0
    uniform = np.array([[0, 1], [2, 3], [1, 0], [3, 2]])
    assert M.gini_index(uniform, 4, 2) == pytest.approx(0.0)
    # everything on one item of n = 10: x = (0,...,0, 4) -> (2*10 - 10 - 1) * 4 / (10 * 4) = 9/10 = 1 - 1/n
    one = np.array([[5, -1], [5, -1], [5, -1], [5, -1]])
    assert M.gini_index(one, 10, 2) == pytest.approx(1 - 1 / 10)
    assert math.isnan(M.gini_index(np.full((2, 2), -1), 10, 2))


def test_ild_categories() -> None:
    cats = np.array([0, 0, 1, -1])
    top = np.array([[0, 1, 2], [0, 3, 2], [0, 1, -1], [3, -1, 2], [2, 0, 1]])
    # [0,1,2]: pairs (0,1) same, (0,2) diff, (1,2) diff -> 2/3
    # [0,3,2]: item 3 unknown -> only (0,2), diff -> 1
    # [0,1,-1]: only (0,1), same -> 0
    # [3,-1,2]: no pair with two known categories -> NaN
    # [2,0,1] at k=2: only (2,0), diff -> 1
    got = M.intra_list_diversity(top, 3, item_categories=cats)
    np.testing.assert_allclose(got, [2 / 3, 1.0, 0.0, np.nan, 2 / 3])
    assert M.intra_list_diversity(top[4:], 2, item_categories=cats) == pytest.approx([1.0])


def test_ild_vectors() -> None:
    vecs = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0], [0.0, 0.0]])
    # cos(v0, v1) = 0            -> 1
    # cos(v0, v2) = 2/(1*2*sqrt2) = 1/sqrt2 -> 1 - 0.70711 = 0.29289
    # cos(v1, v2) = 1/sqrt2      -> 0.29289
    # mean = (1 + 2 * 0.29289) / 3 = 0.52860
    d = 1 - 1 / math.sqrt(2)
    top = np.array([[0, 1, 2], [0, 2, -1], [0, 3, 1]])
    # row 2: the zero vector (item 3) is left out -> only (0, 1) -> 1
    got = M.intra_list_diversity(top, 3, item_vectors=vecs)
    assert got == pytest.approx([(1 + 2 * d) / 3, d, 1.0])
    assert got[0] == pytest.approx(0.528595, abs=1e-6)


def test_ild_needs_exactly_one_source() -> None:
    top = np.array([[0, 1]])
    with pytest.raises(ValueError):
        M.intra_list_diversity(top, 2)
    with pytest.raises(ValueError):
        M.intra_list_diversity(top, 2, item_vectors=np.eye(2), item_categories=np.array([0, 1]))


def test_novelty() -> None:
    pop = np.array([10, 5, 0, 1])
    # n_users = 20: item 0 -> -log2(10/20) = 1; item 1 -> -log2(5/20) = 2
    # item 2 has pop 0 -> treated as 1: -log2(1/20) = log2(20) = 4.32193; item 3 the same
    top = np.array([[0, 1, 2], [2, -1, -1], [-1, -1, -1]])
    got = M.novelty(top, pop, 20, 2)
    # [0, 1] -> (1 + 2)/2 = 1.5; [2] -> 4.32193; empty -> NaN
    np.testing.assert_allclose(got, [1.5, math.log2(20), np.nan])
    assert M.novelty(top[:1], pop, 20, 3) == pytest.approx([(1 + 2 + math.log2(20)) / 3])


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_ci() -> None:
    rng = np.random.default_rng(0)
    small = rng.random(100)
    large = rng.random(10_000)
    a = M.bootstrap_ci(small, n_boot=500, seed=3)
    assert a == M.bootstrap_ci(small, n_boot=500, seed=3)  # deterministic
    assert a != M.bootstrap_ci(small, n_boot=500, seed=4)
    mean, low, high = a
    assert mean == pytest.approx(small.mean())
    assert low < mean < high
    # the 95% half-width of a mean of U(0,1) is ~1.96 * 0.2887 / sqrt(n): 0.0566 for n=100
    assert (high - low) / 2 == pytest.approx(1.96 * math.sqrt(1 / 12) / 10, rel=0.25)
    _, low2, high2 = M.bootstrap_ci(large, n_boot=500, seed=3)
    assert high2 - low2 < (high - low) / 5  # ~10x narrower with 100x the data
    assert M.bootstrap_ci(np.full(5, 0.3)) == pytest.approx((0.3, 0.3, 0.3))
    with pytest.raises(ValueError):
        M.bootstrap_ci(np.array([]))
