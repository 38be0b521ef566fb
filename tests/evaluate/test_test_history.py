"""``test_history="train+valid"``: the chosen model reads each test user's validation items
(folded in, no refit) before the test ranking, as a served model has the latest event and as
SASRec / RecBole test leave-one-out; the validation items stay masked from the ranking."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from socialrec.config import from_dict
from socialrec.errors import ConfigError
from socialrec.evaluate.config import ExperimentConfig
from socialrec.evaluate.experiment import ModelSpec, results_document, tune_and_test
from socialrec.ingest.split import make_split
from socialrec.retrieve.ease import EASE


def test_a_sequential_model_predicts_the_item_after_the_validation_item_once_it_reads_it() -> None:
    pytest.importorskip("torch")
    from socialrec.retrieve.sequential import SASRec
    from tests.retrieve.test_sequential import FAST, chain_dataset

    # Each user walks a cycle of 12 items; leave-one-out holds out the newest (test) and the one
    # before (validation). Reading up to the validation item, the test item is its successor.
    split = make_split(chain_dataset(n_users=200), "loo", seed=0)
    spec = ModelSpec("sasrec", lambda **p: SASRec(**{**FAST, "epochs": 40, "patience": 40}))
    hidden = tune_and_test(spec, split, ks=(1,), progress=False)
    read = tune_and_test(spec, split, ks=(1,), progress=False, test_history="train+valid")
    assert read.test.mean()["ndcg@1"] >= 0.95
    # Without it the model's input ends one step early: its first choice is the (masked)
    # validation item, and the test item only its runner-up (0.79 here).
    assert hidden.test.mean()["ndcg@1"] < read.test.mean()["ndcg@1"] - 0.1
    assert read.valid_score == hidden.valid_score  # the same fit, chosen on the same validation


class Counter:
    """Scores each item by how often the user's stored row holds it; cannot fold users in."""

    fold_in = None
    fits: list[int] = []

    def fit(self, train):  # type: ignore[no-untyped-def]
        self.rows = sp.csr_matrix(train.user_items)
        Counter.fits.append(int(self.rows.nnz))
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.rows[users].toarray() + np.linspace(0, 1e-3, self.rows.shape[1])[None]


def _ease_split():  # type: ignore[no-untyped-def]
    from socialrec.ingest.datasets.synthetic import load_synthetic

    return make_split(load_synthetic(seed=0), "loo", seed=0)


def test_an_item_item_model_folds_the_validation_rows_in_and_equals_scoring_them() -> None:
    split = _ease_split()
    spec = ModelSpec("ease", lambda **p: EASE(l2=50.0))
    read = tune_and_test(spec, split, ks=(10,), progress=False, test_history="train+valid")
    # By hand: EASE fitted on training, each user's scores from their training + validation row.
    model = EASE(l2=50.0).fit(split.train_data())
    rows = (split.matrix("train") + split.matrix("valid")).tocsr()
    rows.data[:] = 1.0
    users = read.test.users
    expected = rows[users] @ model.weights_
    mask = (split.matrix("train") + split.matrix("valid")).toarray()[users] > 0
    expected[mask] = -np.inf
    truth = split.matrix("test")[users].toarray() > 0
    top = np.argsort(-expected, axis=1, kind="stable")[:, :10]
    hits = np.take_along_axis(truth, top, axis=1)
    ndcg = (hits / np.log2(np.arange(2, 12))[None]).sum(1) / (1 / np.log2(2))  # one test item each
    # exactly: EASE's scores are continuous, so no tie is drawn (0.2877 here, against 0.2831 without the fold-in)
    assert read.test.mean()["ndcg@10"] == pytest.approx(ndcg.mean(), abs=1e-9)
    hidden = tune_and_test(spec, split, ks=(10,), progress=False)
    assert read.test.mean()["ndcg@10"] != hidden.test.mean()["ndcg@10"]


def test_a_model_that_cannot_fold_in_is_refitted_on_training_and_validation() -> None:
    split = _ease_split()
    Counter.fits.clear()
    tune_and_test(ModelSpec("counter", lambda **p: Counter()), split, ks=(10,), progress=False,
                  test_history="train+valid")
    assert Counter.fits == [split.matrix("train").nnz, (split.matrix("train") + split.matrix("valid")).nnz]


def test_the_setting_is_checked_and_recorded() -> None:
    split = _ease_split()
    with pytest.raises(ValueError, match="test_history must be one of"):
        tune_and_test(ModelSpec("ease", lambda **p: EASE()), split, progress=False, test_history="valid")
    with pytest.raises(ConfigError, match="test_history 'all' is not one of"):
        from_dict(ExperimentConfig, {"dataset": "lastfm", "test_history": "all"}, source="t")
    with pytest.raises(ConfigError, match="local"):
        from_dict(ExperimentConfig, {"dataset": "lastfm", "test_history": "train+valid", "engine": "ray"}, source="t")
    out = tune_and_test(ModelSpec("ease", lambda **p: EASE()), split, ks=(10,), progress=False,
                        test_history="train+valid")
    assert results_document("synthetic", "loo", 0, [out], "train+valid")["test_history"] == "train+valid"
    assert "test_history" not in results_document("synthetic", "loo", 0, [out])
