"""Every baseline recommender runs the shared contract."""

from __future__ import annotations

from socialrec.retrieve.base import BaseRecommender
from socialrec.retrieve.ease import EASE
from socialrec.retrieve.implicit_models import ALS, BPR
from socialrec.retrieve.knn import ItemKNN, UserKNN
from socialrec.retrieve.popular import MostPopular
from tests.contracts.recommender_contract import RecommenderContract


class TestMostPopular(RecommenderContract):
    learns_structure = False

    def make(self) -> BaseRecommender:
        return MostPopular()


class TestItemKNN(RecommenderContract):
    def make(self) -> BaseRecommender:
        return ItemKNN(neighbors=20, shrink=1.0)


class TestItemKNNIdf(RecommenderContract):
    def make(self) -> BaseRecommender:
        return ItemKNN(neighbors=20, shrink=1.0, idf=True, normalize=True)


class TestUserKNN(RecommenderContract):
    def make(self) -> BaseRecommender:
        return UserKNN(neighbors=10, shrink=1.0)


class TestEASE(RecommenderContract):
    def make(self) -> BaseRecommender:
        return EASE(l2=10.0)


class TestALS(RecommenderContract):
    def make(self) -> BaseRecommender:
        return ALS(factors=4, alpha=10.0, iterations=15, regularization=0.1, random_state=0)


class TestBPR(RecommenderContract):
    def make(self) -> BaseRecommender:
        return BPR(factors=16, iterations=200, learning_rate=0.05, random_state=0, num_threads=1)
