"""Last.fm HetRec 2011: who listens to which artist, friendships, and the tags users gave artists.

Encodings differ by file: ``artists.dat`` is UTF-8 (about 1,500 names hold non-ASCII letters;
some were already double-encoded upstream, e.g. "BallakÃ© Sissoko", and are kept as they are),
``tags.dat`` is latin-1 (8 tags such as "fußball"), the other files are ASCII.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from socialrec.ingest.read import check_exists, float_col, int_col, read_delimited, str_col
from socialrec.ingest.schema import Dataset, build_dataset

FOLDER = "lastfm-hetrec2011"
TOP_TAGS = 10


def top_tags(assignments: pd.DataFrame, tag_names: pd.Series, k: int = TOP_TAGS) -> pd.Series:
    """Per artist, the tuple of its ``k`` most-assigned tag names (ties: lower tag id first).

    ``assignments`` has columns artist, tag (one row per user-artist-tag assignment);
    ``tag_names`` maps tag id -> name.
    """
    counts = assignments.groupby(["artist", "tag"], sort=False).size().rename("n").reset_index()
    counts = counts.sort_values(["artist", "n", "tag"], ascending=[True, False, True], kind="stable")
    counts = counts.groupby("artist", sort=False).head(k)
    counts["name"] = counts["tag"].map(tag_names)
    return counts.groupby("artist", sort=False)["name"].agg(tuple)


def load_lastfm(data: str | os.PathLike[str], *, skip_bad_rows: bool = False) -> Dataset:
    """Load Last.fm HetRec 2011 from ``data/lastfm-hetrec2011``.

    Interactions: the 92,834 user-artist rows (kind "play", value = listening count, no time).
    Social: the friend relation, stored in the file once per direction (25,434 rows = 12,717
    pairs), loaded as undirected "friend" edges. Items: all 17,632 artists of ``artists.dat`` in
    file order with title (the name), url, picture_url, ``tags`` (top 10 tag names by assignment
    count) and ``category`` (the most-assigned tag; None for the 5,499 untagged artists).
    ``user_taggedartists.dat`` also tags 390 artists that ``artists.dat`` does not list; those
    assignments are ignored (noted in ``Dataset.notes``). Texts: per artist a "title" row and,
    when tagged, a "tag" row holding its top tags joined with ", " (tags contain spaces).
    Tag assignments: the 184,941 rows of ``user_taggedartists.dat`` on listed artists (user, artist, tag name).
    """
    folder = check_exists(Path(data) / FOLDER, "Last.fm HetRec 2011 folder")
    artists = read_delimited(folder / "artists.dat",
                             [int_col("id"), str_col("title"), str_col("url"), str_col("picture_url")],
                             encoding="utf-8", skip_bad_rows=skip_bad_rows)
    tags = read_delimited(folder / "tags.dat", [int_col("tag"), str_col("name")], encoding="latin-1",
                          skip_bad_rows=skip_bad_rows)
    tagged = read_delimited(folder / "user_taggedartists.dat",
                            [int_col("user"), int_col("artist"), int_col("tag"), int_col("day"),
                             int_col("month"), int_col("year")], skip_bad_rows=skip_bad_rows,
                            keep_line_numbers=False)
    plays = read_delimited(folder / "user_artists.dat", [int_col("user"), int_col("item"), float_col("weight")],
                           skip_bad_rows=skip_bad_rows).rename(columns={"weight": "value"})
    friends = read_delimited(folder / "user_friends.dat", [int_col("source"), int_col("target")],
                             skip_bad_rows=skip_bad_rows)

    known = tagged["artist"].isin(artists["id"])
    notes: tuple[str, ...] = ()
    if not known.all():
        notes = (f"lastfm: ignored {int((~known).sum())} tag assignment(s) on "
                 f"{tagged.loc[~known, 'artist'].nunique()} artist(s) missing from artists.dat",)
    artist_tags = top_tags(tagged[known], tags.set_index("tag")["name"])
    # 17,632 artists: plain lists are clearer than coaxing pandas into holding tuples.
    tag_tuples = [t if isinstance(t, tuple) else () for t in artists["id"].map(artist_tags)]
    items = pd.DataFrame({
        "id": artists["id"].astype(str),
        "title": artists["title"],
        "url": artists["url"].replace("", None),
        "picture_url": artists["picture_url"].replace("", None),
        "tags": tag_tuples,
        "category": pd.Series([t[0] if t else None for t in tag_tuples], dtype=object),  # None, not NaN
    })
    has_tags = items["category"].notna()

    plays["kind"] = "play"
    friends["kind"] = "friend"
    texts = pd.concat([
        pd.DataFrame({"owner": "item", "id": items["id"], "field": "title", "text": items["title"]}),
        pd.DataFrame({"owner": "item", "id": items["id"][has_tags], "field": "tag",
                      "text": items["tags"][has_tags].str.join(", ")}),
    ], ignore_index=True)
    users = pd.DataFrame({"id": plays["user"].drop_duplicates().astype(str)})
    tag_names = tags.set_index("tag")["name"]
    assignments = pd.DataFrame({"user": tagged["user"][known].astype(str), "item": tagged["artist"][known].astype(str),
                                "tag": tagged["tag"][known].map(tag_names)})
    return build_dataset("lastfm", plays, social=friends, social_directed=False, items=items, users=users,
                         texts=texts, tag_assignments=assignments, notes=notes)
