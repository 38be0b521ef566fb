"""Multi-channel merging under quotas, candidate recall, trending decay and the new-items channel,
on inputs whose right answers are worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from socialrec.ingest.schema import build_dataset
from socialrec.retrieve.base import BaseRecommender, TrainData
from socialrec.retrieve.channels import Channel, MultiChannelRetriever, candidate_recall, tune_quotas
from socialrec.retrieve.popular import MostPopular
from socialrec.retrieve.trending import NewItems, Trending


class Fixed(BaseRecommender):
    """Scores every user with one fixed row (a channel whose ranking we choose)."""

    def __init__(self, row: tuple[float, ...] = ()) -> None:
        self.row = row

    def _fit(self, train: TrainData) -> None:
        self.row_ = np.asarray(self.row, dtype=np.float32)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.row_, (len(users), self.n_items_))


def two_user_matrix(n_items: int = 8) -> sp.csr_matrix:
    # User 0 has seen item 7; user 1 has seen item 0.
    return sp.csr_matrix((np.ones(2, np.float32), ([0, 1], [7, 0])), shape=(2, n_items))


def test_merge_follows_quotas_and_skips_duplicates() -> None:
    a = Fixed(row=(8, 7, 6, 5, 4, 3, 2, 1))  # ranks items 0, 1, 2, ...
    b = Fixed(row=(1, 2, 3, 4, 5, 6, 7, 8))  # ranks items 7, 6, 5, ...
    retriever = MultiChannelRetriever([Channel("a", a, quota=2.0), Channel("b", b, quota=1.0)], n_candidates=5)
    retriever.fit(TrainData.from_matrix(two_user_matrix()))
    cands = retriever.retrieve(np.array([0, 1]))
    # User 0 (item 7 seen): a gives 0,1,2,...; b gives 6,5,4,...; priorities a: .5, 1, 1.5 ...; b: 1, 2 ...
    np.testing.assert_array_equal(cands.items[0], [0, 1, 6, 2, 3])
    # User 1 (item 0 seen): a gives 1,2,3,...; b gives 7,6,...
    np.testing.assert_array_equal(cands.items[1], [1, 2, 7, 3, 4])
    # Ranks: the position of each candidate in each channel's own list.
    np.testing.assert_array_equal(cands.ranks["a"][0], [0, 1, 5, 2, 3])
    np.testing.assert_array_equal(cands.ranks["b"][0][:3], [5, 5, 0])
    assert np.isneginf(cands.scores["a"][0, 7])  # seen items are out of every channel


def test_zero_quota_channel_only_feeds_features() -> None:
    a = Fixed(row=(8, 7, 6, 5, 4, 3, 2, 1))
    b = Fixed(row=(1, 2, 3, 4, 5, 6, 7, 8))
    retriever = MultiChannelRetriever([Channel("a", a), Channel("b", b, quota=0.0)], n_candidates=3)
    cands = retriever.fit(TrainData.from_matrix(two_user_matrix())).retrieve(np.array([0]))
    np.testing.assert_array_equal(cands.items[0], [0, 1, 2])
    assert "b" in cands.scores


def test_retrieval_is_batch_independent() -> None:
    rng = np.random.default_rng(0)
    x = sp.csr_matrix((rng.random((30, 25)) < 0.2).astype(np.float32))
    retriever = MultiChannelRetriever([Channel("pop", MostPopular()), Channel("t", Trending(half_life_days=None))],
                                      n_candidates=10).fit(TrainData.from_matrix(x))
    batch = retriever.retrieve(np.arange(30)).items
    for u in (0, 7, 29):
        np.testing.assert_array_equal(retriever.retrieve(np.array([u])).items[0], batch[u])


def test_candidate_recall_by_hand() -> None:
    truth = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]], dtype=np.float32))
    cands = np.array([[0, 3], [1, 3], [0, 1]])
    # user 0: 1 of 2; user 1: 0 of 1; user 2 has nothing held out and is left out.
    assert candidate_recall(cands, truth, np.array([0, 1, 2])) == pytest.approx(0.25)


def test_bad_retriever_arguments() -> None:
    with pytest.raises(ValueError, match="unique"):
        MultiChannelRetriever([Channel("a", MostPopular()), Channel("a", MostPopular())])
    with pytest.raises(ValueError, match="quota > 0"):
        MultiChannelRetriever([Channel("a", MostPopular(), quota=0.0)])


def test_trending_decays_old_interactions() -> None:
    day = 86400.0
    inter = pd.DataFrame({
        "user": ["u1", "u2", "u3", "u1"],
        "item": ["old", "old", "old", "new"],
        "timestamp": [0.0, 0.0, 0.0, 20 * day],
    })
    ds = build_dataset("t", inter)
    train = TrainData(user_items=ds.user_item_matrix(), dataset=ds)
    trend = Trending(half_life_days=10.0).fit(train)
    old, new = ds.items.to_index("old"), ds.items.to_index("new")
    # Three interactions 20 days (two half-lives) old count 3 * 0.25; one fresh counts 1.
    assert trend.trend_[old] == pytest.approx(0.75)
    assert trend.trend_[new] == pytest.approx(1.0)
    assert Trending(half_life_days=None).fit(train).trend_[old] == pytest.approx(3.0)


def test_new_items_channel_ranks_only_rare_items_first() -> None:
    x = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 1, 0, 0], [1, 0, 1, 0]], dtype=np.float32))
    model = NewItems(Fixed(row=(9, 8, 1, 2)), max_interactions=1).fit(TrainData.from_matrix(x))
    ids, _ = model.recommend(np.array([0, 1]), k=2, exclude_seen=False)
    # Items 2 and 3 have at most one interaction: they come first, in the base model's order.
    np.testing.assert_array_equal(ids, [[3, 2], [3, 2]])


def test_tuned_quotas_drop_a_useless_channel_and_keep_exposure_channels() -> None:
    good = Fixed(row=(8, 7, 6, 5, 4, 3, 2, 1))  # ranks 0, 1, 2, ...: the held-out items come first
    bad = Fixed(row=(1, 2, 3, 4, 5, 6, 7, 8))  # ranks 7, 6, 5, ...: never a held-out item
    shown = Fixed(row=(1, 2, 3, 4, 5, 6, 8, 7))  # ranks 6, 7, 5, ...: an exposure channel, as bad
    retriever = MultiChannelRetriever([Channel("good", good, 1.0), Channel("bad", bad, 1.0),
                                       Channel("trending", shown, 0.25)], n_candidates=4)
    retriever.fit(TrainData.from_matrix(two_user_matrix()))
    # Unseen items in good's order: user 0 -> 0, 1, 2, 3; user 1 -> 1, 2, 3, 4. Hold those out.
    truth = sp.csr_matrix((np.ones(8, np.float32), ([0] * 4 + [1] * 4, [0, 1, 2, 3, 1, 2, 3, 4])), shape=(2, 8))
    users = np.array([0, 1])
    before = candidate_recall(retriever.retrieve(users).items, truth, users)
    # By hand: good and bad alternate (priorities 1, 1, 2, 2, ...) and trending's first item
    # (priority 4) comes after them, so 2 of each user's 4 held-out items are in.
    assert before == pytest.approx(0.5)
    quotas = tune_quotas(retriever, users, truth)
    assert quotas["bad"] == 0.0 and quotas["good"] > 0 and quotas["trending"] == 0.25
    tuned = retriever.with_quotas(quotas)
    # bad off: good's four come first (trending's priority-4 item loses the tie to good's 4th).
    assert candidate_recall(tuned.retrieve(users).items, truth, users) == pytest.approx(1.0)
    assert retriever.quotas["bad"] == 1.0  # the original is left as it was
    with pytest.raises(ValueError, match="does not have"):
        retriever.with_quotas({"nope": 1.0})
    with pytest.raises(ValueError, match="none of the given users"):
        tune_quotas(retriever, users, sp.csr_matrix((2, 8), dtype=np.float32))


def test_value_weighted_channel_trains_on_rank_weights_and_the_others_on_the_binary_matrix() -> None:
    from socialrec.ingest.schema import with_interaction_values
    from socialrec.represent.profiles import value_rank_weights

    ds = build_dataset("plays", pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "y", "y"]}))
    ds = with_interaction_values(ds, pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "y", "y"], "value": [1, 50, 3]}))
    x = sp.csr_matrix(np.array([[1, 1], [0, 1]], np.float32))
    retriever = MultiChannelRetriever([Channel("plain", MostPopular()), Channel("plays", MostPopular(), value_weighted=True)],
                                      n_candidates=2).fit(TrainData(user_items=x, dataset=ds))
    np.testing.assert_array_equal(retriever.models_["plain"].user_items_.toarray(), x.toarray())
    weighted = retriever.models_["plays"].user_items_.toarray()
    np.testing.assert_allclose(weighted, value_rank_weights(ds, x).toarray())
    assert weighted[0, 1] > weighted[0, 0] > 0  # a played y more than x
    np.testing.assert_array_equal(retriever.user_items_.toarray(), x.toarray())  # seen items stay the binary history


def test_a_burst_of_fresh_accounts_does_not_make_an_item_trend() -> None:
    """300 accounts that each interacted once with "spam" count for nothing with
    min_user_history=3; ten established users make "real" trend, fitted or folded in."""
    rows = [(f"user{u}", f"item{i}") for u in range(10) for i in range(4)] + [(f"user{u}", "real") for u in range(10)]
    rows += [(f"bot{b}", "spam") for b in range(300)]
    ds = build_dataset("t", pd.DataFrame(rows, columns=["user", "item"]))
    train = TrainData(user_items=ds.user_item_matrix(), dataset=ds)
    trend = Trending(half_life_days=None, min_user_history=3).fit(train)
    spam, real = ds.items.to_index("spam"), ds.items.to_index("real")
    assert trend.trend_[spam] == 0.0 and trend.trend_[real] == 10.0
    assert Trending(half_life_days=None).fit(train).trend_[spam] == 300.0  # without the rule it would lead
    # Fold-ins: more bots change nothing; a bot that builds a history of three items counts.
    n = trend.n_users_
    bots = sp.csr_matrix((np.ones(50, np.float32), (np.arange(50), np.full(50, spam))), shape=(50, trend.n_items_))
    trend.partial_fit_users(np.arange(n, n + 50), bots)
    assert trend.trend_[spam] == 0.0
    three = sp.csr_matrix((np.ones(3, np.float32), ([0, 0, 0], [spam, 0, 1])), shape=(1, trend.n_items_))
    trend.partial_fit_users(np.array([n]), three)
    assert trend.trend_[spam] == 1.0
