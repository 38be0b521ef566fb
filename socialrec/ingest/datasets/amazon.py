"""Amazon Reviews 2018 Video Games as processed by UniSRec / LLMRank (``data/amazon-games``).

``Games.item``: ``item_id:token  title:token_seq`` (16,859 games). ``Games-6k.test.inter``:
``user_id  item_id_list  item_id`` = user, space-separated history in time order (4 to 49
items), test target. ``Games-6k.valid.inter`` is the same with the last history item moved out
as the validation target. ``Games.random``: per user, 100 random candidate items (LLMRank's
fixed negatives for its 200 evaluation users).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from socialrec.errors import DataError
from socialrec.ingest.datasets.tabular import read_header
from socialrec.ingest.read import check_exists, read_delimited, str_col
from socialrec.ingest.schema import Dataset, build_dataset

FOLDER = "amazon-games"
SEQUENCE_HEADER = ["user_id:token", "item_id_list:token_seq", "item_id:token"]


def _read_sequences(path: Path, skip_bad_rows: bool) -> pd.DataFrame:
    header = read_header(path, sep="\t")
    if header != SEQUENCE_HEADER:
        raise DataError(f"the header is {header}, expected {SEQUENCE_HEADER}", path=str(path), line=1,
                        fix="Use the UniSRec/LLMRank .inter files unchanged")
    df = read_delimited(path, [str_col("user"), str_col("history"), str_col("target")], sep="\t",
                        skip_bad_rows=skip_bad_rows)
    empty = (df["user"] == "") | (df["target"] == "")
    if empty.any():
        pos = int(np.flatnonzero(empty.to_numpy())[0])
        raise DataError("the user or target item id is empty", path=str(path), line=int(df["_line"].iloc[pos]),
                        field="user_id" if df["user"].iloc[pos] == "" else "item_id")
    twice = df["user"].duplicated()
    if twice.any():
        pos = int(np.flatnonzero(twice.to_numpy())[0])
        raise DataError(f"user {df['user'].iloc[pos]!r} has a second row", path=str(path),
                        line=int(df["_line"].iloc[pos]), field="user_id", fix="Keep one row per user")
    return df


def load_amazon_games(data: str | os.PathLike[str], *, skip_bad_rows: bool = False) -> Dataset:
    """Load the Games sequences as interactions with their leave-one-out split.

    Per user the history items except the last are "train", the last history item (the
    validation target, cross-checked against ``Games-6k.valid.inter``) is "valid", and the test
    target is "test"; timestamp = position in the sequence (0, 1, 2, ...), so a leave-one-out
    by time gives the same split. Kind "review" (each item is a reviewed purchase), no value.
    Items: all of ``Games.item`` in file order with their title (also a "title" text).
    """
    folder = check_exists(Path(data) / FOLDER, "Amazon Games folder")
    item_path = folder / "Games.item"
    if read_header(item_path, sep="\t") != ["item_id:token", "title:token_seq"]:
        raise DataError("the header is not item_id:token, title:token_seq", path=str(item_path), line=1)
    items = read_delimited(item_path, [str_col("id"), str_col("title")], sep="\t", skip_bad_rows=skip_bad_rows)
    items = items.drop(columns=["_line", "_path"])

    test = _read_sequences(folder / "Games-6k.test.inter", skip_bad_rows)
    valid = _read_sequences(folder / "Games-6k.valid.inter", skip_bad_rows)
    history = test["history"].str.split()
    lengths = history.str.len().to_numpy()
    if (lengths == 0).any():
        pos = int(np.flatnonzero(lengths == 0)[0])
        raise DataError("the history is empty (no validation item)", path=str(test["_path"].iloc[0]),
                        line=int(test["_line"].iloc[pos]), field="item_id_list")
    _check_valid(test, valid, history)

    flat = np.concatenate(history.to_numpy())
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    position = np.arange(len(flat)) - starts
    hist = pd.DataFrame({
        "user": np.repeat(test["user"].to_numpy(), lengths),
        "item": flat,
        "timestamp": position.astype(np.float64),
        "split": np.where(position == np.repeat(lengths - 1, lengths), "valid", "train"),
        "_line": np.repeat(test["_line"].to_numpy(), lengths),
    })
    targets = pd.DataFrame({"user": test["user"], "item": test["target"], "timestamp": lengths.astype(np.float64),
                            "split": "test", "_line": test["_line"]})
    inter = pd.concat([hist, targets], ignore_index=True).sort_values(["_line", "timestamp"], kind="stable")
    inter["kind"] = "review"
    inter["_path"] = test["_path"].iloc[0]

    unknown = ~inter["item"].isin(items["id"])
    if unknown.any():
        pos = int(np.flatnonzero(unknown.to_numpy())[0])
        raise DataError(f"item {inter['item'].iloc[pos]!r} is not in Games.item ({int(unknown.sum())} such row(s))",
                        path=str(test["_path"].iloc[0]), line=int(inter["_line"].iloc[pos]), field="item_id",
                        fix="Use the Games.item that came with the .inter files")
    users = pd.DataFrame({"id": test["user"]})
    texts = pd.DataFrame({"owner": "item", "id": items["id"], "field": "title", "text": items["title"]})
    return build_dataset("amazon-games", inter, items=items, users=users, texts=texts)


def _check_valid(test: pd.DataFrame, valid: pd.DataFrame, history: pd.Series) -> None:
    """The valid file must hold, per user, the test history without its last item as target."""
    path = str(valid["_path"].iloc[0]) if len(valid) else None
    merged = valid.merge(pd.DataFrame({"user": test["user"], "last": history.str[-1],
                                       "prefix": history.str[:-1].str.join(" ")}),
                         on="user", how="left", validate="one_to_one")
    for mask, field, problem in (
        (merged["last"].isna(), "user_id", "the user is not in the test file"),
        (merged["target"] != merged["last"], "item_id", "the validation target is not the last test-history item"),
        (merged["history"].str.split().str.join(" ") != merged["prefix"], "item_id_list",
         "the history is not the test history without its last item"),
    ):
        if mask.any():
            pos = int(np.flatnonzero(mask.to_numpy())[0])
            raise DataError(f"{problem} ({int(mask.sum())} such row(s))", path=path,
                            line=int(merged["_line"].iloc[pos]), field=field,
                            fix="Use the valid and test files of the same processing run")
    if len(valid) != len(test):
        raise DataError(f"{len(valid)} users in the valid file but {len(test)} in the test file", path=path,
                        fix="Use the valid and test files of the same processing run")


def load_llmrank_tuning_candidates(data: str | os.PathLike[str]) -> dict[str, list[str]] | None:
    """``Games-6k.random``'s 6,000 users' candidate lists, for choosing settings on validation items
    (LLMRank's test users are 200 of them); None when the file is not there."""
    if not (Path(data) / FOLDER / "Games-6k.random").exists():
        return None
    return load_llmrank_candidates(data, filename="Games-6k.random")


def load_llmrank_candidates(data: str | os.PathLike[str], *, filename: str = "Games.random") -> dict[str, list[str]]:
    """LLMRank's fixed candidates: user id -> 100 random item ids, from ``data/amazon-games/Games.random``.

    LLMRank ranks the true item plus the first 19 of these. ``filename="Games-6k.random"`` reads
    the 6,000-user variant.
    """
    path = check_exists(Path(data) / FOLDER / filename, "LLMRank candidate file")
    table = read_delimited(path, [str_col("user"), str_col("items")], sep="\t", header=False)
    candidates = dict(zip(table["user"], table["items"].str.split()))
    if len(candidates) != len(table):
        dup = table.loc[table["user"].duplicated(), ["user", "_line"]].iloc[0]
        raise DataError(f"user {dup['user']!r} is listed twice", path=str(path), line=int(dup["_line"]), field="user")
    return candidates
