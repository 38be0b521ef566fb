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
