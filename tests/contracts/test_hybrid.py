"""The hybrid recommender runs the shared contract: with LightGBM, with the linear fallback,
and with the social channel plus diversity re-ranking."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp

from socialrec.rank.hybrid import HybridRecommender
from socialrec.retrieve.base import BaseRecommender, TrainData
from tests.contracts.recommender_contract import RecommenderContract, block_data, block_social_dataset

pytest.importorskip("implicit")


class TestHybridLambdaRank(RecommenderContract):
    fold_in_isolated = False  # its popularity channel and features are recounted for everyone
    def make(self) -> BaseRecommender:
        return HybridRecommender(channels=("ease", "itemknn", "pop"), channel_params={"ease": {"l2": 10.0}},
                                 n_candidates=30, ranker="lightgbm", holdout_fraction=0.3)


class TestHybridLinear(RecommenderContract):
    fold_in_isolated = False  # its popularity channel and features are recounted for everyone
    def make(self) -> BaseRecommender:
        return HybridRecommender(channels=("itemknn", "pop"), n_candidates=30, ranker="linear", holdout_fraction=0.3)


class TestHybridSocialDiverse(RecommenderContract):
    # Fitted without the two users, then folded in: the refit's top 3 in 5 of 6 places (measured):
    # the diversity re-ranking swaps a block item for another block's in one user's third place.
    fold_in_top_k_overlap = 0.8
    fold_in_isolated = False  # friends see the folded-in users' items; trending is recounted
    def make(self) -> BaseRecommender:
        return HybridRecommender(channels=("ease", "social-proof", "trending"), channel_params={"ease": {"l2": 10.0}},
                                 n_candidates=30, ranker="lightgbm", diversity=0.2, holdout_fraction=0.3)

    @classmethod
    def train_data(cls, data: sp.csr_matrix) -> TrainData:
        return TrainData(user_items=sp.csr_matrix(data), dataset=block_social_dataset(data, cls.users_per_block))


def test_score_items_agrees_with_the_ranking_of_retrieved_candidates() -> None:
    import numpy as np

    from tests.contracts.recommender_contract import block_data

    data = block_data()
    model = TestHybridLambdaRank().make().fit(TrainData.from_matrix(data))
    items, scores, _, _ = model.rank_candidates(np.array([0, 5]))
    given = model.score_items(np.array([0, 5]), np.maximum(items, 0))
    ok = items >= 0
    np.testing.assert_allclose(given[ok], scores[ok], rtol=1e-5, atol=1e-5)


def test_last_item_holdout_takes_each_users_newest_item() -> None:
    import numpy as np
    import pandas as pd

    from socialrec.ingest.schema import build_dataset
    from socialrec.rank.hybrid import _holdout_last

    inter = pd.DataFrame({"user": ["a"] * 4 + ["b"] * 2, "item": ["1", "2", "3", "4", "1", "2"],
                          "timestamp": [1.0, 4.0, 2.0, 3.0, 1.0, 2.0]})
    ds = build_dataset("t", inter)
    fit_data, held = _holdout_last(TrainData(user_items=ds.user_item_matrix(), dataset=ds))
    fit = fit_data.user_items
    a, b = ds.users.to_index("a"), ds.users.to_index("b")
    assert held[a].indices.tolist() == [ds.items.to_index("2")]  # a's newest item (time 4)
    assert held[b].nnz == 0  # fewer than 3 items: nothing held out
    assert fit[a].nnz == 3 and fit[b].nnz == 2
    assert np.all(fit.multiply(held).toarray() == 0)


class TestHybridLastHoldout(RecommenderContract):
    fold_in_isolated = False  # its popularity channel and features are recounted for everyone
    def make(self) -> BaseRecommender:
        return HybridRecommender(channels=("itemknn", "pop"), n_candidates=30, holdout="last")


def test_a_ranker_worse_than_a_channel_is_replaced_by_that_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard for sparse data: a learned ranker that orders held-out users' candidates worse
    than one channel alone (here one that inverts ItemKNN) is replaced by that channel."""
    import numpy as np

    import socialrec.rank.hybrid as hybrid_module
    from tests.contracts.recommender_contract import block_data

    class Inverted:
        def fit(self, x, y, g, xv=None, yv=None, gv=None, feature_names=None, monotone_constraints=None):  # type: ignore[no-untyped-def]
            self.column = feature_names.index("itemknn:z")
            return self

        def predict(self, x):  # type: ignore[no-untyped-def]
            return -x[:, self.column]

    monkeypatch.setattr(hybrid_module, "make_ranker", lambda kind, seed=0: Inverted())
    model = HybridRecommender(channels=("itemknn", "pop"), n_candidates=30, holdout_fraction=0.3)
    model.fit(TrainData.from_matrix(block_data()))
    assert model.ranker_choice_.startswith("channel ")
    assert model.validation_ndcg_["ranker"] < max(model.validation_ndcg_["itemknn"], model.validation_ndcg_["pop"])
    ids, _ = model.recommend(np.arange(48), k=3)
    assert (ids // 10 == (np.arange(48) // 12)[:, None]).mean() >= 0.95  # ranks like ItemKNN again


class TestHybridBaggedRanker(RecommenderContract):
    fold_in_isolated = False  # its popularity channel and features are recounted for everyone
    def make(self) -> BaseRecommender:
        return HybridRecommender(channels=("ease", "itemknn", "pop"), channel_params={"ease": {"l2": 10.0}},
                                 n_candidates=30, ranker="lightgbm", holdout_fraction=0.3, ranker_bags=3)


def test_bagged_ranker_fits_one_member_per_fold_and_scores_out_of_fold() -> None:
    import numpy as np

    from socialrec.rank.ranker import BaggedRanker
    from tests.contracts.recommender_contract import block_data

    model = TestHybridBaggedRanker().make().fit(TrainData.from_matrix(block_data()))
    assert model.ranker_choice_ == "BaggedRanker(3 x LambdaRanker)"
    assert isinstance(model.ranker_, BaggedRanker) and len(model.ranker_.members) == 3
    assert len({m.seed for m in model.ranker_.members}) == 3
    # The block structure is easy: out-of-fold ranking of held-out items is near perfect.
    assert model.validation_ndcg_["ranker"] > 0.5
    ids, _ = model.recommend(np.arange(48), k=3)
    assert (ids // 10 == (np.arange(48) // 12)[:, None]).mean() >= 0.95


@pytest.mark.parametrize("bags", [0, -1, 2.5])
def test_ranker_bags_must_be_a_positive_integer(bags: object) -> None:
    from tests.contracts.recommender_contract import block_data

    with pytest.raises(ValueError, match="ranker_bags must be an integer >= 1"):
        HybridRecommender(channels=("itemknn", "pop"), n_candidates=30, ranker_bags=bags).fit(  # type: ignore[arg-type]
            TrainData.from_matrix(block_data()))


def test_ranker_refit_serves_one_model_with_the_folds_tree_count() -> None:
    import numpy as np

    from socialrec.rank.ranker import LambdaRanker
    from tests.contracts.recommender_contract import block_data

    model = HybridRecommender(channels=("ease", "itemknn", "pop"), channel_params={"ease": {"l2": 10.0}}, n_candidates=30,
                              ranker="lightgbm", holdout_fraction=0.3, ranker_bags=3, ranker_refit=True)
    model.fit(TrainData.from_matrix(block_data()))
    assert isinstance(model.ranker_, LambdaRanker)
    assert "chosen by 3-fold early stopping" in model.ranker_choice_
    assert model.ranker_.n_estimators >= 1
    ids, _ = model.recommend(np.arange(48), k=3)
    assert (ids // 10 == (np.arange(48) // 12)[:, None]).mean() >= 0.95


def test_a_replica_channel_is_its_model_from_another_seed_with_the_originals_parameters() -> None:
    from socialrec.rank.hybrid import make_channel

    replica = make_channel("als#2", {"factors": 8, "random_state": 5})
    assert replica.name == "als#2"
    assert replica.model.get_params()["factors"] == 8
    assert replica.model.get_params()["random_state"] == 7
    assert replica.quota == 0.0  # a second opinion for the ranker, not a candidate source
    assert make_channel("als#2", {}, quota=0.3).quota == 0.3


@pytest.mark.parametrize("name, message", [("ease#1", "has no random seed"), ("als#x", "positive integer"),
                                           ("als#0", "positive integer")])
def test_a_replica_of_a_deterministic_model_or_a_bad_number_is_refused(name: str, message: str) -> None:
    from socialrec.rank.hybrid import make_channel

    with pytest.raises(ValueError, match=message):
        make_channel(name)


def test_replica_features_belong_to_their_models_signal_and_reach_the_ranker() -> None:
    import numpy as np

    from tests.contracts.recommender_contract import block_data

    model = HybridRecommender(channels=("itemknn", "als", "als#1"), channel_params={"als": {"factors": 8}},
                              n_candidates=30, ranker="lightgbm", holdout_fraction=0.3)
    model.fit(TrainData.from_matrix(block_data()))
    original, replica = model.retriever_.models_["als"], model.retriever_.models_["als#1"]
    assert replica.get_params() == {**original.get_params(), "random_state": 1}
    assert not np.allclose(original.item_factors_, replica.item_factors_)  # another seed, another model
    assert model.features_.group_of("als#1:z") == "collaborative"
    assert "als#1:log_rank" in model.features_.names
    ids, _ = model.recommend(np.arange(48), k=3)
    assert (ids // 10 == (np.arange(48) // 12)[:, None]).mean() >= 0.95


def _synthetic_split(with_tags: bool):  # type: ignore[no-untyped-def]
    import pandas as pd

    from socialrec.ingest.datasets.synthetic import load_synthetic
    from socialrec.ingest.schema import with_tag_assignments
    from socialrec.ingest.split import random_split

    ds = load_synthetic(n_users=150, n_items=120, seed=1)
    if with_tags:
        # Each item tagged with its topic plus one of two moods: tags that say what the item is.
        items = ds.item_table
        table = pd.DataFrame({"item": list(items["id"]) * 2,
                              "tag": list(items["category"]) + [f"mood{i % 2}" for i in range(len(items))]})
        ds = with_tag_assignments(ds, table)
    return random_split(ds, (0.8, 0.1, 0.1), seed=0)


def test_diversity_space_auto_takes_tags_then_categories_and_tags_without_tags_is_refused() -> None:
    kw = {"channels": ("itemknn", "als", "pop"), "n_candidates": 40, "ranker": "linear"}
    plain = HybridRecommender(**kw).fit(_synthetic_split(with_tags=False).train_data())
    assert plain.diversity_space_ == "categories" and plain.item_vectors_ is None
    assert plain.item_categories_ is not None
    collab = HybridRecommender(**kw, diversity_space="collaborative").fit(_synthetic_split(with_tags=False).train_data())
    assert collab.diversity_space_ == "collaborative"
    assert collab.item_vectors_ is collab.retriever_.models_["als"].item_factors_
    tagged = HybridRecommender(**kw).fit(_synthetic_split(with_tags=True).train_data())
    assert tagged.diversity_space_ == "tags" and tagged.item_vectors_.shape[0] == tagged.n_items_
    assert tagged.use_recommended_diversity() is tagged and tagged.rerank == "mmr"
    assert tagged.diversity == tagged.diversity_calibration_.weight > 0
    with pytest.raises(ValueError, match="needs tag assignments"):
        HybridRecommender(**kw, diversity_space="tags").fit(_synthetic_split(with_tags=False).train_data())
    with pytest.raises(ValueError, match="diversity_space must be one of"):
        HybridRecommender(**kw, diversity_space="genre").fit(_synthetic_split(with_tags=False).train_data())


def test_recommended_diversity_raises_the_served_lists_ild_by_the_calibrated_gain() -> None:
    """The weight is calibrated on a sample of users' candidate lists (no labels); served to
    every user, the lists' tag ILD rises by about that gain, and by more than a smaller target's."""
    import numpy as np

    from socialrec.evaluate.metrics import intra_list_diversity
    from socialrec.rank.hybrid import RECOMMENDED_ILD_GAIN

    split = _synthetic_split(with_tags=True)
    model = HybridRecommender(channels=("itemknn", "als", "pop"), n_candidates=40, ranker="linear").fit(split.train_data())
    users = np.arange(model.n_users_)
    plain, _ = model.recommend(users, k=10)

    def gain() -> float:
        diverse, _ = model.recommend(users, k=10)
        ild = [np.nanmean(intra_list_diversity(t, 10, item_vectors=model.item_vectors_)) for t in (plain, diverse)]
        return ild[1] / ild[0] - 1.0

    model.calibrate_diversity(0.05, n_users=60)
    small, small_weight = gain(), model.diversity
    model.use_recommended_diversity()
    cal = model.diversity_calibration_
    assert cal.reached and cal.target == RECOMMENDED_ILD_GAIN and cal.n_lists == min(1000, model.n_users_)
    assert model.diversity > small_weight > 0
    assert gain() == pytest.approx(cal.gain, abs=0.02) and gain() >= RECOMMENDED_ILD_GAIN - 0.02
    assert 0.02 < small < gain()


def test_learned_quotas_hold_more_held_out_items_and_survive_the_refit() -> None:
    """On block data popularity proposes other blocks' items: tuning on the held-out tenth turns
    its quota down, the refitted retriever (fitted on all training data) keeps the tuned quotas,
    and the merged candidates then hold more of the held-out items than under the default."""
    import numpy as np

    from socialrec.retrieve.channels import candidate_recall
    from tests.contracts.recommender_contract import block_data

    data = block_data(users_per_block=20, items_per_block=30, items_per_user=12)
    params = dict(channels=("itemknn", "pop"), n_candidates=12, ranker="linear", holdout_fraction=0.3,
                  quotas={"itemknn": 1.0, "pop": 1.0})
    fixed = HybridRecommender(**params).fit(TrainData.from_matrix(data))
    tuned = HybridRecommender(**params, learn_quotas=True).fit(TrainData.from_matrix(data))
    assert fixed.quotas_ == {"itemknn": 1.0, "pop": 1.0}
    assert tuned.quotas_["pop"] < 1.0 and tuned.quotas_["itemknn"] > 0
    assert tuned.retriever_.quotas == tuned.quotas_  # the refit kept them
    # Held-out truth: each user's unseen items of their own block.
    n_users, n_items = data.shape
    own = sp.csr_matrix(np.kron(np.eye(4), np.ones((20, 30))) - data.toarray())
    users = np.arange(n_users)
    recall = {name: candidate_recall(m.retriever_.retrieve(users).items, own, users)
              for name, m in (("fixed", fixed), ("tuned", tuned))}
    assert recall["tuned"] > recall["fixed"] + 0.1, recall


def test_without_validation_graph_channels_early_stop_on_the_holdout_and_the_refit_runs_their_epochs() -> None:
    """No validation set: the graph channel early-stops on the ranker's held-out tenth (not all
    its `epochs`), and the refit on all training data trains for the chosen count (x 1.2)."""
    from tests.contracts.recommender_contract import block_data

    data = block_data(users_per_block=20, items_per_block=30, items_per_user=12)
    model = HybridRecommender(channels=("itemknn", "lightgcn"), ranker="linear", n_candidates=20, holdout_fraction=0.3,
                              channel_params={"lightgcn": {"embedding_dim": 16, "epochs": 200, "patience": 2,
                                                           "learning_rate": 0.05}})
    model.fit(TrainData.from_matrix(data))
    epochs = model.refit_epochs_["lightgcn"]
    assert 1 <= epochs < 200 and set(model.refit_epochs_) == {"lightgcn"}
    refitted = model.retriever_.models_["lightgcn"]
    assert refitted.epochs == epochs and len(refitted.history_) == epochs


def test_value_weighted_channels_train_on_play_rank_weights() -> None:
    import numpy as np
    import pandas as pd

    from socialrec.errors import DataError
    from socialrec.ingest.schema import with_interaction_values
    from socialrec.represent.profiles import value_rank_weights

    split = _synthetic_split(with_tags=False)
    ds = split.dataset
    inter = ds.interactions.drop_duplicates(["user", "item"])
    plays = pd.DataFrame({"user": ds.users.to_external(inter["user"].to_numpy()),
                          "item": ds.items.to_external(inter["item"].to_numpy()),
                          "value": np.random.default_rng(0).integers(1, 500, len(inter))})
    train = split.train_data()
    valued = dataclasses.replace(train, dataset=with_interaction_values(ds, plays))
    kw = {"channels": ("itemknn", "als", "pop"), "n_candidates": 40, "ranker": "linear"}
    model = HybridRecommender(**kw, value_weighted=("itemknn",)).fit(valued)
    knn = model.retriever_.models_["itemknn"].user_items_
    np.testing.assert_allclose(knn.toarray(), value_rank_weights(valued.dataset, train.user_items).toarray(), rtol=1e-6)
    assert len(np.unique(knn.data)) > 10
    assert set(model.retriever_.models_["als"].user_items_.data.tolist()) == {1.0}
    with pytest.raises(ValueError, match="value_weighted names channels that are not used: \\['ease'\\]"):
        HybridRecommender(**kw, value_weighted=("ease",)).fit(valued)
    unvalued = dataclasses.replace(ds, interactions=ds.interactions.assign(value=np.nan))
    with pytest.raises(DataError, match="needs interaction values"):
        HybridRecommender(**kw, value_weighted=("itemknn",)).fit(dataclasses.replace(train, dataset=unvalued))


def test_auto_value_weighting_follows_the_kind_of_values() -> None:
    """Counts (plays, no rating scale) weight the value-weightable channels; ratings and constant
    values do not; an explicit () never weights."""
    import dataclasses

    import numpy as np

    from socialrec.rank.hybrid import HybridRecommender
    from socialrec.retrieve.base import TrainData
    from tests.contracts.recommender_contract import block_data, block_social_dataset

    data = block_data()
    ds = block_social_dataset(data, 12)
    rng = np.random.default_rng(0)
    plays = dataclasses.replace(ds, interactions=ds.interactions.assign(value=rng.integers(1, 500, len(ds.interactions))
                                                                        .astype(np.float32)))
    channels = ("itemknn", "als", "pop")

    def weighted(dataset: object, **kw: object) -> tuple[str, ...]:
        model = HybridRecommender(channels=channels, n_candidates=20, holdout_fraction=0.3, **kw)
        model.fit(TrainData(user_items=data, dataset=dataset))  # type: ignore[arg-type]
        return model.value_weighted_

    assert weighted(plays) == ("itemknn", "als")
    assert weighted(dataclasses.replace(plays, rating_range=(1.0, 500.0))) == ()
    assert weighted(dataclasses.replace(plays, interactions=plays.interactions.assign(value=np.float32(1.0)))) == ()
    assert weighted(plays, value_weighted=()) == ()


def _cold_user_train_data() -> tuple[TrainData, np.ndarray, sp.csr_matrix]:
    """Four blocks of 10 items; block 0 has 4x the users of the others (its items are the most
    popular); the last 6 users (of block 3) have no training items and their items are the
    validation part, as in a cold-user split. Returns the data, those users and their rows."""
    rng = np.random.default_rng(0)
    rows, cols, user = [], [], 0
    for block, n_users in enumerate((48, 12, 12, 12)):
        for _ in range(n_users):
            items = rng.choice(10, size=7, replace=False) + 10 * block
            rows += [user] * 7
            cols += items.tolist()
            user += 1
    full = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(user, 40))
    cold = np.arange(user - 6, user)
    keep = np.ones(user, np.float32)
    keep[cold] = 0.0
    train = sp.csr_matrix(sp.diags(keep) @ full)
    train.eliminate_zeros()
    valid = sp.csr_matrix(full - train)
    return TrainData(user_items=train, valid_items=valid), cold, valid[cold]


def test_a_cold_user_splits_validation_does_not_teach_the_ranker_popularity() -> None:
    # The cold users' validation items have no history to be predicted from: a ranker learnt on
    # them learns popularity (block 0) and overrules the channels for users folded in later. The
    # hybrid learns from a holdout of the users with histories instead.
    train, cold, rows = _cold_user_train_data()
    model = HybridRecommender(channels=("itemknn", "pop"), n_candidates=30, ranker="lightgbm",
                              holdout_fraction=0.3).fit(train)
    assert model.ranker_labels_ == "holdout random"
    first_two = sp.lil_matrix(rows.shape, dtype=np.float32)  # each cold user's first two items arrive
    for r in range(rows.shape[0]):
        first_two[r, rows[r].indices[:2]] = 1.0
    model.partial_fit_users(cold, sp.csr_matrix(first_two))
    ids, _ = model.recommend(cold, k=5)
    assert np.all(ids // 10 == 3), ids  # their own block, not the popular one


def test_validation_items_of_users_with_histories_still_train_the_ranker() -> None:
    data = TrainData.from_matrix(block_data())
    x = data.user_items.tocsr()
    valid = sp.lil_matrix(x.shape, dtype=np.float32)
    for u in range(x.shape[0]):
        valid[u, x[u].indices[0]] = 1.0
    valid = sp.csr_matrix(valid)
    train = TrainData(user_items=sp.csr_matrix(x - valid), valid_items=valid)
    model = HybridRecommender(channels=("itemknn", "pop"), n_candidates=30, ranker="lightgbm").fit(train)
    assert model.ranker_labels_ == "validation"
