"""The hybrid's popularity blend for short histories (socialrec.rank.cold_start): the fusion and
the metric against hand-computed values, the choice of weights on a case whose answer is known,
the wiring into the hybrid's lists, and MovieLens-100k's cold users, where the ranker alone was
far below popularity."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from socialrec.ingest.schema import TrainData
from socialrec.rank.cold_start import (RRF_OFFSET, ColdStartBlend, blended_scores, calibrate, candidate_ndcg,
                                       popularity_rank)
from socialrec.rank.hybrid import HybridRecommender
from tests.contracts.recommender_contract import block_data


def test_blended_scores_are_weighted_reciprocal_ranks_among_the_candidates() -> None:
    items = np.array([3, 1, 2, -1])
    scores = np.array([0.9, 0.5, 0.7, -np.inf], dtype=np.float32)
    prior_rank = np.array([4.0, 1.0, 2.0, 3.0])  # item 1 most popular, then 2, 3, 0
    # Ranker order: 3, 2, 1. Popularity order among the candidates: 1, 2, 3.
    half = blended_scores(items, scores, prior_rank, 0.5)
    c = RRF_OFFSET
    np.testing.assert_allclose(half[:3], [0.5 / (c + 1) + 0.5 / (c + 3), 0.5 / (c + 3) + 0.5 / (c + 1),
                                          0.5 / (c + 2) + 0.5 / (c + 2)], rtol=1e-6)
    assert half[3] == -np.inf
    assert list(np.argsort(-blended_scores(items, scores, prior_rank, 0.0))[:3]) == [0, 2, 1]  # the ranker's
    assert list(np.argsort(-blended_scores(items, scores, prior_rank, 1.0))[:3]) == [1, 2, 0]  # popularity's


def test_weights_apply_by_history_length_and_not_beyond_the_last_measured() -> None:
    blend = ColdStartBlend(histories=(0, 1, 3), weights=(1.0, 0.5, 0.25), prior_rank=np.arange(1.0, 5.0))
    np.testing.assert_array_equal(blend.weight_for(np.array([0, 1, 2, 3, 4, 50])), [1.0, 0.5, 0.5, 0.25, 0.0, 0.0])


def test_candidate_ndcg_matches_a_hand_computed_value() -> None:
    items = np.array([[5, 0, 1, 2, -1], [3, 2, 1, 0, -1]])
    scores = np.array([[1.0, 0.9, 0.8, 0.1, -np.inf], [0.1, 0.2, 0.3, 0.4, -np.inf]], dtype=np.float32)
    truth = sp.csr_matrix(np.array([[0, 1, 1, 0, 0, 0], [0, 0, 0, 1, 0, 0]], dtype=np.float32))
    seen = sp.csr_matrix(np.array([[0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0]], dtype=np.float32))
    got = candidate_ndcg(items, scores, truth, seen, k=2)
    # Row 0: item 5 is seen, so the top 2 = items 0, 1: one hit at position 2 of an ideal two.
    # Row 1: top 2 = items 0, 1 (scores 0.4, 0.3): its one truth item (3) is missed.
    want = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    np.testing.assert_allclose(got, [want, 0.0], rtol=1e-6)


def test_popularity_rank_counts_interactions_ties_by_index() -> None:
    x = sp.csr_matrix(np.array([[1, 0, 1], [0, 0, 1], [1, 0, 0]], dtype=np.float32))
    np.testing.assert_array_equal(popularity_rank(x), [1.0, 3.0, 2.0])


def test_calibration_leans_on_popularity_only_where_the_ranker_is_blind() -> None:
    """A ranker that guesses at random until it has seen 3 items and is exact after: the prior's
    weight is high below 3 items and 0 from 3 on (where blending would change nothing)."""
    n_users, n_items = 60, 20
    rng = np.random.default_rng(0)
    # Every user's training items are among the unpopular 5..19; their labels are items 0, 1, 2,
    # which are also the most popular (prior rank = index + 1).
    rows = sp.csr_matrix(np.array([np.isin(np.arange(n_items), rng.choice(np.arange(5, n_items), 10, replace=False))
                                   for _ in range(n_users)], dtype=np.float32))
    labels = sp.csr_matrix(np.tile(np.arange(n_items) < 3, (n_users, 1)).astype(np.float32))
    position = np.concatenate([np.arange(10) for _ in range(n_users)])  # stored order = time order
    held: dict[int, int] = {}

    def fold_in(users: np.ndarray, revealed: sp.csr_matrix) -> None:
        held.update(zip(users.tolist(), np.diff(revealed.indptr).tolist()))

    def ranked(users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        items = np.tile(np.arange(n_items), (len(users), 1))
        scores = np.stack([np.where(np.arange(n_items) < 3, 1.0, 0.0) if held[u] >= 3 else rng.random(n_items)
                           for u in users.tolist()]).astype(np.float32)
        return items, scores

    blend = calibrate(fold_in, ranked, rows, position, labels, np.arange(n_users),
                      np.arange(1.0, n_items + 1), histories=(0, 1, 2, 3, 5))
    assert blend.histories == (0, 1, 2, 3, 5)
    assert all(w >= 0.75 for w in blend.weights[:3]), blend.evidence
    assert blend.weights[3:] == (0.0, 0.0), blend.evidence
    assert blend.evidence[0]["ndcg@10"]["1.0"] == pytest.approx(1.0)


def _hybrid(**params: object) -> HybridRecommender:
    return HybridRecommender(channels=("itemknn", "pop"), n_candidates=30, ranker="linear", holdout_fraction=0.3,
                             **params)  # type: ignore[arg-type]


def test_the_hybrid_serves_a_new_user_by_the_measured_blend() -> None:
    data = block_data()
    model = _hybrid().fit(TrainData.from_matrix(data))
    assert model.cold_start_ is not None and model.cold_start_.histories[0] == 0
    new = data.shape[0]
    model.partial_fit_users([new], sp.csr_matrix((1, data.shape[1]), dtype=np.float32))
    warm = np.array([0, 5])
    before_warm = model.score(warm)
    prior = popularity_rank(model.user_items_)
    model.cold_start_ = ColdStartBlend(histories=(0,), weights=(1.0,), prior_rank=prior)
    items, scores, _, _ = model.rank_candidates(np.array([new]))
    cand = items[0][items[0] >= 0]
    by_score = cand[np.argsort(-scores[0][items[0] >= 0], kind="stable")]
    np.testing.assert_array_equal(by_score, cand[np.argsort(prior[cand], kind="stable")])
    ids, _ = model.recommend(new, k=5)
    np.testing.assert_array_equal(ids, by_score[:5])
    # Users with items are past the last measured length (0): their scores do not move.
    np.testing.assert_array_equal(model.score(warm), before_warm)
    # cold_start=False: nothing measured, nothing blended.
    assert _hybrid(cold_start=False).fit(TrainData.from_matrix(data)).cold_start_ is None


@pytest.mark.realdata
def test_cold_users_on_movielens_get_at_least_near_popularity(real_movielens) -> None:  # type: ignore[no-untyped-def]
    """MovieLens-100k's cold users (`--protocol cold-user`): the ranker alone scored NDCG@10
    0.10 / 0.28 / 0.35 / 0.34 after 0 / 1 / 3 / 5 items, popularity 0.58 / 0.56 / 0.53 / 0.51."""
    from socialrec.evaluate.protocol import cold_user_curve
    from socialrec.ingest.split import cold_user_split
    from socialrec.retrieve.popular import MostPopular

    split = cold_user_split(real_movielens, seed=0)
    train = split.train_data()
    hybrid = HybridRecommender().fit(train)
    ours = cold_user_curve(hybrid, split, ks=(10,))
    pop = cold_user_curve(MostPopular().fit(train), split, ks=(10,))
    for n in (0, 1, 3, 5):
        assert ours[n]["ndcg@10"] >= 0.9 * pop[n]["ndcg@10"], (n, ours, pop)
