"""Every baseline recommender runs the shared contract."""

from __future__ import annotations

from socialrec.retrieve.base import BaseRecommender
from socialrec.retrieve.ease import EASE
from socialrec.retrieve.implicit_models import ALS, BPR
from socialrec.retrieve.knn import ItemKNN, UserKNN
from socialrec.retrieve.popular import MostPopular
from socialrec.retrieve.trending import NewItems, Trending
from tests.contracts.recommender_contract import RecommenderContract


class TestMostPopular(RecommenderContract):
    learns_structure = False
    fold_in_score_rtol = 1e-6  # counts recounted from the rows: a refit's counts exactly
    fold_in_isolated = False  # everyone's scores are the counts the fold-in changed

    def make(self) -> BaseRecommender:
        return MostPopular()


class TestItemKNN(RecommenderContract):
    def make(self) -> BaseRecommender:
        return ItemKNN(neighbors=20, shrink=1.0)


class TestItemKNNIdf(RecommenderContract):
    def make(self) -> BaseRecommender:
        return ItemKNN(neighbors=20, shrink=1.0, idf=True, normalize=True)


class TestUserKNN(RecommenderContract):
    fold_in_score_rtol = 1e-6  # the folded-in user's neighbours are found as a refit finds them
    fold_in_isolated = False  # their neighbours' lists are kept, and read the user's new items
    def make(self) -> BaseRecommender:
        return UserKNN(neighbors=10, shrink=1.0)


class TestEASE(RecommenderContract):
    def make(self) -> BaseRecommender:
        return EASE(l2=10.0)


class TestALS(RecommenderContract):
    # Fit ends with conjugate-gradient user steps, a fold-in solves exactly: re-folding an
    # unchanged user moved their scores by 1.06% of the largest (measured), their top 3 kept.
    fold_in_refold_change = 0.02
    def make(self) -> BaseRecommender:
        return ALS(factors=4, alpha=10.0, iterations=15, regularization=0.1, random_state=0)


class TestBPR(RecommenderContract):
    # A fold-in solves the BPR objective to its optimum where SGD stopped short of it: re-folding
    # an unchanged user moved their scores by 14% of the largest (measured), their top 3 kept.
    fold_in_refold_change = 0.2
    def make(self) -> BaseRecommender:
        return BPR(factors=16, iterations=200, learning_rate=0.05, random_state=0, num_threads=1)


class TestTrending(RecommenderContract):
    learns_structure = False
    fold_in_score_rtol = 1e-6  # no timestamps here: the trend is the refit's popularity exactly
    fold_in_isolated = False

    def make(self) -> BaseRecommender:
        return Trending(half_life_days=7.0)


class TestNewItems(RecommenderContract):
    # Items of the block data have 5 to 12 interactions: with max_interactions=8, 45% count as
    # new and are ranked by EASE, the rest below them.
    learns_structure = False
    fold_in_isolated = False  # which items are new is recounted, for everyone

    def make(self) -> BaseRecommender:
        return NewItems(EASE(l2=10.0), max_interactions=8)
