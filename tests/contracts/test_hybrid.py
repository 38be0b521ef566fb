"""The hybrid recommender runs the shared contract: with LightGBM, with the linear fallback,
and with the social channel plus diversity re-ranking."""

from __future__ import annotations

import pytest
import scipy.sparse as sp

from socialrec.rank.hybrid import HybridRecommender
from socialrec.retrieve.base import BaseRecommender, TrainData
from tests.contracts.recommender_contract import RecommenderContract, block_social_dataset

pytest.importorskip("implicit")


class TestHybridLambdaRank(RecommenderContract):
    def make(self) -> BaseRecommender:
        return HybridRecommender(channels=("ease", "itemknn", "pop"), channel_params={"ease": {"l2": 10.0}},
                                 n_candidates=30, ranker="lightgbm", holdout_fraction=0.3)


class TestHybridLinear(RecommenderContract):
    def make(self) -> BaseRecommender:
        return HybridRecommender(channels=("itemknn", "pop"), n_candidates=30, ranker="linear", holdout_fraction=0.3)


class TestHybridSocialDiverse(RecommenderContract):
    def make(self) -> BaseRecommender:
        return HybridRecommender(channels=("ease", "social-proof", "trending"), channel_params={"ease": {"l2": 10.0}},
                                 n_candidates=30, ranker="lightgbm", diversity=0.2, holdout_fraction=0.3)

    @classmethod
    def train_data(cls, data: sp.csr_matrix) -> TrainData:
        return TrainData(user_items=sp.csr_matrix(data), dataset=block_social_dataset(data, cls.users_per_block))
