"""Re-ranking a scored list: maximal marginal relevance, a per-category cap, business rules.

`mmr` picks items one at a time, each maximising
``(1 - diversity) * relevance - diversity * max similarity to the items already picked``, with
relevance min-max scaled to [0, 1] within the list so that ``diversity`` means the same for any
ranker. ``diversity = 0`` returns the list in score order. Similarity is the cosine of item
vectors, or 1 for two items of the same category when categories are given instead.
`max_category_share` caps the share of the final list any one category (artist, author...) takes.
"""

from __future__ import annotations

import numpy as np


def mmr(items: np.ndarray, relevance: np.ndarray, k: int, *, diversity: float = 0.0,
        item_vectors: np.ndarray | None = None, item_categories: np.ndarray | None = None,
        max_category_share: float | None = None) -> np.ndarray:
    """Positions (into ``items``) of the re-ranked top k. ``items`` are candidate indices with
    their ``relevance`` scores (higher is better); -1 entries are padding and never picked."""
    if not 0.0 <= diversity <= 1.0:
        raise ValueError(f"diversity must be in [0, 1], got {diversity}")
    if max_category_share is not None and item_categories is None:
        raise ValueError("max_category_share needs item_categories")
    items = np.asarray(items)
    rel = np.asarray(relevance, dtype=np.float64).copy()
    usable = (items >= 0) & np.isfinite(rel)
    pos = np.flatnonzero(usable)
    if len(pos) == 0:
        return pos
    r = rel[pos]
    span = r.max() - r.min()
    r = (r - r.min()) / span if span > 0 else np.ones_like(r)
    cats = None if item_categories is None else np.asarray(item_categories)[items[pos]]
    cap = None if max_category_share is None else max(1, int(np.floor(max_category_share * k)))
    if diversity == 0.0 and cap is None:
        order = np.argsort(-r, kind="stable")[:k]
        return pos[order]
    unit = None
    if item_vectors is not None:
        v = np.asarray(item_vectors, dtype=np.float64)[items[pos]]
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        unit = np.divide(v, norms, out=np.zeros_like(v), where=norms > 0)
    max_sim = np.zeros(len(pos))
    taken = np.zeros(len(pos), dtype=bool)
    per_cat: dict[int, int] = {}
    chosen: list[int] = []
    for _ in range(min(k, len(pos))):
        gain = (1.0 - diversity) * r - diversity * max_sim
        gain[taken] = -np.inf
        if cap is not None and cats is not None:
            full = [c for c, n in per_cat.items() if n >= cap and c >= 0]
            if full:
                gain[np.isin(cats, full)] = -np.inf
        j = int(np.argmax(gain))
        if not np.isfinite(gain[j]):
            break
        taken[j] = True
        chosen.append(j)
        if cats is not None:
            per_cat[int(cats[j])] = per_cat.get(int(cats[j]), 0) + 1
        if unit is not None:
            max_sim = np.maximum(max_sim, unit @ unit[j])
        elif cats is not None:
            max_sim = np.maximum(max_sim, (cats == cats[j]).astype(np.float64))
    return pos[np.asarray(chosen, dtype=np.int64)]
