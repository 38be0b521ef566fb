"""Offline recommendations: every user's top-k in batches, in this process or on an engine's
workers (`socialrec.engine`; Ray Data on a `RayEngine`), with the same lists and scores."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from socialrec.engine import Engine, LocalEngine
from socialrec.types import Recommender


def recommend_all(model: Recommender, users: npt.ArrayLike, k: int = 10, *, engine: Engine | None = None,
                  batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """``model.recommend(users, k)`` for many users, ``batch_size`` users per call: item indices
    ``(n, k)`` (padded with -1) and scores ``(n, k)`` (padded with -inf). On an engine the model
    goes to the workers once (its object store) and each worker scores whole batches, so the
    result equals the local one (the contract's batch == scalar makes batches of any size agree).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    arr = np.asarray(users, dtype=np.int64).reshape(-1)
    engine = engine if engine is not None else LocalEngine()
    if arr.size == 0:
        return np.zeros((0, k), dtype=np.int64), np.zeros((0, k), dtype=np.float32)
    parts = engine.map_ranges(_recommend_ranges, len(arr), batch_size, model, arr, k)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _recommend_ranges(model: Recommender, users: np.ndarray, k: int) -> Callable[[int, int], Any]:
    """Per worker: one batch of users' top-k."""

    def recommend(start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        ids, scores = model.recommend(users[start:stop], k)
        return np.asarray(ids, dtype=np.int64), np.asarray(scores)

    return recommend
