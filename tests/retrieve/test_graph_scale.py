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


def test_the_scipy_propagator_gives_torch_sparse_values_and_gradients() -> None:
    import torch

    from socialrec.retrieve.graph_models import _propagator

    graph = sp.random(30, 30, density=0.2, format="csr", random_state=2, dtype=np.float32)  # not symmetric
    x = torch.randn(30, 4, generator=torch.Generator().manual_seed(0))
    outs = []
    for use_scipy in (True, False):
        leaf = x.clone().requires_grad_(True)
        product = _propagator(torch, graph, "cpu", scipy=use_scipy)
        y = product(product(leaf))
        (y * torch.arange(120.0).reshape(30, 4)).sum().backward()
        outs.append((y.detach().numpy(), leaf.grad.numpy()))
    np.testing.assert_allclose(outs[0][0], outs[1][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outs[0][1], outs[1][1], rtol=1e-5, atol=1e-5)
    # by hand: d sum(W * (G G x)) / dx = G.T G.T W
    w = np.arange(120.0).reshape(30, 4)
    np.testing.assert_allclose(outs[0][1], graph.T @ (graph.T @ w), rtol=1e-4)


def test_accidental_hits_mark_exactly_the_rows_own_items_among_the_draws() -> None:
    from socialrec.retrieve.graph_models import _accidental_hits

    rows = sp.csr_matrix(np.array([[1, 0, 1, 0, 0], [0, 0, 0, 0, 0], [0, 1, 1, 0, 1]], dtype=np.float32))
    drawn = np.array([2, 4, 2, 3, 0])  # duplicates happen: drawn with replacement
    expected = np.array([[True, False, True, False, True],
                         [False, False, False, False, False],
                         [True, True, True, False, False]])
    np.testing.assert_array_equal(_accidental_hits(rows, drawn), expected)
    big = sp.random(40, 500, density=0.05, format="csr", random_state=0)
    draws = np.random.default_rng(1).integers(0, 500, size=300)
    np.testing.assert_array_equal(_accidental_hits(big, draws), big.toarray()[:, draws] != 0)


def test_the_sampled_softmax_stops_after_sampled_patience_rounds_without_progress() -> None:
    train = _blocks()
    rng = np.random.default_rng(5)
    own_block = (np.arange(60) % 2) * 20 + rng.integers(0, 20, 60)
    valid = sp.csr_matrix((np.ones(60, dtype=np.float32), (np.arange(60), own_block)), shape=(60, 40))
    valid = sp.csr_matrix(valid - valid.multiply(train.user_items))  # held-out items only
    valid.eliminate_zeros()
    data = TrainData(user_items=train.user_items, valid_items=valid)
    model = LightGCN(embedding_dim=8, epochs=40, temperature=0.2, learning_rate=0.05, sampled_above=10,
                     sampled_negatives=16, sampled_batch_size=16, patience=40, sampled_patience=1,
                     sampled_epochs=40).fit(data)
    scores = [r["valid_ndcg@10"] for r in model.history_]
    assert len(scores) < 40  # patience (40) alone would have run every epoch
    # one round without progress ends it: every epoch but the last improved on the best so far
    assert all(b > a for a, b in zip(scores[:-2], scores[1:-1])) and scores[-1] <= max(scores[:-1])
