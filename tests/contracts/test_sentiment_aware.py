"""SentimentAware runs the shared contract on block data whose users and items have texts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from socialrec.ingest.schema import build_dataset
from socialrec.retrieve.base import BaseRecommender, TrainData
from socialrec.retrieve.ease import EASE
from socialrec.retrieve.sentiment_aware import SentimentAware
from tests.contracts.recommender_contract import RecommenderContract

pytest.importorskip("vaderSentiment")

HAPPY, SAD = "I love it, wonderful and great!", "Terrible, I hate it, awful."


def texts_dataset(data: sp.csr_matrix, items_per_block: int = 10) -> "object":
    """Users of even blocks write happy posts, odd blocks sad ones; even-numbered items get happy
    reviews, odd-numbered items sad ones."""
    n_users, n_items = data.shape
    coo = data.tocoo()
    inter = pd.DataFrame({"user": coo.row.astype(str), "item": coo.col.astype(str)})
    rows = [("user", str(u), "post", HAPPY if (u // 12) % 2 == 0 else SAD) for u in range(n_users)]
    rows += [("item", str(i), "review", HAPPY if i % 2 == 0 else SAD) for i in range(n_items)]
    texts = pd.DataFrame(rows, columns=["owner", "id", "field", "text"])
    return build_dataset("blocks-texts", inter, texts=texts,
                         users=pd.DataFrame({"id": [str(u) for u in range(n_users)]}),
                         items=pd.DataFrame({"id": [str(i) for i in range(n_items)]}))


class TestSentimentAware(RecommenderContract):
    def make(self) -> BaseRecommender:
        return SentimentAware(base_model=EASE(l2=10.0), weight=0.5)

    @classmethod
    def train_data(cls, data: sp.csr_matrix) -> TrainData:
        return TrainData(user_items=sp.csr_matrix(data), dataset=texts_dataset(data))

    def test_weight_zero_is_the_base_model(self, data: sp.csr_matrix) -> None:
        train = self.train_data(data)
        base = EASE(l2=10.0).fit(train)
        wrapped = SentimentAware(base_model=EASE(l2=10.0), weight=0.0).fit(train)
        users = np.arange(data.shape[0])
        np.testing.assert_array_equal(wrapped.score(users), base.score(users))
        np.testing.assert_array_equal(wrapped.recommend(users, k=5)[0], base.recommend(users, k=5)[0])

    def test_mood_moves_users_towards_congruent_items(self, data: sp.csr_matrix) -> None:
        train = self.train_data(data)
        model = SentimentAware(base="pop", weight=5.0).fit(train)
        happy, sad = 0, 12  # block 0 and block 1
        assert model.user_mood_[happy] > 0.5 and model.user_mood_[sad] < -0.5
        assert model.item_sentiment_[0] > 0.5 and model.item_sentiment_[1] < -0.5
        # With a strong mood term, happy users get happy (even) items and sad users sad (odd) ones.
        top_happy, _ = model.recommend(happy, k=5, exclude_seen=False)
        top_sad, _ = model.recommend(sad, k=5, exclude_seen=False)
        assert np.all(top_happy % 2 == 0) and np.all(top_sad % 2 == 1)

    def test_unknown_base_is_refused(self, data: sp.csr_matrix) -> None:
        with pytest.raises(ValueError, match="unknown base model 'nope'"):
            SentimentAware(base="nope").fit(self.train_data(data))


def _valid_by_parity(data: sp.csr_matrix, congruent: bool) -> sp.csr_matrix:
    """Per user, two unseen items of their block: of the parity that matches their mood
    (happy users: even items) when ``congruent``, of the other parity otherwise."""
    rows, cols = [], []
    dense = data.toarray() > 0
    for u in range(data.shape[0]):
        happy = (u // 12) % 2 == 0
        want = 0 if happy == congruent else 1
        block = range((u // 12) * 10, (u // 12) * 10 + 10)
        unseen = [i for i in block if not dense[u, i] and i % 2 == want][:2]
        rows += [u] * len(unseen)
        cols += unseen
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=data.shape)


class TestSentimentAwareWeightGrid(RecommenderContract):
    """The weight chosen on validation inside fit (the suite's sentiment-content / -hybrid)."""

    def make(self) -> BaseRecommender:
        return SentimentAware(base_model=EASE(l2=10.0), weight=0.0, weight_grid=(0.5,))

    @classmethod
    def train_data(cls, data: sp.csr_matrix) -> TrainData:
        return TrainData(user_items=sp.csr_matrix(data), dataset=texts_dataset(data),
                         valid_items=_valid_by_parity(data, congruent=True))

    @pytest.mark.parametrize("congruent", [True, False])
    def test_weight_is_chosen_on_validation(self, data: sp.csr_matrix, congruent: bool) -> None:
        train = TrainData(user_items=sp.csr_matrix(data), dataset=texts_dataset(data),
                          valid_items=_valid_by_parity(data, congruent))
        model = SentimentAware(base="pop", weight=0.0, weight_grid=(0.5, 4.0)).fit(train)
        scores = model.fit_choices()["validation_ndcg@10"]
        assert set(scores) == {0.0, 0.5, 4.0}
        # Held-out items that match the users' moods reward the mood term; items against them punish it.
        assert model.weight_ == (4.0 if congruent else 0.0)
        assert (scores[4.0] > scores[0.0]) == congruent

    def test_without_validation_the_first_weight_is_used(self, data: sp.csr_matrix) -> None:
        train = TrainData(user_items=sp.csr_matrix(data), dataset=texts_dataset(data))
        model = SentimentAware(base="pop", weight=0.5, weight_grid=(4.0,)).fit(train)
        assert model.weight_ == 0.5 and model.fit_choices()["validation_ndcg@10"] is None
