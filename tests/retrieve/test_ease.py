"""EASE: the closed form against a direct solve, and the fallback for catalogs too big for memory."""

from __future__ import annotations

import numpy as np
import pytest

from socialrec.retrieve.ease import EASE, CostlyComputationWarning
from tests.contracts.recommender_contract import block_data


def test_weights_match_the_closed_form_by_direct_solve() -> None:
    x = block_data().toarray().astype(np.float64)
    model = EASE(l2=5.0).fit(block_data())
    p = np.linalg.inv(x.T @ x + 5.0 * np.eye(x.shape[1]))
    b = np.eye(x.shape[1]) - p / np.diag(p)[None, :]  # Steck (2019), eq. 8
    np.testing.assert_allclose(model.weights_, b, atol=1e-5)
    assert np.allclose(np.diag(model.weights_), 0.0)


def test_too_many_items_fits_the_most_popular_and_says_so() -> None:
    data = block_data()
    with pytest.warns(CostlyComputationWarning, match="fitting on the 20 most popular"):
        model = EASE(l2=5.0, max_items=20).fit(data)
    popularity = np.diff(data.tocsc().indptr)
    assert len(model.active_items_) == 20
    assert popularity[model.active_items_].min() >= np.sort(popularity)[-20]
    scores = model.score(np.arange(3))
    inactive = np.setdiff1d(np.arange(data.shape[1]), model.active_items_)
    assert np.all(scores[:, inactive] == 0.0)


def test_l2_must_be_positive() -> None:
    with pytest.raises(ValueError, match="l2 must be > 0"):
        EASE(l2=0.0).fit(block_data())
