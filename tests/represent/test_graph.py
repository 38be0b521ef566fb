"""Graph utilities on hand-checkable graphs: a path, a star, and two triangles joined by an edge."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from socialrec.represent.graph import (
    bipartite_adjacency,
    k_hop,
    normalize_rows,
    normalize_symmetric,
    personalized_pagerank,
)


def undirected(n: int, edges: list[tuple[int, int]]) -> sp.csr_matrix:
    r, c = np.array(edges).T
    a = sp.csr_matrix((np.ones(len(edges)), (r, c)), shape=(n, n))
    return (a + a.T).tocsr()


def path(n: int) -> sp.csr_matrix:
    return undirected(n, [(i, i + 1) for i in range(n - 1)])


def star(leaves: int) -> sp.csr_matrix:
    return undirected(leaves + 1, [(0, i) for i in range(1, leaves + 1)])


def two_triangles() -> sp.csr_matrix:
    # 0-1-2 and 3-4-5 are triangles; the bridge 2-3 joins them.
    return undirected(6, [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5), (2, 3)])


def test_bipartite_adjacency_layout() -> None:
    r = sp.csr_matrix(np.array([[1, 0, 1], [0, 1, 0]], dtype=np.float32))
    a = bipartite_adjacency(r)
    assert a.shape == (5, 5)
    dense = a.toarray()
    np.testing.assert_array_equal(dense, dense.T)
    np.testing.assert_array_equal(dense[:2, 2:], r.toarray())
    np.testing.assert_array_equal(dense[:2, :2], 0)
    np.testing.assert_array_equal(dense[2:, 2:], 0)


def test_normalize_symmetric_by_hand() -> None:
    # Star with 4 leaves: centre degree 4, leaves degree 1 -> entries 1/sqrt(4*1) = 0.5.
    a = normalize_symmetric(star(4)).toarray()
    np.testing.assert_allclose(a[0, 1:], 0.5)
    np.testing.assert_allclose(a[1:, 0], 0.5)
    # Path 0-1-2: degrees 1, 2, 1 -> 1/sqrt(2).
    p = normalize_symmetric(path(3)).toarray()
    np.testing.assert_allclose(p, [[0, 2 ** -0.5, 0], [2 ** -0.5, 0, 2 ** -0.5], [0, 2 ** -0.5, 0]])


def test_normalize_handles_isolated_nodes() -> None:
    a = sp.csr_matrix((np.ones(2), ([0, 1], [1, 0])), shape=(3, 3))
    with np.errstate(all="raise"):
        s = normalize_symmetric(a).toarray()
        r = normalize_rows(a).toarray()
    assert np.isfinite(s).all() and np.isfinite(r).all()
    np.testing.assert_array_equal(s[2], 0)
    np.testing.assert_array_equal(r[2], 0)


def test_normalize_rows_by_hand() -> None:
    r = normalize_rows(two_triangles()).toarray()
    np.testing.assert_allclose(r.sum(axis=1), 1.0)
    np.testing.assert_allclose(r[2], [1 / 3, 1 / 3, 0, 1 / 3, 0, 0])
    np.testing.assert_allclose(r[0], [0, 0.5, 0.5, 0, 0, 0])


def test_k_hop_sets() -> None:
    g = two_triangles()
    one = k_hop(g, [0, 2], 1).toarray()
    assert set(np.flatnonzero(one[0])) == {1, 2}
    assert set(np.flatnonzero(one[1])) == {0, 1, 3}
    two = k_hop(g, [0], 2).toarray()[0]
    assert set(np.flatnonzero(two)) == {1, 2, 3}  # never itself, though 0-1-0 is a 2-walk
    three = k_hop(g, [0], 3).toarray()[0]
    assert set(np.flatnonzero(three)) == {1, 2, 3, 4, 5}
    assert k_hop(g, [0], 0).nnz == 0
    assert k_hop(path(5), [0], 2).toarray()[0].tolist() == [False, True, True, False, False]


def test_k_hop_follows_direction() -> None:
    # 0 -> 1 -> 2: nothing is reachable from 2.
    d = sp.csr_matrix((np.ones(2), ([0, 1], [1, 2])), shape=(3, 3))
    hop = k_hop(d, [0, 2], 5).toarray()
    assert hop[0].tolist() == [False, True, True]
    assert not hop[1].any()


def test_ppr_sums_to_one_and_peaks_at_source() -> None:
    g = path(7)
    r = personalized_pagerank(g, np.arange(7), alpha=0.2, iterations=500, tol=1e-12)
    np.testing.assert_allclose(r.sum(axis=1), 1.0, atol=1e-9)
    middle = r[3]
    assert middle.argmax() == 3
    # Decreases with the distance from the source, symmetric on both sides.
    assert middle[3] > middle[2] > middle[1] > middle[0] > 0
    np.testing.assert_allclose(middle[:3], middle[4:][::-1])


def test_ppr_dangling_nodes_restart() -> None:
    # 0 -> 1, node 1 has no out-edges: its walkers restart at the source, so no mass leaks.
    d = sp.csr_matrix((np.ones(1), ([0], [1])), shape=(3, 3))
    r = personalized_pagerank(d, [0, 2], alpha=0.15, iterations=1000, tol=1e-14)
    np.testing.assert_allclose(r.sum(axis=1), 1.0)
    # Walk alternates 0 -> 1 -> restart: r1 = 0.85 r0, r0 + r1 = 1.
    np.testing.assert_allclose(r[0], [1 / 1.85, 0.85 / 1.85, 0], rtol=1e-9)
    np.testing.assert_allclose(r[1], [0, 0, 1])  # an isolated source keeps everything


@pytest.mark.parametrize("alpha", [0.15, 0.5])
def test_ppr_matches_dense_solution(alpha: float) -> None:
    rng = np.random.default_rng(0)
    w = rng.random((8, 8)) * (rng.random((8, 8)) < 0.5)
    np.fill_diagonal(w, 0)
    w[np.arange(8), (np.arange(8) + 1) % 8] = 1.0  # a ring: every node has an out-edge
    g = sp.csr_matrix(w)  # directed and weighted
    p = w / w.sum(axis=1, keepdims=True)
    sources = np.array([0, 3, 5])
    e = np.eye(8)[:, sources]
    exact = alpha * np.linalg.solve(np.eye(8) - (1 - alpha) * p.T, e)
    got = personalized_pagerank(g, sources, alpha=alpha, iterations=2000, tol=1e-13)
    np.testing.assert_allclose(got, exact.T, atol=1e-10)
    on_two_triangles = personalized_pagerank(two_triangles(), [0], alpha=alpha, iterations=2000, tol=1e-13)
    pt = normalize_rows(two_triangles()).toarray()
    exact2 = alpha * np.linalg.solve(np.eye(6) - (1 - alpha) * pt.T, np.eye(6)[:, 0])
    np.testing.assert_allclose(on_two_triangles[0], exact2, atol=1e-10)


def test_ppr_batched_equals_single() -> None:
    g = two_triangles()
    sources = [1, 4, 0, 1]
    # A loose tol makes sources converge at different steps: each must still stop on its own.
    batch = personalized_pagerank(g, sources, tol=1e-3)
    for i, s in enumerate(sources):
        np.testing.assert_array_equal(batch[i], personalized_pagerank(g, [s], tol=1e-3)[0])


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        personalized_pagerank(path(3), [0], alpha=0.0)
    with pytest.raises(IndexError):
        k_hop(path(3), [3], 1)
    with pytest.raises(ValueError):
        normalize_symmetric(sp.csr_matrix((2, 3)))
