"""Top-K recommendation metrics: pure, vectorised numpy functions.

Conventions (they matter when comparing with published numbers):

* Ranks are 1-based; ``top_items`` rows are item indices best first, ``-1`` is padding
  ("no item") and is never a hit, never covered, never counted as exposure.
* Accuracy metrics take ``hits`` (bool ``(n, K)``, from :func:`hits_matrix`), ``n_relevant``
  (number of held-out items per user, must be ``>= 1``) and ``k`` (only the first ``k``
  columns are used). They return one float64 per user; average them yourself.
* ``precision@k`` = hits / k (the denominator is ``k`` even when the list is padded).
* ``recall@k`` = hits / |relevant| (RecBole, Cornac convention; *not* hits / min(|relevant|, k)).
* ``ndcg@k``: binary relevance, discount ``1 / log2(rank + 1)``, IDCG over the
  ``min(|relevant|, k)`` ideal positions (RecBole convention).
* ``map@k``: sum over hit ranks of precision@rank, divided by ``min(|relevant|, k)``
  (RecBole convention).
* ``mrr@k``: 1 / rank of the first hit within k, 0 if none. ``hit@k``: 1 if any hit within k.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# Top-k selection, hits and the two list measures that models also use while fitting live in the
# ground module socialrec.topk; they are part of this module's API.
from socialrec.topk import (
    _CHUNK_ELEMENTS,
    _discounts,
    _first_k,
    _prepare,
    hits_matrix,
    intra_list_diversity,
    ndcg_at_k,
    rank_top_k,
)

__all__ = [
    "METRICS",
    "bootstrap_ci",
    "catalog_coverage",
    "f1_at_k",
    "gini_index",
    "hit_rate_at_k",
    "hits_matrix",
    "intra_list_diversity",
    "map_at_k",
    "mrr_at_k",
    "ndcg_at_k",
    "novelty",
    "precision_at_k",
    "rank_top_k",
    "recall_at_k",
]


# --------------------------------------------------------------------------- accuracy


def precision_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """hits in the first k / k."""
    h, _ = _prepare(hits, n_relevant, k)
    return h.sum(axis=1) / float(k)


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """hits in the first k / |relevant| (RecBole: the denominator is not capped at k)."""
    h, n_rel = _prepare(hits, n_relevant, k)
    return h.sum(axis=1) / n_rel


def f1_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Harmonic mean of precision@k and recall@k (0 when both are 0)."""
    p = precision_at_k(hits, n_relevant, k)
    r = recall_at_k(hits, n_relevant, k)
    denom = p + r
    return np.divide(2.0 * p * r, denom, out=np.zeros_like(denom), where=denom > 0)


def mrr_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """1 / rank of the first hit within k; 0 if none."""
    h, _ = _prepare(hits, n_relevant, k)
    first = np.argmax(h, axis=1)
    return np.where(h.any(axis=1), 1.0 / (first + 1.0), 0.0)


def hit_rate_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """1.0 if any of the first k items is relevant, else 0.0."""
    h, _ = _prepare(hits, n_relevant, k)
    return h.any(axis=1).astype(np.float64)


def map_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Average precision truncated at k: sum_{hit ranks r<=k} precision@r / min(|relevant|, k) (RecBole)."""
    h, n_rel = _prepare(hits, n_relevant, k)
    prec = np.cumsum(h, axis=1) / np.arange(1, k + 1, dtype=np.float64)
    return (prec * h).sum(axis=1) / np.minimum(n_rel, k)


METRICS: dict[str, Callable[[np.ndarray, np.ndarray, int], np.ndarray]] = {
    "precision": precision_at_k,
    "recall": recall_at_k,
    "f1": f1_at_k,
    "ndcg": ndcg_at_k,
    "mrr": mrr_at_k,
    "hit": hit_rate_at_k,
    "map": map_at_k,
}


# --------------------------------------------------------------------------- beyond accuracy


def _exposure(top_items: np.ndarray, n_items: int, k: int) -> np.ndarray:
    if n_items < 1:
        raise ValueError(f"n_items must be >= 1, got {n_items}")
    top = _first_k(top_items, k)
    items = top[top >= 0]
    if items.size and items.max() >= n_items:
        raise ValueError(f"top_items holds item {items.max()} >= n_items={n_items}")
    return np.bincount(items, minlength=n_items)


def catalog_coverage(top_items: np.ndarray, n_items: int, k: int) -> float:
    """Share of the n_items catalog that appears in at least one list (first k, -1 ignored)."""
    return float(np.count_nonzero(_exposure(top_items, n_items, k)) / n_items)


def gini_index(top_items: np.ndarray, n_items: int, k: int) -> float:
    """Gini coefficient of exposure counts over all n_items (never-recommended items count as 0).

    G = sum_i (2i - n - 1) x_(i) / (n * sum x), x sorted ascending, i = 1..n. 0 = every item
    equally exposed; (n - 1)/n = all exposure on one item. NaN if nothing is recommended.
    """
    x = np.sort(_exposure(top_items, n_items, k)).astype(np.float64)
    total = x.sum()
    if total == 0:
        return float("nan")
    n = x.size
    coef = 2.0 * np.arange(1, n + 1) - n - 1
    return float(coef @ x / (n * total))


def novelty(top_items: np.ndarray, item_popularity: np.ndarray, n_users: int, k: int) -> np.ndarray:
    """Per user, mean self-information -log2(pop_i / n_users) of the first k items; ``(n,)``.

    ``pop_i`` = number of training users who interacted with item i; items with pop 0 are
    given pop 1 (otherwise the information is infinite). Padding is ignored; NaN for an
    empty list.
    """
    if n_users < 1:
        raise ValueError(f"n_users must be >= 1, got {n_users}")
    top = _first_k(top_items, k)
    pop = np.maximum(np.asarray(item_popularity, dtype=np.float64), 1.0)
    info = -np.log2(pop / n_users)
    valid = top >= 0
    per_item = np.where(valid, info[np.where(valid, top, 0)], 0.0)
    count = valid.sum(axis=1)
    return np.divide(per_item.sum(axis=1), count, out=np.full(top.shape[0], np.nan), where=count > 0)


# --------------------------------------------------------------------------- uncertainty


def bootstrap_ci(
    values: np.ndarray, *, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, low, high): the mean of ``values`` and a percentile-bootstrap (1 - alpha) interval.

    Resamples users with replacement ``n_boot`` times, in chunks of index matrices of bounded
    size; deterministic for a given seed.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    rng = np.random.default_rng(seed)
    n = v.size
    means = np.empty(n_boot)
    chunk = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        means[start:start + b] = v[rng.integers(0, n, size=(b, n))].mean(axis=1)
    low, high = np.percentile(means, [100.0 * alpha / 2.0, 100.0 * (1.0 - alpha / 2.0)])
    return float(v.mean()), float(low), float(high)
