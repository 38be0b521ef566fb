"""The recommender contract: `fit`, `recommend`, `similar_items`, `score`, returning ``(ids, scores)``.

Subclasses implement `_fit` and `_score` (and optionally `_similar_scores`); the base class does
argument checks, masking of seen items, top-k selection with deterministic tie-breaking (lower
index first), and guarantees that a batch call returns exactly what scalar calls would.
Hyperparameters are constructor arguments stored unmodified (`get_params`, `clone`).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from socialrec.errors import NotFittedError
from socialrec.params import HasParams
from socialrec.persist import load_object, matrix_fingerprint, save_object
from socialrec.sparse import replace_rows
from socialrec.topk import rank_top_k
from socialrec.ingest.schema import Dataset, TrainData  # TrainData lives in ingest; re-exported here


_M = TypeVar("_M", bound="BaseRecommender")


class BaseRecommender(HasParams, ABC):
    """Base of every recommender. See the module docstring for the contract."""

    # Rows scored per chunk in batch calls: bounds memory at chunk * n_items floats.
    _chunk = 1024

    # --- fitting ---------------------------------------------------------------------
    def fit(self, train: TrainData | sp.spmatrix) -> "BaseRecommender":
        """Learn from training data (a `TrainData`, or a user-item matrix)."""
        if not isinstance(train, TrainData):
            train = TrainData.from_matrix(train)
        if train.user_items.nnz == 0:
            raise ValueError(f"{type(self).__name__}.fit got a user-item matrix with no interactions")
        self._set_training_matrix(train.user_items)
        self._fit(train)
        return self

    def _set_training_matrix(self, user_items: sp.spmatrix) -> None:
        """What every fitted model keeps: the training matrix (its seen items) and its shape."""
        self.user_items_ = sp.csr_matrix(user_items)
        self.n_users_, self.n_items_ = self.user_items_.shape

    @abstractmethod
    def _fit(self, train: TrainData) -> None: ...

    # --- persistence -----------------------------------------------------------------
    def training_fingerprint(self) -> str:
        """Digest of the training matrix (shape and entries): what the indices mean."""
        self._check_fitted("training_fingerprint")
        return matrix_fingerprint(self.user_items_)

    def save(self, path: str | os.PathLike[str], *, dataset: str | None = None, **header: Any) -> Path:
        """Write the fitted model to ``path`` (atomically) with a header naming the training
        data's fingerprint, its shape and ``dataset``; `load` checks it before unpickling."""
        self._check_fitted("save")
        return save_object(self, path, {"dataset": dataset, "n_users": self.n_users_, "n_items": self.n_items_,
                                        "fingerprint": self.training_fingerprint(), **header})

    @classmethod
    def load(cls: type[_M], path: str | os.PathLike[str], *, fingerprint: str | None = None,
             dataset: str | None = None) -> _M:
        """Load a model written by `save`. With ``fingerprint`` (of the training matrix the
        caller means, see `matrix_fingerprint`) or ``dataset`` (its name), a file fitted on
        other data is refused before it is unpickled; so is a file of another model class."""
        expect: dict[str, Any] = {}
        if fingerprint is not None:
            expect["fingerprint"] = fingerprint
        if dataset is not None:
            expect["dataset"] = dataset
        header, model = load_object(path, expect, what=f"dataset {dataset!r}" if dataset else "the data given")
        if not isinstance(model, cls):
            raise TypeError(f"{path} holds a {header.get('class')}, not a {cls.__name__}; "
                            f"load it with {type(model).__name__}.load or BaseRecommender.load")
        return model

    # --- online updates --------------------------------------------------------------
    # How `partial_fit_users` relates to a refit, per model (None: not supported):
    # "history": scores are read from the user's stored row at request time, so a folded-in user
    #     scores exactly as in a model fitted with that row (up to the row's small effect on the
    #     shared item-side state, e.g. item-item similarities, which the next refit updates);
    # "solve": the user's own parameters are solved anew against the fixed item-side ones;
    # "aggregate": the user's vector is an aggregate of the item-side vectors of their items.
    fold_in: str | None = None

    def partial_fit_users(self, users: npt.ArrayLike, user_items: sp.spmatrix,
                          *, social: sp.spmatrix | None = None) -> "BaseRecommender":
        """Fold in new or changed users without refitting.

        users: internal user indices; an index >= ``n_users_`` adds users (the model grows to
            the largest index + 1; users in between have empty histories).
        user_items: (len(users), n_items_) rows that replace these users' training rows.
        social: optional (len(users), n_users) rows of these users' new out-edges in the social
            graph, for models that read it (others ignore it).
        The fitted item side (and other users) is unchanged; ``fold_in`` says how the users'
        state is recomputed. Returns self.
        """
        self._check_fitted("partial_fit_users")
        if self.fold_in is None:
            raise NotImplementedError(
                f"{type(self).__name__} cannot fold in users without refitting; refit it with fit(...) "
                "on the updated interactions")
        arr = np.atleast_1d(np.asarray(users))
        if arr.ndim != 1 or arr.dtype.kind not in "iu" or (arr.size and arr.min() < 0):
            raise TypeError("users must be a 1-D array of non-negative integer indices; map external ids "
                            "with the dataset's IdMap first")
        arr = arr.astype(np.int64)
        if len(np.unique(arr)) != len(arr):
            raise ValueError("partial_fit_users got the same user twice; give each user's full row once")
        rows = sp.csr_matrix(user_items, dtype=np.float32)
        if rows.shape != (len(arr), self.n_items_):
            raise ValueError(f"user_items must have shape ({len(arr)}, {self.n_items_}) (one row per user over "
                             f"the model's items), got {rows.shape}")
        social_rows = None if social is None else sp.csr_matrix(social, dtype=np.float32)
        if social_rows is not None and social_rows.shape[0] != len(arr):
            raise ValueError(f"social must have one row per user ({len(arr)}), got {social_rows.shape[0]}")
        self.user_items_ = replace_rows(self.user_items_, arr, rows)
        self.n_users_ = self.user_items_.shape[0]
        self._fold_in_users(arr, social_rows)
        return self

    def _fold_in_users(self, users: np.ndarray, social: sp.csr_matrix | None) -> None:
        """Update user-side state after ``user_items_`` rows of ``users`` changed (the matrix may
        have grown). Models whose ``fold_in`` is "history" need nothing."""

    def partial_fit_items(self, item_ids: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        """Place new items from their text without refitting; returns their new indices.
        Only models that can place an item without interactions (content, text) support it."""
        raise NotImplementedError(
            f"{type(self).__name__} cannot place new items without interactions; use a content or "
            "text model for new items, or refit")

    def partial_fit_item_vectors(self, vectors: Any) -> np.ndarray:
        """Place new items from their modality vectors ({"image": (n, dim), ...}) without
        refitting; returns their new indices. Only models fitted on item modality vectors
        (`socialrec.retrieve.multimodal`) support it."""
        raise NotImplementedError(
            f"{type(self).__name__} cannot place new items from modality vectors; use a multimodal model "
            "(multimodal, vbpr, modality) for new items, or refit")

    @abstractmethod
    def _score(self, users: np.ndarray) -> np.ndarray:
        """Scores of all items for the given users: float32 (len(users), n_items)."""

    def _similar_scores(self, items: np.ndarray) -> np.ndarray:
        """Item-to-item scores (len(items), n_items). Default: cosine over the training columns."""
        x = self.user_items_.T.tocsr().astype(np.float32)
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        sims = (x[items] @ x.T).toarray()
        return (sims / norms[items][:, None] / norms[None, :]).astype(np.float32)

    def _check_fitted(self, action: str) -> None:
        if not hasattr(self, "user_items_"):
            raise NotFittedError(self, action)

    def _check_users(self, users: npt.ArrayLike) -> tuple[np.ndarray, bool]:
        scalar = np.ndim(users) == 0
        arr = np.atleast_1d(np.asarray(users))
        if arr.dtype.kind not in "iu":
            raise TypeError(f"user indices must be integers, got {arr.dtype}; map external ids with the dataset's IdMap")
        if arr.size and (arr.min() < 0 or arr.max() >= self.n_users_):
            bad = arr[(arr < 0) | (arr >= self.n_users_)][0]
            raise IndexError(f"user index {bad} is out of range 0..{self.n_users_ - 1}")
        return arr.astype(np.int64), scalar

    # --- the public contract ---------------------------------------------------------
    def score(self, users: npt.ArrayLike) -> np.ndarray:
        """Raw scores of every item for each user: float32 (n, n_items), nothing masked."""
        self._check_fitted("score")
        arr, _ = self._check_users(users)
        return np.asarray(self._score(arr), dtype=np.float32)

    def recommend(
        self,
        users: int | npt.ArrayLike,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        items: npt.ArrayLike | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item indices and scores for one user (1-D) or a batch (2-D, padded with -1/-inf).

        exclude_seen: drop items the user interacted with in training.
        items: restrict to these candidate items.
        """
        self._check_fitted("recommend")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        arr, scalar = self._check_users(users)
        allowed = None
        if items is not None:
            allowed = np.zeros(self.n_items_, dtype=bool)
            allowed[np.asarray(items, dtype=np.int64)] = True

        def masked_scores(chunk: np.ndarray) -> np.ndarray:
            s = np.asarray(self._score(chunk), dtype=np.float32).copy()
            if exclude_seen:
                mask_rows(s, self.user_items_, chunk)
            if allowed is not None:
                s[:, ~allowed] = -np.inf
            return s

        ids, scores = top_k_in_chunks(arr, k, masked_scores, self._chunk)
        return (ids[0], scores[0]) if scalar else (ids, scores)

    def similar_items(self, items: int | npt.ArrayLike, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The k items most similar to each given item (the item itself excluded)."""
        self._check_fitted("similar_items")
        scalar = np.ndim(items) == 0
        arr = np.atleast_1d(np.asarray(items)).astype(np.int64)
        if arr.size and (arr.min() < 0 or arr.max() >= self.n_items_):
            raise IndexError(f"item index out of range 0..{self.n_items_ - 1}")

        def without_self(chunk: np.ndarray) -> np.ndarray:
            s = np.asarray(self._similar_scores(chunk), dtype=np.float32).copy()
            s[np.arange(len(chunk)), chunk] = -np.inf
            return s

        ids, scores = top_k_in_chunks(arr, k, without_self, self._chunk)
        return (ids[0], scores[0]) if scalar else (ids, scores)


def top_k_in_chunks(rows: np.ndarray, k: int, scores_for: Callable[[np.ndarray], np.ndarray],
                    chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k columns per row, scoring ``chunk`` rows at a time (memory stays at chunk x n_columns).
    ``scores_for(rows)`` returns float32 scores with -inf for excluded columns; ties go to the
    lower index, and rows with fewer than k allowed columns are padded with -1 / -inf."""
    ids_out = np.full((len(rows), k), -1, dtype=np.int32)
    scores_out = np.full((len(rows), k), -np.inf, dtype=np.float32)
    for start in range(0, len(rows), chunk):
        s = scores_for(rows[start:start + chunk])
        top = rank_top_k(s, k)
        valid = top >= 0
        ids_out[start:start + len(top)] = top
        scores_out[start:start + len(top)] = np.where(
            valid, np.take_along_axis(s, np.where(valid, top, 0), axis=1), -np.inf)
    return ids_out, scores_out


def dot_scores(user_vectors: np.ndarray, item_vectors: np.ndarray) -> np.ndarray:
    """user_vectors @ item_vectors.T, computed in float64 and rounded to float32 so that a row's
    scores do not depend on how many rows were multiplied together (BLAS picks different
    kernels for one row and for many): this is what makes batch calls equal scalar calls.
    Pass `float64_copy(...)` of a fitted item matrix to avoid converting it on every call."""
    items = np.asarray(item_vectors, dtype=np.float64)  # no copy when already float64
    return (user_vectors.astype(np.float64) @ items.T).astype(np.float32)


def float64_copy(owner: object, attribute: str) -> np.ndarray:
    """A float64, C-contiguous copy of ``owner.<attribute>``, made once and kept on the owner
    until the attribute is replaced (a refit). Converting a 17k x 384 item matrix per call was
    most of the time of a one-user `score`."""
    source = getattr(owner, attribute)
    key = f"_{attribute}float64"
    cached = owner.__dict__.get(key)
    if cached is None or cached[0] is not source:
        cached = (source, np.ascontiguousarray(source, dtype=np.float64))
        owner.__dict__[key] = cached
    return cached[1]


def mask_rows(scores: np.ndarray, matrix: sp.csr_matrix, rows: np.ndarray) -> None:
    """Set scores[j, i] = -inf wherever matrix[rows[j], i] is stored (in place, vectorised)."""
    sub = matrix[rows]
    r, c = sub.nonzero()
    scores[r, c] = -np.inf

