"""Rumour-aware ranking: a business rule that demotes likely rumours in any recommender's list.

`demote` re-scores each user's top ``depth`` items as ``relevance - weight * risk``, relevance
being the base scores min-max scaled to [0, 1] within that top list (so ``weight`` means the same
for any base model), and risk the item's rumour probability; items below the top ``depth`` keep
their order beneath every re-scored item. ``weight = 0`` is the base ranking.

`RumourAware` wraps a recommender on the shared contract: at fit it trains the base model and a
`represent.rumour.RumourClassifier` on the posts published by the end of the training
interactions (their labels; later posts are never seen), then scores every item's text. The
hybrid or the service use it like any recommender; `weight` trades engagement for fewer rumours
(`socialrec rumours` measures the curve and picks the weight on validation).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from socialrec.errors import DataError
from socialrec.retrieve.base import BaseRecommender, TrainData
from socialrec.topk import rank_top_k


def demote(scores: np.ndarray, risk: np.ndarray, weight: float, *, depth: int = 100, protect: int = 0) -> np.ndarray:
    """Re-scored rows (see the module docstring). ``scores``: (n_users, n_items), -inf for
    items that must stay out; ``risk``: (n_items,) in [0, 1]; ``protect``: the base list's first
    items keep their places (only the positions below them are re-ranked). Returns float64 scores.

    The mask of items a caller hides (seen items) is applied after scoring, so ``protect``
    counts positions of the row as scored: give seen items -inf to protect the visible head."""
    s = np.asarray(scores, dtype=np.float64)
    if weight < 0:
        raise ValueError(f"weight must be >= 0, got {weight}")
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    if protect < 0:
        raise ValueError(f"protect must be >= 0, got {protect}")
    risk = np.asarray(risk, dtype=np.float64)
    if risk.shape != (s.shape[1],):
        raise ValueError(f"risk must have one value per item ({s.shape[1]}), got shape {risk.shape}")
    out = s.copy()
    if weight == 0:
        return out
    # The top `depth` of every row by score (ties: lower index), one partition for all rows
    # instead of a full sort per row: this runs per served request.
    tops = rank_top_k(np.where(np.isfinite(s), s, -np.inf), min(depth, s.shape[1]))
    for r in range(s.shape[0]):
        row = s[r]
        finite = np.isfinite(row)
        top = tops[r][tops[r] >= 0]
        if not len(top):
            continue
        rel = row[top]
        span = rel.max() - rel.min()
        rel = (rel - rel.min()) / span if span > 0 else np.ones_like(rel)
        new = rel - weight * risk[top]
        if protect:  # the head keeps its order above everything re-scored
            head = min(protect, len(top))
            new[:head] = new[head:].max(initial=new.min()) + 1.0 + np.arange(head, 0, -1)
        rest = finite.copy()
        rest[top] = False
        if rest.any():  # below every re-scored item, in their base order
            lo, hi = row[rest].min(), row[rest].max()
            spread = (row[rest] - lo) / (hi - lo) if hi > lo else np.zeros(int(rest.sum()))
            out[r, rest] = new.min() - 2.0 + spread
        out[r, top] = new
    return out


class RumourAware(BaseRecommender):
    """A base recommender whose lists demote likely rumours.

    base: the unfitted recommender to wrap (fitted on the same training data).
    weight: how strongly a rumour probability of 1 lowers an item (relevance is in [0, 1]
        within the top ``depth``); 0 leaves the base ranking unchanged.
    depth: how many of the base model's top items are re-scored.
    protect: how many of the base model's first items keep their places (0: none); seen items
        are excluded before the head is counted.
    classifier_params: constructor arguments of `represent.rumour.RumourClassifier`.
    """

    def __init__(self, base: BaseRecommender, weight: float = 1.0, depth: int = 100, protect: int = 0,
                 classifier_params: dict[str, Any] | None = None) -> None:
        self.base = base
        self.weight = weight
        self.depth = depth
        self.protect = protect
        self.classifier_params = classifier_params

    @property
    def fold_in(self) -> str | None:  # type: ignore[override]
        """The base model's fold-in (item risks do not depend on users)."""
        return getattr(self, "base_", self.base).fold_in

    def _fit(self, train: TrainData) -> None:
        if self.weight < 0:
            raise ValueError(f"weight must be >= 0, got {self.weight}")
        self.base_ = self.base.clone().fit(train)
        self.item_risk_, self.classifier_ = rumour_risk(train, self.classifier_params)

    def _fold_in_users(self, users: np.ndarray, social: Any) -> None:
        self.base_.partial_fit_users(users, self.user_items_[users], social=social)

    def partial_fit_items(self, item_ids: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        """The base model places the new items (a content model can); the classifier scores
        their texts, so a new rumour is demoted from its first minute."""
        from socialrec.retrieve.fold_in import grow_columns

        self._check_fitted("partial_fit_items")
        index = self.base_.partial_fit_items(item_ids, texts)
        new = (np.zeros(len(index)) if self.classifier_ is None  # from_fitted: no classifier to ask
               else self.classifier_.predict_proba(list(texts)))
        self.item_risk_ = np.concatenate([self.item_risk_, new])
        self.n_items_ = self.base_.n_items_
        self.user_items_ = grow_columns(self.user_items_, self.n_items_)
        return index

    @classmethod
    def from_fitted(cls, base: BaseRecommender, item_risk: np.ndarray, *, weight: float = 1.0,
                    depth: int = 100, protect: int = 0) -> "RumourAware":
        """The policy around an already fitted ``base`` with known item risks (to trace a
        weight curve without refitting)."""
        base._check_fitted("RumourAware.from_fitted")
        model = cls(base, weight=weight, depth=depth, protect=protect)
        model._set_training_matrix(base.user_items_)
        model.base_ = base
        model.item_risk_ = np.asarray(item_risk, dtype=np.float64)
        model.classifier_ = None
        return model

    def _score(self, users: np.ndarray) -> np.ndarray:
        scores = np.asarray(self.base_.score(users), dtype=np.float64).copy()
        if not self.protect:
            return demote(scores, self.item_risk_, self.weight, depth=self.depth).astype(np.float32)
        # The protected head is the one the user sees: without the items they already know, which
        # then rank below every other item (asked for with exclude_seen=False, they come last).
        seen = self.user_items_[users]
        r, c = seen.nonzero()
        known = np.isfinite(scores[r, c])
        scores[r, c] = -np.inf
        out = demote(scores, self.item_risk_, self.weight, depth=self.depth, protect=self.protect)
        floor = np.where(np.isfinite(out), out, np.inf).min(axis=1)
        out[r[known], c[known]] = np.where(np.isfinite(floor[r[known]]), floor[r[known]], 0.0) - 1.0
        return out.astype(np.float32)

    def _similar_scores(self, items: np.ndarray) -> np.ndarray:
        """The base model's item-item scores under the same policy ("more like this" lists)."""
        scores = np.asarray(self.base_._similar_scores(items), dtype=np.float64).copy()
        scores[np.arange(len(items)), items] = -np.inf  # the item itself never takes a top slot
        return demote(scores, self.item_risk_, self.weight, depth=self.depth, protect=self.protect).astype(np.float32)


def rumour_risk(train: TrainData, classifier_params: dict[str, Any] | None = None) -> tuple[np.ndarray, Any]:
    """P(rumour) of every item's text and the fitted classifier, from a classifier trained on the labelled posts published
    by the end of the training period (`training_cutoff`). Needs item columns ``rumour``,
    ``timestamp`` and ``text``, as `ingest.datasets.weibo` loads them."""
    from socialrec.represent.rumour import RumourClassifier

    ds = train.dataset
    table = None if ds is None else ds.item_table
    if table is None or not {"rumour", "timestamp", "text"} <= set(table.columns):
        raise DataError("rumour-aware ranking needs labelled item texts (item columns rumour, timestamp, text)",
                        fix="Fit with TrainData(..., dataset=...) of a dataset that has them, such as weibo-ced")
    times = table["timestamp"].to_numpy(np.float64)
    labels = table["rumour"].to_numpy()
    known = (times <= training_cutoff(train)) & np.array([isinstance(v, (bool, np.bool_)) for v in labels])
    texts = table["text"].fillna("").astype(str).tolist()
    clf = RumourClassifier(**(classifier_params or {}))
    clf.fit([texts[i] for i in np.flatnonzero(known)], labels[known].astype(np.int64))
    return clf.predict_proba(texts), clf


def training_cutoff(train: TrainData) -> float:
    """The end of the training period: the latest first interaction of a training pair (a
    pair's later repeats may reach into the test period); +inf without timestamps."""
    ds = train.dataset
    if ds is None:
        return float("inf")
    inter = ds.interactions
    m = train.user_items.tocsr()
    key = inter["user"].to_numpy(np.int64) * m.shape[1] + inter["item"].to_numpy(np.int64)
    coo = m.tocoo()
    in_train = np.isin(key, coo.row.astype(np.int64) * m.shape[1] + coo.col)
    first = pd.Series(inter["timestamp"].to_numpy(np.float64)[in_train]).groupby(key[in_train]).min()
    return float(first.max()) if len(first) and np.isfinite(first.max()) else float("inf")
