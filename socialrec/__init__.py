"""socialrec: recommendations for social platforms, with language models.

Importing this package does no work: the public names below are imported on first use.

    from socialrec import load, random_split, evaluate, EASE, HybridRecommender
"""

from __future__ import annotations

import importlib
from typing import Any

from socialrec.errors import (
    DataError,
    LeakageError,
    MissingDependencyError,
    NotFittedError,
    SocialrecError,
    UnknownIdError,
)

__version__ = "0.1.0"

# Public name -> the module that defines it (an explicit table, read on first access).
_PUBLIC = {
    # ingest
    "Dataset": "socialrec.ingest.schema",
    "IdMap": "socialrec.ingest.idmap",
    "load": "socialrec.ingest.datasets",
    "make_split": "socialrec.ingest.split",
    "random_split": "socialrec.ingest.split",
    "temporal_split": "socialrec.ingest.split",
    "leave_one_out": "socialrec.ingest.split",
    # retrieve: the recommender contract and its models
    "BaseRecommender": "socialrec.retrieve.base",
    "TrainData": "socialrec.retrieve.base",
    "MostPopular": "socialrec.retrieve.popular",
    "ItemKNN": "socialrec.retrieve.knn",
    "UserKNN": "socialrec.retrieve.knn",
    "EASE": "socialrec.retrieve.ease",
    "ALS": "socialrec.retrieve.implicit_models",
    "BPR": "socialrec.retrieve.implicit_models",
    "LightGCN": "socialrec.retrieve.graph_models",
    "SocialLightGCN": "socialrec.retrieve.graph_models",
    "SocialMF": "socialrec.retrieve.graph_models",
    "SocialProof": "socialrec.retrieve.social_proof",
    "ContentRecommender": "socialrec.retrieve.content",
    "TwoTowerRecommender": "socialrec.retrieve.two_tower",
    "LearnedFriendRanker": "socialrec.retrieve.friends",
    # rank and explain
    "HybridRecommender": "socialrec.rank.hybrid",
    "RecommendationPipeline": "socialrec.explain.pipeline",
    "Recommendation": "socialrec.explain.pipeline",
    # evaluate
    "evaluate": "socialrec.evaluate.protocol",
    "tune_and_test": "socialrec.evaluate.experiment",
}

__all__ = [
    "DataError",
    "LeakageError",
    "MissingDependencyError",
    "NotFittedError",
    "SocialrecError",
    "UnknownIdError",
    "__version__",
    *sorted(_PUBLIC),
]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'socialrec' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
