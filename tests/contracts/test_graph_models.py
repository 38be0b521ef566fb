"""The torch graph recommenders run the shared contract (small, fast settings)."""

from __future__ import annotations

import pytest
import scipy.sparse as sp

from socialrec.retrieve.base import BaseRecommender, TrainData
from tests.contracts.recommender_contract import RecommenderContract, block_social_dataset

pytest.importorskip("torch")

from socialrec.retrieve.graph_models import LightGCN, SocialLightGCN, SocialMF  # noqa: E402

FAST = dict(embedding_dim=16, learning_rate=0.05, epochs=40, batch_size=128, eval_every=5, random_state=0)


def _social_train(data: sp.csr_matrix, users_per_block: int) -> TrainData:
    return TrainData(user_items=sp.csr_matrix(data), dataset=block_social_dataset(data, users_per_block))


class TestLightGCN(RecommenderContract):
    def make(self) -> BaseRecommender:
        return LightGCN(n_layers=2, loss="bpr", cl_weight=0.0, **FAST)


class TestLightGCNSoftmax(RecommenderContract):
    def make(self) -> BaseRecommender:
        return LightGCN(n_layers=1, loss="softmax", n_negatives=16, temperature=0.2, cl_weight=0.0, **FAST)


class TestLightGCNFullSoftmax(RecommenderContract):
    def make(self) -> BaseRecommender:
        return LightGCN(n_layers=2, loss="full-softmax", temperature=0.2, cl_weight=0.0, **{**FAST, "batch_size": 16})


class TestSocialLightGCNFullSoftmax(RecommenderContract):
    def make(self) -> BaseRecommender:
        return SocialLightGCN(n_layers=2, loss="full-softmax", temperature=0.2, social_weight=0.5, cl_weight=0.0,
                              **{**FAST, "batch_size": 16})  # users per step: several steps per epoch

    @classmethod
    def train_data(cls, data: sp.csr_matrix) -> TrainData:
        return _social_train(data, cls.users_per_block)


class TestSocialLightGCN(RecommenderContract):
    def make(self) -> BaseRecommender:
        return SocialLightGCN(n_layers=2, loss="bpr", social_weight=0.5, cl_weight=0.0, **FAST)

    @classmethod
    def train_data(cls, data: sp.csr_matrix) -> TrainData:
        return _social_train(data, cls.users_per_block)


class TestSocialMF(RecommenderContract):
    def make(self) -> BaseRecommender:
        return SocialMF(social_reg=0.1, **FAST)

    @classmethod
    def train_data(cls, data: sp.csr_matrix) -> TrainData:
        return _social_train(data, cls.users_per_block)


def test_social_models_say_they_need_a_social_graph() -> None:
    from tests.contracts.recommender_contract import block_data

    with pytest.raises(ValueError, match="needs a social graph"):
        SocialLightGCN(**FAST).fit(block_data())


class TestSocialProof(RecommenderContract):
    def make(self) -> BaseRecommender:
        from socialrec.retrieve.social_proof import SocialProof

        return SocialProof(overlap_weight=4.0)

    @classmethod
    def train_data(cls, data: sp.csr_matrix) -> TrainData:
        return _social_train(data, cls.users_per_block)


class TestSocialLightGCNContrastive(RecommenderContract):
    def make(self) -> BaseRecommender:
        return SocialLightGCN(n_layers=2, loss="bpr", social_weight=0.5, cl_weight=0.01, noise_eps=0.05, **FAST)

    @classmethod
    def train_data(cls, data: sp.csr_matrix) -> TrainData:
        return _social_train(data, cls.users_per_block)


class TestSocialLightGCNReadout(RecommenderContract):
    def make(self) -> BaseRecommender:
        return SocialLightGCN(n_layers=2, loss="bpr", social_weight=0.2, social_readout=0.3, cl_weight=0.0, **FAST)

    @classmethod
    def train_data(cls, data: sp.csr_matrix) -> TrainData:
        return _social_train(data, cls.users_per_block)
