"""The protocol's two guards against flattering numbers, each on data whose right answer is known:
ties are broken at random (a constant scorer cannot profit from item order), and the items a user
had in training and validation are masked at test time."""

from __future__ import annotations

import numpy as np
import pandas as pd

from socialrec.evaluate.protocol import evaluate
from socialrec.ingest.schema import SPLIT_TEST, SPLIT_TRAIN, SPLIT_VALID, build_dataset
from socialrec.ingest.split import fixed_split

N_USERS, N_ITEMS = 200, 100


def _split():  # type: ignore[no-untyped-def]
    """Every user: training items 50-59, validation items 3-5, test items 0-2. Items 0-2 have the
    lowest indices, so an order-by-index tie-break would put every test item first."""
    rows = []
    for u in range(N_USERS):
        rows += [(str(u), str(i), SPLIT_TRAIN) for i in range(50, 60)]
        rows += [(str(u), str(i), SPLIT_VALID) for i in range(3, 6)]
        rows += [(str(u), str(i), SPLIT_TEST) for i in range(0, 3)]
    inter = pd.DataFrame(rows, columns=["user", "item", "split"])
    items = pd.DataFrame({"id": [str(i) for i in range(N_ITEMS)]})
    ds = build_dataset("honesty", inter, items=items)
    return fixed_split(ds), ds


class Scorer:
    def __init__(self, row: np.ndarray) -> None:
        self.row = row.astype(np.float32)

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.repeat(self.row[None, :], len(users), axis=0)


def test_a_constant_scorer_scores_at_random_level() -> None:
    split, ds = _split()
    result = evaluate(Scorer(np.zeros(ds.n_items)), split, part="test", ks=(10,)).mean()
    # 3 relevant among the 87 unmasked items, 10 drawn at random: E[recall@10] = 10/87.
    assert abs(result["recall@10"] - 10 / 87) < 0.03
    assert result["ndcg@10"] < 0.2  # item order would give 1.0


def test_training_and_validation_items_are_masked_at_test_time() -> None:
    split, ds = _split()
    idx = ds.items.to_index
    row = np.zeros(ds.n_items)
    row[[int(idx(str(i))) for i in range(50, 60)]] = 3.0  # training items highest
    row[[int(idx(str(i))) for i in range(3, 6)]] = 2.0  # then validation
    row[[int(idx(str(i))) for i in range(0, 3)]] = 1.0  # then test
    result = evaluate(Scorer(row), split, part="test", ks=(3,)).mean()
    # Masked, the test items are the top 3: every metric is exactly 1.
    assert result["ndcg@3"] == 1.0 and result["recall@3"] == 1.0
