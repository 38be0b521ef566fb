"""Re-ranking a scored list: maximal marginal relevance, a per-category cap, business rules.

`mmr` picks items one at a time, each maximising
``(1 - diversity) * relevance - diversity * max similarity to the items already picked``, with
relevance min-max scaled to [0, 1] within the list so that ``diversity`` means the same for any
ranker. ``diversity = 0`` returns the list in score order. Similarity is the cosine of item
vectors, or 1 for two items of the same category when categories are given instead.
`dpp` re-ranks by greedy MAP inference of a determinantal point process over the same
similarities: it penalises what a candidate shares with the whole list, not with its single
most similar pick (trade-offs of both, per dataset: benchmarks/README.md).
`max_category_share` caps the share of the final list any one category (artist, author...) takes.
`calibrate_weight` finds the weight that buys a given diversity gain on a set of lists: what a
weight buys depends on the ranker's score spread and on how alike the candidates are, so a fixed
weight means different things on different data and even between refits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from socialrec.topk import intra_list_diversity


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


def dpp(items: np.ndarray, relevance: np.ndarray, k: int, *, diversity: float = 0.0,
        item_vectors: np.ndarray | None = None, item_categories: np.ndarray | None = None,
        scale: str = "minmax") -> np.ndarray:
    """Positions (into ``items``) of the top k by greedy MAP inference of a determinantal point
    process (Chen, Zhang & Zhou, NeurIPS 2018: incremental Cholesky, O(n k) per pick).

    The kernel is ``L = diag(q) S diag(q)``: S the cosine similarity of item vectors (or 1 within
    a category, 0 across), ``q = exp(alpha * relevance)`` and ``alpha = (1 - diversity) / (2 *
    diversity)`` (their theta = 1 - diversity). ``scale``: "minmax" scales relevance to [0, 1]
    within the list (any ranker); "score" keeps the scores as they are (shifted by their maximum),
    for rankers whose scores are log-odds-like, such as LambdaRank's: a fixed score gap then costs
    the same wherever it sits in the list. Unlike MMR's maximum similarity to one picked item, the
    determinant penalises a candidate for the volume it shares with the whole list.
    ``diversity = 0`` returns the list in score order; -1 entries are padding and never picked."""
    if not 0.0 <= diversity < 1.0:
        raise ValueError(f"diversity must be in [0, 1) for dpp, got {diversity}")
    if scale not in ("minmax", "score"):
        raise ValueError(f"scale must be 'minmax' or 'score', got {scale!r}")
    items = np.asarray(items)
    rel = np.asarray(relevance, dtype=np.float64)
    pos = np.flatnonzero((items >= 0) & np.isfinite(rel))
    r = rel[pos]
    if diversity == 0.0 or len(pos) == 0:
        return pos[np.argsort(-r, kind="stable")[:k]]
    if (item_vectors is None) == (item_categories is None):
        raise ValueError("dpp with diversity > 0 needs exactly one of item_vectors and item_categories")
    if scale == "minmax":
        span = r.max() - r.min()
        r = (r - r.min()) / span if span > 0 else np.ones_like(r)
    # Shifted so the best item's quality is 1: a common factor changes no greedy choice, and a
    # small diversity's large exponent would otherwise overflow exp.
    r = r - r.max()
    quality = np.exp((1.0 - diversity) / (2.0 * diversity) * r)
    if item_vectors is not None:
        v = np.asarray(item_vectors, dtype=np.float64)[items[pos]]
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        unit = np.divide(v, norms, out=np.zeros_like(v), where=norms > 0)
    else:  # one-hot category vectors: similarity 1 within a category; unknown (-1) is its own
        cats = np.asarray(item_categories)[items[pos]]
        labels, inverse = np.unique(np.where(cats >= 0, cats, -1 - np.arange(len(cats))), return_inverse=True)
        unit = np.zeros((len(pos), len(labels)))
        unit[np.arange(len(pos)), inverse] = 1.0
    n, k = len(pos), min(k, len(pos))
    # A zero vector would make the candidate orthogonal to everything: give it self-similarity 1.
    self_sim = np.einsum("ij,ij->i", unit, unit)
    self_sim[self_sim == 0] = 1.0
    gain = quality * quality * self_sim  # d_i^2: the squared Cholesky pivot, i.e. the marginal gain
    chol = np.zeros((k, n))
    chosen: list[int] = []
    taken = np.zeros(n, dtype=bool)
    j = int(np.argmax(gain))
    for step in range(k):
        chosen.append(j)
        taken[j] = True
        if step == k - 1:
            break
        pivot = np.sqrt(max(gain[j], 1e-300))
        row = quality[j] * quality * (unit @ unit[j])  # entry j only touches j itself, masked from now on
        e = (row - chol[:step].T @ chol[:step, j]) / pivot
        chol[step] = e
        gain = gain - e * e
        masked = np.where(taken, -np.inf, gain)
        j = int(np.argmax(masked))
        if masked[j] <= 1e-12 * quality.max() ** 2:  # the rest lies in the span of the picked: by relevance
            rest = np.flatnonzero(~taken)
            chosen.extend(rest[np.argsort(-r[rest], kind="stable")][:k - len(chosen)].tolist())
            break
    return pos[np.asarray(chosen, dtype=np.int64)]


RERANKERS = ("mmr", "dpp")


def rerank(items: np.ndarray, relevance: np.ndarray, k: int, *, method: str = "mmr", diversity: float = 0.0,
           item_vectors: np.ndarray | None = None, item_categories: np.ndarray | None = None,
           max_category_share: float | None = None, scale: str = "minmax") -> np.ndarray:
    """Positions of the re-ranked top k by ``method`` ("mmr" or "dpp"), with the category cap
    applied to the method's order (the cap needs ``item_categories``). Similarity comes from
    ``item_vectors`` when given, else from ``item_categories``. ``scale``: how DPP reads the
    relevance (see `dpp`); MMR always min-max scales it."""
    if method == "mmr":
        cats = item_categories if (item_vectors is None or max_category_share is not None) else None
        return mmr(items, relevance, k, diversity=diversity, item_vectors=item_vectors, item_categories=cats,
                   max_category_share=max_category_share)
    if method != "dpp":
        raise ValueError(f"unknown re-ranking method {method!r}; use one of {', '.join(RERANKERS)}")
    if max_category_share is not None and item_categories is None:
        raise ValueError("max_category_share needs item_categories")
    n = len(items) if max_category_share is not None else k  # the cap needs the whole DPP order
    order = dpp(items, relevance, n, diversity=diversity, item_vectors=item_vectors,
                item_categories=None if item_vectors is not None else item_categories, scale=scale)
    if max_category_share is None:
        return order
    # The cap over the DPP order: relevance = the order itself, no further diversification.
    picked = mmr(np.asarray(items)[order], -np.arange(len(order), dtype=np.float64), k,
                 item_categories=item_categories, max_category_share=max_category_share)
    return order[picked]


@dataclass(frozen=True)
class WeightCalibration:
    """What `calibrate_weight` found: ``weight`` reaches ``gain`` (relative ILD@k rise over the
    score order, mean over ``n_lists`` lists) against the asked ``target``; ``reached`` is False
    when even the largest weight falls short (``weight`` is then that largest weight).
    ``trace``: every (weight, gain) evaluated, in order."""

    method: str
    weight: float
    target: float
    gain: float
    base_ild: float
    reached: bool
    n_lists: int
    trace: tuple[tuple[float, float], ...]


def calibrate_weight(lists: Sequence[tuple[np.ndarray, np.ndarray]], target: float, k: int, *, method: str = "mmr",
                     item_vectors: np.ndarray | None = None, item_categories: np.ndarray | None = None,
                     scale: str = "minmax", steps: int = 12) -> WeightCalibration:
    """The smallest ``method`` weight whose re-ranked top ``k`` lists are ``target`` (0.2 = 20%)
    more diverse than the score order: mean ILD@k over ``lists`` (pairs of candidate items and
    their relevance scores), in the space of ``item_vectors`` or ``item_categories``. Bisection
    over the weight (``steps`` halvings), rounded up to 3 decimals. It needs no labels, so it may
    run on the very users the model serves; what the weight then costs in accuracy is for a
    benchmark to measure (benchmarks/hybrid.py)."""
    if method not in RERANKERS:
        raise ValueError(f"unknown re-ranking method {method!r}; use one of {', '.join(RERANKERS)}")
    if not target > 0:
        raise ValueError(f"target must be a positive relative ILD gain (0.2 = +20%), got {target}")
    if not lists:
        raise ValueError("calibrate_weight needs at least one candidate list")
    if (item_vectors is None) == (item_categories is None):
        raise ValueError("give exactly one of item_vectors and item_categories")
    space = {"item_vectors": item_vectors} if item_vectors is not None else {"item_categories": item_categories}

    def mean_ild(weight: float) -> float:
        tops = np.full((len(lists), k), -1, dtype=np.int64)
        for row, (items, scores) in enumerate(lists):
            picked = rerank(items, scores, k, method=method, diversity=weight, scale=scale, **space)
            tops[row, :len(picked)] = np.asarray(items)[picked]
        return float(np.nanmean(intra_list_diversity(tops, k, **space)))

    base = mean_ild(0.0)
    if not base > 0:
        raise ValueError("the score-ordered lists have no diversity to raise (ILD 0 or undefined): "
                         "check that the item space separates the candidates")
    trace: list[tuple[float, float]] = []

    def gain(weight: float) -> float:
        g = mean_ild(weight) / base - 1.0
        trace.append((weight, g))
        return g

    largest = 1.0 if method == "mmr" else 0.95  # DPP's exponent (1 - d) / 2d needs d < 1
    lo, hi = 0.0, largest
    top_gain = gain(hi)
    if top_gain < target:
        return WeightCalibration(method, hi, target, top_gain, base, False, len(lists), tuple(trace))
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        if gain(mid) >= target:
            hi = mid
        else:
            lo = mid
    weight = min(float(np.ceil(hi * 1000.0) / 1000.0), largest)
    return WeightCalibration(method, weight, target, gain(weight), base, True, len(lists), tuple(trace))
