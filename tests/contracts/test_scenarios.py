"""The scenario recommender (a shared backbone with a LoRA adapter per domain) runs the shared contract."""

from __future__ import annotations

import pytest
import scipy.sparse as sp

from socialrec.retrieve.base import BaseRecommender, TrainData
from tests.contracts.recommender_contract import RecommenderContract
from tests.contracts import test_sequential as sequential_tests

pytest.importorskip("torch")
pytest.importorskip("peft")

from socialrec.retrieve.scenarios import AdapterSeq  # noqa: E402

FAST = dict(embedding_dim=32, n_layers=1, n_heads=1, dropout=0.0, learning_rate=0.01, batch_size=16, epochs=20,
            patience=20, adapter_epochs=5, min_steps=5, adapter_patience=5, text_only_share=0.0,
            num_threads=1, random_state=0)


class TestAdapterSeq(RecommenderContract):
    # Without a backbone, fit pretrains one on the data, then trains the scenario's adapter on it.
    # A fold-in runs the scenario's network over the user's new sequence ("aggregate"); inference
    # is float32 and a fold-in's batch pads differently from fit's, so an unchanged user's scores
    # move by rounding only (1e-4 of the largest score bounds it).
    places_items = True
    fold_in_refold_change = 1e-4

    def make(self) -> BaseRecommender:
        from tests.retrieve.test_content import ENCODER

        return AdapterSeq(**FAST, encoder_object=ENCODER, cache=False)

    def new_item_text(self, block: int) -> str:
        return sequential_tests.TestLMSeq().new_item_text(block)

    @classmethod
    def train_data(cls, data: sp.csr_matrix) -> TrainData:
        return sequential_tests.TestLMSeq.train_data.__func__(cls, data)  # type: ignore[attr-defined]


class TestAdapterSeqScratch(TestAdapterSeq):
    # The separately trained model of one domain: a backbone of its own, no adapter.
    def make(self) -> BaseRecommender:
        from tests.retrieve.test_content import ENCODER

        return AdapterSeq(**FAST, mode="scratch", encoder_object=ENCODER, cache=False)
