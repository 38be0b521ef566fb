"""Tang et al.'s MATLAB exports of Ciao and Epinions (``rating.mat``, ``trustnetwork.mat``, ``category.txt``).

``rating.mat`` holds one matrix, one row per review: user, product, category, rating,
helpfulness[, unix time]. ``trustnetwork.mat`` holds (truster, trustee) rows. ``category.txt``
lists ``id name`` per line (CRLF; read as latin-1, which decodes any byte: Ciao's "Ciao Caf?"
holds a literal '?' where the accent was lost upstream, and is kept as it is). Errors about a
matrix row give its 1-based row number as the line.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.io

from socialrec.errors import DataError
from socialrec.ingest.datasets.tabular import warn_bad_rows
from socialrec.ingest.read import check_exists
from socialrec.ingest.schema import Dataset, DuplicateRowsWarning, build_dataset

CIAO_FOLDER = ("ciao", "tang")
CIAO_DUPLICATE_ROWS = 652  # exact duplicate rows in the published Ciao rating.mat


def read_mat_matrix(path: Path, variable: str, min_columns: int) -> np.ndarray:
    """The 2-D numeric matrix ``variable`` of a .mat file (or its only matrix), as float64."""
    check_exists(path, "MATLAB file")
    try:
        contents = scipy.io.loadmat(str(path))
    except (ValueError, TypeError, OSError, NotImplementedError) as exc:
        raise DataError(f"not a readable MATLAB .mat file ({exc})", path=str(path),
                        fix="Check that the file was copied completely (MATLAB v7.3 files are not supported)") from None
    matrices = {k: v for k, v in contents.items()
                if not k.startswith("__") and isinstance(v, np.ndarray) and v.ndim == 2}
    if variable in matrices:
        matrix = matrices[variable]
    elif len(matrices) == 1:
        matrix = next(iter(matrices.values()))
    else:
        raise DataError(f"no matrix named {variable!r}; the file holds {sorted(matrices)}", path=str(path),
                        field=variable, fix=f"Save the matrix under the name {variable!r}")
    if matrix.shape[1] < min_columns or not np.issubdtype(matrix.dtype, np.number):
        raise DataError(f"the matrix is {matrix.shape[0]} x {matrix.shape[1]} of {matrix.dtype}; expected numbers in "
                        f"at least {min_columns} columns", path=str(path), field=variable,
                        fix="Use Tang's layout: user, product, category, rating, helpfulness")
    return np.asarray(matrix, dtype=np.float64)


def read_categories(path: Path) -> dict[int, str]:
    """``category.txt``: ``id name`` per line -> {id: name}."""
    names: dict[int, str] = {}
    with open(check_exists(path, "category file"), encoding="latin-1", newline="") as fh:
        for lineno, text in enumerate(fh.read().splitlines(), start=1):
            if not text.strip():
                continue
            head, _, name = text.strip().partition(" ")
            if not head.isdigit() or not name.strip():
                raise DataError(f"{text!r} is not 'id name'", path=str(path), line=lineno,
                                fix="Write one category per line: its number, a space, its name")
            names[int(head)] = name.strip()
    return names


def read_tang_ratings(directory: str | os.PathLike[str]) -> pd.DataFrame:
    """The raw ``rating.mat`` rows (duplicates included) as user, item, category, rating, helpfulness[, timestamp]."""
    matrix = read_mat_matrix(Path(directory) / "rating.mat", "rating", 4)
    names = ["user", "item", "category", "rating", "helpfulness", "timestamp"][: min(matrix.shape[1], 6)]
    return pd.DataFrame(matrix[:, : len(names)], columns=names)


def _bad_rows(
    ratings: pd.DataFrame, categories: dict[int, str] | None, rating_range: tuple[float, float] | None,
) -> tuple[np.ndarray, tuple[int, str, str] | None]:
    """A mask of invalid rows and the first problem (position, field, message)."""
    bad = np.zeros(len(ratings), dtype=bool)
    first: tuple[int, str, str] | None = None

    def flag(mask: np.ndarray, field: str, what: str) -> None:
        nonlocal bad, first
        if mask.any():
            pos = int(np.flatnonzero(mask)[0])
            if first is None or pos < first[0]:
                first = (pos, field, f"{float(ratings[field].iloc[pos]):g} is not {what}")
            bad |= mask

    for col in ("user", "item", "category"):
        v = ratings[col].to_numpy()
        flag(~np.isfinite(v) | (v < 0) | (v != np.round(v)), col, "a non-negative integer id")
    if categories is not None:
        flag(~ratings["category"].isin(list(categories)).to_numpy() & ~bad, "category",
             "a category listed in category.txt")
    v = ratings["rating"].to_numpy()
    lo, hi = rating_range if rating_range is not None else (-np.inf, np.inf)
    flag(~np.isnan(v) & ((v < lo) | (v > hi)), "rating", f"a rating in [{lo:g}, {hi:g}]")
    return bad, first


def load_tang(
    directory: str | os.PathLike[str],
    *,
    name: str = "tang",
    rating_range: tuple[float, float] | None = (1, 5),
    unrated_value: float | None = None,
    expected_duplicates: int = 0,
    skip_bad_rows: bool = False,
) -> Dataset:
    """Load a folder of Tang-format files.

    Interactions (kind "rating", value = rating, timestamp when the matrix has a 6th column):
    one per row, after dropping rows that repeat another row exactly in every column. Their
    number is recorded in ``Dataset.notes`` and a `DuplicateRowsWarning` is raised when it differs
    from ``expected_duplicates`` (set by `load_ciao` to the published file's count, so only a
    changed file warns). Repeated (user, item) pairs that differ in rating, category or
    helpfulness are distinct reviews and stay; the interactions table carries category and
    helpfulness into `build_dataset` only so that its exact-duplicate check compares whole rows.
    A rating equal to ``unrated_value`` means "no stars given": the row stays with value NaN.
    Ratings outside ``rating_range`` and non-integer ids are bad rows (error, or dropped with
    ``skip_bad_rows``).

    Users: those who rate, in file order, then those who appear only in the trust network
    (kept: they are the cold-start users social signals can help). Trust edges are directed
    (truster -> trustee, kind "trust"). Items: first-seen order with ``category`` = the name of
    the category most rows give the item (ties: the first seen), and a "category" text row.
    """
    folder = check_exists(Path(directory), "Tang-format folder")
    ratings = read_tang_ratings(folder)
    ratings["_line"] = np.arange(1, len(ratings) + 1)
    ratings["_path"] = str(folder / "rating.mat")
    cat_path = folder / "category.txt"
    categories = read_categories(cat_path) if cat_path.exists() else None

    if unrated_value is not None:
        ratings.loc[ratings["rating"] == unrated_value, "rating"] = np.nan
    bad, first = _bad_rows(ratings, categories, rating_range)
    if first is not None:
        if not skip_bad_rows:
            pos, field, problem = first
            raise DataError(f"{problem} ({int(bad.sum())} bad row(s) in all; nothing was loaded)",
                            path=ratings["_path"].iloc[0], line=pos + 1, field=field,
                            fix="Fix the row, pass the data's rating_range (or unrated_value=0 if 0 means "
                                "'no stars'), or pass skip_bad_rows=True to drop bad rows and load the rest")
        warn_bad_rows(ratings["_path"].iloc[0], np.flatnonzero(bad) + 1, "bad row(s)")
        ratings = ratings[~bad]

    data_cols = [c for c in ratings.columns if not c.startswith("_")]
    dup = ratings.duplicated(subset=data_cols).to_numpy()
    n_dup = int(dup.sum())
    message = f"{name}: dropped {n_dup} exact duplicate row(s) of the {len(ratings)} in rating.mat"
    notes = [message] if n_dup else []
    if n_dup != expected_duplicates:
        where = f", first at line {int(ratings['_line'].to_numpy()[dup][0])}" if n_dup else ""
        warnings.warn(f"{message} (expected {expected_duplicates}{where})", DuplicateRowsWarning, stacklevel=2)
    ratings = ratings[~dup]
    if unrated_value is not None:
        n_unrated = int(ratings["rating"].isna().sum())
        if n_unrated:
            notes.append(f"{name}: {n_unrated} row(s) rated {unrated_value:g} kept as unrated (value NaN)")

    trust = read_mat_matrix(folder / "trustnetwork.mat", "trustnetwork", 2)[:, :2]
    bad_ids = ~np.isfinite(trust) | (trust < 0) | (trust != np.round(trust))
    if bad_ids.any():
        row, col = (int(x) for x in np.argwhere(bad_ids)[0])
        raise DataError(f"{trust[row, col]!r} is not a non-negative integer id", path=str(folder / "trustnetwork.mat"),
                        line=row + 1, field=("truster", "trustee")[col])
    social = pd.DataFrame({"source": trust[:, 0].astype(np.int64).astype(str),
                           "target": trust[:, 1].astype(np.int64).astype(str), "kind": "trust",
                           "_line": np.arange(1, len(trust) + 1), "_path": str(folder / "trustnetwork.mat")})

    ids = {c: ratings[c].astype(np.int64).astype(str) for c in ("user", "item")}
    user_ids = pd.unique(pd.concat([ids["user"], social["source"], social["target"]], ignore_index=True))
    users = pd.DataFrame({"id": user_ids})

    cat_ids = ratings["category"].astype(np.int64)
    pairs = pd.DataFrame({"item": ids["item"].to_numpy(), "category": cat_ids.to_numpy(),
                          "pos": np.arange(len(ratings))})
    best = (pairs.groupby(["item", "category"], sort=False)
            .agg(n=("pos", "size"), first=("pos", "min")).reset_index()
            .sort_values(["n", "first"], ascending=[False, True], kind="stable")
            .drop_duplicates("item").set_index("item")["category"])
    item_ids = pd.unique(ids["item"])
    best = best.reindex(item_ids)
    label = best.map(categories) if categories is not None else best.astype(str)
    items = pd.DataFrame({"id": item_ids, "category": label.to_numpy(dtype=object)})

    inter = pd.DataFrame({
        "user": ids["user"].to_numpy(), "item": ids["item"].to_numpy(), "kind": "rating",
        "value": ratings["rating"].to_numpy(),
        "category": cat_ids.to_numpy(),
        "helpfulness": ratings["helpfulness"].to_numpy() if "helpfulness" in ratings.columns else np.nan,
        "_line": ratings["_line"].to_numpy(), "_path": ratings["_path"].to_numpy(),
    })
    if "timestamp" in ratings.columns:
        inter["timestamp"] = ratings["timestamp"].to_numpy()
    texts = pd.DataFrame({"owner": "item", "id": items["id"], "field": "category", "text": items["category"]})
    return build_dataset(name, inter, social=social, social_directed=True, items=items, users=users, texts=texts,
                         rating_range=rating_range, notes=tuple(notes))


def load_ciao(data: str | os.PathLike[str], *, skip_bad_rows: bool = False) -> Dataset:
    """Ciao (Tang et al.) from ``data/ciao/tang``.

    How the counts compare with the data README (7,375 users, 105,114 items, 284,086 ratings,
    111,781 trust edges): users, items and trust edges match exactly (every trust edge names
    users who rate, and the trust matrix has no duplicates or self-loops). The README's 284,086
    is the raw row count of rating.mat; 652 of those rows repeat another row exactly, so the
    Dataset holds 283,434 interactions (another 784 rows repeat a (user, item) pair with a
    different rating, category or helpfulness: distinct reviews, kept). 34 rows carry rating 0,
    outside Ciao's 1-5 stars: kept as unrated (value NaN). 101 items appear under two or three
    categories; the most frequent one (ties: the first seen) names the item's category.
    """
    return load_tang(Path(data).joinpath(*CIAO_FOLDER), name="ciao", rating_range=(1, 5), unrated_value=0,
                     expected_duplicates=CIAO_DUPLICATE_ROWS, skip_bad_rows=skip_bad_rows)
