"""RumourAware runs the shared contract on block data whose items are labelled Chinese posts,
and demotes the rumours it learned to recognise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from socialrec.ingest.schema import build_dataset
from socialrec.rank.rumour import RumourAware, demote
from socialrec.retrieve.base import BaseRecommender, TrainData
from socialrec.retrieve.ease import EASE
from tests.contracts.recommender_contract import RecommenderContract

pytest.importorskip("jieba")

RUMOUR = ["紧急扩散！网传{}的自来水有毒，千万别喝", "震惊！网传{}医院出现怪病，速转", "求证：网传{}明天地震"]
PLAIN = ["{}今天举行马拉松比赛，市民踊跃参加", "{}图书馆新馆开放，欢迎读者", "{}发布天气预报：明天晴"]
CITIES = ["北京", "上海", "广州", "深圳", "成都", "杭州", "南京", "武汉", "西安", "重庆"]


def posts_dataset(data: sp.csr_matrix) -> "object":
    """Even items are rumours, odd items plain news; every post has a time and a text."""
    n_users, n_items = data.shape
    coo = data.tocoo()
    inter = pd.DataFrame({"user": coo.row.astype(str), "item": coo.col.astype(str)})
    texts = [(RUMOUR if i % 2 == 0 else PLAIN)[i % 3].format(CITIES[i % 10]) for i in range(n_items)]
    items = pd.DataFrame({"id": [str(i) for i in range(n_items)], "rumour": [i % 2 == 0 for i in range(n_items)],
                          "timestamp": np.arange(n_items, dtype=np.float64), "text": texts})
    return build_dataset("blocks-posts", inter, items=items,
                         users=pd.DataFrame({"id": [str(u) for u in range(n_users)]}))


class TestRumourAware(RecommenderContract):
    def make(self) -> BaseRecommender:
        return RumourAware(EASE(l2=10.0), weight=0.3, classifier_params={"min_df": 1})

    @classmethod
    def train_data(cls, data: sp.csr_matrix) -> TrainData:
        return TrainData(user_items=sp.csr_matrix(data), dataset=posts_dataset(data))

    def test_weight_zero_is_the_base_ranking(self, data: sp.csr_matrix) -> None:
        train = self.train_data(data)
        base = EASE(l2=10.0).fit(train)
        wrapped = RumourAware(EASE(l2=10.0), weight=0.0, classifier_params={"min_df": 1}).fit(train)
        users = np.arange(data.shape[0])
        np.testing.assert_array_equal(wrapped.recommend(users, k=5)[0], base.recommend(users, k=5)[0])

    def test_a_strong_weight_empties_the_top_of_rumours(self, fitted: BaseRecommender, data: sp.csr_matrix) -> None:
        train = self.train_data(data)
        assert fitted.item_risk_[0::2].min() > 0.5 > fitted.item_risk_[1::2].max()
        users = np.arange(data.shape[0])
        base_ids, _ = EASE(l2=10.0).fit(train).recommend(users, k=3)
        strong = RumourAware.from_fitted(fitted.base_, fitted.item_risk_, weight=2.0)
        ids, _ = strong.recommend(users, k=3)
        assert (base_ids % 2 == 0).mean() > 0.3
        assert (ids % 2 == 0).mean() == 0.0  # a weight of 2 puts every rumour below every plain post


def test_demote_keeps_order_without_risk_and_below_depth() -> None:
    scores = np.array([[5.0, 4.0, 3.0, 2.0, 1.0, -np.inf]])
    risk = np.array([1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    out = demote(scores, risk, 0.6, depth=3)
    order = np.argsort(-out[0], kind="stable")
    # item 0 (rumour) falls behind item 1 (rel 0.5 > 1 - 0.6), stays ahead of item 2 (rel 0): the
    # items below the depth keep their order under every re-scored one; -inf stays out.
    assert order.tolist()[:5] == [1, 0, 2, 3, 4] and out[0, 5] == -np.inf
    np.testing.assert_array_equal(demote(scores, risk, 0.0), scores)
    with pytest.raises(ValueError, match="one value per item"):
        demote(scores, risk[:3], 1.0)


class TestRumourAwareKeepingTheHead(TestRumourAware):
    """The same contract with the first item of each list kept in place."""

    def make(self) -> BaseRecommender:
        return RumourAware(EASE(l2=10.0), weight=0.3, protect=1, classifier_params={"min_df": 1})
