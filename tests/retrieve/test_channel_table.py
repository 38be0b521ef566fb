"""The one channel table: every row builds its model, and the hybrid, the features and the
explainer read their facts from it."""

from __future__ import annotations

import numpy as np
import pytest

from socialrec.retrieve.base import BaseRecommender
from socialrec.retrieve.channel_table import CHANNELS, EXPOSURE_CHANNELS, VALUE_WEIGHTABLE, channel_kind, evidence


def test_every_row_builds_an_unfitted_recommender() -> None:
    pytest.importorskip("torch")
    for name, row in CHANNELS.items():
        model = row.factory()
        assert isinstance(model, BaseRecommender), name
        assert row.quota >= 0 and row.group in {"collaborative", "sequential", "social", "content", "trending", "popular",
                                                "new"}


def test_derived_lists_and_replicas_come_from_the_rows() -> None:
    assert set(EXPOSURE_CHANNELS) == {"new", "trending"}
    assert set(VALUE_WEIGHTABLE) == {"itemknn", "als", "lightgcn", "social"}
    assert channel_kind("lightgcn#2") is CHANNELS["lightgcn"]
    with pytest.raises(ValueError, match="unknown channel 'nope'; known: itemknn"):
        channel_kind("nope")


def test_hybrid_features_and_evidence_follow_the_table() -> None:
    from socialrec.ingest.datasets.synthetic import load_synthetic
    from socialrec.rank.hybrid import DEFAULT_QUOTAS, HybridRecommender
    from socialrec.retrieve.base import TrainData
    from socialrec.retrieve.channel_table import ITEM_SIMILARITY, TIE_STRENGTH

    ds = load_synthetic()
    model = HybridRecommender(channels=("als", "itemknn", "social-proof", "trending"), n_candidates=60)
    model.fit(TrainData(user_items=ds.user_item_matrix(), dataset=ds))
    assert model.retriever_.quotas == {c: DEFAULT_QUOTAS[c] for c in ("als", "itemknn", "social-proof", "trending")}
    for feature in model.features_.features_:
        channel = feature.name.split(":")[0]
        if channel in CHANNELS:
            assert feature.group == CHANNELS[channel].group
    models = model.retriever_.models_
    assert evidence(models, ITEM_SIMILARITY) is models["itemknn"].similarity_
    assert evidence(models, TIE_STRENGTH) is models["social-proof"].tie_strength_
    # monotone constraints: channel scores rise, ranks fall, the rest free
    mono = dict(zip(model.features_.names, model.features_.monotone))
    assert mono["als:score"] == 1 and mono["als:log_rank"] == -1 and mono["item:log_popularity"] == 0
    assert np.isfinite(model.score(np.arange(3))).all()
