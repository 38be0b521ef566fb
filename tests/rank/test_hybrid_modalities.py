"""The hybrid reads items' modality vectors: a modality channel, per-modality similarity features
for the ranker, a cold item placed from its vectors, and "looks like X you liked" explanations.
Block data whose image vectors mark the block (tests/contracts/test_multimodal.py): item 5 of
block 0 has no interactions, so only its vectors can bring it to block 0's users."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("lightgbm")


def test_cold_item_is_placed_and_explained_from_its_vectors() -> None:
    from socialrec.explain.pipeline import RecommendationPipeline
    from socialrec.explain.reasons import Reason, render_sentence
    from socialrec.rank.hybrid import HybridRecommender, default_channels
    from tests.contracts.recommender_contract import block_data
    from tests.contracts.test_multimodal import multimodal_train

    d = block_data(users_per_block=30).tolil()
    d[:, 5] = 0
    d = sp.csr_matrix(d)
    d.eliminate_zeros()
    train = multimodal_train(d, 10)
    assert {"multimodal", "modality"} <= set(default_channels(train))
    hybrid = HybridRecommender(channels=("itemknn", "modality"), n_candidates=20).fit(train)
    assert {"content:image_sim_profile", "content:audio_sim_profile"} <= set(hybrid.features_.names)
    ids, _ = hybrid.recommend(np.arange(30), k=5)
    assert np.mean([5 in row for row in ids]) >= 0.9  # block 0's users get the cold item
    others, _ = hybrid.recommend(np.arange(30, 120), k=3)  # their 3 unseen block items
    assert not (others == 5).any()
    pipeline = RecommendationPipeline(hybrid, train.dataset)
    rec = next(r for r in pipeline.recommend("0", 5, explain=True) if r.item_id == "5")
    looks = [r for r in rec.reasons if r.kind == "looks_like"]
    assert looks and looks[0].evidence["modality"] == "image"
    assert int(looks[0].evidence["item"]["id"]) < 10  # a block-0 item the user liked
    assert "looks like" in rec.sentence and "which you liked" in rec.sentence
    sound = Reason("looks_like", 1.0, {"item": {"id": "7", "name": "Song"}, "modality": "audio"})
    assert render_sentence("X", [sound]) == "X: recommended because it sounds like Song, which you liked."
