"""Save a fitted model with the dataset it was fitted on, and load it back only for that data.

Fitting the full hybrid on LastFM takes minutes; a saved model makes every later
`socialrec recommend` a load. This is `BaseRecommender.save` (socialrec/persist.py: a header
checked before anything is unpickled) with the dataset's own fingerprint in the header: its
external ids (what the indices mean) and its interactions, so another version of the data, or
the same name with other ids, is refused.

Pickle runs code on load: load only files you wrote yourself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from socialrec.ingest.schema import Dataset
from socialrec.persist import load_object, matrix_fingerprint
from socialrec.persist import read_header as read_header  # re-exported: a file's header without loading it


def dataset_fingerprint(dataset: Dataset) -> str:
    """A digest of the external user and item ids (in index order) and the interaction matrix."""
    return matrix_fingerprint(dataset.user_item_matrix(), dataset.users.external_ids, dataset.items.external_ids)


def save_model(model: Any, path: str | os.PathLike[str], dataset: Dataset) -> Path:
    """Write a fitted model for ``dataset`` to ``path`` (atomically). Returns the path."""
    return model.save(path, dataset=dataset.name, data_fingerprint=dataset_fingerprint(dataset))  # type: ignore[no-any-return]


def load_model(path: str | os.PathLike[str], dataset: Dataset) -> Any:
    """Load a model saved by `save_model`, refusing it unless it was fitted on this very
    dataset (same name, ids and interactions)."""
    _, model = load_object(path, {"dataset": dataset.name, "data_fingerprint": dataset_fingerprint(dataset)},
                           what=f"dataset {dataset.name!r} ({dataset.n_users} users, {dataset.n_items} items)")
    return model
