"""`topk.top_k_masked` returns exactly the lists of masking with -inf and `rank_top_k` (ties to the
lower index without a generator), draws ties uniformly with one, and never returns an excluded item."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from socialrec.topk import rank_top_k, top_k_masked


def _reference(scores: np.ndarray, exclude: sp.csr_matrix) -> np.ndarray:
    dense = np.array(scores, dtype=np.float64)
    dense[np.isnan(dense)] = -np.inf
    r, c = exclude.nonzero()
    dense[r, c] = -np.inf
    return dense


@pytest.mark.parametrize("kind", ["continuous", "ties", "broadcast", "sparse-allowed"])
def test_the_same_lists_as_masking_a_copy_and_ranking_it(kind: str) -> None:
    rng = np.random.default_rng(7)
    for _ in range(40):
        n, m, k = int(rng.integers(1, 12)), int(rng.integers(1, 500)), int(rng.integers(1, 25))
        if kind == "continuous":
            s = rng.standard_normal((n, m)).astype(np.float32)
        elif kind == "ties":
            s = rng.integers(0, 3, (n, m)).astype(np.float64)
        elif kind == "broadcast":  # one row for every user, as popularity scores
            s = np.broadcast_to(rng.integers(0, 6, m).astype(np.float32), (n, m))
        else:  # most items excluded by -inf, some NaN
            s = rng.standard_normal((n, m))
            s[rng.random((n, m)) < 0.6] = -np.inf
            s[rng.random((n, m)) < 0.05] = np.nan
        exclude = sp.random(n, m, density=float(rng.random()) * 0.5, format="csr", random_state=int(rng.integers(1 << 30)))
        expected = rank_top_k(_reference(s, exclude), k)
        for every in (1, 4, 16):
            np.testing.assert_array_equal(top_k_masked(s, k, exclude=exclude, sample_every=every), expected)


def test_ties_are_drawn_uniformly_and_excluded_items_never_appear() -> None:
    n, m = 8000, 400
    scores = np.zeros((n, m), dtype=np.float32)
    scores[:, 0] = 1.0  # item 0 first for everyone; items 1..399 tie
    exclude = sp.csr_matrix((np.ones(n), (np.arange(n), np.full(n, 7))), shape=(n, m))
    top = top_k_masked(scores, 3, exclude=exclude, rng=np.random.default_rng(0))
    assert (top[:, 0] == 0).all() and not (top == 7).any()
    counts = np.bincount(top[:, 1:].ravel(), minlength=m)[1:]
    counts = np.delete(counts, 6)  # item 7 (index 6 here) is excluded
    expected = 2 * n / (m - 2)
    assert counts.mean() == pytest.approx(expected)
    assert counts.min() > expected / 2 and counts.max() < expected * 2  # ~40 +- 6 per item
    # low indices win no more often than high ones (index order is not a tie-breaker)
    assert abs(counts[:100].mean() - counts[-100:].mean()) < 4
    shared = top_k_masked(np.broadcast_to(scores[0], (n, m)), 3, exclude=exclude, rng=np.random.default_rng(0))
    assert (shared[:, 0] == 0).all() and not (shared == 7).any()


def test_a_row_with_few_allowed_items_is_padded() -> None:
    s = np.array([[0.5, -np.inf, 0.1, np.nan, 0.9] * 20])
    exclude = sp.csr_matrix(([1.0], ([0], [4])), shape=(1, 100))
    top = top_k_masked(s, 70, exclude=exclude, sample_every=8)
    np.testing.assert_array_equal(top, rank_top_k(_reference(s, exclude), 70))
    # 59 allowed items (20 x 0.9 less the excluded one, 20 x 0.5, 20 x 0.1), then padding
    assert (top[0, :59] >= 0).all() and (top[0, 59:] == -1).all()
