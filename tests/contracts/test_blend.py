"""Blend runs the shared contract; a one-component blend ranks like its component."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from socialrec.retrieve.base import BaseRecommender, TrainData
from socialrec.retrieve.blend import Blend, standardize_rows
from socialrec.retrieve.ease import EASE
from socialrec.retrieve.knn import ItemKNN
from socialrec.retrieve.popular import MostPopular
from tests.contracts.recommender_contract import RecommenderContract


class TestBlend(RecommenderContract):
    fold_in_isolated = False  # its MostPopular recounts the items for everyone

    def make(self) -> BaseRecommender:
        return Blend([EASE(l2=10.0), ItemKNN(neighbors=20, shrink=1.0), MostPopular()], [1.0, 0.5, 0.05])

    def test_single_component_ranks_like_it(self, data: sp.csr_matrix) -> None:
        train = TrainData.from_matrix(data)
        alone = ItemKNN(neighbors=20, shrink=1.0).fit(train)
        blend = Blend([ItemKNN(neighbors=20, shrink=1.0)], [2.0]).fit(train)
        users = np.arange(data.shape[0])
        np.testing.assert_array_equal(blend.recommend(users, k=5)[0], alone.recommend(users, k=5)[0])


def test_standardize_rows() -> None:
    z = standardize_rows(np.array([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0], [0.0, -np.inf, 2.0]]))
    np.testing.assert_allclose(z[0], [-np.sqrt(1.5), 0.0, np.sqrt(1.5)])
    np.testing.assert_array_equal(z[1], [0.0, 0.0, 0.0])
    assert z[2, 1] == -np.inf and z[2, 0] == -1.0 and z[2, 2] == 1.0


def test_a_blend_of_fitted_models_scores_their_standardised_sum_without_refitting() -> None:
    import pytest

    from tests.contracts.recommender_contract import block_data

    data = block_data()
    knn, pop = ItemKNN(neighbors=5).fit(data), MostPopular().fit(data)
    blend = Blend.from_fitted([knn, pop], [2.0, 1.0])
    assert blend.models_[0] is knn  # the fitted models themselves, not refitted clones
    users = np.array([0, 7, 30])
    expected = 2.0 * standardize_rows(knn.score(users)) + standardize_rows(pop.score(users))
    np.testing.assert_allclose(blend.score(users), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="same users and items"):
        Blend.from_fitted([knn, MostPopular().fit(data[:, :-1])])
    with pytest.raises(Exception, match="fit"):
        Blend.from_fitted([knn, MostPopular()])
