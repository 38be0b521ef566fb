"""TikTok micro-videos with precomputed visual and acoustic item vectors, as split by MMSSL / DiffMM.

Files in ``tiktok-multimodal/``: ``train.tsv``, ``valid.tsv``, ``test.tsv`` (header ``user item``,
dense indices) and ``image_feat.npy`` / ``audio_feat.npy`` (6,710 x 128 float16; row i is item i).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from socialrec.errors import DataError
from socialrec.ingest.datasets.tabular import read_header
from socialrec.ingest.features import with_item_features
from socialrec.ingest.read import check_exists, int_col, read_delimited
from socialrec.ingest.schema import Dataset, build_dataset

FOLDER = "tiktok-multimodal"
SPLITS = ("train", "valid", "test")
MODALITIES = (("image", "image_feat.npy"), ("audio", "audio_feat.npy"))


def load_tiktok_multimodal(data: str | os.PathLike[str], *, skip_bad_rows: bool = False) -> Dataset:
    """Load ``data/tiktok-multimodal``: 9,308 users, 6,710 items, 59,541 / 3,051 / 6,130
    train / valid / test interactions (kind "view", the split as shipped), and two modalities,
    ``image`` and ``audio`` (128-d each, cast from float16 to float32). Users and items are the
    indices 0..n-1 in numeric order; the item count is fixed by the feature files (every item
    has vectors, so items absent from training are still placed: the cold-item protocol)."""
    folder = check_exists(Path(data) / FOLDER, "TikTok multimodal folder")
    parts = []
    for split in SPLITS:
        path = folder / f"{split}.tsv"
        header = read_header(path, sep="\t")
        if header[:2] != ["user", "item"]:
            raise DataError(f"the header is {header}, expected user, item", path=str(path), line=1,
                            fix="Use the DiffMM files unchanged")
        part = read_delimited(path, [int_col("user"), int_col("item")], sep="\t", skip_bad_rows=skip_bad_rows)
        parts.append(part.assign(split=split))
    inter = pd.concat(parts, ignore_index=True)
    inter["kind"] = "view"

    first = np.load(check_exists(folder / MODALITIES[0][1], "feature file"), mmap_mode="r")
    n_items = max(int(inter["item"].max()) + 1, int(first.shape[0]))
    n_users = int(inter["user"].max()) + 1
    ds = build_dataset("tiktok-multimodal", inter, users=pd.DataFrame({"id": [str(u) for u in range(n_users)]}),
                       items=pd.DataFrame({"id": [str(i) for i in range(n_items)]}))
    for name, file in MODALITIES:
        ds = with_item_features(ds, name, folder / file)
    return ds
