"""Hyperparameters are chosen on validation and the test part is scored once, for the chosen
model only: a grid point that would win on test but loses on validation is never picked."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from socialrec.evaluate.experiment import ModelSpec, results_document, tune_and_test
from socialrec.ingest.schema import SPLIT_TEST, SPLIT_TRAIN, SPLIT_VALID, build_dataset
from socialrec.ingest.split import fixed_split

N_USERS, N_ITEMS = 40, 30


def _split(with_valid: bool = True):  # type: ignore[no-untyped-def]
    """Every user: training items 0-9, validation item 10 + u % 5, test item 20 + u % 5."""
    rows = []
    for u in range(N_USERS):
        rows += [(f"u{u}", f"i{i}", SPLIT_TRAIN) for i in range(10)]
        rows.append((f"u{u}", f"i{10 + u % 5}", SPLIT_VALID if with_valid else SPLIT_TRAIN))
        rows.append((f"u{u}", f"i{20 + u % 5}", SPLIT_TEST))
    items = pd.DataFrame({"id": [f"i{i}" for i in range(N_ITEMS)]})
    return fixed_split(build_dataset("tuning", pd.DataFrame(rows, columns=["user", "item", "split"]), items=items))


class Oracle:
    """Knows the answers of one part: `looks_at="valid"` puts each user's validation item first,
    `"test"` the test item; `strength` scales how far ahead. A model that peeks at test."""

    instances: list["Oracle"] = []

    def __init__(self, split, looks_at: str, strength: float = 1.0) -> None:  # type: ignore[no-untyped-def]
        self.truth = split.matrix(looks_at).toarray()
        self.looks_at = looks_at
        self.strength = strength
        self.scored_users: list[int] = []
        self.fitted_on: int | None = None
        Oracle.instances.append(self)

    def fit(self, train) -> "Oracle":  # type: ignore[no-untyped-def]
        self.fitted_on = int(train.user_items.nnz)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        self.scored_users += [int(u) for u in users]
        base = np.linspace(0.0, 0.1, N_ITEMS)[None, :].repeat(len(users), axis=0)
        return base + self.strength * self.truth[users]


@pytest.fixture(autouse=True)
def _reset() -> None:
    Oracle.instances.clear()


def test_the_grid_point_that_wins_on_validation_is_chosen_even_when_another_wins_on_test() -> None:
    split = _split()
    spec = ModelSpec("oracle", lambda **p: Oracle(split, **p), grid={"looks_at": ["test", "valid"], "strength": [0.5, 2.0]})
    out = tune_and_test(spec, split, ks=(1, 10), progress=False)
    assert out.params["looks_at"] == "valid"
    assert out.valid_score == pytest.approx(1.0)  # the validation item is first for every user
    # looking at validation, the test item is just another unseen item: a low test score
    assert out.test.mean()["ndcg@10"] < 0.5
    assert [e["params"] for e in out.tuning] == spec.candidates()
    scores = {(e["params"]["looks_at"], e["params"]["strength"]): e["ndcg@10"] for e in out.tuning}
    assert scores[("valid", 0.5)] == scores[("valid", 2.0)] == pytest.approx(1.0)
    assert max(scores[("test", 0.5)], scores[("test", 2.0)]) < 0.5
    # ties on validation keep the first grid point; only the chosen model is scored on test
    assert out.params == {"looks_at": "valid", "strength": 0.5}
    chosen = [m for m in Oracle.instances if m.looks_at == "valid" and m.strength == 0.5]
    others = [m for m in Oracle.instances if m not in chosen]
    n_eval = N_USERS  # every user has a validation and a test item
    assert len(chosen) == 1 and len(chosen[0].scored_users) == 2 * n_eval  # validation, then test
    assert all(len(m.scored_users) == n_eval for m in others)  # validation only
    assert all(m.fitted_on == N_USERS * 10 for m in Oracle.instances)  # trained on training only


def test_without_validation_the_first_grid_point_is_used_and_reported_as_untuned() -> None:
    split = _split(with_valid=False)
    spec = ModelSpec("oracle", lambda **p: Oracle(split, **p), grid={"looks_at": ["test", "train"]})
    out = tune_and_test(spec, split, ks=(10,), progress=False)
    assert out.params == {"looks_at": "test"} and len(Oracle.instances) == 1
    assert np.isnan(out.valid_score)
    assert out.test.mean()["ndcg@10"] == pytest.approx(1.0)
    doc = results_document("tuning", "fixed", 0, [out])
    assert doc["models"]["oracle"]["valid_ndcg@10"] is None
    assert doc["models"]["oracle"]["params"] == {"looks_at": "test"}


def test_selection_can_use_another_metric() -> None:
    split = _split()
    spec = ModelSpec("oracle", lambda **p: Oracle(split, **p), grid={"looks_at": ["test", "valid"]})
    out = tune_and_test(spec, split, ks=(10,), select_by="recall@5", progress=False)
    assert out.params == {"looks_at": "valid"} and out.tuning[1]["recall@5"] == pytest.approx(1.0)


def test_the_results_document_lists_every_grid_points_validation_score() -> None:
    split = _split()
    spec = ModelSpec("oracle", lambda **p: Oracle(split, **p), grid={"looks_at": ["test", "valid"]})
    out = tune_and_test(spec, split, ks=(1, 10), progress=False)
    tuning = results_document("tuning", "fixed", 0, [out])["models"]["oracle"]["tuning"]
    assert [t["params"] for t in tuning] == [{"looks_at": "test"}, {"looks_at": "valid"}]
    assert tuning[1]["ndcg@10"] == 1.0 and tuning[0]["ndcg@10"] < 1.0  # the oracle of validation wins there
    single = tune_and_test(ModelSpec("one", lambda **p: Oracle(split, "valid")), split, ks=(10,), progress=False)
    assert "tuning" not in results_document("tuning", "fixed", 0, [single])["models"]["one"]
