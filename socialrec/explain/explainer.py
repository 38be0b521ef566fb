"""Reasons for hybrid recommendations, taken from the signals that actually produced them.

The ranker's prediction for a (user, item) pair is split into per-feature contributions (tree
SHAP values from LightGBM, or weight x feature for the linear ranker). Features belong to signal
groups (collaborative, social, content, trending, popular, new); a group whose contributions sum
to more than zero becomes a reason, with the evidence that group's channels can show:
- collaborative -> ``similar_to`` the history item with the strongest item-item weight to it
  (EASE or ItemKNN), else ``collaborative``;
- social -> ``friends_liked`` with the friends who interacted with it (strongest tie first);
  no reason when no friend did (the social graph then worked like collaborative filtering);
- content -> ``similar_to`` the most text-similar history item, or ``matches_interest`` with
  the tags the user's history and the item share most (tag assignments), else the category the
  user often picks;
- trending -> ``trending`` with the count of recent interactions; popular -> ``popular``;
  new -> ``new`` (only for items that are new).
A user whose list leans on popularity (few items: the hybrid's ``cold_start`` blend with weight
w) gets a ``popular`` reason carrying w of the weight, the ranker's reasons the rest (only
``popular`` at w = 1, when the ranker did not order the list at all).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from socialrec.explain.reasons import Reason
from socialrec.ingest.schema import Dataset
from socialrec.rank.hybrid import HybridRecommender
from socialrec.retrieve.channel_table import (ITEM_SIMILARITY, RECENT_COUNTS, SEQUENCE, TEXT_VECTORS, TIE_STRENGTH,
                                              evidence)


class HybridExplainer:
    """Turns ranker contributions into `Reason` lists for a fitted `HybridRecommender`.

    max_friends: friends listed per ``friends_liked`` reason.
    """

    def __init__(self, model: HybridRecommender, dataset: Dataset, max_friends: int = 3) -> None:
        model._check_fitted("explain")
        self.model = model
        self.dataset = dataset
        self.max_friends = max_friends
        names = model.features_.names
        groups = [model.features_.group_of(n) for n in names]
        self.group_names_ = sorted(set(groups))
        # (n_features, n_groups) 0/1 matrix that sums contributions by group.
        self.group_matrix_ = np.zeros((len(names), len(self.group_names_)), dtype=np.float32)
        for j, g in enumerate(groups):
            self.group_matrix_[j, self.group_names_.index(g)] = 1.0
        # What the channels offer as evidence, found through the channel table.
        models = model.retriever_.models_
        self.item_item_ = evidence(models, ITEM_SIMILARITY)
        self.text_vectors_ = evidence(models, TEXT_VECTORS)
        self.recent_counts_ = evidence(models, RECENT_COUNTS)
        self.sequence_ = evidence(models, SEQUENCE)  # a fitted sequential channel (recent items, item vectors)
        self.verb_ = past_tense(dataset)
        self.is_new_ = model.features_.is_new_ > 0
        self.categories_ = model.features_.categories_
        # Names looked up once: reading them from the dataset's tables per item costs milliseconds.
        self.item_titles_ = np.asarray(dataset.item_titles(np.arange(dataset.n_items)), dtype=object)
        self.item_ids_ = np.asarray(dataset.items.external_ids, dtype=object)
        self.refresh_users(dataset)

    def refresh_users(self, dataset: Dataset) -> None:
        """Re-read the users' ids and names (after users were added or an id was retired)."""
        self.user_ids_ = np.asarray(dataset.users.external_ids, dtype=object)
        table = dataset.user_table
        names = ([str(v) for v in table["name"].to_numpy()]
                 if table is not None and "name" in table.columns else [])
        names += [f"user {e}" for e in self.user_ids_[len(names):]]
        # A retired (erased) id starts with a NUL byte: neither it nor the name is shown.
        self.user_names_ = np.asarray(["a former user" if str(e).startswith("\x00") else n
                                       for n, e in zip(names, self.user_ids_)], dtype=object)

    # User-side state is read from the model on each call: online updates replace it.
    @property
    def user_items_(self) -> sp.csr_matrix:
        return self.model.retriever_.user_items_

    @property
    def friends_(self) -> sp.csr_matrix | None:
        return self.model.features_.friends_

    @property
    def tie_strength_(self) -> sp.csr_matrix | None:
        return evidence(self.model.retriever_.models_, TIE_STRENGTH)

    def group_contributions(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """Per signal group, the summed contribution of its features, for each row."""
        contrib = self.model.ranker_.contributions(features)[:, :-1]
        summed = contrib @ self.group_matrix_
        return {g: summed[:, j] for j, g in enumerate(self.group_names_)}

    def explain(self, user: int, items: np.ndarray, features: np.ndarray) -> list[list[Reason]]:
        """Reasons for each of ``items`` (recommended to ``user``), given their feature rows."""
        items = np.asarray(items, dtype=np.int64)
        groups = self.group_contributions(features)
        ev = self._evidence(user, items)
        prior = float(self.model.popularity_weight([user])[0])
        out = []
        for row, item in enumerate(items):
            reasons: list[Reason] = []
            for g in self.group_names_:
                w = float(groups[g][row])
                if w <= 0:
                    continue
                reason = self._reason(g, w, row, int(item), ev)
                if reason is not None:
                    reasons.append(reason)
            if not reasons:
                # Nothing pushed the item up more than the average candidate: name the least negative signal.
                g = max(self.group_names_, key=lambda name: groups[name][row])
                reason = self._reason(g, float(groups[g][row]), row, int(item), ev)
                reasons = [reason] if reason is not None else [Reason("popular", float(groups[g][row]))]
            if prior > 0:
                # The list leant on popularity by this weight (a user with few items, `rank.cold_start`):
                # the ranker's reasons keep their share, popularity takes the rest (all of it at 1).
                total = sum(r.weight for r in reasons if r.weight > 0) or 1.0
                kept = [Reason(r.kind, (1.0 - prior) * r.weight, r.evidence) for r in reasons] if prior < 1 else []
                reasons = kept + [Reason("popular", prior * total)]
            reasons = merge_repeated(reasons)
            reasons.sort(key=lambda r: -r.weight)
            out.append(reasons)
        return out

    def _evidence(self, user: int, items: np.ndarray) -> dict[str, Any]:
        """Everything the reasons may cite, looked up for all items at once (one sparse slice
        each, not one per item: this is what keeps an explained list within milliseconds)."""
        history = self.user_items_.indices[self.user_items_.indptr[user]:self.user_items_.indptr[user + 1]]
        ev: dict[str, Any] = {"user": user, "cf": _closest_rows(history, items, self.item_item_)}
        if self.text_vectors_ is not None and len(history):
            sims = self.text_vectors_[history] @ self.text_vectors_[items].T
            best = sims.argmax(axis=0)
            ev["text"] = np.where(sims[best, np.arange(len(items))] > 0, history[best], -1)
        else:
            ev["text"] = np.full(len(items), -1)
        ev["recent"] = _recent_match(self.sequence_, user, items)
        ev["modality"] = _closest_by_modality(history, items, getattr(self.model.features_, "item_modalities_", {}))
        friends = self.friends_[user].indices if self.friends_ is not None else np.zeros(0, dtype=np.int64)
        if len(friends):
            liked = self.user_items_[friends][:, items].toarray() > 0  # (friends, items)
            strength = (np.asarray(self.tie_strength_[user, friends].todense()).ravel()
                        if self.tie_strength_ is not None else np.ones(len(friends)))
            order = np.argsort(-strength, kind="stable")
            ev["friends"], ev["liked"] = friends[order], liked[order]
        else:
            ev["friends"], ev["liked"] = friends, np.zeros((0, len(items)), dtype=bool)
        return ev

    def _reason(self, group: str, weight: float, row: int, item: int, ev: dict[str, Any]) -> Reason | None:
        if group == "collaborative":
            best = int(ev["cf"][row])
            if best >= 0:
                return Reason("similar_to", weight, {"item": self._item(best)})
            return Reason("collaborative", weight)
        if group == "sequential":
            best = int(ev["recent"][row])
            if best >= 0:
                return Reason("recently", weight, {"item": self._item(best), "verb": self.verb_})
            return Reason("collaborative", weight)
        if group == "social":
            chosen = ev["friends"][ev["liked"][:, row]]
            if len(chosen):
                top = chosen[: self.max_friends]
                names = self.user_names_[top]
                ext = self.user_ids_[top]
                friends = [{"id": str(e), "name": n} for e, n in zip(ext, names)]
                return Reason("friends_liked", weight, {"friends": friends, "count": int(len(chosen))})
            return None
        if group == "content":
            best = int(ev["text"][row])
            if best >= 0:
                return Reason("similar_to", weight, {"item": self._item(best)})
            by_modality = ev.get("modality")  # absent from evidence built before modality vectors
            liked, modality = (by_modality[0][row], by_modality[1][row]) if by_modality is not None else (-1, None)
            if liked >= 0:
                return Reason("looks_like", weight, {"item": self._item(int(liked)), "modality": modality})
            tags = self.model.features_.tag_profiles_
            shared = tags.shared_tags(ev["user"], item) if tags is not None else []
            if shared:
                return Reason("matches_interest", weight, {"tags": shared})
            if self.categories_ is not None and self.categories_[item] >= 0:
                label = self.model.features_.category_labels_[self.categories_[item]]
                return Reason("matches_interest", weight, {"tags": [label]})
            return None
        if group == "trending":
            n = int(self.recent_counts_[item]) if self.recent_counts_ is not None else 0
            return Reason("trending", weight, {"recent_interactions": n})
        if group == "popular" or group == "item":
            if group == "item" and self.is_new_[item]:
                return Reason("new", weight)
            return Reason("popular", weight)
        if group == "new":
            return Reason("new", weight) if self.is_new_[item] else None
        return None

    def _item(self, item: int) -> dict:
        return {"id": str(self.item_ids_[item]), "name": str(self.item_titles_[item])}


# How a sentence says the user did something with an item, by the dataset's interaction kind.
PAST_TENSE = {"play": "played", "review": "bought", "purchase": "bought", "rating": "rated", "view": "watched",
              "click": "opened", "like": "liked", "comment": "commented on", "share": "shared", "tag": "tagged"}


def past_tense(dataset: Dataset) -> str:
    """The verb for the dataset's most common interaction kind ("chose" when unknown)."""
    kinds = dataset.interactions["kind"] if "kind" in dataset.interactions.columns else None
    if kinds is None or not len(kinds):
        return "chose"
    return PAST_TENSE.get(str(kinds.mode().iloc[0]), "chose")


def _recent_match(model: Any, user: int, items: np.ndarray, n_recent: int = 5) -> np.ndarray:
    """Per item, the one of the user's ``n_recent`` newest items (in the sequential model's order)
    whose item vector is closest to it (cosine); -1 without a sequential model or history."""
    out = np.full(len(items), -1, dtype=np.int64)
    if model is None or user >= model.n_users_:
        return out
    recent = model.recent_items(user, n_recent)
    vectors = model.item_vectors_
    if not len(recent) or items.max(initial=-1) >= len(vectors):
        return out
    def unit(rows: np.ndarray) -> np.ndarray:  # only the rows compared: this runs per explained list
        return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)

    sims = unit(vectors[recent]) @ unit(vectors[items]).T  # (recent, items)
    return recent[sims.argmax(axis=0)]


def _closest_rows(history: np.ndarray, items: np.ndarray, matrix: sp.csr_matrix | np.ndarray | None) -> np.ndarray:
    """For each item, the history item with the largest positive item-item weight to it, else -1."""
    if matrix is None or len(history) == 0:
        return np.full(len(items), -1)
    if sp.issparse(matrix):
        block = matrix[history][:, items].toarray()
    else:
        block = np.asarray(matrix)[np.ix_(history, items)]
    best = block.argmax(axis=0)
    return np.where(block[best, np.arange(len(items))] > 0, history[best], -1)


def _closest_by_modality(history: np.ndarray, items: np.ndarray, vectors: dict[str, np.ndarray]
                         ) -> tuple[np.ndarray, list[str | None]]:
    """For each item, the history item closest to it in any modality (unit vectors: cosine) and
    that modality; -1 / None when there are no vectors or no positive similarity."""
    best_item = np.full(len(items), -1)
    best_modality: list[str | None] = [None] * len(items)
    if not vectors or len(history) == 0:
        return best_item, best_modality
    best_sim = np.zeros(len(items))
    for name, v in vectors.items():
        sims = v[history] @ v[items].T  # (history, items)
        arg = sims.argmax(axis=0)
        top = sims[arg, np.arange(len(items))]
        better = top > best_sim
        best_sim = np.where(better, top, best_sim)
        best_item = np.where(better, history[arg], best_item)
        best_modality = [name if b else m for b, m in zip(better, best_modality)]
    return best_item, best_modality


def merge_repeated(reasons: list[Reason]) -> list[Reason]:
    """One reason per (kind, evidence): two signals citing the same liked item (collaborative and
    content both saying "similar to X") become one reason carrying both contributions."""
    merged: list[Reason] = []
    for r in reasons:
        same = next((k for k, m in enumerate(merged) if m.kind == r.kind and m.evidence == r.evidence), None)
        if same is None:
            merged.append(r)
        else:
            merged[same] = Reason(r.kind, merged[same].weight + r.weight, r.evidence)
    return merged
