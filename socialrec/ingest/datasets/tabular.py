"""A user's own tables (CSV, TSV, Parquet, JSON lines) with a column mapping, as a `Dataset`.

Every format goes through the same validation, so the same bad value gives the same error:
user/item ids must be present, ``value``/``weight`` must be numbers, ``timestamp`` may be unix
seconds or an ISO 8601 date-time (naive times are read as UTC). Errors name the file, the line
(for Parquet: the 1-based row) and our field name. CSV/TSV fields may be wrapped in double quotes
(``"a","b"``, as spreadsheet exports write them), but a quoted field may not contain the separator
or a line break: such files need cleaning first.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from socialrec.errors import DataError, MissingDependencyError
from socialrec.ingest.read import BadRowsWarning, Column, check_exists, read_delimited
from socialrec.ingest.schema import Dataset, build_dataset

PathLike = str | os.PathLike[str]

INTERACTION_COLUMNS = ("user", "item", "timestamp", "kind", "value", "split")
SOCIAL_COLUMNS = ("source", "target", "kind", "weight")
# How each of our column names is validated; anything else is kept as text.
_COLUMN_TYPES = {"user": "id", "item": "id", "source": "id", "target": "id", "id": "id",
                 "value": "number", "weight": "number", "timestamp": "timestamp"}
_TYPE_NAMES = {"id": "an id", "number": "a number", "timestamp": "a unix time or an ISO 8601 date-time"}
_EPOCH = pd.Timestamp(0, tz="UTC")


def read_header(path: PathLike, *, sep: str = "\t", encoding: str = "utf-8") -> list[str]:
    """The names on a delimited file's first line (surrounding quotes removed)."""
    path = check_exists(Path(path), "data file")
    try:
        with open(path, encoding=encoding, newline="") as fh:
            first = fh.readline()
    except UnicodeDecodeError as exc:
        raise DataError(f"the file is not valid {encoding} text ({exc.reason})", path=str(path), line=1,
                        fix="Pass the right encoding") from None
    if not first.strip():
        raise DataError("the file is empty (no header line)", path=str(path),
                        fix="Check that the file was copied completely")
    return [_unquote(name.strip()) for name in first.rstrip("\r\n").split(sep)]


def warn_bad_rows(path: object, lines: Sequence[int] | np.ndarray, what: str) -> None:
    """Report rows dropped under ``skip_bad_rows=True`` the way `read_delimited` does."""
    lines = [int(x) for x in lines]
    shown = ", ".join(str(x) for x in lines[:10]) + (" ..." if len(lines) > 10 else "")
    warnings.warn(f"{path}: skipped {len(lines)} {what} at line(s) {shown}", BadRowsWarning, stacklevel=3)


def drop_unknown_edges(social: pd.DataFrame, known_users: Iterable[object], *, skip_bad_rows: bool) -> pd.DataFrame:
    """With ``skip_bad_rows``, drop edges naming users the dataset does not have (a `BadRowsWarning`).

    Without it the edges stay, and `build_dataset` raises naming the first one's file and line.
    """
    if not skip_bad_rows or social.empty:
        return social
    known = pd.Index([str(u) for u in known_users])
    ok = social["source"].astype(str).isin(known) & social["target"].astype(str).isin(known)
    if not ok.all():
        path = social["_path"].iloc[0] if "_path" in social.columns else "social table"
        lines = social.loc[~ok, "_line"].to_numpy() if "_line" in social.columns else np.flatnonzero(~ok) + 1
        warn_bad_rows(path, lines, "edge(s) naming users that are in neither the user table nor the interactions")
    return social[ok]


def unix_seconds(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Unix seconds from numbers, datetimes or ISO 8601 strings; also a mask of unparseable values."""
    present = values.notna().to_numpy() & (values.astype(str).str.strip() != "").to_numpy()
    if pd.api.types.is_datetime64_any_dtype(values):
        secs = (pd.to_datetime(values, utc=True) - _EPOCH).dt.total_seconds().to_numpy(dtype=np.float64)
        return secs, np.zeros(len(values), dtype=bool)
    secs = np.array(pd.to_numeric(values, errors="coerce"), dtype=np.float64)  # writable copy
    text = present & np.isnan(secs)
    if text.any():
        parsed = pd.to_datetime(values[text].astype(str).str.strip(), utc=True, format="ISO8601", errors="coerce")
        secs[text] = (parsed - _EPOCH).dt.total_seconds().to_numpy(dtype=np.float64, na_value=np.nan)
    return secs, present & np.isnan(secs)


def load_table(
    path: PathLike,
    *,
    columns: Mapping[str, str] | None = None,
    name: str | None = None,
    social: PathLike | None = None,
    social_columns: Mapping[str, str] | None = None,
    items: PathLike | None = None,
    items_columns: Mapping[str, str] | None = None,
    social_directed: bool = False,
    skip_bad_rows: bool = False,
    rating_range: tuple[float, float] | None = None,
) -> Dataset:
    """Load interactions (and optionally social edges and an item catalog) from tables.

    columns: {their column: our column}, ours among user, item, timestamp, kind, value, split;
        only mapped columns are read. Without a mapping the file's own names must be ours.
    social / social_columns: an edge table with (after mapping) source, target[, kind, weight].
    items / items_columns: a catalog with (after mapping) ``id``; every other column is kept as an
        item attribute (title, category, ...) and the catalog's order fixes the item indices.
    """
    path = Path(path)
    inter = _read_table(path, columns, table="interactions", allowed=INTERACTION_COLUMNS,
                        required=("user", "item"), keep_unmapped=False, skip_bad_rows=skip_bad_rows)
    item_table = None
    if items is not None:
        item_table = _read_table(Path(items), items_columns, table="items", allowed=None, required=("id",),
                                 keep_unmapped=True, skip_bad_rows=skip_bad_rows)
    edges = None
    if social is not None:
        edges = _read_table(Path(social), social_columns, table="social", allowed=SOCIAL_COLUMNS,
                            required=("source", "target"), keep_unmapped=False, skip_bad_rows=skip_bad_rows)
        edges = drop_unknown_edges(edges, inter["user"], skip_bad_rows=skip_bad_rows)
    return build_dataset(name or path.stem, inter, social=edges, social_directed=social_directed,
                         items=item_table, rating_range=rating_range)


def _has_pyarrow() -> bool:
    return importlib.util.find_spec("pyarrow") is not None


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].replace('""', '"')
    return text


def _read_table(
    path: Path,
    mapping: Mapping[str, str] | None,
    *,
    table: str,
    allowed: tuple[str, ...] | None,
    required: tuple[str, ...],
    keep_unmapped: bool,
    skip_bad_rows: bool,
) -> pd.DataFrame:
    """Read one table in any supported format, map its columns and validate every row."""
    check_exists(path, f"{table} file")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        sep = "," if suffix == ".csv" else "\t"
        header = read_header(path, sep=sep)
        if len(set(header)) != len(header):
            raise DataError(f"the header names a column twice: {header}", path=str(path), line=1,
                            fix="Give every column its own name")
        rename = _mapping(header, mapping, path, table, allowed, required, keep_unmapped, header_line=1)
        cols = [Column(rename.get(h, f"_unmapped{i}"), _unquote) for i, h in enumerate(header)]
        df = read_delimited(path, cols, sep=sep, header=True, skip_bad_rows=skip_bad_rows)
        df = df.drop(columns=[c for c in df.columns if c.startswith("_unmapped")])
    elif suffix == ".parquet":
        if not _has_pyarrow():
            raise MissingDependencyError("pyarrow", "parquet", "Reading Parquet")
        raw = pd.read_parquet(path)
        if raw.empty:
            raise DataError("the file holds no rows", path=str(path), fix="Check that the file was written completely")
        rename = _mapping([str(c) for c in raw.columns], mapping, path, table, allowed, required, keep_unmapped)
        df = raw[list(rename)].rename(columns=rename)
        df["_line"] = np.arange(1, len(df) + 1)
        df["_path"] = str(path)
    elif suffix in (".jsonl", ".json"):
        raw = _read_json(path, skip_bad_rows)
        names = [c for c in raw.columns if c != "_line"]
        rename = _mapping(names, mapping, path, table, allowed, required, keep_unmapped)
        df = raw[[*rename, "_line"]].rename(columns=rename)
        df["_path"] = str(path)
    else:
        raise DataError(f"unsupported file type {suffix!r}", path=str(path),
                        fix="Use .csv, .tsv, .parquet, .jsonl or .json")
    return _validate(df, path, skip_bad_rows)


def _mapping(
    available: list[str],
    mapping: Mapping[str, str] | None,
    path: Path,
    table: str,
    allowed: tuple[str, ...] | None,
    required: tuple[str, ...],
    keep_unmapped: bool,
    header_line: int | None = None,
) -> dict[str, str]:
    """{their column: our column} for the columns to keep, after checking the mapping against the file."""
    if mapping is None:
        rename = {c: c for c in available if keep_unmapped or (allowed is not None and c in allowed)}
    else:
        absent = [c for c in mapping if c not in available]
        if absent:
            raise DataError(f"column {absent[0]!r} named in the column mapping is not in the file; "
                            f"it has {available}", path=str(path), line=header_line, field=absent[0],
                            fix="Fix the column mapping")
        if allowed is not None:
            unknown = [ours for ours in mapping.values() if ours not in allowed]
            if unknown:
                raise DataError(f"the column mapping maps to {unknown[0]!r}, which is not one of {list(allowed)}",
                                path=str(path), fix="Map your columns to our names")
        rename = dict(mapping)
        if keep_unmapped:
            rename.update({c: c for c in available if c not in rename and c not in rename.values()})
    targets = list(rename.values())
    twice = sorted({t for t in targets if targets.count(t) > 1})
    if twice:
        raise DataError(f"two columns map to {twice[0]!r}", path=str(path), fix="Map one column to each name")
    for need in required:
        if need not in targets:
            hint = "{'<your column>': '" + need + "'}"
            raise DataError(f"the {table} table has no {need!r} column; it has {available}",
                            path=str(path), line=header_line, field=need,
                            fix=f"Pass a column mapping such as {hint}")
    return rename


def _validate(df: pd.DataFrame, path: Path, skip_bad_rows: bool) -> pd.DataFrame:
    """Check ids, numbers and timestamps column by column (vectorised); raise or drop bad rows."""
    bad = np.zeros(len(df), dtype=bool)
    first: tuple[int, str, str] | None = None  # (position, field, problem)
    for col in [c for c in df.columns if not c.startswith("_")]:
        kind = _COLUMN_TYPES.get(col)
        values = df[col]
        if kind == "id":
            if pd.api.types.is_float_dtype(values) and bool((values.dropna() % 1 == 0).all()):
                values = values.astype("Int64")  # integer ids that a missing value turned into floats
            text = values.astype(str).str.strip()
            col_bad = values.isna().to_numpy() | (text == "").to_numpy()
            df[col] = text.where(~col_bad)
        elif kind == "number":
            nums = pd.to_numeric(values.replace("", np.nan), errors="coerce")
            col_bad = nums.isna().to_numpy() & values.notna().to_numpy() & (values.astype(str) != "").to_numpy()
            df[col] = nums.to_numpy(dtype=np.float64, na_value=np.nan)
        elif kind == "timestamp":
            df[col], col_bad = unix_seconds(values)
        else:
            continue
        if col_bad.any():
            pos = int(np.flatnonzero(col_bad)[0])
            if first is None or pos < first[0]:
                shown = "missing" if kind == "id" else f"{values.iloc[pos]!r} is not {_TYPE_NAMES[kind]}"
                first = (pos, col, shown if kind != "id" else f"the {col} id is missing or empty")
            bad |= col_bad
    if first is None:
        return df
    lines = df["_line"].to_numpy()
    if not skip_bad_rows:
        pos, field, problem = first
        n = int(bad.sum())
        more = f" ({n} bad row(s) in all; nothing was loaded)" if n > 1 else " (nothing was loaded)"
        raise DataError(problem + more, path=str(path), line=int(lines[pos]), field=field,
                        fix="Fix the row, or pass skip_bad_rows=True to drop bad rows and load the rest")
    warn_bad_rows(path, lines[bad], "bad row(s)")
    kept = df[~bad]
    if kept.empty:
        raise DataError("no row is valid", path=str(path), fix="Check the column mapping and the file")
    return kept


_BETWEEN_RECORDS = re.compile(r"\s*")
_BETWEEN_ELEMENTS = re.compile(r"[\s,]*")


def _read_json(path: Path, skip_bad_rows: bool) -> pd.DataFrame:
    """JSON objects one per line, one after another, or in one top-level array; with line numbers."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"the file is not valid utf-8 text ({exc.reason})", path=str(path),
                        fix="JSON files must be UTF-8") from None
    decoder = json.JSONDecoder()
    records: list[dict[str, object]] = []
    lines: list[int] = []
    bad: list[tuple[int, str]] = []
    pos = _BETWEEN_RECORDS.match(text).end()  # type: ignore[union-attr]
    in_array = text.startswith("[", pos)
    pos += in_array
    gap = _BETWEEN_ELEMENTS if in_array else _BETWEEN_RECORDS
    line, counted = 1, 0  # line number at position `counted` (counted incrementally: files are big)
    while True:
        pos = gap.match(text, pos).end()  # type: ignore[union-attr]
        if pos >= len(text) or (in_array and text[pos] == "]"):
            break
        line += text.count("\n", counted, pos)
        counted = pos
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            bad.append((line, f"the record is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"))
            if not skip_bad_rows:
                break
            nxt = text.find("\n", pos)  # resynchronise at the next line (JSON lines)
            if nxt < 0:
                break
            pos = nxt + 1
            continue
        if isinstance(obj, dict):
            records.append(obj)
            lines.append(line)
        else:
            bad.append((line, f"a JSON {type(obj).__name__} where an object was expected"))
    if bad:
        if not skip_bad_rows:
            raise DataError(bad[0][1] + " (nothing was loaded)", path=str(path), line=bad[0][0],
                            fix="Fix the record, or pass skip_bad_rows=True to drop bad records and load the rest")
        warn_bad_rows(path, [b[0] for b in bad], "bad record(s)")
    if not records:
        raise DataError("the file holds no JSON records", path=str(path),
                        fix="Check that the file was copied completely")
    df = pd.DataFrame.from_records(records)
    df["_line"] = np.asarray(lines, dtype=np.int64)
    return df
