"""MovieLens 100K (GroupLens): ratings, movie titles and genres, user demographics.

Files (all ``|``- or tab-separated, no header): ``u.data`` (user, item, rating 1-5, unix time),
``u.item`` (id, title, release date, video release date, IMDb url, one 0/1 flag per genre of
``u.genre``; latin-1: a few titles hold accented letters), ``u.user`` (id, age, gender,
occupation, zip code; zip codes stay text: some are Canadian postcodes).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from socialrec.errors import DataError
from socialrec.ingest.read import check_exists, int_col, read_delimited, str_col
from socialrec.ingest.schema import Dataset, build_dataset

FOLDER = "movielens-100k"


def _genres(path: Path, skip_bad_rows: bool) -> list[str]:
    """Genre names in flag order; ``u.genre`` lists ``name|index`` and must number them 0..n-1."""
    table = read_delimited(path, [str_col("name"), int_col("index")], sep="|", header=False,
                           encoding="latin-1", skip_bad_rows=skip_bad_rows)
    if table["index"].tolist() != list(range(len(table))):
        raise DataError("genre indices must run 0, 1, 2, ... in file order", path=str(path), field="index",
                        fix="Use the u.genre file that came with u.item")
    return table["name"].tolist()


def load_movielens_100k(data: str | os.PathLike[str], *, skip_bad_rows: bool = False) -> Dataset:
    """Load MovieLens 100K from ``data/movielens-100k``.

    Interactions are the 100,000 ratings (kind "rating", value 1-5, unix timestamp). Items keep
    ``u.item`` order with title, release_date, url, ``genres`` (tuple of genre names, u.genre
    order) and ``category`` (the first genre). Two movies are flagged only "unknown", which is
    u.genre's own name for that flag, so it is kept as their genre. Texts: one "title" and one
    "genre" row (genres joined with ", ") per movie.
    """
    folder = check_exists(Path(data) / FOLDER, "MovieLens 100K folder")
    genre_names = _genres(folder / "u.genre", skip_bad_rows)

    item_cols = [int_col("id"), str_col("title"), str_col("release_date"), str_col("video_release_date"),
                 str_col("url")] + [int_col(f"_g{i}") for i in range(len(genre_names))]
    items = read_delimited(folder / "u.item", item_cols, sep="|", header=False, encoding="latin-1",
                           skip_bad_rows=skip_bad_rows)
    flags = items[[f"_g{i}" for i in range(len(genre_names))]].to_numpy(dtype=bool)
    names = np.asarray(genre_names, dtype=object)
    genres = [tuple(names[row]) for row in flags]  # 1,682 rows: a comprehension is fine
    items = pd.DataFrame({
        "id": items["id"].astype(str),
        "title": items["title"],
        "release_date": items["release_date"].replace("", None),
        "url": items["url"].replace("", None),
        "genres": genres,
        "category": pd.Series([g[0] if g else None for g in genres], dtype=object),
    })

    users = read_delimited(folder / "u.user", [int_col("id"), int_col("age"), str_col("gender"),
                                                 str_col("occupation"), str_col("zip")],
                           sep="|", header=False, skip_bad_rows=skip_bad_rows)
    users = users.drop(columns=["_line", "_path"]).assign(id=lambda t: t["id"].astype(str))

    inter = read_delimited(folder / "u.data", [int_col("user"), int_col("item"), int_col("rating"),
                                                 int_col("timestamp")],
                           sep="\t", header=False, skip_bad_rows=skip_bad_rows)
    inter = inter.rename(columns={"rating": "value"}).assign(kind="rating")

    texts = pd.concat([
        pd.DataFrame({"owner": "item", "id": items["id"], "field": "title", "text": items["title"]}),
        pd.DataFrame({"owner": "item", "id": items["id"], "field": "genre",
                      "text": [", ".join(g) for g in genres]}),
    ], ignore_index=True)
    return build_dataset("movielens-100k", inter, items=items, users=users, texts=texts, rating_range=(1, 5))
