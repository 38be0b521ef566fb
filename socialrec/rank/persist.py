"""Save a fitted hybrid model and load it back for the dataset it was fitted on.

Fitting the full hybrid on LastFM takes minutes (graph models, EASE, the ranker); a saved
model makes every later `socialrec recommend` a load. The file is a pickle stream of two
records: a small header (format, package version, the dataset's name and fingerprint), then
the model. The header is read and checked before the model is unpickled, so a file for another
dataset or a file that is not ours is refused without loading gigabytes.

Pickle runs code on load: load only files you wrote yourself.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from socialrec.ingest.schema import Dataset

FORMAT = "socialrec-hybrid-model"
FORMAT_VERSION = 1


def dataset_fingerprint(dataset: Dataset) -> str:
    """A digest of what the model's indices mean: the external user and item ids (in index
    order) and the interaction matrix. Another version of the data gives another digest."""
    digest = hashlib.sha256()
    for ids in (dataset.users.external_ids, dataset.items.external_ids):
        digest.update("\x1f".join(map(str, ids)).encode())
        digest.update(b"\x1e")
    x = dataset.user_item_matrix().tocsr()
    digest.update(np.ascontiguousarray(x.indptr, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(x.indices, dtype=np.int64).tobytes())
    return digest.hexdigest()


def save_model(model: Any, path: str | os.PathLike[str], dataset: Dataset) -> Path:
    """Write a fitted model for ``dataset`` to ``path`` (atomically: a partial file never
    replaces a good one). Returns the path."""
    from socialrec import __version__

    model._check_fitted("save_model")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, "socialrec": __version__,
              "dataset": dataset.name, "n_users": dataset.n_users, "n_items": dataset.n_items,
              "fingerprint": dataset_fingerprint(dataset), "model_class": type(model).__name__}
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "wb") as f:
        pickle.dump(header, f, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)
    return path


def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The header of a saved model, without loading the model."""
    path = _existing(path)
    with open(path, "rb") as f:
        return _header(f, path)


def load_model(path: str | os.PathLike[str], dataset: Dataset) -> Any:
    """Load a model saved by `save_model`, refusing it unless it was fitted on this very
    dataset (same name, ids and interactions)."""
    path = _existing(path)
    with open(path, "rb") as f:
        header = _header(f, path)
        if header["format_version"] != FORMAT_VERSION:
            raise ValueError(f"{path}: saved with model format {header['format_version']} (socialrec "
                             f"{header.get('socialrec')}); this socialrec reads format {FORMAT_VERSION}. Refit and save again.")
        if header["dataset"] != dataset.name or header["fingerprint"] != dataset_fingerprint(dataset):
            raise ValueError(
                f"{path}: fitted on dataset {header['dataset']!r} ({header['n_users']} users, {header['n_items']} items), "
                f"which is not the data given ({dataset.name!r}: {dataset.n_users} users, {dataset.n_items} items, "
                f"or the same name with other ids or interactions). Its indices would point at the wrong users "
                f"and items; refit on this data and save again.")
        return pickle.load(f)


def _existing(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no saved model there; fit one first with "
                                f"`socialrec recommend --dataset NAME --user ID --save {path}`")
    return path


def _header(f: Any, path: Path) -> dict[str, Any]:
    try:
        header = pickle.load(f)
    except Exception as exc:  # any unpickling failure means: not one of our files
        raise ValueError(f"{path}: not a saved socialrec model ({type(exc).__name__}: {exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{path}: not a saved socialrec model (no {FORMAT!r} header); "
                         f"save one with `socialrec recommend ... --save {path}`")
    return header
