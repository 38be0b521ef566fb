"""Private alternating least squares (``dp-als``): user-level differential privacy for the item
side, joint differential privacy for what each user is shown.

In the style of "Private Alternating Least Squares" (Chien, Jain, Krichene, Rendle, Song,
Thakurta, Zhang; ICML 2021) and the billboard lemma (Hsu, Huang, Roth, Roughgarden, Wu; STOC
2014). The model is least-squares matrix factorisation of the binary user-item matrix ``R``
restricted to a head of items, score(u, i) = x_u . v_i:

1. **Head** (one Gaussian release): item popularity counts, each user adding their unit-norm
   row (L2 sensitivity 1), noised with a ``popularity_share`` of the budget; the ``max_items``
   largest noisy counts form the head; items outside it rank below every head item, by their
   noisy count.
2. **Alternation** (``iterations`` sweeps from random item vectors V_0, drawn from the seed alone):
   a. every user's vector is solved in closed form from their own head row r_u against the
      current (released) item vectors, x_u = (V^T V + user_l2 * I)^-1 V^T r_u;
   b. the vector is scaled to unit norm, z_u = x_u / |x_u| (every user counts alike; 0 stays 0),
      and weighted by w_u = 1 / sqrt(|r_u|) (its number of head items);
   c. two sufficient statistics are released with Gaussian noise: the Gram matrix
      G = sum_u z_u z_u^T (upper triangle noised, mirrored) and the cross moments
      B = sum_u w_u z_u r_u^T (factors x head items);
   d. the item vectors are the ridge solution against the noisy statistics,
      V = ((G~ + item_l2 * I)^-1 B~)^T, with G~'s eigenvalues floored at 0 (post-processing).
3. **Scoring**: each user's vector is solved as in 2a from their own history against the final
   released V (``user_factors_``); folding a user in does the same (``fold_in = "solve"``).

Privacy (sketch). A record is a **user** with all of their interactions (add/remove adjacency).
- Step 1: the user's unit-norm row moves the count vector by exactly norm 1.
- Step 2c, sweep t: given the released V_{t-1}, every *other* user's z_v and w_v are functions
  of V_{t-1} and that user's own row, so adding or removing user u changes G by z_u z_u^T
  (Frobenius norm |z_u|^2 <= 1; its upper triangle no more) and B by w_u z_u r_u^T (Frobenius
  norm |z_u| * w_u * sqrt(|r_u|) <= 1) and nothing else. G gets Gaussian noise of standard
  deviation s / sqrt(gram_share) and B of s / sqrt(1 - gram_share): scaled to unit noise, the
  pair has L2 sensitivity sqrt(gram_share / s^2 + (1 - gram_share) / s^2) = 1 / s, a Gaussian
  mechanism with noise multiplier s. V_0 is data-independent and 2d is post-processing.
- The ``iterations`` sweeps are adaptively composed with the head release: with sample rate 1,
  the composition of Gaussian mechanisms with multipliers s_pop and s (``iterations`` times) is
  exactly one Gaussian mechanism with 1 / s_tot^2 = 1 / s_pop^2 + iterations / s^2. The
  ``accountant`` computes its (epsilon, delta): "analytic" (default) the exact curve of the
  Gaussian mechanism (Balle & Wang 2018), "prv" / "rdp" Opacus' accountants (PRV approximates the
  exact curve numerically; RDP is a looser upper bound). s is calibrated (bisection) so that the
  whole fit spends at most ``target_epsilon`` at ``delta`` (1 / n_users by default).
- So the released item side (head, noisy counts, V) is (epsilon, delta)-DP with respect to any
  one user. A user's scores are x_u . V from their own row and the DP V: by the billboard lemma
  the recommendations shown to all *other* users are (epsilon, delta)-DP with respect to user u
  (joint DP, the guarantee of Chien et al.; a user's own list uses that user's data, as any
  recommender's must). The stored history itself is personal data, handled by the store
  (deletion, export), not by DP. Choosing hyperparameters by comparing private fits on
  validation data is a further use of the data that this accounting does not cover.

Fold-in changes no released parameter and so spends no budget; a refit is a new release.
The noise comes from numpy's seeded generator (``random_state``), which makes fits repeatable
but is not a cryptographically secure source: a deployment that fears an attacker predicting
the noise should draw ``random_state`` from ``os.urandom``. numpy and scipy only; the "prv" and
"rdp" accountants need Opacus (extra ``privacy-dp``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.sparse as sp

from socialrec.errors import MissingDependencyError
from socialrec.retrieve.base import BaseRecommender, TrainData, dot_scores, float64_copy
from socialrec.retrieve.dp_mf import PrivacySpent, _normalised_rows, check_budget

ACCOUNTANTS = ("analytic", "prv", "rdp")


def analytic_gaussian_epsilon(noise_multiplier: float, delta: float) -> float:
    """The exact epsilon at ``delta`` of one Gaussian mechanism with L2 sensitivity 1 and noise
    standard deviation ``noise_multiplier`` (Balle & Wang 2018, Theorem 8):
    delta(eps) = Phi(1/(2s) - eps*s) - e^eps * Phi(-1/(2s) - eps*s), solved for eps by bisection
    (the returned value is on the safe side: delta(eps) <= delta)."""
    from scipy.special import log_ndtr

    s = float(noise_multiplier)
    if not s > 0 or not 0 < delta < 1:
        raise ValueError(f"noise_multiplier must be > 0 and delta in (0, 1), got {noise_multiplier}, {delta}")

    def delta_of(eps: float) -> float:
        # e^eps * Phi(b) computed in log space: it is a difference of two nearly equal numbers.
        return float(math.exp(log_ndtr(0.5 / s - eps * s)) - math.exp(eps + log_ndtr(-0.5 / s - eps * s)))

    if delta_of(0.0) <= delta:
        return 0.0
    lo, hi = 0.0, 1.0
    while delta_of(hi) > delta:
        lo, hi = hi, 2 * hi
        if hi > 1e6:
            raise ValueError(f"noise_multiplier {s} gives no finite epsilon at delta {delta}")
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if delta_of(mid) > delta else (lo, mid)
    return hi


def composed_epsilon(noise_multipliers: list[tuple[float, int]], delta: float, accountant: str = "analytic") -> float:
    """Epsilon at ``delta`` of the adaptive composition of full-batch (sample rate 1) Gaussian
    mechanisms, given as (noise multiplier, times applied) pairs."""
    if accountant == "analytic":
        total = sum(count / s ** 2 for s, count in noise_multipliers)
        return analytic_gaussian_epsilon(total ** -0.5, delta)
    if accountant not in ACCOUNTANTS:
        raise ValueError(f"accountant must be one of {ACCOUNTANTS}, got {accountant!r}")
    try:
        from opacus.accountants import create_accountant
    except ImportError as exc:  # pragma: no cover - only without the extra
        raise MissingDependencyError("opacus", "privacy-dp", f"The {accountant!r} accountant") from exc
    acc = create_accountant(accountant)
    acc.history = [(float(s), 1.0, int(count)) for s, count in noise_multipliers]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Optimal order is the")
        warnings.filterwarnings("ignore", message="divide by zero encountered in log", category=RuntimeWarning)
        return float(acc.get_epsilon(delta))


def calibrate_noise(target_epsilon: float, delta: float, popularity_share: float, releases: int,
                    accountant: str = "analytic", hint: str = "make fewer releases") -> tuple[float, float, float]:
    """Noise multipliers of a head release and of each of ``releases`` later full-batch releases,
    and the epsilon they spend together: the head's costs ``popularity_share`` * target_epsilon
    alone; the later releases' is the smallest (bisection in log space, on the noisy side) whose
    composition with the head stays within ``target_epsilon``. ``hint`` ends the error raised when
    no noise multiplier <= 1e4 fits the budget."""
    eps = float(target_epsilon)
    spend = lambda pairs: composed_epsilon(pairs, delta, accountant)  # noqa: E731
    lo, hi = math.log(1e-3), math.log(1e4)
    for _ in range(40):  # the head release alone at popularity_share * eps
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if spend([(math.exp(mid), 1)]) <= popularity_share * eps else (mid, hi)
    s_pop = math.exp(hi)
    lo, hi = math.log(1e-3), math.log(1e4)
    if spend([(s_pop, 1), (math.exp(hi), releases)]) > eps:
        raise ValueError(f"target_epsilon={eps} cannot be met with a noise multiplier <= 1e4; raise "
                         f"target_epsilon, lower popularity_share or {hint}")
    for _ in range(30 if accountant == "analytic" else 14):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if spend([(s_pop, 1), (math.exp(mid), releases)]) <= eps else (mid, hi)
    s = math.exp(hi)
    return s_pop, s, spend([(s_pop, 1), (s, releases)])


def tail_bias(item_popularity: np.ndarray, head_items: np.ndarray) -> np.ndarray:
    """0 for head items; items outside the head get scores far below any head item's, ordered by
    their (noisy) popularity."""
    head = np.zeros(len(item_popularity), dtype=bool)
    head[head_items] = True
    bias = np.zeros(len(item_popularity))
    if (~head).any():
        pop = np.asarray(item_popularity, dtype=np.float64)[~head]
        spread = pop.max() - pop.min()
        bias[~head] = -1e4 + ((pop - pop.min()) / spread if spread > 0 else 0.0)
    return bias


def ridge_user_vectors(rows: sp.csr_matrix, items: np.ndarray, l2: float) -> np.ndarray:
    """Each row's least-squares vector against fixed item vectors V: argmin_x |r - V x|^2 + l2 |x|^2,
    i.e. (V^T V + l2 I)^-1 V^T r, for every row r of ``rows`` (n_rows x n_items) at once."""
    items = np.asarray(items, dtype=np.float64)
    gram = items.T @ items + l2 * np.eye(items.shape[1])
    rhs = np.asarray(sp.csr_matrix(rows, dtype=np.float64) @ items)
    return np.linalg.solve(gram, rhs.T).T


def user_statistics(rows: sp.csr_matrix, items: np.ndarray, l2: float) -> tuple[np.ndarray, np.ndarray]:
    """One sweep's sufficient statistics before noise (steps 2a-2c of the module docstring): the
    Gram matrix G = sum_u z_u z_u^T and the cross moments B = sum_u w_u z_u r_u^T (factors x
    items), z_u the unit-norm ridge vector of binary row r_u against ``items``, w_u = 1 / sqrt(|r_u|).
    Each user adds at most Frobenius norm 1 to each of them."""
    r = sp.csr_matrix(rows, dtype=np.float64, copy=True)
    r.data[:] = 1.0
    users = ridge_user_vectors(r, items, l2)
    norms = np.linalg.norm(users, axis=1)
    z = np.divide(users, norms[:, None], out=np.zeros_like(users), where=norms[:, None] > 0)
    per_user = np.diff(r.indptr)
    weight = np.zeros(r.shape[0])
    weight[per_user > 0] = per_user[per_user > 0] ** -0.5
    return z.T @ z, np.asarray((sp.diags(weight) @ r).T @ z).T


class DPALS(BaseRecommender):
    """Private alternating least squares: user-level DP item vectors, each user's vector solved
    from their own history (joint DP); see the module docstring for the algorithm and the proof
    sketch. ``target_epsilon=None`` trains the same model without noise (its non-private twin;
    ``privacy_spent()`` is then (inf, 0)).

    target_epsilon: the budget of the whole fit (head release and every sweep); None: no DP.
    delta: the guarantee's delta; None means 1 / n_users of the training data.
    factors: dimension of the user and item vectors.
    iterations: alternating sweeps; each sweep's item update is one private release.
    user_l2: ridge weight of the user solve (training and scoring).
    item_l2: ridge weight of the item solve against the (noisy) Gram matrix.
    max_items: the head: the this many items with the largest noisy popularity (None: all).
    popularity_share: the share of ``target_epsilon`` the head release would cost alone.
    gram_share: how the per-sweep release divides its noise between the Gram matrix (this share
        of the precision) and the cross moments (the rest); see the module docstring.
    accountant: "analytic" (exact Gaussian composition), "prv" or "rdp" (Opacus).
    random_state: seeds the initial item vectors and the noise.
    """

    fold_in = "solve"

    def __init__(self, target_epsilon: float | None = 8.0, delta: float | None = None, factors: int = 16,
                 iterations: int = 3, user_l2: float = 0.1, item_l2: float = 30.0, max_items: int | None = 1000,
                 popularity_share: float = 0.3, gram_share: float = 0.1, accountant: str = "analytic",
                 random_state: int = 0) -> None:
        self.target_epsilon = target_epsilon
        self.delta = delta
        self.factors = factors
        self.iterations = iterations
        self.user_l2 = user_l2
        self.item_l2 = item_l2
        self.max_items = max_items
        self.popularity_share = popularity_share
        self.gram_share = gram_share
        self.accountant = accountant
        self.random_state = random_state

    def _check_params(self) -> None:
        check_budget(self.target_epsilon, self.delta)
        for name in ("factors", "iterations"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_items is not None and self.max_items < 1:
            raise ValueError(f"max_items must be >= 1 or None (all items), got {self.max_items}")
        for name in ("user_l2", "item_l2"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("popularity_share", "gram_share"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {getattr(self, name)}")
        if self.accountant not in ACCOUNTANTS:
            raise ValueError(f"accountant must be one of {ACCOUNTANTS}, got {self.accountant!r}")

    # --- the budget ------------------------------------------------------------------
    def _calibrate(self, n_users: int) -> None:
        """Noise multipliers of the head release and of each sweep: the head's costs
        ``popularity_share`` * epsilon alone; the sweeps' is the smallest (bisection in log space,
        on the noisy side) whose composition with it stays within ``target_epsilon``."""
        if self.target_epsilon is None:
            self.delta_, self.popularity_noise_, self.noise_multiplier_ = 0.0, 0.0, 0.0
            self.epsilon_ = math.inf
            return
        delta = float(self.delta) if self.delta is not None else 1.0 / n_users
        self.popularity_noise_, self.noise_multiplier_, self.epsilon_ = calibrate_noise(
            float(self.target_epsilon), delta, self.popularity_share, self.iterations, self.accountant,
            hint="run fewer iterations")
        self.delta_ = delta

    # --- fitting ---------------------------------------------------------------------
    def _fit(self, train: TrainData) -> None:
        self._check_params()
        history = sp.csr_matrix(train.user_items, dtype=np.float64, copy=True)
        history.data[:] = 1.0
        history.eliminate_zeros()
        n_users, n_all = history.shape
        self._calibrate(n_users)
        rng = np.random.default_rng(self.random_state)
        noise = np.random.default_rng([self.random_state, 1])
        counts = np.asarray(_normalised_rows(history).sum(axis=0)).ravel()
        if self.target_epsilon is not None:
            counts = counts + noise.normal(0.0, self.popularity_noise_, size=n_all)
        self.item_popularity_ = counts.astype(np.float32)
        n_head = n_all if self.max_items is None else min(int(self.max_items), n_all)
        self.head_items_ = np.sort(np.argsort(-counts, kind="stable")[:n_head]).astype(np.int64)
        rows = sp.csr_matrix(history[:, self.head_items_])
        k = self.factors
        items = rng.normal(0.0, 1.0 / math.sqrt(k), size=(n_head, k))
        upper = np.triu_indices(k)
        private = self.target_epsilon is not None
        s_gram = self.noise_multiplier_ / math.sqrt(self.gram_share) if private else 0.0
        s_cross = self.noise_multiplier_ / math.sqrt(1.0 - self.gram_share) if private else 0.0
        for _ in range(self.iterations):
            gram, cross = user_statistics(rows, items, self.user_l2)
            if private:
                g = np.zeros((k, k))
                g[upper] = noise.normal(0.0, s_gram, size=len(upper[0]))
                gram = gram + np.triu(g) + np.triu(g, 1).T
                cross = cross + noise.normal(0.0, s_cross, size=cross.shape)
                # post-processing: the noisy Gram's negative eigenvalues floored at 0
                values, vectors = np.linalg.eigh(gram)
                gram = (vectors * np.maximum(values, 0.0)) @ vectors.T
            items = np.linalg.solve(gram + self.item_l2 * np.eye(k), cross).T
        self.steps_ = int(self.iterations)
        self.item_factors_ = np.zeros((n_all, k), dtype=np.float32)
        self.item_factors_[self.head_items_] = items
        self.item_bias_ = tail_bias(self.item_popularity_, self.head_items_)
        if not np.isfinite(self.item_factors_).all():
            raise FloatingPointError("DPALS: the item vectors are not all finite; raise item_l2")
        self.user_factors_ = np.zeros((0, k), dtype=np.float32)
        self._fold_in_users(np.arange(n_users), None)

    def _fold_in_users(self, users: np.ndarray, social: sp.csr_matrix | None) -> None:
        """Each user's vector solved from their own (head) row against the released item vectors."""
        grown = np.zeros((self.user_items_.shape[0], self.factors), dtype=np.float64)
        grown[:len(self.user_factors_)] = self.user_factors_[:len(grown)]
        head = self.head_items_
        rows = sp.csr_matrix(self.user_items_[users][:, head], dtype=np.float64)
        rows.data[:] = 1.0
        grown[users] = ridge_user_vectors(rows, self.item_factors_[head], self.user_l2)
        self.user_factors_ = grown

    def privacy_spent(self) -> PrivacySpent:
        """(epsilon, delta) of the released item side, a record being a user (``unit`` "user");
        (inf, 0) with ``unit`` None without DP."""
        self._check_fitted("privacy_spent")
        return PrivacySpent(float(self.epsilon_), float(self.delta_), None if self.target_epsilon is None else "user")

    # --- scoring ---------------------------------------------------------------------
    def _score(self, users: np.ndarray) -> np.ndarray:
        scores = dot_scores(self.user_factors_[users], float64_copy(self, "item_factors_"))
        return (scores.astype(np.float64) + self.item_bias_[None, :]).astype(np.float32)

    def _similar_scores(self, items: np.ndarray) -> np.ndarray:
        f = self.item_factors_
        norms = np.linalg.norm(f, axis=1)
        norms[norms == 0] = 1.0
        return dot_scores(f[items] / norms[items, None], f / norms[:, None])
