"""Private ALS (`dp-als`): the accountant, the per-user sensitivity the proof relies on, the
closed-form user solve, and noise that really hides users."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from socialrec.retrieve.dp_als import (DPALS, analytic_gaussian_epsilon, composed_epsilon, ridge_user_vectors,
                                       user_statistics)
from tests.contracts.recommender_contract import block_data


@pytest.fixture(scope="module")
def planted() -> sp.csr_matrix:
    """4 blocks of 50 users, each user with 7 of their block's 10 items."""
    return block_data(n_blocks=4, users_per_block=50, items_per_block=10)


def own_block_share(model: DPALS, data: sp.csr_matrix) -> float:
    ids, _ = model.recommend(np.arange(data.shape[0]), k=3)
    return float((ids // 10 == (np.arange(data.shape[0]) // 50)[:, None]).mean())


def test_analytic_gaussian_epsilon_known_answers() -> None:
    from scipy.stats import norm

    # The curve itself: at the returned epsilon, delta(eps) of the Gaussian mechanism is delta.
    for sigma, delta in ((1.0, 1e-5), (0.5, 1e-3), (3.0, 1e-6)):
        eps = analytic_gaussian_epsilon(sigma, delta)
        d = norm.cdf(0.5 / sigma - eps * sigma) - math.exp(eps) * norm.cdf(-0.5 / sigma - eps * sigma)
        assert d == pytest.approx(delta, rel=1e-6)
    # The classical calibration sigma = sqrt(2 ln(1.25 / delta)) / eps (Dwork & Roth, eps < 1) is
    # sufficient, so the exact epsilon of that sigma is below eps, but not by much.
    for eps, delta in ((0.5, 1e-5), (0.9, 1e-6)):
        sigma = math.sqrt(2 * math.log(1.25 / delta)) / eps
        assert 0.6 * eps < analytic_gaussian_epsilon(sigma, delta) < eps
    with pytest.raises(ValueError, match="noise_multiplier"):
        analytic_gaussian_epsilon(0.0, 1e-5)


def test_composition_is_one_gaussian_and_the_accountants_agree() -> None:
    # Full-batch Gaussian mechanisms compose exactly: 1/s^2 = sum of 1/s_i^2.
    pairs = [(2.0, 1), (3.0, 5)]
    s = (2.0 ** -2 + 5 * 3.0 ** -2) ** -0.5
    assert composed_epsilon(pairs, 1e-4) == pytest.approx(analytic_gaussian_epsilon(s, 1e-4), rel=1e-9)
    pytest.importorskip("opacus")
    prv, rdp = composed_epsilon(pairs, 1e-4, "prv"), composed_epsilon(pairs, 1e-4, "rdp")
    exact = composed_epsilon(pairs, 1e-4)
    assert prv == pytest.approx(exact, rel=0.02)  # PRV approximates the exact curve
    assert exact < rdp < 1.3 * exact  # RDP is a valid, looser bound


def test_the_fit_spends_its_budget_and_no_more(planted: sp.csr_matrix) -> None:
    for target in (1.0, 8.0):
        model = DPALS(target_epsilon=target, factors=4, iterations=3).fit(planted)
        eps, delta = model.privacy_spent()
        assert model.privacy_spent().unit == "user"
        assert delta == pytest.approx(1.0 / planted.shape[0])
        assert 0.999 * target <= eps <= target
        # what the accountant was given: the head release once, then one release per sweep
        again = composed_epsilon([(model.popularity_noise_, 1), (model.noise_multiplier_, 3)], delta)
        assert again == pytest.approx(eps)
        # the head release alone costs popularity_share of the budget
        assert analytic_gaussian_epsilon(model.popularity_noise_, delta) == pytest.approx(0.3 * target, rel=1e-3)
    twin = DPALS(target_epsilon=None, factors=4).fit(planted)
    assert twin.privacy_spent() == (math.inf, 0.0) and twin.privacy_spent().unit is None


def test_each_user_moves_the_released_statistics_by_at_most_norm_one() -> None:
    """The proof's sensitivity: adding one user (any row, any history length) changes the Gram
    matrix and the cross moments by Frobenius norm <= 1 each, whatever the item vectors."""
    rng = np.random.default_rng(0)
    items = rng.normal(size=(30, 5)) * rng.uniform(0.1, 10.0, size=(30, 1))
    base = sp.csr_matrix((rng.random((40, 30)) < 0.2).astype(np.float64))
    g0, c0 = user_statistics(base, items, 0.1)
    for n_items in (1, 3, 30):
        row = np.zeros((1, 30))
        row[0, rng.choice(30, size=n_items, replace=False)] = 1.0
        g1, c1 = user_statistics(sp.vstack([base, sp.csr_matrix(row)]).tocsr(), items, 0.1)
        assert np.linalg.norm(g1 - g0) <= 1.0 + 1e-9
        assert np.linalg.norm(c1 - c0) == pytest.approx(1.0)  # tight: a unit vector over sqrt(|r|) items
    # a user with no items adds nothing
    g1, c1 = user_statistics(sp.vstack([base, sp.csr_matrix((1, 30))]).tocsr(), items, 0.1)
    np.testing.assert_allclose(g1, g0) and np.testing.assert_allclose(c1, c0)


def test_the_user_solve_is_the_least_squares_solution() -> None:
    """Known answer: the closed form equals numpy's least squares on the ridge-augmented system
    [V; sqrt(l2) I] x = [r; 0]."""
    rng = np.random.default_rng(1)
    items = rng.normal(size=(25, 4))
    rows = sp.csr_matrix((rng.random((6, 25)) < 0.3).astype(np.float64))
    for l2 in (0.0, 0.5, 3.0):
        got = ridge_user_vectors(rows, items, l2)
        for u in range(rows.shape[0]):
            a = np.vstack([items, math.sqrt(l2) * np.eye(4)])
            b = np.r_[rows[u].toarray().ravel(), np.zeros(4)]
            np.testing.assert_allclose(got[u], np.linalg.lstsq(a, b, rcond=None)[0], atol=1e-10)


def test_users_are_scored_with_their_solved_vectors(planted: sp.csr_matrix) -> None:
    model = DPALS(target_epsilon=8.0, factors=4, max_items=30).fit(planted)
    head = model.head_items_
    expect = ridge_user_vectors(planted[:, head], model.item_factors_[head], model.user_l2)
    np.testing.assert_allclose(model.user_factors_, expect, rtol=1e-6, atol=1e-8)
    scores = model.score(np.arange(5))
    np.testing.assert_allclose(scores[:, head], expect[:5] @ model.item_factors_[head].T, rtol=1e-4, atol=1e-5)
    tail = np.setdiff1d(np.arange(planted.shape[1]), head)
    assert len(head) == 30 and scores[:, tail].max() < scores[:, head].min()  # the tail below the head


def test_the_twin_recovers_the_blocks_and_tiny_epsilon_does_not(planted: sp.csr_matrix) -> None:
    assert own_block_share(DPALS(target_epsilon=None, factors=4).fit(planted), planted) >= 0.95
    assert own_block_share(DPALS(target_epsilon=8.0, factors=4, item_l2=1.0).fit(planted), planted) >= 0.9
    tiny = DPALS(target_epsilon=0.05, factors=4, item_l2=1.0).fit(planted)
    assert tiny.noise_multiplier_ > 20
    # four blocks: a model that learnt nothing puts a quarter of its top items in the user's block
    assert own_block_share(tiny, planted) <= 0.5


def test_bad_parameters_are_refused(planted: sp.csr_matrix) -> None:
    for bad, match in (({"target_epsilon": 0.0}, "target_epsilon"), ({"delta": 1.0}, "delta"),
                       ({"factors": 0}, "factors"), ({"iterations": 0}, "iterations"),
                       ({"gram_share": 1.0}, "gram_share"), ({"popularity_share": 0.0}, "popularity_share"),
                       ({"accountant": "moments"}, "accountant"), ({"user_l2": -1.0}, "user_l2"),
                       ({"max_items": 0}, "max_items")):
        with pytest.raises(ValueError, match=match):
            DPALS(**bad).fit(planted)


def test_the_model_table_knows_dp_als_and_its_twin(planted: sp.csr_matrix) -> None:
    from socialrec.evaluate.suite import model_specs

    specs = model_specs(quick=True)
    dp, twin = specs["dp-als"].make(), specs["als-twin"].make()
    assert isinstance(dp, DPALS) and dp.target_epsilon == 8.0 and dp.delta is None
    assert isinstance(twin, DPALS) and twin.target_epsilon is None
    eps, delta = dp.fit(planted).privacy_spent()
    assert eps <= 8.0 and delta == pytest.approx(1.0 / planted.shape[0])


def test_the_model_table_defaults_are_the_benchmarks_validation_choices() -> None:
    """What `socialrec evaluate --models dp-mf-interaction,dp-als,als-twin` runs is what
    benchmarks/privacy_dp.py chose on LastFM's validation part for the epsilon-8 rows (and the
    twin), so the README's numbers are the product's."""
    import json
    from pathlib import Path

    from socialrec.evaluate.suite import (ALS_TWIN_DEFAULTS, DP_ALS_DEFAULTS, DP_MF_INTERACTION_DEFAULTS,
                                         MF_INTERACTION_DEFAULTS)

    doc = json.loads((Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "privacy-dp.json").read_text())
    rows = doc["datasets"]["lastfm"]["models"]
    inter = rows["dp-mf-interaction eps=8"]
    assert dict(DP_MF_INTERACTION_DEFAULTS) == {"target_epsilon": 8.0, **inter["base"], **inter["params"]}
    twin = rows["interaction-twin"]
    assert dict(MF_INTERACTION_DEFAULTS) == {"target_epsilon": None, **twin["base"], **twin["params"]}
    assert {**DPALS().get_params(), **dict(DP_ALS_DEFAULTS)} == {**DPALS().get_params(), "target_epsilon": 8.0,
                                                                 **rows["dp-als eps=8"]["params"]}
    assert {**DPALS().get_params(), **dict(ALS_TWIN_DEFAULTS)} == {**DPALS().get_params(), "target_epsilon": None,
                                                                   **rows["als-twin"]["params"]}
