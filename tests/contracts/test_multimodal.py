"""The multimodal recommenders run the shared contract on block data whose items carry vectors:
an item's "image" vector is its block's prototype plus noise, its "audio" vector noise only, so
the right neighbours of an item (and the right block of a new item) are read off the image."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from socialrec.ingest.features import with_item_features
from socialrec.ingest.schema import build_dataset
from socialrec.retrieve.base import BaseRecommender, TrainData
from tests.contracts.recommender_contract import RecommenderContract

pytest.importorskip("torch")

from socialrec.retrieve.multimodal import VBPR, ModalityProfile, MultimodalGCN  # noqa: E402

DIM = 8
_PROTOTYPES = np.random.default_rng(7).normal(size=(4, DIM)) * 3.0


def block_vectors(blocks: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"image": (_PROTOTYPES[blocks] + rng.normal(scale=0.3, size=(len(blocks), DIM))).astype(np.float32),
            "audio": rng.normal(size=(len(blocks), 4)).astype(np.float32)}


def multimodal_train(data: sp.csr_matrix, items_per_block: int) -> TrainData:
    n_users, n_items = data.shape
    coo = data.tocoo()
    ds = build_dataset("blocks-mm", pd.DataFrame({"user": coo.row.astype(str), "item": coo.col.astype(str)}),
                       users=pd.DataFrame({"id": [str(u) for u in range(n_users)]}),
                       items=pd.DataFrame({"id": [str(i) for i in range(n_items)]}))
    vectors = block_vectors(np.arange(n_items) // items_per_block, seed=0)
    for name, m in vectors.items():
        ds = with_item_features(ds, name, m)
    return TrainData(user_items=sp.csr_matrix(data), dataset=ds)


FAST = dict(embedding_dim=16, learning_rate=0.05, epochs=40, batch_size=128, eval_every=5, random_state=0)


class _Multimodal(RecommenderContract):
    places_items_from_vectors = True

    @classmethod
    def train_data(cls, data: sp.csr_matrix) -> TrainData:
        return multimodal_train(data, cls.items_per_block)

    def new_item_vectors(self, blocks: list[int]) -> dict[str, np.ndarray]:
        return block_vectors(np.asarray(blocks), seed=99)


class TestVBPR(_Multimodal):
    # A fold-in aggregates the items' fitted vectors ("aggregate"), not the trained user vector,
    # rescaled to the fitted users' median norm (BPR): re-folding an unchanged user moved their
    # scores by 122% of the largest (measured), their top 3 (the unseen block items) kept.
    fold_in_refold_change = 1.5

    def make(self) -> BaseRecommender:
        return VBPR(**FAST)


class TestMultimodalGCN(_Multimodal):
    # A fold-in aggregates the items' fitted vectors ("aggregate"), not the trained user vector
    # (cosine scores, as LightGCN's full softmax).
    fold_in_refold_change = 0.8

    def make(self) -> BaseRecommender:
        return MultimodalGCN(n_layers=2, knn_k=3, temperature=0.2, **{**FAST, "batch_size": 16})


class TestModalityProfile(_Multimodal):
    fold_in_score_rtol = 1e-6  # the profile is the mean of the row's item vectors, as in a fit
    learns_structure = True

    def make(self) -> BaseRecommender:
        return ModalityProfile(modality_weights=(1.0, 0.0))


def test_modality_models_say_they_need_vectors() -> None:
    from socialrec.errors import DataError
    from tests.contracts.recommender_contract import block_data

    for model in (VBPR(**FAST), MultimodalGCN(**FAST), ModalityProfile()):
        with pytest.raises(DataError, match="needs item modality vectors"):
            model.fit(block_data())
    train = multimodal_train(block_data(), 10)
    with pytest.raises(DataError, match="not in the dataset"):
        MultimodalGCN(modalities=("video",), **FAST).fit(train)


def test_cold_item_placed_by_its_vectors() -> None:
    """An item no one has in training is placed from its image neighbours: block users get it."""
    from tests.contracts.recommender_contract import block_data

    data = block_data().tolil()
    data[:, 5] = 0  # item 5 (block 0) is cold
    data = sp.csr_matrix(data)
    data.eliminate_zeros()
    train = multimodal_train(data, 10)
    for model in (MultimodalGCN(n_layers=2, knn_k=3, temperature=0.2, **{**FAST, "batch_size": 16}),
                  ModalityProfile(modality_weights=(1.0, 0.0))):
        model.fit(train)
        ids, _ = model.recommend(np.arange(12), k=4)
        assert np.mean([5 in row for row in ids]) >= 0.9, (type(model).__name__, ids)
        others, _ = model.recommend(np.arange(12, 48), k=3)  # their 3 unseen block items
        assert not (others == 5).any()
