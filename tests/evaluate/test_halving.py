"""Successive halving over a grid: the point that is best on validation wins, worse points stop
at early rungs having been judged on fewer validation users, survivors are judged on new users only
(fitted once), and a resumable model trains in steps that continue rather than refit."""

from __future__ import annotations

import numpy as np
import pytest

from socialrec.evaluate.experiment import Halving, ModelSpec, auto_halving, tune_and_test
from tests.evaluate.test_tuning import N_USERS, _split


class Noisy:
    """Validation item ahead of fixed noise by ``quality`` (1.0: always first; 0: random)."""

    instances: list["Noisy"] = []

    def __init__(self, split, quality: float) -> None:  # type: ignore[no-untyped-def]
        self.truth = split.matrix("valid").toarray()
        self.quality = quality
        self.noise = np.random.default_rng(5).random(self.truth.shape)
        self.fits = 0
        self.scored: list[int] = []
        Noisy.instances.append(self)

    def fit(self, train) -> "Noisy":  # type: ignore[no-untyped-def]
        self.fits += 1
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        self.scored += [int(u) for u in users]
        return self.noise[users] + self.quality * self.truth[users]


class Resumable(Noisy):
    """As Noisy, with a training budget: quality grows with the steps trained so far."""

    budget_param = "steps"

    def __init__(self, split, quality: float, steps: int = 8) -> None:  # type: ignore[no-untyped-def]
        super().__init__(split, quality)
        self.steps = steps
        self.trained_to: list[int] = []

    def fit_to(self, train, steps: int) -> "Resumable":  # type: ignore[no-untyped-def]
        self.trained_to.append(steps)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        self.scored += [int(u) for u in users]
        done = self.trained_to[-1] if self.trained_to else self.steps
        return self.noise[users] + self.quality * done / self.steps * self.truth[users]


@pytest.fixture(autouse=True)
def _reset() -> None:
    Noisy.instances.clear()


GRID = {"quality": [0.0, 2.0, 0.3, 0.1]}


def test_the_best_point_wins_and_bad_points_stop_early_on_fewer_users() -> None:
    split = _split()
    spec = ModelSpec("noisy", lambda **p: Noisy(split, **p), GRID)
    out = tune_and_test(spec, split, ks=(10,), progress=False, halving=Halving(eta=2, first_users=10))
    assert out.params == {"quality": 2.0} and out.valid_score == pytest.approx(1.0)
    by_q = {e["params"]["quality"]: e for e in out.tuning}
    assert by_q[2.0]["stopped_at_rung"] == 2  # rungs 0, 1, 2: 4 -> 2 -> 1 points
    assert by_q[0.0]["stopped_at_rung"] == 0 and by_q[0.1]["stopped_at_rung"] == 0
    assert [r["valid_users"] for r in by_q[2.0]["rungs"]] == [10, 20, 40]
    models = {m.quality: m for m in Noisy.instances}
    assert all(m.fits == 1 for m in models.values())  # fitted once, never refitted
    # judged on each validation user once (10 + 10 + 20), then the test users once
    assert len(models[2.0].scored) == 2 * N_USERS
    assert len(models[0.0].scored) == 10
    # the same choice as the full grid, which judges every point on every user
    full = tune_and_test(spec, split, ks=(10,), progress=False, halving=None)
    assert full.params == out.params


def test_a_resumable_model_trains_in_steps_to_its_full_budget() -> None:
    split = _split()
    spec = ModelSpec("steps", lambda **p: Resumable(split, **p), GRID)
    out = tune_and_test(spec, split, ks=(10,), progress=False, halving=Halving(eta=2, first_users=10))
    assert out.params == {"quality": 2.0}
    models = {m.quality: m for m in Noisy.instances}
    assert models[2.0].trained_to == [2, 4, 8] and models[0.0].trained_to == [2]
    assert [r["budget"] for r in out.tuning[1]["rungs"]] == [2, 4, 8]
    # each rung after more training judges the point on all of its users anew
    assert len(models[2.0].scored) == 10 + 20 + 40 + N_USERS


def test_auto_halving_only_for_big_problems_and_grids(monkeypatch: pytest.MonkeyPatch) -> None:
    split = _split()
    assert auto_halving(split, 8) is None  # 40 users x 30 items
    monkeypatch.setattr("socialrec.evaluate.experiment.HALVING_ABOVE", 0)  # as if the catalogue were huge
    assert auto_halving(split, 2) == Halving() and auto_halving(split, 1) is None
    with pytest.raises(ValueError, match="eta"):
        Halving(eta=1)


def test_als_resumed_training_gives_the_factors_of_one_fit() -> None:
    pytest.importorskip("implicit")
    from socialrec.ingest.datasets import load
    from socialrec.ingest.split import make_split
    from socialrec.retrieve.implicit_models import ALS

    train = make_split(load("synthetic:n_users=200,n_items=500,interactions_per_user=10,seed=1"),
                       "random-811", seed=0).train_data()
    once = ALS(factors=8, iterations=5, num_threads=1).fit(train)
    steps = ALS(factors=8, iterations=5, num_threads=1).fit_to(train, 2).fit_to(train, 5)
    np.testing.assert_array_equal(once.user_factors_, steps.user_factors_)
    np.testing.assert_array_equal(once.item_factors_, steps.item_factors_)
    assert steps.iterations == 5 and steps.iterations_done_ == 5
    fewer = ALS(factors=8, iterations=5, num_threads=1).fit_to(train, 2)
    assert not np.array_equal(fewer.item_factors_, once.item_factors_)
