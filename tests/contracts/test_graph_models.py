"""The torch graph recommenders run the shared contract (small, fast settings)."""

from __future__ import annotations

import numpy as np
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
    # A fold-in aggregates the items' fitted vectors ("aggregate"), not the trained user vector:
    # re-folding an unchanged user moved their scores by 18% of the largest (measured), their
    # top 3 (the unseen block items) kept; from a fit without them, the refit's top 3 exactly.
    fold_in_refold_change = 0.3
    def make(self) -> BaseRecommender:
        return LightGCN(n_layers=2, loss="bpr", cl_weight=0.0, **FAST)


class TestLightGCNSoftmax(RecommenderContract):
    # A fold-in aggregates the items' fitted vectors ("aggregate"), not the trained user vector:
    # re-folding an unchanged user moved their scores by 49% (cosine scores) of the largest (measured), their
    # top 3 (the unseen block items) kept; from a fit without them, the refit's top 3 exactly.
    fold_in_refold_change = 0.7
    def make(self) -> BaseRecommender:
        return LightGCN(n_layers=1, loss="softmax", n_negatives=16, temperature=0.2, cl_weight=0.0, **FAST)


class TestLightGCNFullSoftmax(RecommenderContract):
    # A fold-in aggregates the items' fitted vectors ("aggregate"), not the trained user vector:
    # re-folding an unchanged user moved their scores by 51% (cosine scores) of the largest (measured), their
    # top 3 (the unseen block items) kept; from a fit without them, the refit's top 3 exactly.
    fold_in_refold_change = 0.7
    def make(self) -> BaseRecommender:
        return LightGCN(n_layers=2, loss="full-softmax", temperature=0.2, cl_weight=0.0, **{**FAST, "batch_size": 16})


class TestSocialLightGCNFullSoftmax(RecommenderContract):
    # A fold-in aggregates the items' fitted vectors ("aggregate"), not the trained user vector:
    # re-folding an unchanged user moved their scores by 57% (cosine scores) of the largest (measured), their
    # top 3 (the unseen block items) kept; from a fit without them, the refit's top 3 exactly.
    fold_in_refold_change = 0.8
    def make(self) -> BaseRecommender:
        return SocialLightGCN(n_layers=2, loss="full-softmax", temperature=0.2, social_weight=0.5, cl_weight=0.0,
                              **{**FAST, "batch_size": 16})  # users per step: several steps per epoch

    @classmethod
    def train_data(cls, data: sp.csr_matrix) -> TrainData:
        return _social_train(data, cls.users_per_block)


class TestLightGCNSampledSoftmax(RecommenderContract):
    # The sampled softmax forced on the contract's small catalogue (sampled_above=0): what a catalogue
    # above the threshold trains with. Fold-in as in the exact softmax (same cosine read-out).
    fold_in_refold_change = 0.8

    def make(self) -> BaseRecommender:
        return LightGCN(n_layers=2, loss="full-softmax", temperature=0.2, cl_weight=0.0, sampled_above=0,
                        sampled_negatives=32, sampled_batch_size=16, **{**FAST, "batch_size": 16})


class TestSocialLightGCNSampledSoftmax(RecommenderContract):
    fold_in_refold_change = 0.8

    def make(self) -> BaseRecommender:
        return SocialLightGCN(n_layers=2, loss="full-softmax", temperature=0.2, social_weight=0.5, cl_weight=0.0,
                              sampled_above=0, sampled_negatives=32, sampled_batch_size=16,
                              **{**FAST, "batch_size": 16})

    @classmethod
    def train_data(cls, data: sp.csr_matrix) -> TrainData:
        return _social_train(data, cls.users_per_block)


class TestSocialLightGCN(RecommenderContract):
    # A fold-in aggregates the items' fitted vectors ("aggregate"), not the trained user vector:
    # re-folding an unchanged user moved their scores by 19% of the largest (measured), their
    # top 3 (the unseen block items) kept; from a fit without them, the refit's top 3 exactly.
    fold_in_refold_change = 0.3
    def make(self) -> BaseRecommender:
        return SocialLightGCN(n_layers=2, loss="bpr", social_weight=0.5, cl_weight=0.0, **FAST)

    @classmethod
    def train_data(cls, data: sp.csr_matrix) -> TrainData:
        return _social_train(data, cls.users_per_block)


class TestSocialMF(RecommenderContract):
    # A fold-in aggregates the items' fitted vectors ("aggregate"), not the trained user vector:
    # re-folding an unchanged user moved their scores by 10% of the largest (measured), their
    # top 3 (the unseen block items) kept; from a fit without them, the refit's top 3 exactly.
    fold_in_refold_change = 0.2
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
    fold_in_score_rtol = 1e-6  # ties, recency and popularity recomputed as a refit computes them
    fold_in_isolated = False  # friends read the folded-in users' items; popularity is recounted
    def make(self) -> BaseRecommender:
        from socialrec.retrieve.social_proof import SocialProof

        return SocialProof(overlap_weight=4.0)

    @classmethod
    def train_data(cls, data: sp.csr_matrix) -> TrainData:
        return _social_train(data, cls.users_per_block)


class TestSocialLightGCNContrastive(RecommenderContract):
    # A fold-in aggregates the items' fitted vectors ("aggregate"), not the trained user vector:
    # re-folding an unchanged user moved their scores by 28% of the largest (measured), their
    # top 3 (the unseen block items) kept; from a fit without them, the refit's top 3 exactly.
    fold_in_refold_change = 0.45
    def make(self) -> BaseRecommender:
        return SocialLightGCN(n_layers=2, loss="bpr", social_weight=0.5, cl_weight=0.01, noise_eps=0.05, **FAST)

    @classmethod
    def train_data(cls, data: sp.csr_matrix) -> TrainData:
        return _social_train(data, cls.users_per_block)


class TestSocialLightGCNReadout(RecommenderContract):
    # A fold-in aggregates the items' fitted vectors ("aggregate"), not the trained user vector:
    # re-folding an unchanged user moved their scores by 36% of the largest (measured), their
    # top 3 (the unseen block items) kept; from a fit without them, the refit's top 3 exactly.
    fold_in_refold_change = 0.55
    def make(self) -> BaseRecommender:
        return SocialLightGCN(n_layers=2, loss="bpr", social_weight=0.2, social_readout=0.3, cl_weight=0.0, **FAST)

    @classmethod
    def train_data(cls, data: sp.csr_matrix) -> TrainData:
        return _social_train(data, cls.users_per_block)


class TestSocialLightGCNNeighbourhood(RecommenderContract):
    # A fold-in aggregates the items' fitted vectors ("aggregate"), not the trained user vector:
    # re-folding an unchanged user moved their scores by 24% of the largest (measured), their
    # top 3 (the unseen block items) kept; from a fit without them, the refit's top 3 exactly.
    fold_in_refold_change = 0.4
    fold_in_isolated = False  # others' neighbourhood terms read the folded-in users' items
    def make(self) -> BaseRecommender:
        return SocialLightGCN(n_layers=2, loss="full-softmax", temperature=0.2, social_weight=0.5, cl_weight=0.0,
                              neighborhood_weight=1.0, neighbors=5, neighborhood_trust=0.5,
                              **{**FAST, "batch_size": 16})

    @classmethod
    def train_data(cls, data: sp.csr_matrix) -> TrainData:
        return _social_train(data, cls.users_per_block)


def _friend_only_data() -> tuple[TrainData, sp.csr_matrix]:
    """40 users each own three random items of 60 and trust one other user; each user's held-out
    item is one of the items that their trusted user owns. Co-interaction is noise, so only the
    trust edges in the neighbourhood term can find the held-out items."""
    import pandas as pd

    from socialrec.ingest.schema import build_dataset

    rng = np.random.default_rng(3)
    n_users, n_items = 40, 60
    owned = [rng.choice(n_items, size=3, replace=False) for _ in range(n_users)]
    trusted = (np.arange(n_users) + 1 + rng.integers(0, n_users - 1, n_users)) % n_users
    trusted[trusted == np.arange(n_users)] = (trusted[trusted == np.arange(n_users)] + 1) % n_users
    rows, cols, vrows, vcols = [], [], [], []
    for u in range(n_users):
        rows += [u] * 3
        cols += owned[u].tolist()
        candidates = np.setdiff1d(owned[trusted[u]], owned[u])
        vrows.append(u)
        vcols.append(int(candidates[0]))
    x = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))
    valid = sp.csr_matrix((np.ones(n_users, np.float32), (vrows, vcols)), shape=(n_users, n_items))
    inter = pd.DataFrame({"user": np.array(rows).astype(str), "item": np.array(cols).astype(str)})
    social = pd.DataFrame({"source": np.arange(n_users).astype(str), "target": trusted.astype(str)})
    ds = build_dataset("trust", inter, social=social, social_directed=True,
                       users=pd.DataFrame({"id": [str(u) for u in range(n_users)]}),
                       items=pd.DataFrame({"id": [str(i) for i in range(n_items)]}))
    return TrainData(user_items=x, dataset=ds, valid_items=valid), valid


def test_neighbourhood_weight_is_chosen_on_validation_and_finds_trusted_users_items() -> None:
    train, valid = _friend_only_data()
    fast = {**FAST, "batch_size": 16, "epochs": 5, "patience": 2}
    model = SocialLightGCN(n_layers=1, loss="full-softmax", temperature=0.2, neighborhood_weight=0.0,
                           neighborhood_grid=(4.0,), neighbors=1, neighborhood_trust=1.0, **fast).fit(train)
    # The trusted user's items are the held-out ones, so validation must pick the neighbourhood.
    assert model.neighborhood_weight_ == 4.0
    assert model.neighborhood_validation_[4.0] > model.neighborhood_validation_[0.0] + 0.2
    ids, _ = model.recommend(np.arange(40), k=8)  # trust is symmetric here: about two trust neighbours of three items
    found = np.mean([valid[u].indices[0] in ids[u] for u in range(40)])
    assert found >= 0.9
    plain = SocialLightGCN(n_layers=1, loss="full-softmax", temperature=0.2, **fast).fit(train)
    plain_ids, _ = plain.recommend(np.arange(40), k=8)
    assert np.mean([valid[u].indices[0] in plain_ids[u] for u in range(40)]) < 0.5
    assert plain.neighborhood_ is None


def test_neighbourhood_rejects_negative_weights() -> None:
    train, _ = _friend_only_data()
    with pytest.raises(ValueError, match="must be >= 0"):
        SocialLightGCN(neighborhood_grid=(-1.0,), **FAST).fit(train)


def test_full_softmax_weights_each_positive_by_its_interaction_value() -> None:
    """Every user has items 0 and 1, item 0 with value 3 and item 1 with 0.2 (plus three others).
    Without propagation (n_layers=0) only the loss can tell the two apart: weighted, every user
    scores item 0 above item 1; on the binary matrix the two are a coin toss."""
    rng = np.random.default_rng(0)
    rows, cols, vals = [], [], []
    for u in range(40):
        for i, v in [(0, 3.0), (1, 0.2)] + [(int(j), 1.0) for j in rng.choice(np.arange(2, 12), 3, replace=False)]:
            rows.append(u)
            cols.append(i)
            vals.append(v)
    weighted = sp.csr_matrix((np.array(vals, np.float32), (rows, cols)), shape=(40, 12))
    margins = []
    for data in (weighted, (weighted > 0).astype(np.float32)):
        model = LightGCN(n_layers=0, epochs=60, embedding_dim=16, temperature=0.2, random_state=0)
        scores = model.fit(TrainData.from_matrix(data))._score(np.arange(40))
        margins.append(scores[:, 0] - scores[:, 1])
    assert (margins[0] > 0).all() and margins[0].mean() > 0.3
    assert abs(margins[1].mean()) < 0.05
