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
