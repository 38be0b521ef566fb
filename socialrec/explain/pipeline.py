"""One call from a user id to an explained, diversified top-k: `RecommendationPipeline`.

``pipeline.recommend(user_id, k=10, explain=True)`` retrieves candidates from every channel,
ranks them with the learned ranker, re-ranks for diversity and business rules (blocked items,
a category cap), and attaches structured reasons and one sentence per item. External ids go in
and come out; the dataset's IdMap is the only place they are translated. A user the model has
never seen gets the trending/popular items, said as such.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from socialrec.explain.explainer import HybridExplainer
from socialrec.explain.reasons import Reason, render_sentence
from socialrec.ingest.schema import Dataset
from socialrec.rank.hybrid import HybridRecommender
from socialrec.rank.rerank import rerank


@dataclass(frozen=True)
class Recommendation:
    """One recommended item with its score, reasons and sentence (empty when not explained)."""

    item_id: str
    title: str
    score: float
    reasons: tuple[Reason, ...] = ()
    sentence: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "title": self.title, "score": round(float(self.score), 6),
                "reasons": [r.to_dict() for r in self.reasons], "sentence": self.sentence}


@dataclass
class RecommendationPipeline:
    """A fitted `HybridRecommender` plus the dataset that names its users and items.

    diversity / max_category_share: re-ranking defaults for `recommend` (None = the model's own).
    blocked_items: external item ids never to recommend (business rules: withdrawn, unsafe).
    """

    model: HybridRecommender
    dataset: Dataset
    diversity: float | None = None
    max_category_share: float | None = None
    blocked_items: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        self.model._check_fitted("a RecommendationPipeline")
        self.explainer = HybridExplainer(self.model, self.dataset)
        self._blocked = self._indices(self.blocked_items)

    def _indices(self, ids: Iterable[str]) -> np.ndarray:
        ids = list(ids)
        if not ids:
            return np.zeros(0, dtype=np.int64)
        return np.asarray(self.dataset.items.to_index(ids, missing="raise"), dtype=np.int64).ravel()

    def recommend(self, user_id: object, k: int = 10, *, explain: bool = True,
                  hidden_items: Iterable[str] = ()) -> list[Recommendation]:
        """Top-k for one user by external id; ``hidden_items`` are excluded for this call."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if user_id not in self.dataset.users:
            return self._cold_start(k, explain, hidden_items)
        user = int(self.dataset.users.to_index(user_id))
        items, scores, fm, _ = self.model.rank_candidates(np.array([user]))
        items, scores = items[0], scores[0]
        ok = items >= 0
        excluded = np.concatenate([self._blocked, self._indices(hidden_items)])
        if len(excluded):
            ok &= ~np.isin(items, excluded)
        # Rows of the feature matrix follow the non-padding candidates in order.
        row_of = np.cumsum(items >= 0) - 1
        cand, cand_scores = items[ok], scores[ok]
        depth = min(self.model.rerank_depth, len(cand))
        top = np.argsort(-cand_scores, kind="stable")[:max(depth, k)]
        diversity = self.model.diversity if self.diversity is None else self.diversity
        share = self.model.max_category_share if self.max_category_share is None else self.max_category_share
        if diversity > 0 or share is not None:
            picked = top[rerank(cand[top], cand_scores[top], k, method=self.model.rerank, diversity=diversity,
                                item_vectors=self.model.item_vectors_, item_categories=self.model.item_categories_,
                                max_category_share=share, scale=self.model.rerank_scale)]
        else:
            picked = top[:k]
        chosen = cand[picked]
        titles = self.explainer.item_titles_[chosen]
        ext = self.explainer.item_ids_[chosen]
        if not explain:
            return [Recommendation(str(e), t, float(s), ()) for e, t, s in zip(ext, titles, cand_scores[picked])]
        feats = fm.values[row_of[np.flatnonzero(ok)[picked]]]
        reasons = self.explainer.explain(user, chosen, feats)
        return [Recommendation(str(e), t, float(s), tuple(r), render_sentence(t, r))
                for e, t, s, r in zip(ext, titles, cand_scores[picked], reasons)]

    def _cold_start(self, k: int, explain: bool, hidden_items: Iterable[str]) -> list[Recommendation]:
        models = self.model.retriever_.models_
        trend = getattr(models.get("trending"), "trend_", None)
        if trend is None:
            trend = np.diff(self.model.user_items_.tocsc().indptr).astype(np.float32)
        scores = np.asarray(trend, dtype=np.float64).copy()
        excluded = np.concatenate([self._blocked, self._indices(hidden_items)])
        scores[excluded] = -np.inf
        top = np.argsort(-scores, kind="stable")[:k]
        titles = self.dataset.item_titles(top)
        ext = self.dataset.items.to_external(top)
        kind = "trending" if "trending" in models else "popular"
        out = []
        for e, t, s in zip(ext, titles, scores[top]):
            reasons = (Reason(kind, 1.0),) if explain else ()
            out.append(Recommendation(str(e), t, float(s), reasons, render_sentence(t, list(reasons)) if explain else ""))
        return out

    def recommend_cold(self, k: int = 10, *, explain: bool = True, hidden_items: Iterable[str] = ()) -> list[Recommendation]:
        """What a user the model does not know (or no longer knows) gets: trending/popular items."""
        return self._cold_start(k, explain, hidden_items)

    def recommend_ids(self, user_id: object, k: int = 10) -> list[str]:
        """Just the recommended external item ids."""
        return [r.item_id for r in self.recommend(user_id, k, explain=False)]

