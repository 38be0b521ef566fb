"""The fold-in helpers against references (scipy's optimiser, implicit's own solve) and by
hand-worked cases; models' fold-ins where the contract's block data cannot tell (timestamps,
social rows, the HNSW index, unsupported models)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.optimize import minimize

from socialrec.ingest.schema import build_dataset
from socialrec.retrieve.base import BaseRecommender, TrainData
from socialrec.retrieve.fold_in import grow_square, replace_social_rows, rows_of, social_rows, solve_bpr_users
from socialrec.retrieve.popular import MostPopular
from socialrec.retrieve.social_proof import SocialProof
from socialrec.retrieve.trending import Trending
from tests.contracts.recommender_contract import block_data, block_social_dataset


def test_bpr_solve_reaches_scipys_optimum() -> None:
    """Newton's method on the BPR objective agrees with L-BFGS on the same objective."""
    from scipy.special import expit

    rng = np.random.default_rng(0)
    v, bias = rng.normal(size=(30, 5)), rng.normal(size=30) * 0.1
    row = sp.csr_matrix((np.ones(4), ([0] * 4, [1, 7, 8, 20])), shape=(1, 30))
    prior = rng.normal(size=(1, 5))
    pos, neg = row.indices, np.setdiff1d(np.arange(30), row.indices)

    def objective(u: np.ndarray) -> tuple[float, np.ndarray]:
        s = v @ u + bias
        d = s[neg][None, :] - s[pos][:, None]
        g = expit(d) / d.size
        grad = v[neg].T @ g.sum(axis=0) - v[pos].T @ g.sum(axis=1) + 0.1 * u + 2 * 0.3 * (u - prior[0])
        return float(np.logaddexp(0, d).mean() + 0.05 * u @ u + 0.3 * (u - prior[0]) @ (u - prior[0])), grad

    reference = minimize(objective, np.zeros(5), jac=True, method="L-BFGS-B", options={"gtol": 1e-10}).x
    solved = solve_bpr_users(v, bias, row, regularization=0.1, prior=prior, prior_weight=0.3)
    np.testing.assert_allclose(solved[0], reference, atol=1e-5)
    empty = solve_bpr_users(v, bias, sp.csr_matrix((1, 30)), regularization=0.1, prior=prior, prior_weight=0.3)
    np.testing.assert_allclose(empty[0], prior[0], rtol=1e-6)  # no items: the prior


def test_als_fold_in_is_implicits_own_solve() -> None:
    pytest.importorskip("implicit")
    from socialrec.retrieve.implicit_models import ALS

    data = block_data()
    model = ALS(factors=4, iterations=5, random_state=0).fit(data)
    row = sp.csr_matrix(data[[30]])
    expected = model.model_.recalculate_user(30, row)
    model.partial_fit_users([30, 60], sp.vstack([row, row]).tocsr())
    np.testing.assert_allclose(model.user_factors_[30], expected, rtol=1e-5)
    np.testing.assert_allclose(model.user_factors_[60], expected, rtol=1e-5)
    assert model.user_factors_.shape[0] == 61 and not model.user_factors_[48:60].any()  # empty in between


def test_social_rows_are_padded_and_checked() -> None:
    s = social_rows(sp.csr_matrix(np.array([[0.0, 2.0, 1.0]])), 5)
    assert s.shape == (1, 5) and s.toarray().tolist() == [[0, 1, 1, 0, 0]]
    with pytest.raises(ValueError, match="3 columns but the model has 2 users; fold in the friends first"):
        social_rows(sp.csr_matrix(np.ones((1, 3))), 2)
    graph = sp.csr_matrix(np.array([[0, 1], [1, 0]], dtype=np.float32))
    out = replace_social_rows(graph, np.array([3]), sp.csr_matrix(np.array([[1, 0, 0, 1]], dtype=np.float32)))
    # user 3 follows user 0 (the self-loop is dropped); the old edges stay; users 2 and 3 are new
    assert out.toarray().tolist() == [[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]]
    assert grow_square(graph, 3).shape == (3, 3)
    assert rows_of(graph, np.array([1, 4])).toarray().tolist() == [[1, 0], [0, 0]]


class _NoFoldIn(MostPopular):
    fold_in = None


def test_a_model_without_fold_in_says_to_refit() -> None:
    model = _NoFoldIn().fit(block_data())
    with pytest.raises(NotImplementedError, match=r"_NoFoldIn cannot fold in users without refitting; refit it with fit"):
        model.partial_fit_users([0], block_data()[[0]])


def test_partial_fit_items_is_refused_by_models_without_text() -> None:
    with pytest.raises(NotImplementedError, match="MostPopular cannot place new items without interactions"):
        MostPopular().fit(block_data()).partial_fit_items(["x"], ["some text"])


def _timed(users: list[int], items: list[int], days: list[float]) -> TrainData:
    inter = pd.DataFrame({"user": [str(u) for u in users], "item": [str(i) for i in items],
                          "timestamp": np.asarray(days) * 86400.0})
    ds = build_dataset("timed", inter, users=pd.DataFrame({"id": ["0", "1", "2"]}),
                       items=pd.DataFrame({"id": ["0", "1", "2", "3"]}))
    return TrainData(user_items=ds.user_item_matrix(), dataset=ds)


def test_trending_fold_in_keeps_old_weights_and_counts_new_pairs_as_newest() -> None:
    # user 0 had item 0 at day 0, user 1 item 1 at day 14 (the newest), user 2 item 2 at day 14.
    train = _timed([0, 1, 2], [0, 1, 2], [0.0, 14.0, 14.0])
    model = Trending(half_life_days=7.0).fit(train)
    np.testing.assert_allclose(model.trend_, [0.25, 1.0, 1.0, 0.0])
    # user 0 keeps item 0 (still a quarter), adds item 3 (new: weight 1); user 1 moves to item 2.
    rows = sp.csr_matrix(np.array([[1, 0, 0, 1], [0, 0, 1, 0]], dtype=np.float32))
    model.partial_fit_users([0, 1], rows)
    np.testing.assert_allclose(model.trend_, [0.25, 0.0, 2.0, 1.0])
    np.testing.assert_array_equal(model.recent_counts_, [0, 0, 2, 1])


def test_social_proof_fold_in_reads_the_new_friends() -> None:
    data = block_data()
    train = TrainData(user_items=data, dataset=block_social_dataset(data, 12))
    model = SocialProof(overlap_weight=4.0).fit(train)
    n = data.shape[0]
    friends = np.array([12, 13, 14])  # block 1
    row = sp.csr_matrix((1, data.shape[1]), dtype=np.float32)
    social = sp.csr_matrix((np.ones(3), ([0, 0, 0], friends)), shape=(1, n))
    model.partial_fit_users([n], row, social=social)
    np.testing.assert_array_equal(np.sort(model.tie_strength_[n].indices), friends)
    ids, _ = model.recommend(n, k=5)
    assert np.all(ids // 10 == 1)  # the friends' block
    item = int(ids[0])
    assert {f for f, _ in model.friend_evidence(n, item)} <= set(friends.tolist())
    # The new user's taste, once they have items, strengthens their ties to friends who share it.
    mine = sp.csr_matrix((np.ones(3), ([0, 0, 0], data[12].indices[:3])), shape=(1, data.shape[1]))
    model.partial_fit_users([n], mine)  # no social rows: the friends are kept
    assert model.tie_strength_[n, 12] > 1.0 and set(model.tie_strength_[n].indices) == set(friends.tolist())


def test_content_places_new_items_in_the_hnsw_index() -> None:
    pytest.importorskip("hnswlib")
    from socialrec.retrieve.content import ContentRecommender
    from tests.retrieve.test_content import ENCODER, TOPICS, text_dataset

    data = block_data()
    model = ContentRecommender(encoder_object=ENCODER, index="hnsw", cache=False, hnsw_m=8, hnsw_ef=20).fit(
        TrainData(user_items=data, dataset=text_dataset(data, 10)))
    model.build_index()
    [new] = model.partial_fit_items(["fresh"], [f"{TOPICS[3]} fresh release"])
    assert new == 40 and model.hnsw_.get_current_count() == 41
    users = np.arange(36, 48)  # block 3
    ids, _ = model.recommend(users, k=4)
    exact, _ = BaseRecommender.recommend(model, users, k=4)  # the exact path, for comparison
    np.testing.assert_array_equal(ids, exact)
    assert np.mean([new in row for row in ids]) >= 0.9
