"""Private EASE (`dp-ease`): the budget, the sensitivity the proof relies on (for both privacy
units, checked by brute force over neighbouring datasets), the twin's equality with EASE, and
noise that really hides what it must."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from socialrec.retrieve.dp_als import analytic_gaussian_epsilon, composed_epsilon
from socialrec.retrieve.dp_ease import DPEASE
from socialrec.retrieve.ease import EASE
from tests.contracts.recommender_contract import block_data


@pytest.fixture(scope="module")
def planted() -> sp.csr_matrix:
    """4 blocks of 50 users, each user with 7 of their block's 10 items."""
    return block_data(n_blocks=4, users_per_block=50, items_per_block=10)


def own_block_share(model: DPEASE, data: sp.csr_matrix) -> float:
    ids, _ = model.recommend(np.arange(data.shape[0]), k=3)
    return float((ids // 10 == (np.arange(data.shape[0]) // 50)[:, None]).mean())


def upper(m: np.ndarray) -> np.ndarray:
    return m[np.triu_indices_from(m)]


def test_the_fit_spends_its_budget_and_no_more(planted: sp.csr_matrix) -> None:
    for unit in ("user", "interaction"):
        for target in (1.0, 8.0):
            model = DPEASE(target_epsilon=target, privacy_unit=unit).fit(planted)
            eps, delta = model.privacy_spent()
            assert model.privacy_spent().unit == unit
            expect_delta = 1.0 / planted.shape[0] if unit == "user" else min(1.0 / planted.nnz, 1.0 / planted.shape[0])
            assert delta == pytest.approx(expect_delta)
            assert 0.999 * target <= eps <= target
            # what the accountant was given: the head release, then the co-occurrence release
            again = composed_epsilon([(model.popularity_noise_, 1), (model.noise_multiplier_, 1)], delta)
            assert again == pytest.approx(eps)
            assert analytic_gaussian_epsilon(model.popularity_noise_, delta) == pytest.approx(0.1 * target, rel=1e-3)
    twin = DPEASE(target_epsilon=None).fit(planted)
    assert twin.privacy_spent() == (math.inf, 0.0) and twin.privacy_spent().unit is None


@pytest.mark.parametrize("m", [1, 3, 20])
def test_one_interaction_moves_the_released_triangle_by_at_most_the_stated_sensitivity(m: int) -> None:
    """Brute force over neighbours: adding any one interaction to any user (histories of every
    length around the weight floor) moves the upper triangle of the weighted co-occurrence by at
    most 1 / sqrt(m), and the bound is nearly reached."""
    model = DPEASE(privacy_unit="interaction", min_weight_count=m)
    rng = np.random.default_rng(0)
    worst = 0.0
    for n in range(0, 2 * m + 3):
        row = np.zeros((1, 60))
        row[0, rng.choice(60, size=n, replace=False)] = 1.0
        g0 = model.weighted_cooccurrence(sp.csr_matrix(row))
        new = rng.choice(np.flatnonzero(row[0] == 0))
        row[0, new] = 1.0
        g1 = model.weighted_cooccurrence(sp.csr_matrix(row))
        worst = max(worst, float(np.linalg.norm(upper(g1 - g0))))
    assert worst <= model.sensitivity() + 1e-12
    assert worst >= 0.9 * model.sensitivity()
    assert model.sensitivity() == pytest.approx(1 / math.sqrt(m))


def test_one_user_moves_the_released_triangle_by_exactly_one() -> None:
    """Every history length uses the whole unit norm the noise is calibrated to (no signal left
    on the table), and never more."""
    model = DPEASE(privacy_unit="user")
    rng = np.random.default_rng(1)
    for n in (1, 2, 5, 60):
        row = np.zeros((1, 60))
        row[0, rng.choice(60, size=n, replace=False)] = 1.0
        assert np.linalg.norm(upper(model.weighted_cooccurrence(sp.csr_matrix(row)))) == pytest.approx(1.0)
    assert not model.weighted_cooccurrence(sp.csr_matrix((1, 60))).any()  # no history, no contribution
    assert model.sensitivity() == 1.0


def test_the_twin_is_ease_on_the_weighted_counts(planted: sp.csr_matrix) -> None:
    """Known answer: without noise, every user with the same number of items (7 here) has the same
    weight w = sqrt(2 / (7 * 8)), so the twin's weights are EASE's on the plain counts with l2 / w."""
    twin = DPEASE(target_epsilon=None, l2=2.0, max_items=None).fit(planted)
    ease = EASE(l2=2.0 / math.sqrt(2 / 56)).fit(planted)
    np.testing.assert_allclose(twin.weights_, ease.weights_, atol=1e-5)
    np.testing.assert_allclose(twin.score(np.arange(5)), ease.score(np.arange(5)), atol=1e-5)


def test_dropout_adds_edlaes_ridge_in_proportion_to_each_items_count() -> None:
    """Known answer (EDLAE, p = 0.5): two items, each held by 2 users, 1 user holding both. Every
    user has 1 or 2 items, below the interaction unit's floor of 2, so each weighs 1/2: the twin's
    counts are [[1, 0.5], [0.5, 1]]. The ridge is l2 (1) + p / (1 - p) (1) * the item's count (1):
    P = inverse([[3, 0.5], [0.5, 3]]) = [[3, -0.5], [-0.5, 3]] / 8.75, so B_01 = 0.5 / 3; without
    dropout P = inverse([[2, 0.5], [0.5, 2]]) and B_01 = 0.5 / 2."""
    data = sp.csr_matrix(np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float64))
    kwargs = {"target_epsilon": None, "privacy_unit": "interaction", "min_weight_count": 2, "l2": 1.0,
              "max_items": None}
    plain = DPEASE(**kwargs).fit(data)
    edlae = DPEASE(dropout=0.5, **kwargs).fit(data)
    np.testing.assert_allclose(plain.weights_, [[0.0, 0.25], [0.25, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(edlae.weights_, [[0.0, 0.5 / 3], [0.5 / 3, 0.0]], rtol=1e-6)


def test_the_head_is_kept_and_the_tail_ranks_below_it(planted: sp.csr_matrix) -> None:
    model = DPEASE(target_epsilon=8.0, max_items=30, l2=1.0).fit(planted)
    head = model.head_items_
    scores = model.score(np.arange(5))
    tail = np.setdiff1d(np.arange(planted.shape[1]), head)
    assert len(head) == 30 and scores[:, tail].max() < scores[:, head].min()


def test_the_twin_recovers_the_blocks_and_tiny_epsilon_does_not(planted: sp.csr_matrix) -> None:
    assert own_block_share(DPEASE(target_epsilon=None, l2=1.0).fit(planted), planted) >= 0.95
    assert own_block_share(DPEASE(target_epsilon=8.0, l2=1.0).fit(planted), planted) >= 0.9
    tiny = DPEASE(target_epsilon=0.02, l2=1.0).fit(planted)
    assert tiny.noise_multiplier_ > 30
    # four blocks: a model that learnt nothing puts a quarter of its top items in the user's block
    assert own_block_share(tiny, planted) <= 0.6


def test_a_new_event_changes_the_users_scores_at_once(planted: sp.csr_matrix) -> None:
    """Fold-in ("history"): the user's new row times the released weights, nothing re-released."""
    model = DPEASE(target_epsilon=8.0, l2=1.0, max_items=None).fit(planted)
    weights = model.weights_.copy()
    before = model.score(np.array([0]))[0]
    row = planted[[0]].toarray()
    row[0, 35] = 1.0  # an item of another block
    model.partial_fit_users(np.array([0]), sp.csr_matrix(row))
    np.testing.assert_array_equal(model.weights_, weights)  # fold-in releases nothing new
    np.testing.assert_allclose(model.score(np.array([0]))[0], row[0] @ weights, rtol=1e-5, atol=1e-5)
    others = [i for i in range(30, 40) if i != 35]  # item 35's block-mates gain from it
    assert (model.score(np.array([0]))[0, others] - before[others]).mean() > 0.05


def test_bad_parameters_are_refused(planted: sp.csr_matrix) -> None:
    for bad, match in (({"target_epsilon": 0.0}, "target_epsilon"), ({"delta": 1.0}, "delta"),
                       ({"privacy_unit": "household"}, "privacy_unit"), ({"l2": 0.0}, "l2"),
                       ({"max_items": 0}, "max_items"), ({"min_weight_count": 0}, "min_weight_count"),
                       ({"popularity_share": 1.0}, "popularity_share"), ({"accountant": "moments"}, "accountant"),
                       ({"dropout": 1.0}, "dropout"), ({"dropout": -0.1}, "dropout")):
        with pytest.raises(ValueError, match=match):
            DPEASE(**bad).fit(planted)


def test_the_model_table_defaults_are_the_benchmarks_validation_choices(planted: sp.csr_matrix) -> None:
    """What `socialrec evaluate --models dp-ease,dp-ease-interaction,ease-twin` runs is what
    benchmarks/privacy_dp.py chose on LastFM's validation part for the epsilon-8 rows and the twin."""
    import json
    from pathlib import Path

    from socialrec.evaluate.suite import (DP_EASE_DEFAULTS, DP_EASE_INTERACTION_DEFAULTS, EASE_TWIN_DEFAULTS,
                                         model_specs)

    doc = json.loads((Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "privacy-dp.json").read_text())
    rows = doc["datasets"]["lastfm"]["models"]
    assert dict(DP_EASE_DEFAULTS) == {"target_epsilon": 8.0, "privacy_unit": "user", **rows["dp-ease eps=8"]["params"]}
    assert dict(DP_EASE_INTERACTION_DEFAULTS) == {"target_epsilon": 8.0, "privacy_unit": "interaction",
                                                  **rows["dp-ease-interaction eps=8"]["params"]}
    assert dict(EASE_TWIN_DEFAULTS) == {"target_epsilon": None, **rows["ease-twin"]["params"]}
    specs = model_specs(quick=True)
    for name, unit in (("dp-ease", "user"), ("dp-ease-interaction", "interaction"), ("ease-twin", None)):
        model = specs[name].make()
        assert isinstance(model, DPEASE)
        assert model.fit(planted).privacy_spent().unit == unit
