"""Reading delimited text files with validation that names the file, line and field.

A file with a bad row loads nothing unless the caller passes ``skip_bad_rows=True``; then the
bad rows are dropped and reported in a `BadRowsWarning` (count and the first few line numbers).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from socialrec.errors import DataError

Parser = Callable[[str], object]


class BadRowsWarning(UserWarning):
    """Rows that failed validation were skipped at the caller's request."""


def parse_int(text: str) -> int:
    return int(text)


def parse_float(text: str) -> float:
    value = float(text)
    if value != value:  # NaN in a numeric column is as bad as text
        raise ValueError("NaN")
    return value


def parse_str(text: str) -> str:
    return text


@dataclass(frozen=True)
class Column:
    """One expected column: its name in the output table and how to parse it."""

    name: str
    parse: Parser = parse_str
    type_name: str = "text"


def int_col(name: str) -> Column:
    return Column(name, parse_int, "an integer")


def float_col(name: str) -> Column:
    return Column(name, parse_float, "a number")


def str_col(name: str) -> Column:
    return Column(name, parse_str, "text")


def check_exists(path: Path, what: str) -> Path:
    if not path.exists():
        raise DataError(
            f"{what} not found", path=str(path),
            fix="Set $SOCIALREC_DATA or pass the directory that holds the dataset's files",
        )
    return path


def read_delimited(
    path: str | Path,
    columns: list[Column],
    *,
    sep: str = "\t",
    header: bool | list[str] = True,
    encoding: str = "utf-8",
    skip_bad_rows: bool = False,
    extra_columns: str = "error",
    keep_line_numbers: bool = True,
) -> pd.DataFrame:
    """Read a delimited file into a DataFrame, validating every row.

    header: True to skip (and check the count of) a header line, False if there is none.
    extra_columns: "error" (a row with more fields than expected is bad) or "ignore".
    The result has one column per `Column` plus ``_line`` (1-based line number) and ``_path``.
    """
    path = check_exists(Path(path), "data file")
    names = [c.name for c in columns]
    n = len(columns)
    values: list[list[object]] = [[] for _ in columns]
    line_numbers: list[int] = []
    bad: list[tuple[int, str, str | None]] = []
    with open(path, encoding=encoding, errors="strict", newline="") as fh:
        try:
            # Rows end at "\n" (or "\r\n") only: str.splitlines would also break a row at the
            # Unicode line separators (U+2028, U+0085...) that scraped post texts hold.
            lines = [line.removesuffix("\r") for line in fh.read().split("\n")]
        except UnicodeDecodeError as exc:
            raise DataError(f"the file is not valid {encoding} text ({exc.reason})", path=str(path),
                            fix="Pass the right encoding") from None
    start = 0
    if header:
        if not lines:
            raise DataError("the file is empty (no header line)", path=str(path),
                            fix="Check that the file was copied completely")
        head = lines[0].split(sep)
        if len(head) < n:
            raise DataError(
                f"the header has {len(head)} column(s), expected {n} ({', '.join(names)})",
                path=str(path), line=1, fix="Check the separator and the column mapping")
        start = 1
    for lineno, text in enumerate(lines[start:], start=start + 1):
        if not text.strip():
            continue
        fields = text.split(sep)
        if len(fields) < n or (len(fields) > n and extra_columns == "error"):
            bad.append((lineno, f"has {len(fields)} field(s), expected {n} ({', '.join(names)}); "
                        "the row may be truncated or use another separator", None))
            continue
        parsed: list[object] = []
        for col, raw in zip(columns, fields):
            try:
                parsed.append(col.parse(raw.strip()))
            except (ValueError, TypeError):
                bad.append((lineno, f"{raw!r} is not {col.type_name}", col.name))
                break
        else:
            for store, value in zip(values, parsed):
                store.append(value)
            line_numbers.append(lineno)
    if bad:
        if not skip_bad_rows:
            lineno, problem, field = bad[0]
            more = f" ({len(bad)} bad row(s) in all; nothing was loaded)" if len(bad) > 1 else " (nothing was loaded)"
            raise DataError(problem + more, path=str(path), line=lineno, field=field,
                            fix="Fix the row, or pass skip_bad_rows=True to drop bad rows and load the rest")
        shown = ", ".join(str(b[0]) for b in bad[:10])
        warnings.warn(f"{path}: skipped {len(bad)} bad row(s) at line(s) {shown}"
                      + (" ..." if len(bad) > 10 else ""), BadRowsWarning, stacklevel=2)
    if not line_numbers:
        raise DataError("the file holds no data rows", path=str(path),
                        fix="Check that the file was copied completely")
    df = pd.DataFrame({name: vals for name, vals in zip(names, values)})
    if keep_line_numbers:
        df["_line"] = np.asarray(line_numbers, dtype=np.int64)
        df["_path"] = str(path)
    return df

