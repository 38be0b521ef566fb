"""Sina Weibo cascades from the CED rumour dataset (``data/weibo-ced``; Song et al. 2018).

Three tab-separated files with a header line:

- ``items.tsv``: item_id, label (rumor / nonrumor), time, reposts, comments, likes,
  author_followers (may be empty), text (the post, Chinese). ``time`` is unix seconds or, for
  some posts, Weibo's API form ``Sat Jun 29 12:40:09 +0800 2013``.
- ``interactions.tsv``: uid, item_id, label, date, mid, parent_uid, text (the user's own words,
  often empty). ``date`` is ``2012-09-11 14:33:28`` or, on a few rows, ``03月13日 12:45``
  (month and day only). Both are Beijing time (UTC+8: with that offset no engagement precedes
  its post). A month-day date takes the year of its post, or the next year when that would put
  it before the post.
- ``social_edges.tsv``: src_uid, dst_uid, n_reposts_or_replies (src reposted or replied to dst).

How they become a `Dataset`:

- items: every post, with columns label, rumour (bool), timestamp, reposts, comments, likes,
  author_followers (NaN where empty), text; the post is the item's "description" text;
- interactions: one row per engagement (kind "comment" when the user wrote something,
  "repost" when not; value 1; timestamp from ``date``); users are the engaging uids;
- texts: a comment is attached twice, as the user's own text (owner "user", field "comment")
  and as what is said about the post (owner "item", field "comment"), with its time, so
  profiles built for training leave out comments of held-out pairs (`held_out_reviews`);
- social: the repost/reply graph, directed (kind "repost", weight = the count). Edges naming
  a uid that never engaged with a post are dropped (noted).
"""

from __future__ import annotations

import os
import re
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from socialrec.errors import DataError
from socialrec.ingest.read import BadRowsWarning, Column, check_exists, int_col, read_delimited, str_col
from socialrec.ingest.schema import Dataset, build_dataset, texts_of_both_sides

FOLDER = "weibo-ced"
LABELS = ("rumor", "nonrumor")
BEIJING = timezone(timedelta(hours=8))
_MONTH_DAY = re.compile(r"^(\d{1,2})月(\d{1,2})日\s+(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_API_TIME = "%a %b %d %H:%M:%S %z %Y"


def parse_post_time(text: str) -> float:
    """A post's time as unix seconds: digits are unix seconds, else Weibo's API form
    ``Sat Jun 29 12:40:09 +0800 2013``. Raises ValueError for anything else."""
    text = text.strip()
    if text.isdigit():
        return float(text)
    return datetime.strptime(text, _API_TIME).timestamp()


def parse_engagement_time(text: str, post_time: float) -> float:
    """An engagement's time as unix seconds from ``2012-09-11 14:33:28`` or ``03月13日 12:45``
    (both Beijing time). The month-day form takes the post's year (in Beijing), or the next year
    when that date would fall more than a day before the post. Raises ValueError otherwise."""
    text = text.strip()
    m = _MONTH_DAY.match(text)
    if m is None:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING).timestamp()
    month, day, hour, minute, second = (int(g) if g else 0 for g in m.groups())
    year = datetime.fromtimestamp(post_time, BEIJING).year
    when = datetime(year, month, day, hour, minute, second, tzinfo=BEIJING).timestamp()
    if when < post_time - 86400:
        when = datetime(year + 1, month, day, hour, minute, second, tzinfo=BEIJING).timestamp()
    return when


def _label(text: str) -> str:
    if text not in LABELS:
        raise ValueError(text)
    return text


def _count(text: str) -> float:
    return float("nan") if text == "" else float(int(text))


def _check_times(df: pd.DataFrame, parsed: list[float | None], field: str, what: str,
                 skip_bad_rows: bool) -> np.ndarray:
    """Rows whose time parsed; a row that did not is an error, or with ``skip_bad_rows`` is
    dropped with a `BadRowsWarning`."""
    ok = np.array([v is not None for v in parsed], dtype=bool)
    if not ok.all():
        bad = np.flatnonzero(~ok)
        row = int(bad[0])
        if not skip_bad_rows:
            raise DataError(f"{df[field].iloc[row]!r} is not {what} ({len(bad)} such row(s); nothing was loaded)",
                            path=str(df["_path"].iloc[row]), line=int(df["_line"].iloc[row]), field=field,
                            fix="Fix the row (the dataset's README lists the accepted formats), or pass "
                                "skip_bad_rows=True to drop such rows")
        lines = ", ".join(str(int(v)) for v in df["_line"].to_numpy()[bad[:10]])
        warnings.warn(f"{df['_path'].iloc[row]}: skipped {len(bad)} row(s) with a bad {field} at line(s) {lines}"
                      + (" ..." if len(bad) > 10 else ""), BadRowsWarning, stacklevel=3)
    return ok


def _try(fn: object, *args: object) -> float | None:
    try:
        return fn(*args)  # type: ignore[operator, no-any-return]
    except (ValueError, OverflowError):
        return None


def load_weibo_ced(data: str | os.PathLike[str], *, skip_bad_rows: bool = False) -> Dataset:
    """Load the Weibo CED subset from ``data/weibo-ced`` (see the module docstring). A bad row
    raises `DataError` naming file, line and field; with ``skip_bad_rows`` it is dropped and
    counted in a `BadRowsWarning` (and so are engagements with the posts of dropped rows)."""
    folder = check_exists(Path(data) / FOLDER, "Weibo CED folder")
    posts = read_delimited(folder / "items.tsv", [
        str_col("item_id"), Column("label", _label, "rumor or nonrumor"), str_col("time"), int_col("reposts"),
        int_col("comments"), int_col("likes"), Column("author_followers", _count, "an integer or empty"),
        str_col("text")], skip_bad_rows=skip_bad_rows).rename(columns={"item_id": "id"})
    post_times = [_try(parse_post_time, t) for t in posts["time"]]
    ok = _check_times(posts, post_times, "time", "a unix time or a date like 'Sat Jun 29 12:40:09 +0800 2013'",
                      skip_bad_rows)
    posts = posts[ok].reset_index(drop=True)
    post_times = [t for t, keep in zip(post_times, ok) if keep]
    dup = posts["id"].duplicated()
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataError(f"post {posts['id'].iloc[row]!r} is listed twice", path=str(posts["_path"].iloc[row]),
                        line=int(posts["_line"].iloc[row]), field="item_id", fix="Keep one row per post")
    posts["timestamp"] = np.asarray(post_times, dtype=np.float64)

    eng = read_delimited(folder / "interactions.tsv", [
        str_col("uid"), str_col("item_id"), Column("label", _label, "rumor or nonrumor"), str_col("date"),
        str_col("mid"), str_col("parent_uid"), str_col("text")], skip_bad_rows=skip_bad_rows,
    ).rename(columns={"uid": "user", "item_id": "item"})
    time_of_post = dict(zip(posts["id"], posts["timestamp"]))
    unknown = ~eng["item"].isin(time_of_post)
    if unknown.any() and skip_bad_rows:
        eng = eng[~unknown].reset_index(drop=True)
    elif unknown.any():
        row = int(np.flatnonzero(unknown.to_numpy())[0])
        raise DataError(f"engagement with post {eng['item'].iloc[row]!r}, which items.tsv does not list "
                        f"({int(unknown.sum())} such row(s))", path=str(eng["_path"].iloc[row]),
                        line=int(eng["_line"].iloc[row]), field="item_id",
                        fix="Use the three files of one export together")
    # The engagement repeats its post's label: a disagreement means the files are from different exports.
    label_of = dict(zip(posts["id"], posts["label"]))
    clash = eng["label"].to_numpy() != eng["item"].map(label_of).to_numpy()
    if clash.any():
        row = int(np.flatnonzero(clash)[0])
        raise DataError(f"engagement labelled {eng['label'].iloc[row]!r} but its post {eng['item'].iloc[row]!r} is "
                        f"{label_of[eng['item'].iloc[row]]!r} in items.tsv ({int(clash.sum())} such row(s))",
                        path=str(eng["_path"].iloc[row]), line=int(eng["_line"].iloc[row]), field="label",
                        fix="Use the three files of one export together")
    empty_user = eng["user"] == ""
    if empty_user.any() and skip_bad_rows:
        eng = eng[~empty_user].reset_index(drop=True)
    elif empty_user.any():
        row = int(np.flatnonzero(empty_user.to_numpy())[0])
        raise DataError("engagement without a uid", path=str(eng["_path"].iloc[row]),
                        line=int(eng["_line"].iloc[row]), field="uid", fix="Fix or remove the row")
    eng_times = [_try(parse_engagement_time, d, time_of_post[i]) for d, i in zip(eng["date"], eng["item"])]
    ok = _check_times(eng, eng_times, "date", "a date like '2012-09-11 14:33:28' or '03月13日 12:45'",
                      skip_bad_rows)
    eng = eng[ok].reset_index(drop=True)
    eng["timestamp"] = np.asarray([t for t, keep in zip(eng_times, ok) if keep], dtype=np.float64)
    eng["text"] = eng["text"].str.strip()
    has_text = eng["text"] != ""
    eng["kind"] = np.where(has_text, "comment", "repost")
    # One engagement listed twice (same user, post, time and kind; e.g. once per repost chain).
    n_rows = len(eng)
    once = ~eng.duplicated(["user", "item", "timestamp", "kind"])
    eng, has_text = eng[once].reset_index(drop=True), has_text[once].reset_index(drop=True)
    eng["value"] = 1.0

    edges_path = check_exists(folder / "social_edges.tsv", "Weibo CED repost graph")
    edges = None
    if len([line for line in edges_path.read_text(encoding="utf-8").split("\n") if line.strip()]) > 1:
        edges = read_delimited(edges_path, [str_col("src_uid"), str_col("dst_uid"), int_col("n_reposts_or_replies")],
                               skip_bad_rows=skip_bad_rows)
        edges = edges.rename(columns={"src_uid": "source", "dst_uid": "target", "n_reposts_or_replies": "weight"})
        edges["kind"] = "repost"

    items = pd.DataFrame({
        "id": posts["id"], "label": posts["label"], "rumour": (posts["label"] == "rumor").to_numpy(),
        "timestamp": posts["timestamp"], "reposts": posts["reposts"], "comments": posts["comments"],
        "likes": posts["likes"], "author_followers": posts["author_followers"], "text": posts["text"],
    })
    comments = eng.loc[has_text, ["user", "item", "text", "timestamp"]]
    texts = pd.concat([
        pd.DataFrame({"owner": "item", "id": posts["id"], "field": "description", "text": posts["text"],
                      "timestamp": posts["timestamp"]}),
        texts_of_both_sides(comments, "comment"),
    ], ignore_index=True)
    texts = texts[texts["text"].str.strip() != ""]
    n_comments = int(has_text.sum())
    note = (f"weibo-ced: {len(eng):,} engagements, {n_comments:,} with the user's own words (kind 'comment'), "
            f"the rest kind 'repost' ({n_rows - len(eng)} repeated message row(s) merged); dates read as Beijing time")
    return build_dataset("weibo-ced", eng[["user", "item", "timestamp", "kind", "value", "_line", "_path"]],
                         social=edges, social_directed=True, items=items, texts=texts,
                         unknown_social="drop", notes=(note,))


def rumour_labels(dataset: Dataset) -> np.ndarray:
    """1 for posts labelled rumour, 0 otherwise, per item index (a dataset without the
    ``rumour`` column raises `DataError`)."""
    if "rumour" not in dataset.item_table.columns:
        raise DataError(f"dataset {dataset.name!r} has no rumour labels (item column 'rumour')",
                        fix="Use weibo-ced, or add a boolean 'rumour' column to the items table")
    return dataset.item_table["rumour"].fillna(False).to_numpy(dtype=bool).astype(np.int8)
