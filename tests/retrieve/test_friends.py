"""Friend recommenders and the masked-edges protocol on graphs with known answers."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from socialrec.errors import LeakageError, NotFittedError
from socialrec.evaluate.friends import evaluate_friends, friend_models, mask_edges, run_friend_evaluation
from socialrec.ingest.schema import build_dataset
from socialrec.retrieve.friends import (
    AdamicAdar,
    BaseFriendRecommender,
    CommonNeighbors,
    InterestSimilarity,
    Jaccard,
    LearnedFriendRanker,
    PersonalizedPageRank,
)


def undirected(n: int, edges: list[tuple[int, int]]) -> sp.csr_matrix:
    r, c = np.array(edges).T
    a = sp.csr_matrix((np.ones(len(edges), np.float32), (r, c)), shape=(n, n))
    return a.maximum(a.T).tocsr()


def two_cliques(size: int = 6) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Two disjoint cliques; the edges 0-1 and size-(size+1) are missing. Each clique shares its
    own items."""
    edges = [(i, j) for b in (0, size) for i in range(b, b + size) for j in range(i + 1, b + size)]
    edges = [e for e in edges if e not in ((0, 1), (size, size + 1))]
    items = sp.csr_matrix(np.kron(np.eye(2), np.ones((size, 4))).astype(np.float32))
    return undirected(2 * size, edges), items


def all_models() -> list[BaseFriendRecommender]:
    return [CommonNeighbors(), AdamicAdar(), Jaccard(), PersonalizedPageRank(), InterestSimilarity(),
            LearnedFriendRanker(n_candidates=20), LearnedFriendRanker(n_candidates=20, ease_l2=None)]


@pytest.fixture(scope="module")
def cliques() -> tuple[sp.csr_matrix, sp.csr_matrix]:
    return two_cliques()


@pytest.mark.parametrize("model", all_models(), ids=repr)
def test_every_scorer_finds_the_missing_clique_edge(model: BaseFriendRecommender, cliques) -> None:
    adj, items = cliques
    model.fit(adj, items)
    ids, scores = model.recommend(np.array([0, 1, 6, 7]), k=1)
    assert ids[:, 0].tolist() == [1, 0, 7, 6]
    assert np.isfinite(scores).all()


def test_neighbourhood_scores_by_hand() -> None:
    # 0 and 1 share neighbours 2 (degree 2) and 3 (degree 3); 3 also links to 4.
    g = undirected(5, [(0, 2), (1, 2), (0, 3), (1, 3), (3, 4)])
    aa = AdamicAdar().fit(g).score(np.array([0]))[0]
    np.testing.assert_allclose(aa[1], 1 / np.log(2) + 1 / np.log(3), rtol=1e-6)
    np.testing.assert_allclose(aa[4], 1 / np.log(3), rtol=1e-6)
    assert aa[2] == 0  # 0 and 2 share no neighbour
    cn = CommonNeighbors().fit(g).score(np.array([0, 4]))
    assert cn[0, 1] == 2 and cn[0, 4] == 1 and cn[1, 0] == 1  # 4 and 0 share 3
    jac = Jaccard().fit(g).score(np.array([0]))[0]
    np.testing.assert_allclose(jac[[1, 4, 3]], [1.0, 0.5, 0.0])  # |{3}| / |{2, 3}|; 0 and 3 share none


def test_degree_one_neighbours_weigh_nothing_and_no_warnings() -> None:
    g = undirected(3, [(0, 1)])  # 2 is isolated
    with np.errstate(all="raise"):
        aa = AdamicAdar().fit(g).score(np.arange(3))
        jac = Jaccard().fit(g).score(np.arange(3))
    assert np.isfinite(aa).all() and np.isfinite(jac).all()


@pytest.mark.parametrize("model", all_models(), ids=repr)
def test_batch_equals_scalar_and_excludes_self_and_friends(model: BaseFriendRecommender) -> None:
    adj, items = planted(n=90, seed=3)[:2]
    model.fit(adj, items)
    users = np.array([5, 0, 17, 5, 42])
    ids, scores = model.recommend(users, k=8)
    for row, u in enumerate(users):
        one_ids, one_scores = model.recommend(int(u), k=8)
        np.testing.assert_array_equal(ids[row], one_ids)
        np.testing.assert_array_equal(scores[row], one_scores)
    full_ids, _ = model.recommend(users, k=adj.shape[0])
    for row, u in enumerate(users):
        got = set(full_ids[row][full_ids[row] >= 0].tolist())
        assert u not in got
        assert not got & set(adj[u].indices.tolist())
    assert model.score(users).dtype == np.float32
    assert model.score(users).shape == (len(users), adj.shape[0])


def test_exclude_friends_false_keeps_friends() -> None:
    adj, _ = two_cliques()
    ids, _ = CommonNeighbors().fit(adj).recommend(2, k=11, exclude_friends=False)
    assert 2 not in ids  # never the user themself
    assert set(adj[2].indices.tolist()) <= set(ids.tolist())


@pytest.mark.parametrize("model", all_models(), ids=repr)
def test_not_fitted(model: BaseFriendRecommender) -> None:
    with pytest.raises(NotFittedError):
        model.recommend(0)
    with pytest.raises(NotFittedError):
        model.score(np.array([0]))


def test_params_and_clone() -> None:
    m = LearnedFriendRanker(n_candidates=7, l2=3.0)
    assert m.get_params()["n_candidates"] == 7 and m.get_params()["l2"] == 3.0
    c = m.clone(seed=4)
    assert c.get_params() == {**m.get_params(), "seed": 4}
    assert not hasattr(c, "social_")
    assert PersonalizedPageRank(alpha=0.5).clone().alpha == 0.5
    with pytest.raises(ValueError):
        m.set_params(bogus=1)


def test_bad_inputs() -> None:
    adj, items = two_cliques()
    with pytest.raises(ValueError):
        InterestSimilarity().fit(adj)  # needs interactions
    with pytest.raises(ValueError):
        CommonNeighbors().fit(sp.csr_matrix((3, 4)))
    m = CommonNeighbors().fit(adj)
    with pytest.raises(IndexError):
        m.recommend(12)
    with pytest.raises(TypeError):
        m.recommend(np.array([0.5]))


# --- the protocol ---------------------------------------------------------------------------

def random_graph(n: int, p: float, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    upper = sp.triu(sp.random(n, n, density=p, random_state=rng, format="csr"), k=1)
    upper.data[:] = 1.0
    return upper.maximum(upper.T).tocsr()


def test_mask_edges_symmetric() -> None:
    adj = random_graph(300, 0.06, seed=1)
    train, hidden = mask_edges(adj, 0.2, seed=0)
    assert (abs(train - train.T) > 0).nnz == 0 and (abs(hidden - hidden.T) > 0).nnz == 0
    assert train.multiply(hidden).nnz == 0
    assert (train + hidden - adj).count_nonzero() == 0
    deg = np.diff(adj.indptr)
    hid = np.diff(hidden.indptr)
    assert (hid <= np.floor(0.2 * deg + 0.5)).all()  # nobody loses more than their share
    assert (np.diff(train.indptr)[deg > 0] >= 1).all()  # nobody loses all their edges
    assert 0.15 < hidden.nnz / adj.nnz <= 0.2
    busy = deg >= 10
    assert np.median(hid[busy] / deg[busy]) > 0.15
    again, _ = mask_edges(adj, 0.2, seed=0)
    other, _ = mask_edges(adj, 0.2, seed=1)
    assert (again != train).nnz == 0 and (other != train).nnz > 0


def test_mask_edges_keeps_single_edges() -> None:
    # A star: leaves have one edge each and must keep it.
    adj = undirected(11, [(0, i) for i in range(1, 11)])
    train, hidden = mask_edges(adj, 0.5, seed=0)
    assert hidden.nnz == 0 and (train != adj).nnz == 0


def test_mask_edges_directed_hides_outgoing_share() -> None:
    rng = np.random.default_rng(0)
    dense = (rng.random((200, 200)) < 0.1).astype(np.float32)
    np.fill_diagonal(dense, 0)
    adj = sp.csr_matrix(dense)
    train, hidden = mask_edges(adj, 0.2, seed=0, directed=True)
    out = np.diff(adj.indptr)
    expected = np.minimum(np.floor(0.2 * out + 0.5), np.maximum(out - 1, 0))
    np.testing.assert_array_equal(np.diff(hidden.indptr), expected)  # exact per-user quota
    assert train.multiply(hidden).nnz == 0 and (train + hidden != adj).nnz == 0


def test_evaluate_friends_oracle_and_leakage() -> None:
    adj = random_graph(120, 0.08, seed=2)
    train, hidden = mask_edges(adj, 0.2, seed=0)

    class Oracle:
        def score(self, users: np.ndarray) -> np.ndarray:
            return hidden[users].toarray().astype(np.float32)

    res = evaluate_friends(Oracle(), train, hidden, ks=(10,))
    assert res["recall@10"] == pytest.approx(1.0) and res["ndcg@10"] == pytest.approx(1.0)
    assert res["users"] == (np.diff(hidden.indptr) > 0).sum()
    with pytest.raises(LeakageError):
        evaluate_friends(Oracle(), adj, hidden)


# --- learned ranker ---------------------------------------------------------------------------

def planted(n: int = 240, communities: int = 8, seed: int = 0) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]:
    """Communities plus interests: friendship is likelier within a community and much likelier
    between users who share a (latent) taste, which their listening reveals."""
    rng = np.random.default_rng(seed)
    comm = rng.integers(communities, size=n)
    taste = rng.integers(3 * communities, size=n)  # finer than communities, crossing them
    same_comm = comm[:, None] == comm[None, :]
    same_taste = taste[:, None] == taste[None, :]
    p = 0.01 + 0.06 * same_comm + 0.5 * same_taste
    upper = np.triu(rng.random((n, n)) < p, k=1)
    adj = sp.csr_matrix((upper | upper.T).astype(np.float32))
    n_items = 30 * communities
    pool = taste[:, None] * 10 + rng.integers(10, size=(n, 6))  # 10 items per taste
    noise = rng.integers(n_items, size=(n, 4))
    rows = np.repeat(np.arange(n), 10)
    items = sp.csr_matrix((np.ones(rows.size, np.float32), (rows, np.hstack([pool, noise]).ravel())),
                          shape=(n, n_items))
    items.data[:] = 1.0
    return adj, items, comm


def test_learned_ranker_beats_common_neighbours_on_planted_structure() -> None:
    adj, items, _ = planted()
    train, hidden = mask_edges(adj, 0.2, seed=0)
    cn = evaluate_friends(CommonNeighbors().fit(train, items), train, hidden, ks=(10,))
    start = time.perf_counter()
    pymk = LearnedFriendRanker(n_candidates=50).fit(train, items)
    assert time.perf_counter() - start < 10
    learned = evaluate_friends(pymk, train, hidden, ks=(10,))
    assert learned["ndcg@10"] > 1.2 * cn["ndcg@10"]
    assert learned["recall@10"] > cn["recall@10"]


def test_learned_ranker_uses_reciprocity_on_directed_graphs() -> None:
    # Directed follows, 90% of them returned: whoever follows u is the best guess for u.
    rng = np.random.default_rng(1)
    n = 150
    base = sp.triu(random_graph(n, 0.08, seed=4), k=1).tocoo()
    forward = rng.random(base.nnz) < 0.5
    src = np.where(forward, base.row, base.col)
    dst = np.where(forward, base.col, base.row)
    back = rng.random(base.nnz) < 0.9
    rows = np.r_[src, dst[back]]
    cols = np.r_[dst, src[back]]
    adj = sp.csr_matrix((np.ones(rows.size, np.float32), (rows, cols)), shape=(n, n))
    train, hidden = mask_edges(adj, 0.2, seed=0, directed=True)
    pymk = LearnedFriendRanker(n_candidates=30).fit(train)
    learned = evaluate_friends(pymk, train, hidden, ks=(10,))
    cn = evaluate_friends(CommonNeighbors().fit(train), train, hidden, ks=(10,))
    # About 3/4 of the hidden follows have their reverse in training; the ranker finds nearly all.
    assert learned["recall@10"] > max(0.7, 2 * cn["recall@10"])


def test_run_friend_evaluation_structure() -> None:
    adj, items, _ = planted(n=80, seed=5)
    u, v = sp.triu(adj, k=1).nonzero()
    iu, ii = items.nonzero()
    ds = build_dataset(
        "toy",
        pd.DataFrame({"user": iu.astype(str), "item": ii.astype(str)}),
        social=pd.DataFrame({"source": u.astype(str), "target": v.astype(str)}),
        users=pd.DataFrame({"id": np.arange(80).astype(str)}),
    )
    out = run_friend_evaluation(ds, ["common-neighbors", "adamic-adar", "interest"], ks=(5, 10), seed=0)
    assert out["dataset"] == "toy" and out["protocol"] == "masked-edges-20" and out["seed"] == 0
    assert set(out["models"]) == {"common-neighbors", "adamic-adar", "interest"}
    for scores in out["models"].values():
        assert {"recall@10", "ndcg@10", "recall@5", "hit@10", "mrr@10", "fit_seconds"} <= set(scores)
        assert 0 <= scores["ndcg@10"] <= 1
    assert set(friend_models()) == {"common-neighbors", "adamic-adar", "jaccard", "ppr", "interest", "pymk"}
    with pytest.raises(ValueError):
        run_friend_evaluation(ds, ["nope"])


def test_symmetric_graph_stored_as_directed_is_masked_by_pairs() -> None:
    # Ciao as split by RecDiff stores every trust edge both ways: hiding one direction only
    # would leave the answer in training.
    adj, items, _ = planted(n=60, seed=6)
    u, v = adj.nonzero()
    iu, ii = items.nonzero()
    ds = build_dataset(
        "both-ways",
        pd.DataFrame({"user": iu.astype(str), "item": ii.astype(str)}),
        social=pd.DataFrame({"source": u.astype(str), "target": v.astype(str)}),
        social_directed=True,
        users=pd.DataFrame({"id": np.arange(60).astype(str)}),
    )
    out = run_friend_evaluation(ds, ["common-neighbors"], ks=(10,))
    assert out["directed"] is False
    assert out["hidden_edges"] % 2 == 0


def test_partial_fit_graph_folds_in_a_new_edge_and_a_new_user() -> None:
    """A follow since fitting: the followed user is no longer suggested, and a user added to the
    graph gets suggestions from their first edges; the learned weights are kept."""
    import numpy as np
    import scipy.sparse as sp

    from socialrec.retrieve.friends import LearnedFriendRanker

    rng = np.random.default_rng(0)
    n = 60
    blocks = np.arange(n) // 20
    dense = (rng.random((n, n)) < 0.35) & (blocks[:, None] == blocks[None, :])
    dense = np.triu(dense, 1)
    adj = sp.csr_matrix((dense | dense.T).astype(np.float32))
    model = LearnedFriendRanker(ease_l2=None).fit(adj)
    weights = model.model_
    first = int(model.recommend(0, k=1)[0][0])
    grown = sp.lil_matrix((n + 1, n + 1), dtype=np.float32)
    grown[:n, :n] = adj
    grown[0, first] = grown[first, 0] = 1
    for v in (21, 22, 23):  # the new user befriends three members of block 1
        grown[n, v] = grown[v, n] = 1
    model.partial_fit_graph(grown.tocsr())
    assert model.model_ is weights and model.n_users_ == n + 1
    assert first not in model.recommend(0, k=10)[0].tolist()
    top = model.recommend(n, k=5)[0]
    assert np.mean(blocks[top[top >= 0]] == 1) >= 0.8
