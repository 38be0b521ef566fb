"""A served holdout: the part of a dataset the service trains on, and the part held out to
measure what it serves.

`served_part` uses the same split code as `socialrec evaluate` (`make_split`) and, for friend
suggestions, the same edge mask as `socialrec evaluate-friends` (`mask_edges`). The training
and validation interactions are served (a served model has no use for a validation split: the
hybrid holds out its own tenth for the ranker); the test interactions and the masked edges are
what `socialrec split` writes out and what the service never sees.
"""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from socialrec.ingest.schema import Dataset, is_symmetric
from socialrec.ingest.split import make_split, mask_edges


@dataclass(frozen=True)
class ServedPart:
    """dataset: what is served (train + valid interactions, training edges); test: the held-out
    (user, item) index pairs; test_rows: the held-out rows of the original dataset's interactions
    (with their timestamps, for replaying them); friends_test / friends_train: held-out and
    training edges (None when no edges were masked)."""

    dataset: Dataset
    test: np.ndarray
    test_rows: np.ndarray
    friends_test: sp.csr_matrix | None
    friends_train: sp.csr_matrix | None


def served_part(dataset: Dataset, protocol: str, *, seed: int = 0, friends_masked: float = 0.0) -> ServedPart:
    split = make_split(dataset, protocol, seed=seed)
    keep = np.sort(np.r_[split.train, split.valid])
    interactions = dataset.interactions.iloc[keep].copy()
    interactions["split"] = np.int8(-1)
    test_df = dataset.interactions.iloc[split.test][["user", "item"]].drop_duplicates()
    test = test_df.to_numpy(dtype=np.int64)
    social = dataset.social
    friends_test = friends_train = None
    if friends_masked > 0:
        adj = dataset.social_matrix()
        if adj.nnz == 0:
            raise ValueError(f"dataset {dataset.name!r} has no social edges to mask (--friends-masked)")
        directed = bool(dataset.social_directed) and not is_symmetric(adj)
        friends_train, friends_test = mask_edges(adj, friends_masked, seed, directed=directed)
        coo = friends_train.tocoo()
        social = pd.DataFrame({"source": coo.row.astype(np.int32), "target": coo.col.astype(np.int32),
                               "kind": "friend", "weight": np.ones(coo.nnz, np.float32)})
        # The served dataset keeps both directions of a friendship as the loaders do.
        served = dataclasses.replace(dataset, interactions=interactions.reset_index(drop=True), social=social,
                                     social_directed=True if directed else dataset.social_directed)
    else:
        served = dataclasses.replace(dataset, interactions=interactions.reset_index(drop=True), social=social)
    return ServedPart(served, test, np.asarray(split.test), friends_test, friends_train)


def write_served_part(part: ServedPart, directory: str | Path) -> list[Path]:
    """``test.tsv`` (user_id, item_id: external ids of the held-out pairs), and with masked
    edges ``friends_test.tsv`` / ``friends_train.tsv`` (user_id, friend_id)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    users, items = part.dataset.users, part.dataset.items
    written = [out / "test.tsv"]
    _write(written[0], ("user_id", "item_id"),
           zip(users.to_external(part.test[:, 0]), items.to_external(part.test[:, 1])) if len(part.test) else [])
    for name, m in (("friends_test.tsv", part.friends_test), ("friends_train.tsv", part.friends_train)):
        if m is None:
            continue
        coo = m.tocoo()
        path = out / name
        _write(path, ("user_id", "friend_id"),
               zip(users.to_external(coo.row), users.to_external(coo.col)) if coo.nnz else [])
        written.append(path)
    return written


def _write(path: Path, header: tuple[str, ...], rows: object) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)  # type: ignore[arg-type]
