"""What an engine (`socialrec.engine`) needs to spread an evaluation over workers: the shared
split, and the scoring of one chunk of test users (grid points are `experiment.fit_point`).

Each piece is a module-level function of ``(item, *shared)``, the shared inputs (the split, the
test mask, a fitted model) passed by the engine's handle. A worker ranks whole chunks of users
(`protocol.rank_chunk`) and returns only their top-k items; chunk ``c`` draws its ties from
``default_rng((seed, c))`` wherever it runs, so tie-breaking, and with it every metric, equals a
single-process run's.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from socialrec.engine import Engine
from socialrec.evaluate.protocol import ChunkRanker, masks_for, rank_chunk
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


def rank_piece(piece: tuple[list[tuple[int, np.ndarray]], int, int], model: BaseRecommender,
               mask: sp.csr_matrix) -> list[np.ndarray]:
    """The top-``k`` items of each numbered chunk of users in ``piece`` (chunks, k, seed)."""
    chunks, k, seed = piece
    return [rank_chunk(model, users, mask, k, seed=seed, chunk=c) for c, users in chunks]


def engine_ranker(engine: Engine, model: Any, mask: Any, k: int, seed: int) -> ChunkRanker:
    """Ranks chunks of users on the engine's workers (``model`` and ``mask`` are its handles), in
    about two pieces per worker, and gives back each chunk's top-``k`` items in order."""

    def rank(chunks: list[np.ndarray]) -> Iterator[np.ndarray]:
        size = max(1, math.ceil(len(chunks) / (2 * engine.workers)))
        numbered = list(enumerate(chunks))
        pieces = [(numbered[i:i + size], k, seed) for i in range(0, len(numbered), size)]
        for tops in engine.imap(rank_piece, pieces, model, mask):
            yield from tops

    return rank
