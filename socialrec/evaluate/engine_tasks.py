"""What an engine (`socialrec.engine`) needs to spread an evaluation over workers: the shared
split, and the scoring of one chunk of test users (grid points are `experiment.fit_point`).

Each piece is a module-level function of ``(item, *shared)``, the shared inputs (the split, the
test mask, a fitted model) passed by the engine's handle. A worker returns only what ranking
needs from a chunk (`TopCandidates`: each user's items at or above their k-th best score), and
the caller ranks the chunks in user order with its one seeded generator, so tie-breaking, and
with it every metric, equals a single-process run's.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from socialrec.engine import Engine
from socialrec.evaluate.protocol import BatchScorer, masked_scores, masks_for
from socialrec.ingest.split import Split

if TYPE_CHECKING:
    from socialrec.retrieve.base import BaseRecommender


@dataclass(frozen=True)
class SharedSplit:
    """Handles (from ``engine.share``) to what every piece reads: the split and the test mask."""

    split: Any
    test_mask: Any


def share_split(engine: Engine, split: Split) -> SharedSplit:
    """Share the split and its test mask with the engine's workers, once per experiment."""
    return SharedSplit(split=engine.share(split), test_mask=engine.share(masks_for(split, "test")))


@dataclass(frozen=True)
class TopCandidates:
    """A batch's masked scores reduced to what top-k ranking reads: per user, every allowed item
    scored at or above the user's k-th best (ties at the threshold all kept); the rest are -inf.

    ``dense()`` gives a matrix on which `socialrec.topk.rank_top_k` returns exactly what it
    returns on the full scores, with the same draws from the same generator: the threshold,
    the items above it and the ties at it are the same, and excluded items stay excluded.
    """

    shape: tuple[int, int]
    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray

    @classmethod
    def of(cls, scores: np.ndarray, k: int) -> TopCandidates:
        s = np.asarray(scores, dtype=np.float32)
        n, m = s.shape
        if n == 0 or m == 0:
            empty = np.zeros(0, dtype=np.int32)
            return cls((n, m), empty, empty, np.zeros(0, dtype=np.float32))
        s = np.where(np.isnan(s), np.float32(-np.inf), s)
        kk = min(k, m)
        t = np.partition(s, m - kk, axis=1)[:, m - kk]
        rows, cols = np.nonzero((s >= t[:, None]) & (s > -np.inf))
        return cls((n, m), rows.astype(np.int32), cols.astype(np.int32), s[rows, cols])

    def dense(self) -> np.ndarray:
        out = np.full(self.shape, -np.inf, dtype=np.float32)
        out[self.rows, self.cols] = self.values
        return out


def score_chunk(chunk: tuple[list[np.ndarray], int], model: BaseRecommender,
                mask: sp.csr_matrix) -> list[TopCandidates]:
    """Masked scores of each user batch of a chunk, reduced to their top-``k`` candidates."""
    batches, k = chunk
    return [TopCandidates.of(masked_scores(model, mask, batch), k) for batch in batches]


def engine_scorer(engine: Engine, model: Any, mask: Any, k: int) -> BatchScorer:
    """Scores user batches on the engine's workers (``model`` and ``mask`` are its handles) in
    about two chunks per worker, and gives back each batch's candidates as a dense matrix."""

    def score(batches: list[np.ndarray]) -> Iterator[np.ndarray]:
        size = max(1, math.ceil(len(batches) / (2 * engine.workers)))
        chunks = [(batches[i:i + size], k) for i in range(0, len(batches), size)]
        for candidates in engine.imap(score_chunk, chunks, model, mask):
            for c in candidates:
                yield c.dense()

    return score
