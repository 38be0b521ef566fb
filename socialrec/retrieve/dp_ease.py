"""Private item-item regression (``dp-ease``): EASE fitted on a Gaussian-noised, per-user weighted
co-occurrence matrix; differential privacy for the item-item weights, joint differential privacy
for what each user is shown.

The model is EASE (Steck, WWW 2019) restricted to a head of items, score(u, j) = r_u . B[:, j],
with B = I - P / diag(P), P = (G + l2 * I)^-1, and diag(B) = 0. G is released once, privately:

1. **Head** (one Gaussian release): item popularity counts, noised with a ``popularity_share``
   of the budget; the ``max_items`` largest noisy counts form the head; items outside it rank
   below every head item, by their noisy count. Unit "user": each user adds their unit-norm row
   (L2 sensitivity 1); unit "interaction": raw counts (one interaction moves one count by 1).
2. **Co-occurrence** (one Gaussian release): G = sum_u w_u r_u r_u^T over the binary head rows
   r_u (n_u: a user's number of head items), each user weighted by w_u = sqrt(2 / (n_u (n_u + 1)))
   for unit "user" (the largest weight whose upper triangle has norm 1: about sqrt(2) / n_u) and by
   w_u = 1 / max(n_u, ``min_weight_count``) for unit "interaction". Its upper triangle (diagonal
   included) gets Gaussian noise and is mirrored; the negative eigenvalues of the noisy matrix
   are floored at 0 (post-processing).
   EASE's ridge ``l2`` may add EDLAE's emphasised denoising (``dropout``: each item's ridge also
   grows with its own released count, `socialrec.retrieve.ease.ease_weights`), post-processing
   that damps the rows where the noise is large against the counts.
3. **Scoring**: each user's scores are their own stored row times the released B (fold-in
   "history": a new event changes the user's row and so their scores at once, no refit).

Privacy (sketch). Sensitivity of the upper triangle of G, the part released:
- Unit "user" (a record is a user with all of their interactions): w_u r_u r_u^T has n_u diagonal
  entries and n_u (n_u - 1) / 2 upper off-diagonal ones, n_u (n_u + 1) / 2 in all, each w_u:
  squared norm w_u^2 n_u (n_u + 1) / 2 = 1. (1 / n_u, the obvious weight, reaches a squared norm of
  only (n_u + 1) / (2 n_u), about a half: the same noise over less signal.)
- Unit "interaction" (a record is one (user, item) interaction; the WEAKER guarantee: it does not
  hide a user's whole history): adding item j to a user with n head items, m =
  ``min_weight_count``. If n + 1 <= m the weight stays 1 / m and the change is the new row j:
  n + 1 upper-triangle entries of 1 / m, squared norm (n + 1) / m^2 <= 1 / m. If n >= m the
  weight goes from 1 / n to 1 / (n + 1): the n (n + 1) / 2 old upper entries each move by
  1 / (n (n + 1)) and the n + 1 new ones are 1 / (n + 1), squared norm
  1 / (2 n (n + 1)) + 1 / (n + 1) < 1 / m. So the sensitivity is 1 / sqrt(m): the noise shrinks
  with m, while users with fewer than m head items count less.
- The two releases are full-batch Gaussian mechanisms, composed exactly (1 / s_tot^2 = sum of
  1 / s_i^2; ``socialrec.retrieve.dp_als.composed_epsilon``); the co-occurrence noise is
  calibrated (bisection) so that both together spend at most ``target_epsilon`` at ``delta``
  (1 / n_users for unit "user", min(1 / n_interactions, 1 / n_users) for "interaction").
- B is post-processing of the two releases. A user's scores use their own row and B: by the
  billboard lemma the recommendations shown to all *other* users are (epsilon, delta)-DP with
  respect to the record (joint DP, as for ``dp-als``). Choosing hyperparameters by comparing
  private fits on validation data is a further use of the data that this accounting does not
  cover. The noise comes from numpy's seeded generator (``random_state``): repeatable, not a
  cryptographically secure source.
numpy and scipy only.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from socialrec.retrieve.base import BaseRecommender, TrainData
from socialrec.retrieve.dp_als import ACCOUNTANTS, calibrate_noise, tail_bias
from socialrec.retrieve.dp_mf import PrivacySpent, _normalised_rows, check_budget
from socialrec.retrieve.ease import ease_weights

UNITS = ("user", "interaction")


class DPEASE(BaseRecommender):
    """EASE on a privately released co-occurrence matrix: DP item-item weights, each user scored
    from their own history (joint DP); see the module docstring for the algorithm and the proof
    sketch. ``target_epsilon=None`` fits the same model without noise (its non-private twin,
    ``ease-twin``; ``privacy_spent()`` is then (inf, 0)).

    target_epsilon: the budget of the whole fit (both releases); None: no DP.
    delta: the guarantee's delta; None means 1 / n_users (unit "user") or
        min(1 / n_interactions, 1 / n_users) (unit "interaction") of the training data.
    privacy_unit: "user" (a record is a user and all of their interactions) or "interaction"
        (a record is one (user, item) interaction: the weaker guarantee).
    l2: EASE's ridge weight, in the units of the weighted co-occurrence counts.
    max_items: the head: this many items with the largest noisy popularity (None: all; the
        memory and time grow with its square and cube).
    dropout: EDLAE's dropout probability p in [0, 1): each item's ridge adds p / (1 - p) times
        its diagonal entry of the released matrix (0: plain EASE).
    min_weight_count: unit "interaction" only: each user's weight is 1 / max(their head items,
        this); the noise's scale is 1 / sqrt(this).
    popularity_share: the share of ``target_epsilon`` the head release would cost alone.
    accountant: "analytic" (exact Gaussian composition), "prv" or "rdp" (Opacus).
    random_state: seeds the noise.
    """

    fold_in = "history"

    def __init__(self, target_epsilon: float | None = 8.0, delta: float | None = None, privacy_unit: str = "user",
                 l2: float = 10.0, max_items: int | None = 1000, min_weight_count: int = 20,
                 popularity_share: float = 0.1, accountant: str = "analytic", random_state: int = 0,
                 dropout: float = 0.0) -> None:
        self.target_epsilon = target_epsilon
        self.delta = delta
        self.privacy_unit = privacy_unit
        self.l2 = l2
        self.max_items = max_items
        self.min_weight_count = min_weight_count
        self.popularity_share = popularity_share
        self.accountant = accountant
        self.random_state = random_state
        self.dropout = dropout

    def _check_params(self) -> None:
        check_budget(self.target_epsilon, self.delta, "the unit's default")
        if self.privacy_unit not in UNITS:
            raise ValueError(f"privacy_unit must be one of {UNITS}, got {self.privacy_unit!r}")
        if not self.l2 > 0:
            raise ValueError(f"l2 must be > 0, got {self.l2}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.max_items is not None and self.max_items < 1:
            raise ValueError(f"max_items must be >= 1 or None (all items), got {self.max_items}")
        if int(self.min_weight_count) != self.min_weight_count or self.min_weight_count < 1:
            raise ValueError(f"min_weight_count must be an integer >= 1, got {self.min_weight_count}")
        if not 0.0 < self.popularity_share < 1.0:
            raise ValueError(f"popularity_share must be in (0, 1), got {self.popularity_share}")
        if self.accountant not in ACCOUNTANTS:
            raise ValueError(f"accountant must be one of {ACCOUNTANTS}, got {self.accountant!r}")

    @property
    def _weight_floor(self) -> int:
        return int(self.min_weight_count) if self.privacy_unit == "interaction" else 1

    def sensitivity(self) -> float:
        """L2 sensitivity of the released upper triangle of the co-occurrence matrix to one record
        (module docstring): 1 for a user, 1 / sqrt(min_weight_count) for an interaction."""
        return 1.0 if self.privacy_unit == "user" else 1.0 / math.sqrt(self._weight_floor)

    def weighted_cooccurrence(self, rows: sp.csr_matrix) -> np.ndarray:
        """G = sum_u w_u r_u r_u^T over binary rows with the unit's weights (module docstring):
        sqrt(2 / (n_u (n_u + 1))) for a user, 1 / max(n_u, min_weight_count) for an interaction."""
        r = sp.csr_matrix(rows, dtype=np.float64, copy=True)
        r.data[:] = 1.0
        counts = np.diff(r.indptr).astype(np.float64)
        if self.privacy_unit == "user":
            weight = np.sqrt(2.0 / np.maximum(counts * (counts + 1.0), 2.0))
        else:
            weight = 1.0 / np.maximum(counts, self._weight_floor)
        return np.asarray((r.T @ sp.diags(weight) @ r).todense())

    # --- fitting ---------------------------------------------------------------------
    def _fit(self, train: TrainData) -> None:
        self._check_params()
        history = sp.csr_matrix(train.user_items, dtype=np.float64, copy=True)
        history.data[:] = 1.0
        history.eliminate_zeros()
        n_users, n_all = history.shape
        private = self.target_epsilon is not None
        if private:
            delta = self.delta if self.delta is not None else (
                1.0 / n_users if self.privacy_unit == "user" else min(1.0 / max(history.nnz, 1), 1.0 / n_users))
            self.popularity_noise_, self.noise_multiplier_, self.epsilon_ = calibrate_noise(
                self.target_epsilon, float(delta), self.popularity_share, 1, self.accountant,
                hint="raise min_weight_count" if self.privacy_unit == "interaction" else "loosen delta")
            self.delta_ = float(delta)
        else:
            self.popularity_noise_, self.noise_multiplier_, self.epsilon_, self.delta_ = 0.0, 0.0, math.inf, 0.0
        noise = np.random.default_rng(self.random_state)
        rows_for_counts = _normalised_rows(history) if self.privacy_unit == "user" else history
        counts = np.asarray(rows_for_counts.sum(axis=0)).ravel()
        if private:
            counts = counts + noise.normal(0.0, self.popularity_noise_, size=n_all)
        self.item_popularity_ = counts.astype(np.float32)
        n_head = n_all if self.max_items is None else min(int(self.max_items), n_all)
        self.head_items_ = np.sort(np.argsort(-counts, kind="stable")[:n_head]).astype(np.int64)
        gram = self.weighted_cooccurrence(history[:, self.head_items_])
        if private:
            upper = np.triu(noise.normal(0.0, self.noise_multiplier_ * self.sensitivity(), size=gram.shape))
            gram = gram + upper + np.triu(upper, 1).T
            values, vectors = np.linalg.eigh(gram)  # post-processing: a PSD matrix again
            gram = (vectors * np.maximum(values, 0.0)) @ vectors.T
        self.weights_ = ease_weights(gram, self.l2, self.dropout).astype(np.float32)
        self.item_bias_ = tail_bias(self.item_popularity_, self.head_items_).astype(np.float32)

    def privacy_spent(self) -> PrivacySpent:
        """(epsilon, delta) of the released item side, with the record's ``unit`` ("user" or
        "interaction"); (inf, 0) with ``unit`` None without DP."""
        self._check_fitted("privacy_spent")
        return PrivacySpent(float(self.epsilon_), float(self.delta_),
                            None if self.target_epsilon is None else self.privacy_unit)

    # --- scoring ---------------------------------------------------------------------
    def _score(self, users: np.ndarray) -> np.ndarray:
        rows = sp.csr_matrix(self.user_items_[users][:, self.head_items_], dtype=np.float32)
        rows.data[:] = 1.0
        out = np.tile(self.item_bias_, (len(users), 1))
        out[:, self.head_items_] = rows @ self.weights_
        return out

    def _similar_scores(self, items: np.ndarray) -> np.ndarray:
        out = np.tile(self.item_bias_, (len(items), 1))
        pos = np.full(self.n_items_, -1)
        pos[self.head_items_] = np.arange(len(self.head_items_))
        rows = pos[items]
        ok = np.flatnonzero(rows >= 0)
        out[np.ix_(ok, self.head_items_)] = self.weights_[rows[ok]]
        return out
