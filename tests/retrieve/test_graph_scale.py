"""Graph models above the catalogue threshold: the sampled softmax is used exactly when the
catalogue is bigger than ``sampled_above``, and early stopping judges a seeded user sample."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("torch")

from socialrec.retrieve.base import TrainData  # noqa: E402
from socialrec.retrieve.graph_models import LightGCN, validation_sample  # noqa: E402


def test_validation_sample_keeps_that_many_users_rows_whole() -> None:
    valid = sp.random(500, 80, density=0.05, format="csr", random_state=1)
    sample = validation_sample(valid, 50, seed=3)
    kept = np.flatnonzero(np.diff(sample.indptr) > 0)
    assert len(kept) == 50
    assert (sample[kept] != valid[kept]).nnz == 0  # a kept user's row is whole
    np.testing.assert_array_equal(kept, np.flatnonzero(np.diff(validation_sample(valid, 50, seed=3).indptr) > 0))
    assert validation_sample(valid, 10_000, seed=3) is valid and validation_sample(valid, None, seed=3) is valid


def _blocks(n_users: int = 60, n_items: int = 40) -> TrainData:
    """Two blocks: users of block b interact with most items of block b."""
    rng = np.random.default_rng(0)
    rows, cols = [], []
    for u in range(n_users):
        b = u % 2
        items = rng.choice(np.arange(b * n_items // 2, (b + 1) * n_items // 2), size=8, replace=False)
        rows += [u] * 8
        cols += items.tolist()
    m = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n_users, n_items))
    return TrainData(user_items=m)


@pytest.mark.parametrize("above, sampled", [(39, True), (40, False)])
def test_the_sampled_softmax_runs_above_the_threshold_only(above: int | None, sampled: bool) -> None:
    train = _blocks()
    model = LightGCN(embedding_dim=8, epochs=12, temperature=0.2, learning_rate=0.05, sampled_above=above,
                     sampled_negatives=16, sampled_batch_size=16, batch_size=16).fit(train)
    assert model.sampled_ is sampled
    ids, _ = model.recommend(np.arange(60), k=5)
    # the right answer is known: the user's own block
    own = (ids // 20) == (np.arange(60) % 2)[:, None]
    assert own.mean() > 0.9
