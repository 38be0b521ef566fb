"""Amazon Reviews 2018 raw review files (``data/amazon-fashion-reviews``: AMAZON_FASHION 5-core).

The file is a sequence of pretty-printed JSON objects, one after another (not one per line):
``overall`` (rating 1-5), ``reviewerID``, ``reviewerName``, ``asin``, ``reviewText``,
``summary``, ``unixReviewTime``, plus ``style``, ``verified``, ``vote``, ``image``.

How the review texts are attached to the `Dataset`: each distinct review becomes

- one interaction (user = reviewerID, item = asin, kind "review", value = the star rating,
  timestamp = unixReviewTime);
- two text rows of field "review" with the same text and timestamp, one with owner "item"
  (index = the item: what people say about it) and one with owner "user" (index = the author:
  what the user writes). The text is ``summary. reviewText``. `review_pairs` recovers the
  (user, item) of each review by joining the two rows, so features can be restricted to the
  training reviews.

The reviewer's display name (``reviewerName``, real personal data) is kept out of every text
and table; the ids are opaque. The 5-core export repeats a review once per product variant
(``style``): those copies are one review and are loaded once (3,176 records -> 3,088 reviews).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from socialrec.errors import DataError
from socialrec.ingest.read import check_exists
from socialrec.ingest.schema import Dataset, build_dataset, texts_of_both_sides

FOLDER = "amazon-fashion-reviews"
FILENAME = "AMAZON_FASHION_5.json"
REQUIRED = ("overall", "reviewerID", "asin", "unixReviewTime")
_SPACE = re.compile(r"\s*")


def read_json_sequence(path: Path) -> list[dict[str, object]]:
    """Every JSON object in a file that holds them one after another (with any whitespace between)."""
    text = path.read_text(encoding="utf-8")
    decoder = json.JSONDecoder()
    out: list[dict[str, object]] = []
    pos = _SPACE.match(text, 0).end()  # type: ignore[union-attr]
    while pos < len(text):
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise DataError(f"not valid JSON after record {len(out)} ({exc.msg})", path=str(path),
                            line=exc.lineno, fix="Use the Amazon Reviews 2018 file unchanged") from None
        if not isinstance(obj, dict):
            raise DataError(f"record {len(out) + 1} is a {type(obj).__name__}, not a JSON object", path=str(path))
        out.append(obj)
        pos = _SPACE.match(text, pos).end()  # type: ignore[union-attr]
    return out


def review_text(summary: object, body: object) -> str:
    """``summary. reviewText`` (either may be missing)."""
    parts = [str(p).strip() for p in (summary, body) if isinstance(p, str) and p.strip()]
    if len(parts) == 2 and not parts[0].endswith((".", "!", "?")):
        parts[0] += "."
    return " ".join(parts)


def load_amazon_reviews(path: str | os.PathLike[str], *, name: str = "amazon-reviews") -> Dataset:
    """Load one Amazon Reviews 2018 file (a JSON-object sequence) as interactions plus review texts."""
    path = check_exists(Path(path), "Amazon reviews file")
    records = read_json_sequence(path)
    if not records:
        raise DataError("the file holds no review", path=str(path))
    df = pd.DataFrame.from_records(records)
    for col in REQUIRED:
        if col not in df.columns or df[col].isna().any():
            pos = 0 if col not in df.columns else int(np.flatnonzero(df[col].isna().to_numpy())[0])
            raise DataError(f"record {pos + 1} lacks {col!r}", path=str(path), field=col,
                            fix="Every review needs overall, reviewerID, asin and unixReviewTime")
    for col in ("summary", "reviewText"):
        if col not in df.columns:
            df[col] = None
    df["text"] = [review_text(s, b) for s, b in zip(df["summary"], df["reviewText"])]
    df["user"] = df["reviewerID"].astype(str)
    df["item"] = df["asin"].astype(str)
    df["timestamp"] = pd.to_numeric(df["unixReviewTime"], errors="coerce").astype(np.float64)
    df["value"] = pd.to_numeric(df["overall"], errors="coerce").astype(np.float32)
    # Copies of one review across product variants (style) differ only in style/image/vote.
    n_records = len(df)
    df = df.drop_duplicates(["user", "item", "timestamp", "value", "text"]).reset_index(drop=True)
    inter = df[["user", "item", "timestamp", "value"]].assign(kind="review")
    # Two reviews of one pair on the same day with the same rating are one interaction (their
    # texts are both kept).
    inter = inter.drop_duplicates(["user", "item", "timestamp", "value"])
    has_text = df["text"] != ""
    reviews = df.loc[has_text, ["user", "item", "text", "timestamp"]]
    texts = texts_of_both_sides(reviews, "review")
    note = (f"{n_records:,} records hold {len(df):,} distinct reviews (copies across product variants "
            f"merged); reviewer names left out")
    return build_dataset(name, inter, texts=texts, rating_range=(1.0, 5.0), notes=(note,))


def load_amazon_fashion(data: str | os.PathLike[str]) -> Dataset:
    """AMAZON_FASHION 5-core from ``data/amazon-fashion-reviews`` (406 users, 31 items)."""
    return load_amazon_reviews(Path(data) / FOLDER / FILENAME, name="amazon-fashion-reviews")


def review_pairs(dataset: Dataset, field: str = "review") -> pd.DataFrame:
    """The (user, item, text, timestamp) of each review, found by joining the item-owned and
    user-owned text rows with the same field, text and timestamp (how `load_amazon_reviews`
    attaches a review to both). Ambiguous matches (one text and time shared by several users
    and items) give one row per combination."""
    t = dataset.texts[dataset.texts["field"] == field]
    items = t[t["owner"] == "item"][["index", "text", "timestamp"]].rename(columns={"index": "item"})
    users = t[t["owner"] == "user"][["index", "text", "timestamp"]].rename(columns={"index": "user"})
    # NaN timestamps never compare equal in a merge key: use a sentinel.
    items = items.assign(timestamp=items["timestamp"].fillna(-1.0))
    users = users.assign(timestamp=users["timestamp"].fillna(-1.0))
    pairs = users.merge(items, on=["text", "timestamp"], how="inner")
    return pairs[["user", "item", "text", "timestamp"]].drop_duplicates().reset_index(drop=True)
