"""DP-SGD training of `dp-mf`: the accountant's budget, and noise that really hides users."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("torch")
pytest.importorskip("opacus")

from socialrec.retrieve.dp_mf import DPMF, MF  # noqa: E402
from tests.contracts.recommender_contract import block_data  # noqa: E402

FAST = dict(factors=8, learning_rate=0.05, epochs=20, batch_size=50, random_state=0)


@pytest.fixture(scope="module")
def planted() -> sp.csr_matrix:
    """4 blocks of 50 users, each user with 7 of their block's 10 items."""
    return block_data(n_blocks=4, users_per_block=50, items_per_block=10)


def own_block_share(model: MF, data: sp.csr_matrix) -> float:
    ids, _ = model.recommend(np.arange(data.shape[0]), k=3)
    return float((ids // 10 == (np.arange(data.shape[0]) // 50)[:, None]).mean())


def test_spent_epsilon_is_within_the_target_and_close_to_it(planted: sp.csr_matrix) -> None:
    for target in (1.0, 4.0):
        model = DPMF(target_epsilon=target, **FAST).fit(planted)
        eps, delta = model.privacy_spent()
        assert delta == pytest.approx(1.0 / planted.shape[0])  # delta=None: 1 / n_users
        assert target * 0.9 <= eps <= target, (target, eps)
        assert model.noise_multiplier_ > 0.5 and model.steps_ == 20 * 4  # 4 batches of 50 per epoch


def test_the_head_selection_is_paid_from_the_same_budget(planted: sp.csr_matrix) -> None:
    model = DPMF(target_epsilon=2.0, max_items=20, popularity_share=0.2, **FAST).fit(planted)
    eps, _ = model.privacy_spent()
    assert 1.8 <= eps <= 2.0 and model.popularity_noise_ > 0 and len(model.head_items_) == 20
    alone = DPMF(target_epsilon=2.0, **FAST).fit(planted)
    assert model.noise_multiplier_ > alone.noise_multiplier_  # DP-SGD got less of the budget
    tail = np.setdiff1d(np.arange(planted.shape[1]), model.head_items_)
    scores = model.score(np.arange(5))
    assert scores[:, tail].max() < scores[:, model.head_items_].min()  # the tail ranks below the head


def test_mf_recovers_the_blocks_and_tiny_epsilon_does_not(planted: sp.csr_matrix) -> None:
    mf = MF(**FAST).fit(planted)
    assert own_block_share(mf, planted) >= 0.95
    assert mf.privacy_spent() == (math.inf, 0.0)
    private = DPMF(target_epsilon=0.05, **FAST).fit(planted)
    assert private.noise_multiplier_ > 10
    # four blocks: a model that learnt nothing puts a quarter of its top items in the user's block
    assert own_block_share(private, planted) <= 0.5
    assert np.abs(private.item_factors_ - mf.item_factors_).max() > 0.1


def test_a_generous_budget_learns_the_blocks_too(planted: sp.csr_matrix) -> None:
    """The noise, not the clipping or the training, is what hides the blocks above."""
    model = DPMF(target_epsilon=30.0, max_grad_norm=1.0, **FAST).fit(planted)
    assert own_block_share(model, planted) >= 0.9


def test_fold_in_spends_nothing_and_changes_no_parameter(planted: sp.csr_matrix) -> None:
    model = DPMF(target_epsilon=4.0, **FAST).fit(planted)
    before = (model.privacy_spent(), model.item_factors_.copy(), model.item_bias_.copy())
    row = sp.csr_matrix(planted[[0]])
    model.partial_fit_users([planted.shape[0]], row)
    assert model.privacy_spent() == before[0]
    np.testing.assert_array_equal(model.item_factors_, before[1])
    np.testing.assert_array_equal(model.item_bias_, before[2])
    np.testing.assert_allclose(model.score([planted.shape[0]]), model.score([0]), rtol=1e-6)


def test_bad_budgets_are_refused(planted: sp.csr_matrix) -> None:
    for bad, match in (({"target_epsilon": 0.0}, "target_epsilon"), ({"delta": 1.5}, "delta"),
                       ({"max_grad_norm": -1.0}, "max_grad_norm"), ({"accountant": "gdp"}, "accountant")):
        with pytest.raises(ValueError, match=match):
            DPMF(**{**FAST, **bad}).fit(planted)


def test_without_opacus_the_error_names_the_extra(planted: sp.csr_matrix, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from socialrec.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "opacus", None)  # import opacus now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'socialrec\[privacy-dp\]'"):
        DPMF(**FAST).fit(planted)
    MF(**FAST).fit(planted)  # the non-private twin needs torch only


# --- the interaction unit: a record is one (user, item) interaction -------------------------------
INTERACTION = dict(FAST, privacy_unit="interaction", batch_size=200, max_grad_norm=1.0)


def test_interaction_unit_spends_at_most_its_target_over_the_interactions(planted: sp.csr_matrix) -> None:
    n_interactions = planted.nnz
    for target in (1.0, 4.0):
        model = DPMF(target_epsilon=target, **INTERACTION).fit(planted)
        spent = model.privacy_spent()
        eps, delta = spent  # still a plain pair
        assert spent.unit == model.privacy_unit_ == "interaction"
        # delta=None: min(1 / n_interactions, 1 / n_users)
        assert delta == pytest.approx(min(1.0 / n_interactions, 1.0 / planted.shape[0]))
        assert target * 0.9 <= eps <= target, (target, eps)
        # the accountant ran over the interactions: Poisson rate = batch / n_interactions
        assert model.sample_rate_ == pytest.approx(1.0 / math.ceil(n_interactions / 200))
        assert model.steps_ == 20 * math.ceil(n_interactions / 200)
        assert model.noise_multiplier_ > 0.3
    user = DPMF(target_epsilon=4.0, **FAST).fit(planted)
    assert user.privacy_spent().unit == "user" and user.privacy_unit_ == "user"
    assert MF(**FAST).fit(planted).privacy_spent().unit is None


def test_interaction_unit_adds_noise(planted: sp.csr_matrix) -> None:
    """Same seed and data: a smaller budget means more noise, hence different item vectors. (The
    RDP accountant cannot certify much below epsilon ~0.12 at delta 1/1400 even with huge noise,
    so the tight budget here is moderate.)"""
    loose = DPMF(target_epsilon=30.0, **INTERACTION).fit(planted)
    tight = DPMF(target_epsilon=2.0, **INTERACTION).fit(planted)
    assert tight.noise_multiplier_ > 2 * loose.noise_multiplier_
    assert np.abs(tight.item_factors_ - loose.item_factors_).max() > 0.1
    assert own_block_share(loose, planted) >= 0.9


def test_without_a_budget_the_interaction_unit_is_its_non_private_twin(planted: sp.csr_matrix) -> None:
    """target_epsilon=None: the same model and training, no noise and no clipping (the twin the
    interaction unit keeps its NDCG against): nothing spent, exact counts, learns the blocks."""
    twin = DPMF(target_epsilon=None, **INTERACTION).fit(planted)
    assert tuple(twin.privacy_spent()) == (math.inf, 0.0) and twin.privacy_spent().unit is None
    assert twin.noise_multiplier_ == 0.0 and twin.popularity_noise_ == 0.0
    exact = np.asarray(planted.sum(axis=0)).ravel()
    np.testing.assert_allclose(twin.item_popularity_, exact)  # no noise on the counts
    assert twin.steps_ == 20 * math.ceil(planted.nnz / 200)
    assert own_block_share(twin, planted) >= 0.95
    again = DPMF(target_epsilon=None, **INTERACTION).fit(planted)
    np.testing.assert_array_equal(twin.item_factors_, again.item_factors_)  # seeded: repeatable
    noisy = DPMF(target_epsilon=2.0, **INTERACTION).fit(planted)
    assert np.abs(noisy.item_factors_ - twin.item_factors_).max() > 0.1
    with pytest.raises(ValueError, match="or None for the non-private twin"):
        DPMF(target_epsilon=0.0, **INTERACTION).fit(planted)


def test_interaction_unit_folds_users_in_by_solving_against_the_item_side(planted: sp.csr_matrix) -> None:
    model = DPMF(target_epsilon=4.0, **INTERACTION).fit(planted)
    assert model.fold_in == "solve" and DPMF().fold_in == "aggregate"
    before = (model.privacy_spent(), model.item_factors_.copy())
    model.partial_fit_users([planted.shape[0]], sp.csr_matrix(planted[[0]]))
    assert model.privacy_spent() == before[0]
    np.testing.assert_array_equal(model.item_factors_, before[1])
    np.testing.assert_allclose(model.score([planted.shape[0]]), model.score([0]), rtol=1e-3, atol=1e-3)  # solved in another batch of users


def test_an_unknown_unit_is_refused(planted: sp.csr_matrix) -> None:
    with pytest.raises(ValueError, match="privacy_unit"):
        DPMF(privacy_unit="item", **FAST).fit(planted)


def _analytic_gaussian_epsilon(sigma: float, delta: float) -> float:
    """The exact epsilon of one Gaussian mechanism with noise multiplier ``sigma`` (sensitivity 1)
    at ``delta`` (Balle & Wang 2018): delta(eps) = Phi(1/(2s) - eps*s) - e^eps * Phi(-1/(2s) - eps*s),
    solved for eps by bisection."""
    from scipy.stats import norm

    def delta_of(eps: float) -> float:
        return float(norm.cdf(0.5 / sigma - eps * sigma) - math.exp(eps) * norm.cdf(-0.5 / sigma - eps * sigma))

    lo, hi = 0.0, 100.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if delta_of(mid) > delta else (lo, mid)
    return hi


@pytest.mark.slow  # the PRV accountant's calibration: seconds per fit
def test_full_batch_accounting_matches_the_exact_gaussian_composition(planted: sp.csr_matrix) -> None:
    """Known answer: with full batches (no subsampling) the fit is the popularity release plus
    `steps` Gaussian mechanisms, whose composition is exactly one Gaussian mechanism with
    1/s^2 = 1/s_pop^2 + steps/s_sgd^2. PRV must report that mechanism's exact epsilon (up to its
    discretisation); RDP a valid upper bound, within the target."""
    exact = {}
    for accountant in ("prv", "rdp"):
        model = DPMF(target_epsilon=4.0, accountant=accountant, **{**FAST, "batch_size": None}).fit(planted)
        eps, delta = model.privacy_spent()
        assert model.sample_rate_ == 1.0 and model.steps_ == FAST["epochs"]
        s = (model.popularity_noise_ ** -2 + model.steps_ * model.noise_multiplier_ ** -2) ** -0.5
        exact[accountant] = _analytic_gaussian_epsilon(s, delta)
        assert eps <= 4.0
        if accountant == "prv":
            assert eps == pytest.approx(exact[accountant], rel=0.02), (eps, exact[accountant])
        else:
            assert exact[accountant] < eps < 1.3 * exact[accountant], (eps, exact[accountant])
    # the tighter accountant lets DP-SGD add less noise for the same budget
    assert exact["prv"] > exact["rdp"]


def test_average_returns_the_moving_average_of_the_iterates(planted: sp.csr_matrix) -> None:
    """A decay near 1 keeps the average near the initial parameters (the iterates weigh little);
    no averaging returns the last iterate, which moved far; a mild decay still learns the blocks."""
    last = MF(**FAST).fit(planted)
    start = MF(**{**FAST, "epochs": 1, "learning_rate": 0.0}).fit(planted)  # the initial parameters
    slow = MF(**FAST, average=0.9999).fit(planted)  # 80 steps: the iterates weigh < 1%
    moved = np.abs(last.item_factors_ - start.item_factors_).max()
    assert moved > 0.1
    assert np.abs(slow.item_factors_ - start.item_factors_).max() < 0.05 * moved
    assert own_block_share(MF(**FAST, average=0.9).fit(planted), planted) >= 0.95
    assert own_block_share(DPMF(target_epsilon=30.0, average=0.9, **FAST).fit(planted), planted) >= 0.9
    with pytest.raises(ValueError, match="average"):
        MF(**FAST, average=1.0).fit(planted)


def test_cosine_schedule_decays_the_learning_rate_to_zero_and_still_learns(planted: sp.csr_matrix) -> None:
    """The schedule's known values; a one-step fit runs at the full rate (as the constant one
    does) and a longer one differs from the constant schedule's; the cosine schedule learns the
    blocks (non-private and private); an unknown schedule is refused."""
    from socialrec.retrieve.dp_mf import _lr_factor

    assert _lr_factor("constant", 7, 10) == 1.0
    assert [_lr_factor("cosine", t, 4) for t in range(4)] == pytest.approx([1.0, 0.5 + 0.5 * math.cos(math.pi / 4),
                                                                           0.5, 0.5 - 0.5 * math.cos(math.pi / 4)])
    one = MF(**{**FAST, "epochs": 1, "batch_size": None}).fit(planted)  # one step
    assert np.array_equal(MF(**{**FAST, "epochs": 1, "batch_size": None}, lr_schedule="cosine").fit(planted)
                          .item_factors_, one.item_factors_)  # a single step runs at the full rate
    constant, cosine = MF(**FAST).fit(planted), MF(**FAST, lr_schedule="cosine").fit(planted)
    assert not np.allclose(constant.item_factors_, cosine.item_factors_)
    assert own_block_share(cosine, planted) >= 0.95
    assert own_block_share(DPMF(target_epsilon=30.0, lr_schedule="cosine", **FAST).fit(planted), planted) >= 0.9
    with pytest.raises(ValueError, match="lr_schedule"):
        MF(**FAST, lr_schedule="step").fit(planted)
