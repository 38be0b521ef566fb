"""Ciao as filtered and split by RecDiff (HKUDS): ``train/val/test/trust/category.tsv``.

Every file is tab-separated with the header ``row col value``: row = user index, col = item
index (trust: truster, trustee; category: item, category id). The ids are already dense
indices 0..n-1, and the published models score every index, so users and items that no file
row names still get their index here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from socialrec.errors import DataError
from socialrec.ingest.datasets.tabular import read_header
from socialrec.ingest.read import check_exists, float_col, int_col, read_delimited
from socialrec.ingest.schema import Dataset, build_dataset

FOLDER = ("ciao", "recdiff-split")
SPLITS = {"train": "train", "val": "valid", "test": "test"}


def _read(path: Path, skip_bad_rows: bool) -> pd.DataFrame:
    header = read_header(path, sep="\t")
    if header[:3] != ["row", "col", "value"]:
        raise DataError(f"the header is {header}, expected row, col, value", path=str(path), line=1,
                        fix="Use RecDiff's files unchanged")
    return read_delimited(path, [int_col("row"), int_col("col"), float_col("value")], sep="\t",
                          skip_bad_rows=skip_bad_rows)


def load_ciao_recdiff(data: str | os.PathLike[str], *, skip_bad_rows: bool = False) -> Dataset:
    """Load RecDiff's Ciao split from ``data/ciao/recdiff-split``.

    Interactions: train / val / test rows with split "train" / "valid" / "test" (23,223 / 3,317
    / 6,635), kind "review", value as given (always 1: RecDiff keeps only that a user reviewed
    an item). Users and items are the indices 0..max in numeric order (1,925 users, 15,053
    items; the largest index in any file fixes the count). Trust: all 65,084 rows come in
    reciprocal pairs (checked: every (a, b) has its (b, a)), so the network is loaded as
    undirected "trust" edges: 65,084 stored directions, 32,542 pairs in ``summary()``. A
    non-reciprocal file is loaded as directed instead. Items get ``category`` = the category
    id as text; 3 items are listed under two categories, and the first listed is kept.
    """
    folder = check_exists(Path(data).joinpath(*FOLDER), "RecDiff Ciao folder")
    parts = []
    for stem, split in SPLITS.items():
        part = _read(folder / f"{stem}.tsv", skip_bad_rows)
        parts.append(part.rename(columns={"row": "user", "col": "item"}).assign(split=split))
    inter = pd.concat(parts, ignore_index=True)
    inter["kind"] = "review"
    trust = _read(folder / "trust.tsv", skip_bad_rows).rename(columns={"row": "source", "col": "target"})
    trust = trust.drop(columns="value").assign(kind="trust")
    category = _read(folder / "category.tsv", skip_bad_rows).drop_duplicates("row", keep="first")

    n_users = int(max(inter["user"].max(), trust["source"].max(), trust["target"].max())) + 1
    n_items = int(max(inter["item"].max(), category["row"].max())) + 1
    users = pd.DataFrame({"id": [str(i) for i in range(n_users)]})
    labels = category.set_index("row")["col"].astype(str)
    items = pd.DataFrame({"id": [str(i) for i in range(n_items)]})
    items["category"] = labels.reindex(range(n_items)).to_numpy(dtype=object)

    forward = pd.MultiIndex.from_arrays([trust["source"], trust["target"]])
    reverse = pd.MultiIndex.from_arrays([trust["target"], trust["source"]])
    directed = not bool(reverse.isin(forward).all())
    return build_dataset("ciao-recdiff", inter, social=trust, social_directed=directed, items=items, users=users)
