"""ALS and BPR matrix factorisation through the `implicit` library (we wrap it, not rewrite it).

`implicit` is an optional dependency (extra ``cf``); it is imported when a model is fitted.
Fitting runs with BLAS limited to one thread, as implicit recommends for its own thread pool.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from socialrec.errors import MissingDependencyError
from socialrec.retrieve.base import BaseRecommender, TrainData, dot_scores, float64_copy


def _implicit() -> Any:
    try:
        import implicit  # noqa: F401
        import implicit.cpu.als
        import implicit.cpu.bpr
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise MissingDependencyError("implicit", "cf", "ALS and BPR") from exc
    return implicit


_CONTROLLER: Any = None


def _one_blas_thread() -> Any:
    """BLAS limited to one thread, for the small solves of a fold-in. One controller made once:
    a fresh `threadpool_limits` scans the loaded libraries on every call (11 ms of a 100-user
    fold-in in one profile of the served synthetic hybrid)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")


class _FactorModel(BaseRecommender):
    """Shared scoring for factor models: score = user_factors @ item_factors.T."""

    user_factors_: np.ndarray
    item_factors_: np.ndarray

    def _score(self, users: np.ndarray) -> np.ndarray:
        return dot_scores(self.user_factors_[users], float64_copy(self, "item_factors_"))

    def _similar_scores(self, items: np.ndarray) -> np.ndarray:
        f = self.item_factors_
        norms = np.linalg.norm(f, axis=1)
        norms[norms == 0] = 1.0
        return dot_scores(f[items] / norms[items, None], f / norms[:, None])

    def _fit_implicit(self, make_model: Any, train: TrainData) -> None:
        from threadpoolctl import threadpool_limits

        # implicit checks the BLAS thread count when a model is built and warns if it is > 1.
        with threadpool_limits(1, "blas"):
            model = make_model()
            model.fit(train.user_items.astype(np.float32), show_progress=False)
        self.model_ = model  # implicit's own model: ALS folds users in through it
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)
        if not (np.isfinite(self.user_factors_).all() and np.isfinite(self.item_factors_).all()):
            raise FloatingPointError(
                f"{type(self).__name__}: factors are not all finite, the model diverged. "
                "Try a smaller learning rate or a larger regularization.")


class ALS(_FactorModel):
    """Implicit-feedback ALS (Hu, Koren, Volinsky 2008). Confidence = 1 + alpha * r.

    Fold-in ("solve"): `partial_fit_users` solves each user's least-squares problem exactly
    (implicit's ``partial_fit_users``, Cholesky) against the fixed item factors: the user half
    of one more ALS sweep. Fitting ends with conjugate-gradient user steps, so re-folding an
    unchanged user moves their scores slightly (within 1% of the score scale on the contract's
    data) and keeps their top items.
    """

    fold_in = "solve"

    def __init__(self, factors: int = 64, regularization: float = 0.05, alpha: float = 10.0,
                 iterations: int = 15, random_state: int = 0, num_threads: int = 0) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.random_state = random_state
        self.num_threads = num_threads

    # Resumable training (successive halving in `evaluate.experiment` trains grid points in steps).
    budget_param = "iterations"

    def _fit(self, train: TrainData) -> None:
        self._fit_iterations(train, self.iterations)

    def _fit_iterations(self, train: TrainData, iterations: int) -> None:
        implicit = _implicit()
        self._fit_implicit(lambda: implicit.cpu.als.AlternatingLeastSquares(
            factors=self.factors, regularization=self.regularization, alpha=self.alpha,
            iterations=iterations, random_state=self.random_state,
            num_threads=self.num_threads), train)
        self.iterations_done_ = iterations

    def fit_to(self, train: TrainData, iterations: int) -> "ALS":
        """Train to ``iterations`` ALS sweeps in all: a fitted model trained on the same matrix
        with fewer sweeps continues from its factors (implicit keeps factors it already has), which
        gives the factors of one fit with ``iterations`` sweeps; otherwise it fits from scratch.
        The ``iterations`` hyperparameter is left as constructed. Returns self."""
        if iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {iterations}")
        if not isinstance(train, TrainData):
            train = TrainData.from_matrix(train)
        done = getattr(self, "iterations_done_", 0)
        model = getattr(self, "model_", None)
        same = hasattr(self, "user_items_") and self.user_items_.shape == train.user_items.shape and (
            self.user_items_ != sp.csr_matrix(train.user_items)).nnz == 0
        if model is None or not same or done > iterations:
            self._fit_fresh(train, iterations)
            return self
        if done < iterations:
            from threadpoolctl import threadpool_limits

            model.iterations = iterations - done
            with threadpool_limits(1, "blas"):
                model.fit(train.user_items.astype(np.float32), show_progress=False)
            self.user_factors_ = np.asarray(model.user_factors, dtype=np.float32)
            self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)
            self.iterations_done_ = iterations
        return self

    def _fit_fresh(self, train: TrainData, iterations: int) -> None:
        if train.user_items.nnz == 0:
            raise ValueError("ALS.fit_to got a user-item matrix with no interactions")
        self._set_training_matrix(train.user_items)
        self._fit_iterations(train, iterations)

    def _fold_in_users(self, users: np.ndarray, social: Any) -> None:
        model = getattr(self, "model_", None)
        if model is None:  # a model pickled before ALS kept implicit's object
            raise NotImplementedError("this ALS was saved without implicit's model object and cannot fold in "
                                      "users; refit it with fit(...) and save it again")
        rows = self.user_items_[users].astype(np.float32)  # the confidence input, as fit got it
        with _one_blas_thread():
            model.partial_fit_users(users, rows)
        if model.user_factors.shape[0] < self.n_users_:  # users between the old end and the new ones
            model.user_factors = np.concatenate([model.user_factors, np.zeros(
                (self.n_users_ - model.user_factors.shape[0], model.factors), dtype=model.user_factors.dtype)])
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float32)


class BPR(_FactorModel):
    """Bayesian personalised ranking (Rendle et al. 2009), SGD with one sampled negative.

    With ``num_threads`` other than 1 the lock-free parallel SGD makes runs differ slightly.

    Fold-in ("solve"): a user's vector is solved anew against the fixed item factors and
    biases, minimising the objective whose stationary point BPR's SGD seeks (mean log-loss over
    the user's (positive, negative) pairs, every unseen item a negative, plus
    ``regularization / 2 * |u|^2``; `fold_in.solve_bpr_users`, L-BFGS). It is the optimum, not
    where SGD stopped: on the contract's block data a folded-in user keeps the refitted model's
    block items on top (top-5 overlap with a full refit >= 0.8).
    """

    fold_in = "solve"

    def __init__(self, factors: int = 64, learning_rate: float = 0.01, regularization: float = 0.01,
                 iterations: int = 100, random_state: int = 0, num_threads: int = 0) -> None:
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.random_state = random_state
        self.num_threads = num_threads

    def _fit(self, train: TrainData) -> None:
        implicit = _implicit()
        self._fit_implicit(lambda: implicit.cpu.bpr.BayesianPersonalizedRanking(
            factors=self.factors, learning_rate=self.learning_rate, regularization=self.regularization,
            iterations=self.iterations, random_state=self.random_state,
            num_threads=self.num_threads), train)
        self.__dict__.pop("model_", None)  # BPR folds users in without implicit's model

    def _fold_in_users(self, users: np.ndarray, social: Any) -> None:
        from socialrec.retrieve.fold_in import grow_rows, solve_bpr_users

        f = self.item_factors_.shape[1] - 1  # implicit's last item column is the item bias,
        # and the matching user column is fixed at 1
        with _one_blas_thread():  # small products: threads only contend
            solved = solve_bpr_users(self.item_factors_[:, :f], self.item_factors_[:, f], self.user_items_[users],
                                     regularization=self.regularization, seed=self.random_state)
        factors = grow_rows(self.user_factors_, self.n_users_).copy()
        factors[len(self.user_factors_):, f] = 1.0
        factors[users, :f] = solved
        factors[users, f] = 1.0
        self.user_factors_ = factors
