"""The small protocols every stage implements, and shared aliases.

Internal ids are dense int32 indices (see `socialrec.ingest.idmap.IdMap`); scores are float32.
A recommender answers with ``(ids, scores)`` arrays: 1-D for one user, 2-D for a batch, padded
with id -1 and score -inf when fewer than k items qualify.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

ItemIds = npt.NDArray[np.int32]
Scores = npt.NDArray[np.float32]


@runtime_checkable
class Recommender(Protocol):
    """What every recommender offers (see `socialrec.retrieve.base.BaseRecommender`)."""

    def fit(self, train: object) -> "Recommender": ...

    def recommend(self, users: int | npt.ArrayLike, k: int = 10, *, exclude_seen: bool = True,
                  items: npt.ArrayLike | None = None) -> tuple[ItemIds, Scores]: ...

    def similar_items(self, items: int | npt.ArrayLike, k: int = 10) -> tuple[ItemIds, Scores]: ...

    def score(self, users: npt.ArrayLike) -> npt.NDArray[np.float32]: ...
