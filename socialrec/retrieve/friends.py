"""Friend recommendation ("people you may know"): whom should a user befriend, follow or trust?

Every friend recommender follows one small contract, like the item recommenders:
``fit(social, user_items=None)`` with the (n_users, n_users) adjacency of the *training* edges
(row u, column v: u -> v; a symmetric matrix for friendships), ``score(users)`` -> float32
(n, n_users) raw scores, and ``recommend(users, k, exclude_friends=True)`` -> ``(ids, scores)``
with the user themself and their training friends removed. Hyperparameters are constructor
arguments stored unmodified (`get_params`, `clone`).

For directed graphs a recommendation for u is a new *outgoing* edge u -> v. The neighbourhood
scorers (common neighbours, Adamic-Adar, Jaccard) look at the undirected view (in- and
out-neighbours together); personalised PageRank walks along out-edges; the learned ranker adds
direction-aware features (reciprocity, directed two-step paths).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from socialrec.errors import NotFittedError
from socialrec.ingest.schema import as_adjacency, is_symmetric  # re-exported: the friend models' input
from socialrec.ingest.split import mask_edges
from socialrec.params import HasParams
from socialrec.retrieve.base import top_k_in_chunks
from socialrec.represent.graph import normalize_rows, personalized_pagerank


class BaseFriendRecommender(HasParams, ABC):
    """Shared logic of the friend recommenders: checks, masking, top-k, batching, parameters."""

    # Rows scored per chunk: bounds memory at a few chunk x n_users dense float matrices.
    _chunk = 256

    # --- fitting ---------------------------------------------------------------------
    def fit(self, social: sp.spmatrix | npt.ArrayLike,
            user_items: sp.spmatrix | None = None) -> "BaseFriendRecommender":
        """Learn from the training edges (and, for interest-based models, the user-item matrix)."""
        adj = as_adjacency(social)
        ui = None
        if user_items is not None:
            ui = sp.csr_matrix(user_items, dtype=np.float32)
            if ui.shape[0] != adj.shape[0]:
                raise ValueError(f"user_items has {ui.shape[0]} rows but the social graph {adj.shape[0]} users")
        self.n_users_ = int(adj.shape[0])
        self._fit(adj, ui)
        self.social_ = adj  # set last: its presence marks the model as fitted
        return self

    def _fit(self, social: sp.csr_matrix, user_items: sp.csr_matrix | None) -> None:  # noqa: B027
        """Precompute what scoring needs (default: nothing)."""

    def partial_fit_graph(self, social: sp.spmatrix, user_items: sp.spmatrix | None = None) -> "BaseFriendRecommender":
        """Online update: take the current graph (follows and unfollows since fit, users added)
        without relearning what was learned. The neighbourhood scorers read the graph itself;
        the learned ranker keeps its weights and recomputes its features on the new graph."""
        self._check_fitted("partial_fit_graph")
        adj = as_adjacency(social)
        ui = None if user_items is None else sp.csr_matrix(user_items, dtype=np.float32)
        self.n_users_ = int(adj.shape[0])
        self._refresh(adj, ui)
        self.social_ = adj
        return self

    def _refresh(self, social: sp.csr_matrix, user_items: sp.csr_matrix | None) -> None:
        """Recompute the graph-derived state for a changed graph (default: fit's own)."""
        self._fit(social, user_items)

    @abstractmethod
    def _score(self, users: np.ndarray) -> np.ndarray:
        """Scores of every user as a candidate for each given user: float (len(users), n_users)."""

    def _check_fitted(self, action: str) -> None:
        if not hasattr(self, "social_"):
            raise NotFittedError(self, action)

    def _check_users(self, users: npt.ArrayLike) -> tuple[np.ndarray, bool]:
        scalar = np.ndim(users) == 0
        arr = np.atleast_1d(np.asarray(users))
        if arr.size and arr.dtype.kind not in "iu":
            raise TypeError(f"user indices must be integers, got {arr.dtype}; "
                            "map external ids with the dataset's IdMap")
        arr = arr.astype(np.int64)
        if arr.size and (arr.min() < 0 or arr.max() >= self.n_users_):
            bad = arr[(arr < 0) | (arr >= self.n_users_)][0]
            raise IndexError(f"user index {bad} is out of range 0..{self.n_users_ - 1}")
        return arr, scalar

    # --- the public contract ---------------------------------------------------------
    def score(self, users: npt.ArrayLike) -> np.ndarray:
        """Raw scores of every user as a new friend of each given user: float32 (n, n_users).
        Nothing is masked (the user themself and their friends included)."""
        self._check_fitted("score")
        arr, _ = self._check_users(users)
        out = np.empty((len(arr), self.n_users_), dtype=np.float32)
        for start in range(0, len(arr), self._chunk):
            chunk = arr[start:start + self._chunk]
            out[start:start + len(chunk)] = self._score(chunk)
        return out

    def recommend(self, users: int | npt.ArrayLike, k: int = 10, *,
                  exclude_friends: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Top-k new friends for one user (1-D) or a batch (2-D, padded with -1/-inf).

        The user themself is never recommended; ``exclude_friends`` also drops the users they
        already have an edge to in training.
        """
        self._check_fitted("recommend")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        arr, scalar = self._check_users(users)

        def masked_scores(chunk: np.ndarray) -> np.ndarray:
            s = np.asarray(self._score(chunk), dtype=np.float32).copy()
            mask_known(s, self.social_, chunk, exclude_friends=exclude_friends)
            return s

        ids, scores = top_k_in_chunks(arr, k, masked_scores, self._chunk)
        return (ids[0], scores[0]) if scalar else (ids, scores)


def mask_known(scores: np.ndarray, social: sp.csr_matrix, users: np.ndarray, *,
               exclude_friends: bool = True) -> None:
    """In place: -inf for each user themself and (optionally) their training out-neighbours."""
    scores[np.arange(len(users)), users] = -np.inf
    if exclude_friends:
        r, c = social[users].nonzero()
        scores[r, c] = -np.inf


# --- neighbourhood scorers ------------------------------------------------------------------

def _undirected(adj: sp.csr_matrix) -> sp.csr_matrix:
    return adj.maximum(adj.T).tocsr()


class CommonNeighbors(BaseFriendRecommender):
    """Number of shared neighbours |N(u) & N(v)| (in- and out-neighbours together)."""

    def __init__(self) -> None:
        pass

    def _fit(self, social: sp.csr_matrix, user_items: sp.csr_matrix | None) -> None:
        self.graph_ = _undirected(social)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return (self.graph_[users] @ self.graph_).toarray()


class AdamicAdar(BaseFriendRecommender):
    """Shared neighbours weighted by 1 / log(degree): a friend of few people says more than a hub."""

    def __init__(self) -> None:
        pass

    def _fit(self, social: sp.csr_matrix, user_items: sp.csr_matrix | None) -> None:
        g = _undirected(social)
        deg = np.diff(g.indptr).astype(np.float64)
        # A node of degree < 2 is never a common neighbour of two distinct users: weight 0.
        w = np.zeros_like(deg)
        w[deg >= 2] = 1.0 / np.log(deg[deg >= 2])
        self.graph_ = g
        self.weighted_ = (sp.diags(w.astype(np.float32)) @ g).tocsr()

    def _score(self, users: np.ndarray) -> np.ndarray:
        return (self.graph_[users] @ self.weighted_).toarray()


class Jaccard(BaseFriendRecommender):
    """Shared neighbours over all neighbours of either: |N(u) & N(v)| / |N(u) | N(v)|."""

    def __init__(self) -> None:
        pass

    def _fit(self, social: sp.csr_matrix, user_items: sp.csr_matrix | None) -> None:
        self.graph_ = _undirected(social)
        self.degree_ = np.diff(self.graph_.indptr).astype(np.float32)

    def _score(self, users: np.ndarray) -> np.ndarray:
        common = (self.graph_[users] @ self.graph_).toarray()
        union = self.degree_[users][:, None] + self.degree_[None, :] - common
        out = np.zeros_like(common)
        np.divide(common, union, out=out, where=union > 0)
        return out


class PersonalizedPageRank(BaseFriendRecommender):
    """Random walk with restart from the user along out-edges (`socialrec.represent.graph`).

    ``undirected`` walks the undirected view instead. Iteration stops per user, so a user's
    scores do not depend on the batch they are scored in.
    """

    def __init__(self, alpha: float = 0.15, iterations: int = 30, tol: float = 1e-6,
                 undirected: bool = False) -> None:
        self.alpha = alpha
        self.iterations = iterations
        self.tol = tol
        self.undirected = undirected

    def _fit(self, social: sp.csr_matrix, user_items: sp.csr_matrix | None) -> None:
        if not 0 < self.alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {self.alpha}")
        self.graph_ = _undirected(social) if self.undirected else social

    def _score(self, users: np.ndarray) -> np.ndarray:
        return personalized_pagerank(self.graph_, users, alpha=self.alpha, iterations=self.iterations,
                                     tol=self.tol).astype(np.float32)


class InterestSimilarity(BaseFriendRecommender):
    """Cosine similarity of the users' interaction vectors (what they listen to, buy, review).

    With ``idf`` each item is weighted by log(n_users / item popularity), so sharing a niche
    artist counts more than sharing a chart-topper. Needs ``user_items`` in `fit`.
    """

    def __init__(self, idf: bool = True) -> None:
        self.idf = idf

    def _fit(self, social: sp.csr_matrix, user_items: sp.csr_matrix | None) -> None:
        if user_items is None:
            raise ValueError(f"{type(self).__name__}.fit needs user_items (the users' interactions)")
        self.vectors_ = interest_vectors(user_items, idf=self.idf)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return (self.vectors_[users] @ self.vectors_.T).toarray()


def interest_vectors(user_items: sp.csr_matrix, *, idf: bool = True) -> sp.csr_matrix:
    """L2-normalised (optionally idf-weighted) binary user rows; users without items stay zero."""
    x = sp.csr_matrix(user_items, dtype=np.float32)
    x.data[:] = 1.0
    if idf:
        pop = np.diff(x.tocsc().indptr).astype(np.float64)
        weights = np.log((x.shape[0] + 1) / (pop + 1)).astype(np.float32)
        x = (x @ sp.diags(weights)).tocsr()
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    inv = np.zeros_like(norms)
    inv[norms > 0] = 1.0 / norms[norms > 0]
    return (sp.diags(inv.astype(np.float32)) @ x).tocsr()


# --- the learned ranker ("people you may know") ---------------------------------------------

def _row_ranks(scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """0-based rank of each entry within its row by descending score (invalid entries last).
    Ties share the best rank of their group, so rank features never depend on user order."""
    s = np.where(valid, scores, -np.inf)
    order = np.argsort(-s, axis=1, kind="stable")
    ordered = np.take_along_axis(s, order, axis=1)
    pos = np.broadcast_to(np.arange(s.shape[1]), s.shape)
    new_group = np.ones(s.shape, dtype=bool)
    new_group[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    # Each position takes the start of its run of equal scores.
    starts = np.maximum.accumulate(np.where(new_group, pos, 0), axis=1)
    ranks = np.empty(s.shape, dtype=np.float32)
    np.put_along_axis(ranks, order, starts.astype(np.float32), axis=1)
    return ranks


def _top_n_mask(scores: np.ndarray, valid: np.ndarray, n: int) -> np.ndarray:
    """Boolean mask of each row's n best valid entries with a score > 0 (ties at the cut broken
    by index, deterministically)."""
    s = np.where(valid & (scores > 0), scores, -np.inf)
    n = min(n, s.shape[1])
    # Stable sort on -s breaks ties by index; argpartition alone would not be deterministic.
    idx = np.argsort(-s, axis=1, kind="stable")[:, :n]
    out = np.zeros(s.shape, dtype=bool)
    np.put_along_axis(out, idx, True, axis=1)
    return out & np.isfinite(s)


class _PairFeatures:
    """Everything the learned ranker computes from one training graph (and the interactions):
    candidate generation and the feature vector of every (user, candidate) pair."""

    def __init__(self, social: sp.csr_matrix, user_items: sp.csr_matrix | None, *, alpha: float,
                 n_candidates: int, directed: bool, ease_l2: float | None) -> None:
        self.n_candidates = n_candidates
        self.directed = directed
        self.social = social
        self.graph = _undirected(social)
        self.aa = AdamicAdar().fit(self.graph)
        self.ppr = PersonalizedPageRank(alpha=alpha).fit(social)
        deg = np.diff(self.graph.indptr).astype(np.float32)
        self.degree = deg
        inv = np.zeros_like(deg)
        inv[deg > 0] = 1.0 / deg[deg > 0]
        self.resource = (sp.diags(inv) @ self.graph).tocsr()  # resource allocation: 1/deg weights
        self.walk = normalize_rows(self.graph).astype(np.float32)
        self.out_degree = np.diff(social.indptr).astype(np.float32)
        self.in_degree = np.diff(social.tocsc().indptr).astype(np.float32)
        self.social_t = social.T.tocsr()
        self.ease = None if ease_l2 is None else ease_weights(social, ease_l2)
        self.interest = None
        if user_items is not None and user_items.nnz:
            self.interest = interest_vectors(user_items, idf=True)

    def candidates_and_features(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, cols, X): candidate pairs (row index into ``users``, candidate user) and their
        float64 feature matrix."""
        b, n = len(users), self.graph.shape[0]
        valid = np.ones((b, n), dtype=bool)
        mask_known_bool(valid, self.social, users)
        su = self.graph[users]
        cn = (su @ self.graph).toarray()
        aa = (su @ self.aa.weighted_).toarray()
        ra = (su @ self.resource).toarray()
        union = self.degree[users][:, None] + self.degree[None, :] - cn
        jac = np.zeros_like(cn)
        np.divide(cn, union, out=jac, where=union > 0)
        three = ((self.walk[users] @ self.walk) @ self.walk)  # 3-step walk probability
        three = np.asarray(three.toarray() if sp.issparse(three) else three)
        ppr = self.ppr._score(users)
        cand = _top_n_mask(aa, valid, self.n_candidates) | _top_n_mask(ppr, valid, self.n_candidates)
        feats: dict[str, np.ndarray] = {
            "cn": np.log1p(cn), "aa": np.log1p(aa), "ra": ra, "jaccard": jac,
            "ppr": np.log1p(ppr * n), "walk3": np.log1p(three * n),
            "rank_aa": np.log1p(_row_ranks(aa, valid)), "rank_ppr": np.log1p(_row_ranks(ppr, valid)),
        }
        if self.ease is not None:
            ease = np.asarray(self.social[users] @ self.ease)
            cand |= _top_n_mask(ease, valid, self.n_candidates)
            feats.update({"ease": ease, "rank_ease": np.log1p(_row_ranks(ease, valid))})
        if self.interest is not None:
            iu = self.interest[users]
            sim = (iu @ self.interest.T).toarray()
            friends_sim = ((self.walk[users] @ self.interest) @ self.interest.T)
            friends_sim = np.asarray(friends_sim.toarray() if sp.issparse(friends_sim) else friends_sim)
            cand |= _top_n_mask(sim, valid, self.n_candidates)
            feats.update({"interest": sim, "friends_interest": friends_sim,
                          "rank_interest": np.log1p(_row_ranks(sim, valid))})
        if self.directed:  # followers not followed back are natural candidates
            fr, fc = self.social_t[users].nonzero()
            cand[fr, fc] |= valid[fr, fc]
        rows, cols = np.nonzero(cand)
        user_degree = np.log1p(self.degree[users][rows])
        columns = [f[rows, cols] for f in feats.values()]
        columns.append(np.log1p(self.degree[cols]))
        if self.directed:
            so = self.social[users]
            paths = {
                "out_out": (so @ self.social),      # u -> w -> v
                "co_out": (so @ self.social_t),     # u -> w <- v (both trust w)
                "co_in": (self.social_t[users] @ self.social),  # u <- w -> v (trusted by the same w)
            }
            columns += [np.log1p(np.asarray(p[rows, cols]).ravel()) for p in paths.values()]
            columns += [np.asarray(self.social_t[users][rows, cols]).ravel(),  # v -> u: reciprocity
                        np.log1p(self.in_degree[cols]), np.log1p(self.out_degree[cols])]
        x = np.column_stack(columns).astype(np.float64)
        # Every signal times the user's log-degree: how much to trust common neighbours versus
        # walks or interests depends on how many friends the user already has.
        return rows, cols, np.hstack([x, x * user_degree[:, None], user_degree[:, None]])


def ease_weights(social: sp.csr_matrix, l2: float) -> np.ndarray:
    """EASE (Steck 2019) on the adjacency, users as the "items": a dense (n, n) float32 matrix B
    with zero diagonal such that social[u] @ B scores new neighbours of u. One n x n inverse:
    fine at a few thousand users."""
    gram = (social.T @ social).toarray().astype(np.float64)
    gram[np.diag_indices_from(gram)] += l2
    p = np.linalg.inv(gram)
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b.astype(np.float32)


def mask_known_bool(valid: np.ndarray, social: sp.csr_matrix, users: np.ndarray) -> None:
    valid[np.arange(len(users)), users] = False
    r, c = social[users].nonzero()
    valid[r, c] = False


class _LogisticRegression:
    """L2-regularised logistic regression on standardised features, fitted by Newton's method.

    With a few dozen features the Hessian is tiny, so Newton steps (with step halving) converge
    in about ten passes over the data where first-order methods need a hundred or more.
    """

    def __init__(self, l2: float, max_iter: int = 50, tol: float = 1e-10) -> None:
        self.l2 = l2
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, x: np.ndarray, y: np.ndarray) -> "_LogisticRegression":
        self.mean_ = x.mean(axis=0)
        std = x.std(axis=0)
        self.std_ = np.where(std > 1e-12, std, 1.0)  # constant features stay at 0, unused
        n, d = x.shape
        z = np.empty((n, d + 1), dtype=np.float64)
        z[:, :d] = (x - self.mean_) / self.std_
        z[:, d] = 1.0  # intercept column (not penalised)
        y = y.astype(np.float64)
        reg = np.full(d + 1, self.l2 / n)
        reg[d] = 0.0

        def objective(theta: np.ndarray, t: np.ndarray) -> float:
            # mean of log(1 + e^t) - y t, computed stably, plus the ridge penalty.
            return float(np.mean(np.logaddexp(0.0, t) - y * t) + 0.5 * reg @ (theta * theta))

        theta = np.zeros(d + 1)
        t = z @ theta
        value = objective(theta, t)
        for _ in range(self.max_iter):
            p = 0.5 * (1.0 + np.tanh(0.5 * t))  # sigmoid without overflow
            grad = z.T @ (p - y) / n + reg * theta
            hess = (z * (p * (1.0 - p))[:, None]).T @ z / n + np.diag(reg) + 1e-12 * np.eye(d + 1)
            step = np.linalg.solve(hess, grad)
            decrement = float(grad @ step)
            if decrement / 2 < self.tol:
                break
            rate = 1.0
            while rate > 1e-8:  # halve until the objective decreases enough (Armijo)
                cand = theta - rate * step
                t_cand = z @ cand
                v_cand = objective(cand, t_cand)
                if v_cand <= value - 1e-4 * rate * decrement:
                    break
                rate *= 0.5
            else:
                break
            theta, t, value = cand, t_cand, v_cand
        self.coef_, self.intercept_ = theta[:d], float(theta[d])
        return self

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean_) / self.std_) @ self.coef_ + self.intercept_


class LearnedFriendRanker(BaseFriendRecommender):
    """People-you-may-know: a logistic regression over the other scorers' signals.

    Fitting hides a further ``holdout_share`` of the training edges (the same per-user protocol
    as the evaluation, `socialrec.ingest.split.mask_edges`), generates candidates on what is
    left, and learns to tell the hidden edges among them from the other candidates. Labels come
    only from training edges; the features are then recomputed on all training edges for
    inference.

    Candidates of u: the union of the top ``n_candidates`` by Adamic-Adar, personalised PageRank
    (restart ``alpha``), EASE on the adjacency (ridge ``ease_l2``; ``None`` leaves EASE out: it
    holds a dense n_users x n_users matrix, fine up to ~10k users) and interest similarity, plus
    on directed graphs the users who follow u. Everyone else scores -inf.
    Features of (u, v): common neighbours, Adamic-Adar, resource allocation, Jaccard, PageRank,
    3-step walk probability, EASE, interest similarity to u and to u's friends, v's rank under
    each candidate generator, v's degree; on directed graphs also reciprocity (v -> u), directed
    two-step path counts and v's in/out-degree. Each feature is also multiplied by u's
    log-degree (the best mix depends on how many friends u already has), on standardised
    features with an L2 penalty ``l2``.
    """

    def __init__(self, n_candidates: int = 100, holdout_share: float = 0.2, l2: float = 1.0,
                 alpha: float = 0.3, ease_l2: float | None = 200.0, seed: int = 0) -> None:
        self.n_candidates = n_candidates
        self.holdout_share = holdout_share
        self.l2 = l2
        self.alpha = alpha
        self.ease_l2 = ease_l2
        self.seed = seed

    def _fit(self, social: sp.csr_matrix, user_items: sp.csr_matrix | None) -> None:
        if not 0 < self.holdout_share < 1:
            raise ValueError(f"holdout_share must be in (0, 1), got {self.holdout_share}")
        directed = not is_symmetric(social)
        inner, hidden = mask_edges(social, self.holdout_share, self.seed, directed=directed)
        feats = _PairFeatures(inner, user_items, alpha=self.alpha, n_candidates=self.n_candidates,
                              directed=directed, ease_l2=self.ease_l2)
        users = np.flatnonzero(np.diff(hidden.indptr) > 0)
        xs, ys = [], []
        for start in range(0, len(users), self._chunk):
            chunk = users[start:start + self._chunk]
            rows, cols, x = feats.candidates_and_features(chunk)
            xs.append(x)
            ys.append(np.asarray(hidden[chunk[rows], cols]).ravel() > 0)
        x_all, y_all = np.vstack(xs), np.concatenate(ys)
        if not y_all.any() or y_all.all():
            raise ValueError("the training holdout produced no positive (or no negative) candidate pairs: "
                             "the graph is too small or sparse for the learned ranker")
        self.model_ = _LogisticRegression(self.l2).fit(x_all, y_all)
        self.train_pairs_ = int(len(y_all))
        self.train_positive_rate_ = float(y_all.mean())
        self.features_ = _PairFeatures(social, user_items, alpha=self.alpha, n_candidates=self.n_candidates,
                                       directed=directed, ease_l2=self.ease_l2)

    def _refresh(self, social: sp.csr_matrix, user_items: sp.csr_matrix | None) -> None:
        # The logistic weights stay; only the pair features are recomputed on the new graph.
        self.features_ = _PairFeatures(social, user_items, alpha=self.alpha, n_candidates=self.n_candidates,
                                       directed=not is_symmetric(social), ease_l2=self.ease_l2)

    def _score(self, users: np.ndarray) -> np.ndarray:
        out = np.full((len(users), self.n_users_), -np.inf, dtype=np.float32)
        rows, cols, x = self.features_.candidates_and_features(users)
        if len(rows):
            out[rows, cols] = self.model_.decision_function(x)
        return out
