"""The sequential recommenders (sasrec, lm-seq) run the shared contract, and learn what comes next."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from socialrec.ingest.schema import build_dataset
from socialrec.retrieve.base import BaseRecommender, TrainData
from tests.contracts.recommender_contract import RecommenderContract

pytest.importorskip("torch")

from socialrec.retrieve.sequential import SASRec  # noqa: E402

FAST = dict(embedding_dim=32, n_layers=1, n_heads=1, dropout=0.0, learning_rate=0.01, batch_size=16, epochs=20,
            patience=20, num_threads=1, random_state=0)


def timed_dataset(data: sp.csr_matrix, seed: int = 0) -> "object":
    """A dataset over the matrix whose interactions get a random order in time per user."""
    coo = sp.coo_matrix(data)
    rng = np.random.default_rng(seed)
    inter = pd.DataFrame({"user": coo.row.astype(str), "item": coo.col.astype(str),
                          "timestamp": rng.permutation(len(coo.row)).astype(np.float64)})
    return build_dataset("blocks", inter, users=pd.DataFrame({"id": [str(u) for u in range(data.shape[0])]}),
                         items=pd.DataFrame({"id": [str(i) for i in range(data.shape[1])]}))


class TestSASRec(RecommenderContract):
    # A fold-in runs the fitted network over the user's new sequence ("aggregate"): re-folding an
    # unchanged user recomputes exactly what fit computed (float64 inference), so scores stay put.
    def make(self) -> BaseRecommender:
        return SASRec(**FAST)

    @classmethod
    def train_data(cls, data: sp.csr_matrix) -> TrainData:
        return TrainData(user_items=sp.csr_matrix(data), dataset=timed_dataset(data))


class TestLMSeq(RecommenderContract):
    # lm-seq: item vectors add a projection of each item's text embedding (a hashing encoder
    # here, so the test loads no language model); a new item gets its vector from its text alone.
    places_items = True

    def make(self) -> BaseRecommender:
        from tests.retrieve.test_content import ENCODER

        return SASRec(**FAST, encoder_object=ENCODER, cache=False)

    def new_item_text(self, block: int) -> str:
        from tests.retrieve.test_content import TOPICS

        return f"{TOPICS[block]} brand new"

    @classmethod
    def train_data(cls, data: sp.csr_matrix) -> TrainData:
        from dataclasses import replace

        from tests.retrieve.test_content import item_text

        ds = timed_dataset(data)
        titles = pd.DataFrame({"owner": "item", "index": np.arange(data.shape[1], dtype=np.int32), "field": "title",
                               "text": [item_text(i, cls.items_per_block) for i in range(data.shape[1])],
                               "timestamp": np.nan})
        return TrainData(user_items=sp.csr_matrix(data), dataset=replace(ds, texts=titles))


class TestLMSeqLoRA(TestLMSeq):
    # lm-seq fine-tuning a language model (a tiny random BERT with MiniLM's tokenizer, so the test
    # loads no weights): LoRA on all its layers, then a new item's text goes through the tuned LM.
    def make(self) -> BaseRecommender:
        pytest.importorskip("peft")
        from tests.retrieve.test_two_tower import TINY

        return SASRec(**FAST, mode="lora", dapt=True, dapt_steps=5, dapt_batch_size=8, lm_epochs=2, lm_steps=5,
                      lm_batch_users=16, lm_items=16, lm_max_length=16, backbone=TINY)


class TestLMSeqTextMatch(TestLMSeq):
    # lm-seq with id dropout and the text match: user and item vectors carry the text part.
    def make(self) -> BaseRecommender:
        from tests.retrieve.test_content import ENCODER

        return SASRec(**FAST, encoder_object=ENCODER, cache=False, item_dropout=0.5, text_match_half_life=3.0)
