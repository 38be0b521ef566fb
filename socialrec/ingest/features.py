"""Item feature matrices (image, audio, text vectors...) attached to a dataset's items, validated.

A modality is a name and a dense float32 (n_items, dim) matrix whose row i describes item index
i. `with_item_features` attaches one to any `Dataset`, from an array or a file:

- ``.npy``: an (n, dim) array. Without ``ids`` its rows are the items in index order and n must
  equal the dataset's item count; with ``ids`` (one external item id per row) rows are matched
  by id, rows naming items the dataset lacks are an error unless ``unknown="drop"``.
- ``.parquet``: a column ``id`` (external item ids) plus either one list column (``vector``, or
  the one named by ``column``) or several numeric columns, one per dimension.

Every check names the file and field: wrong shape, a non-finite value (NaN, inf: the row is
named), a duplicate or unknown id, a name already taken. float16 sources are cast to float32
first (sums over float16 overflow). Items with no row get a zero row: "no vector".
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import replace
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from socialrec.errors import DataError, MissingDependencyError
from socialrec.ingest.schema import Dataset

SourceLike = str | os.PathLike[str] | npt.ArrayLike


def read_vectors(path: str | os.PathLike[str], *, column: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """(vectors float32 (n, dim), external ids or None) from a ``.npy`` or ``.parquet`` file."""
    p = Path(path)
    if not p.is_file():
        raise DataError("the feature file does not exist", path=str(p),
                        fix="Check the path; feature files are .npy or .parquet")
    suffix = p.suffix.lower()
    if suffix == ".npy":
        try:
            raw = np.load(p, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise DataError(f"not a readable numeric .npy array ({exc})", path=str(p),
                            fix="Save the vectors with numpy.save(path, array) as a 2-D float array") from None
        return _as_matrix(raw, str(p), "vectors"), None
    if suffix == ".parquet":
        if importlib.util.find_spec("pyarrow") is None:
            raise MissingDependencyError("pyarrow", "parquet", "Reading Parquet feature files")
        import pandas as pd

        table = pd.read_parquet(p)
        if "id" not in table.columns:
            raise DataError(f"the table lacks column 'id'; it has {list(table.columns)}", path=str(p), field="id",
                            fix="Add a column 'id' with each row's external item id")
        ids = table["id"].astype(str).to_numpy()
        rest = [c for c in table.columns if c != "id"]
        name = column if column is not None else ("vector" if "vector" in rest else None)
        if name is not None:
            if name not in table.columns:
                raise DataError(f"no column {name!r}; the table has {rest}", path=str(p), field=name,
                                fix="Name the list column holding the vectors with column=...")
            try:
                raw = np.stack([np.asarray(v, dtype=np.float64) for v in table[name].to_numpy()]) if len(table) else \
                    np.zeros((0, 0))
            except (ValueError, TypeError) as exc:
                raise DataError(f"the vectors are not equal-length lists of numbers ({exc})", path=str(p),
                                field=name, fix="Give every row a vector of the same length") from None
            return _as_matrix(raw, str(p), name), ids
        numeric = [c for c in rest if pd.api.types.is_numeric_dtype(table[c])]
        if not numeric or len(numeric) != len(rest):
            raise DataError(f"expected one list column 'vector' or only numeric columns besides 'id', got {rest}",
                            path=str(p), fix="Store the vectors as a list column named 'vector'")
        return _as_matrix(table[numeric].to_numpy(), str(p), ",".join(map(str, numeric[:3]))), ids
    raise DataError(f"unsupported feature file type {suffix!r}", path=str(p), fix="Use .npy or .parquet")


def _as_matrix(raw: np.ndarray, where: str | None, field: str) -> np.ndarray:
    arr = np.asarray(raw)
    if arr.dtype.kind not in "fiu":
        raise DataError(f"the vectors have dtype {arr.dtype}, not numbers", path=where, field=field,
                        fix="Store the vectors as a float array")
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise DataError(f"the vectors must be a 2-D (n_items, dim) array, got shape {arr.shape}", path=where,
                        field=field, fix="Reshape to one row per item")
    out = arr.astype(np.float32)  # float16 -> float32 before anything sums over it
    bad = ~np.isfinite(out).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{int(bad.sum())} row(s) hold NaN or infinite values, first row {row}", path=where,
                        field=field, fix="Repair or drop those rows (a zero row means 'no vector')")
    return out


def with_item_features(dataset: Dataset, name: str, source: SourceLike, *, ids: npt.ArrayLike | None = None,
                       column: str | None = None, unknown: Literal["raise", "drop"] = "raise",
                       replace_existing: bool = False) -> Dataset:
    """The dataset with the modality ``name`` attached (see the module docstring for sources).

    source: a .npy / .parquet path, or an (n, dim) array. ids: external item ids of the rows
        (Parquet files carry their own). unknown: what to do with rows naming items the dataset
        lacks. replace_existing: allow replacing a modality of the same name.
    """
    if not name or not isinstance(name, str):
        raise DataError(f"a modality needs a non-empty name, got {name!r}", fix="Name it, e.g. 'image'")
    if name in dataset.item_features and not replace_existing:
        raise DataError(f"dataset {dataset.name!r} already has modality {name!r}", field=name,
                        fix="Pick another name or pass replace_existing=True")
    where: str | None = None
    if isinstance(source, (str, os.PathLike)):
        where = str(source)
        matrix, file_ids = read_vectors(source, column=column)
        if ids is None:
            ids = file_ids
    else:
        matrix = _as_matrix(np.asarray(source), None, name)
    if ids is None:
        if matrix.shape[0] != dataset.n_items:
            raise DataError(f"{matrix.shape[0]} rows of vectors for {dataset.n_items} items", path=where, field=name,
                            fix="Give one row per item in index order, or pass ids= naming each row's item")
        full = np.ascontiguousarray(matrix)
    else:
        ext = np.asarray(ids).astype(str)
        if len(ext) != matrix.shape[0]:
            raise DataError(f"{len(ext)} ids for {matrix.shape[0]} rows of vectors", path=where, field="id",
                            fix="Give exactly one id per row")
        uniq, counts = np.unique(ext, return_counts=True)
        if (counts > 1).any():
            raise DataError(f"item id {str(uniq[counts > 1][0])!r} has {int(counts[counts > 1][0])} rows", path=where,
                            field="id", fix="Keep one vector per item")
        index = np.asarray(dataset.items.to_index(ext, missing="minus1"), dtype=np.int64)
        missing = index < 0
        if missing.any() and unknown == "raise":
            raise DataError(f"{int(missing.sum())} row(s) name items the dataset lacks, first "
                            f"{str(ext[missing][0])!r}", path=where, field="id",
                            fix="Fix the ids, or pass unknown='drop' to ignore those rows")
        full = np.zeros((dataset.n_items, matrix.shape[1]), dtype=np.float32)
        full[index[~missing]] = matrix[~missing]
    features = {**dataset.item_features, name: full}
    return replace(dataset, item_features=features)


def check_vectors(vectors: npt.ArrayLike, dims: dict[str, int], *, what: str = "item") -> dict[str, np.ndarray]:
    """Validate new items' modality vectors against the dimensions a model was fitted with.

    vectors: modality name -> (n, dim) or (dim,) numbers. Returns float32 (n, dim) per modality;
    a modality the model does not know, a wrong dimension or a non-finite value is a DataError
    that says which modality and what was expected."""
    if not isinstance(vectors, dict):
        raise DataError(f"{what} vectors must be a mapping of modality name to vector", field="vectors",
                        fix=f"Send e.g. {{{', '.join(repr(k) + ': [...]' for k in dims)}}}")
    out: dict[str, np.ndarray] = {}
    for name, value in vectors.items():
        if name not in dims:
            raise DataError(f"unknown modality {name!r}; the model knows {sorted(dims)}", field=f"vectors.{name}",
                            fix="Send only the modalities the model was fitted with")
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(f"modality {name!r} is not a list of numbers", field=f"vectors.{name}") from None
        arr = np.atleast_2d(arr)
        if arr.ndim != 2 or arr.shape[1] != dims[name]:
            raise DataError(f"modality {name!r} has dimension {arr.shape[-1] if arr.ndim else 0}, the model expects "
                            f"{dims[name]}", field=f"vectors.{name}",
                            fix=f"Send {dims[name]} numbers for {name!r}")
        out[name] = _as_matrix(arr, None, f"vectors.{name}")
    return out
