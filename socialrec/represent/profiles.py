"""Text profiles: one string per item (and per user) for a text encoder to embed.

An item's profile joins, in this order, its title, its descriptors (categories, genres, tags),
its description, any other item text, and up to ``max_reviews`` review snippets (most recent
first). Fields come from the dataset's ``texts`` table; item-table columns (title, name, tags,
genres, category, description) fill in the fields the texts table lacks. Values made only of
digits are ids, not text, and are skipped.

A user's profile joins their own texts (posts, comments, reviews; most recent first) and the
titles of their most recent training items.

What the bundled datasets hold (see `TEXT_BY_DATASET`):

- lastfm / lastfm-recbole: artist names, plus the top tags users gave each artist (lastfm only);
- movielens-100k: movie titles (with year) and genres;
- amazon-games: game titles only (no reviews or descriptions in this export);
- ciao (Tang): one of 28 category names per item: far too thin to tell items apart
  (`ThinTextWarning`);
- ciao-recdiff: no text at all (category ids only): `item_profiles` raises `DataError`.
"""

from __future__ import annotations

import html
import warnings
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from socialrec.errors import DataError
from socialrec.ingest.schema import Dataset
from socialrec.represent.encoders import has_cjk

TEXT_BY_DATASET = {
    "lastfm": "artist names + top tags",
    "lastfm-recbole": "artist names",
    "movielens-100k": "titles (with year) + genres",
    "amazon-games": "titles only",
    "ciao": "category names only (28 values: too thin to tell items apart)",
    "ciao-recdiff": "none (category ids only): text models cannot run on it",
}

TITLE_FIELDS = ("title", "name")
DESCRIPTOR_FIELDS = {"genre": "Genres", "tag": "Tags", "category": "Category"}  # a value already
# named by an earlier descriptor (a category that is the first genre) is not repeated
DESCRIPTION_FIELDS = ("description", "summary")
REVIEW_FIELDS = ("review", "comment", "post")
# Item-table columns used when the texts table has no rows of that field.
_TABLE_COLUMNS = {"title": "title", "name": "title", "category": "category", "genres": "genre",
                  "tags": "tag", "description": "description"}


class ThinTextWarning(UserWarning):
    """The dataset's text is too sparse or too repetitive for a text model to tell items apart."""


def _is_text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip()) and not value.strip().isdigit()


def _cell_text(value: object) -> str:
    """An item-table cell as text: tuples/lists (tags, genres) joined with ', '."""
    if isinstance(value, (tuple, list, np.ndarray)):
        return ", ".join(html.unescape(str(v)) for v in value if _is_text(str(v)))
    return html.unescape(value.strip()) if isinstance(value, str) and _is_text(value) else ""


def held_out_reviews(dataset: Dataset, user_items: sp.csr_matrix | None) -> set[tuple[str, float]]:
    """(text, timestamp) keys of reviews written about (user, item) pairs outside ``user_items``:
    a held-out review describes the very item a model must find, so profiles built for training
    leave it out of both the item's and the author's texts."""
    if user_items is None or not len(dataset.texts):
        return set()
    from socialrec.ingest.datasets.amazon_reviews import review_pairs

    fields = [f for f in dataset.texts["field"].unique() if str(f).lower() in REVIEW_FIELDS]
    pairs = [review_pairs(dataset, f) for f in fields]
    pairs = [p for p in pairs if len(p)]
    if not pairs:
        return set()
    allp = pd.concat(pairs, ignore_index=True)
    ui = user_items.tocsr()
    held = np.asarray(ui[allp["user"].to_numpy(), allp["item"].to_numpy()]).ravel() == 0
    return set(zip(allp["text"][held].tolist(), allp["timestamp"][held].tolist()))


def _drop_held_out(t: pd.DataFrame, held: set[tuple[str, float]]) -> pd.DataFrame:
    if not held:
        return t
    keys = zip(t["text"].tolist(), t["timestamp"].fillna(-1.0).tolist())  # review_pairs' sentinel
    return t[np.fromiter((k not in held for k in keys), dtype=bool, count=len(t))]


def _owner_fields(dataset: Dataset, owner: str, held: set[tuple[str, float]] | None = None) -> pd.DataFrame:
    t = dataset.texts
    t = t[(t["owner"] == owner) & t["text"].map(_is_text)]
    t = _drop_held_out(t, held or set())
    # Scraped text keeps HTML entities ("&amp;" in Amazon titles): the encoder should see "&".
    return t.assign(field=t["field"].str.lower(), text=t["text"].map(html.unescape))


def _field_columns(dataset: Dataset, max_reviews: int, review_chars: int,
                   held: set[tuple[str, float]] | None = None) -> tuple[dict[str, list[str]], list[str]]:
    """Per field name, one string per item (empty where absent); and the field order."""
    n = dataset.n_items
    texts = _owner_fields(dataset, "item", held)
    columns: dict[str, list[str]] = {}
    plain = texts[~texts["field"].isin(REVIEW_FIELDS)]
    for field, group in plain.groupby("field", sort=True):
        sep = ", " if field in DESCRIPTOR_FIELDS else " "
        joined = group.drop_duplicates(["index", "text"]).groupby("index")["text"].agg(sep.join)
        col = [""] * n
        for i, s in zip(joined.index.to_numpy(), joined.to_numpy()):
            col[int(i)] = s
        columns[str(field)] = col
    for column, field in _TABLE_COLUMNS.items():
        if field in columns or column not in dataset.item_table.columns:
            continue
        values = [_cell_text(v) for v in dataset.item_table[column].to_numpy()[:n]]
        if any(values):
            columns[field] = values + [""] * (n - len(values))
    reviews = texts[texts["field"].isin(REVIEW_FIELDS)]
    if len(reviews) and max_reviews > 0:
        ts = reviews["timestamp"].fillna(-np.inf)
        ordered = reviews.assign(_t=ts).sort_values(["index", "_t"], ascending=[True, False], kind="stable")
        top = ordered.groupby("index").head(max_reviews)
        snippets = top["text"].map(lambda s: _snippet(s, review_chars))
        joined = snippets.groupby(top["index"]).agg(" / ".join)
        col = [""] * n
        for i, s in zip(joined.index.to_numpy(), joined.to_numpy()):
            col[int(i)] = s
        columns["_reviews"] = col
    order = [f for f in TITLE_FIELDS if f in columns]
    order += [f for f in DESCRIPTOR_FIELDS if f in columns]
    order += [f for f in DESCRIPTION_FIELDS if f in columns]
    order += sorted(f for f in columns if f not in order and f != "_reviews")
    order += ["_reviews"] if "_reviews" in columns else []
    return columns, order


def _snippet(text: str, max_chars: int) -> str:
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars].rsplit(" ", 1)[0]
    return (cut or text[:max_chars]) + "..."


def _sentence(part: str) -> str:
    """The part ending as a sentence: "." for Latin text, "。" for Chinese (no new mark after
    either language's end punctuation)."""
    part = part.strip()
    if part.endswith((".", "!", "?", "...", "。", "！", "？", "…")):
        return part
    return part + ("。" if has_cjk(part[-1:]) else ".")


def item_profiles(dataset: Dataset, *, max_reviews: int = 3, review_chars: int = 200,
                  warn_thin: bool = True, user_items: sp.csr_matrix | None = None) -> list[str]:
    """One profile string per item index (``""`` for an item with no text at all).

    user_items: the training matrix; when given, reviews of held-out pairs are left out.

    Raises `DataError` when no item has any text; warns `ThinTextWarning` when fewer than half
    the items have text, or when the profiles take fewer distinct values than 1% of the items.
    """
    columns, order = _field_columns(dataset, max_reviews, review_chars, held_out_reviews(dataset, user_items))
    if not order:
        hint = TEXT_BY_DATASET.get(dataset.name)
        raise DataError(
            f"dataset {dataset.name!r} has no item text (no title, tag, category name, description "
            f"or review)" + (f": {hint}" if hint else ""),
            fix="Use a text-free model (pop, itemknn, ease, als...), or load item texts "
                "(a texts table with owner='item', or a title column in the items table)")
    labels = {f: DESCRIPTOR_FIELDS.get(f) for f in order}
    labels["_reviews"] = "Reviews"
    profiles = []
    for i in range(dataset.n_items):
        parts = []
        named: set[str] = set()
        for f in order:
            value = columns[f][i]
            if value and f in DESCRIPTOR_FIELDS:
                values = [v for v in value.split(", ") if v.lower() not in named]
                named.update(v.lower() for v in values)
                value = ", ".join(values)
            if value:
                label = labels.get(f)
                parts.append(_sentence(f"{label}: {value}" if label else value))
        profiles.append(" ".join(parts))
    if warn_thin:
        _warn_if_thin(dataset, profiles)
    return profiles


def _warn_if_thin(dataset: Dataset, profiles: list[str]) -> None:
    n = len(profiles)
    with_text = sum(1 for p in profiles if p)
    distinct = len(set(profiles) - {""})
    problems = []
    if with_text < 0.5 * n:
        problems.append(f"only {with_text:,} of {n:,} items have any text")
    if n >= 100 and distinct < 0.01 * n:
        problems.append(f"the {n:,} item profiles take only {distinct:,} distinct values")
    if problems:
        warnings.warn(
            f"{dataset.name}: {' and '.join(problems)}: a text model cannot tell most items apart "
            f"(text available: {TEXT_BY_DATASET.get(dataset.name, 'see the dataset texts table')})",
            ThinTextWarning, stacklevel=3)


def user_texts(dataset: Dataset, *, max_texts: int = 3, chars: int = 300,
               user_items: sp.csr_matrix | None = None) -> list[str]:
    """Each user's own texts (posts, comments, reviews), most recent first, up to ``max_texts``
    joined with " / " (``""`` for users who wrote nothing). With the training matrix
    ``user_items``, reviews of held-out pairs are left out."""
    n = dataset.n_users
    out = [""] * n
    texts = _owner_fields(dataset, "user", held_out_reviews(dataset, user_items))
    if not len(texts) or max_texts <= 0:
        return out
    ts = texts["timestamp"].fillna(-np.inf)
    ordered = texts.assign(_t=ts).sort_values(["index", "_t"], ascending=[True, False], kind="stable")
    top = ordered.groupby("index").head(max_texts)
    joined = top["text"].map(lambda s: _snippet(s, chars)).groupby(top["index"]).agg(" / ".join)
    for i, s in zip(joined.index.to_numpy(), joined.to_numpy()):
        out[int(i)] = s
    return out


def _pair_rows(interactions: pd.DataFrame, m: sp.csr_matrix, by: np.ndarray) -> np.ndarray:
    """For each stored entry of ``m`` (CSR order), the row of ``interactions`` for that (user,
    item) pair that sorts last by ``by`` (ties: the later row); -1 where the pair has no row."""
    n_items = m.shape[1]
    want = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr)) * n_items + m.indices
    out = np.full(len(want), -1, dtype=np.int64)
    if not len(interactions):
        return out
    key = interactions["user"].to_numpy(np.int64) * n_items + interactions["item"].to_numpy(np.int64)
    order = np.lexsort((np.arange(len(key)), by, key))  # by pair, then ``by``, then row
    sk = key[order]
    last = np.r_[np.flatnonzero(np.diff(sk)), len(sk) - 1]  # the last row of each pair
    pair_keys, pair_row = sk[last], order[last]
    pos = np.minimum(np.searchsorted(pair_keys, want), len(pair_keys) - 1)
    hit = pair_keys[pos] == want
    out[hit] = pair_row[pos[hit]]
    return out


def _ranks_within_users(m: sp.csr_matrix, order: np.ndarray) -> np.ndarray:
    """Each stored entry's position among its user's entries, given ``order``: the entries
    sorted by user first (as `np.lexsort` with the row index as last key gives them)."""
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - np.repeat(m.indptr[:-1], np.diff(m.indptr))
    return rank


def recency_order(dataset: Dataset | None, user_items: sp.csr_matrix) -> np.ndarray:
    """For each stored entry of ``user_items`` (CSR order), its rank among the user's items from
    the most recent (0) back. Time is the pair's latest interaction timestamp in ``dataset``
    (ties and missing times by interaction row order; pairs not in the dataset count as oldest).
    Without a dataset or timestamps the rank follows column order reversed."""
    m = user_items.tocsr()
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    cols = m.indices.astype(np.int64)
    time = np.full(len(cols), -np.inf)
    seq = np.full(len(cols), -1, dtype=np.int64)
    if dataset is not None and len(dataset.interactions):
        ts = dataset.interactions["timestamp"].to_numpy(np.float64)
        ts = np.where(np.isnan(ts), -np.inf, ts)
        seq = _pair_rows(dataset.interactions, m, ts)
        time = np.where(seq >= 0, ts[seq], -np.inf)
    # Newest first within each user: sort by user, then -time, then -row, then -column.
    return _ranks_within_users(m, np.lexsort((-cols, -seq, -time, rows)))


def oldest_first(dataset: Dataset | None, user_items: sp.csr_matrix) -> np.ndarray:
    """For each stored entry of ``user_items`` (CSR order), its rank among the user's items from
    the oldest (0) on: `recency_order` counted from the other end."""
    m = user_items.tocsr()
    counts = np.diff(m.indptr)
    return np.repeat(counts, counts) - 1 - recency_order(dataset, m)


def value_rank_weights(dataset: Dataset | None, user_items: sp.csr_matrix) -> sp.csr_matrix:
    """``user_items`` with each stored entry replaced by a weight from the rank of its interaction
    value (play count, rating...) among the user's items: ``1 / log2(2 + rank)``, highest value at
    rank 0, ties by item index; each user's weights are then scaled to average 1, so a user's
    weight in total stays that of their item count. The value of a pair is its largest in
    ``dataset.interactions``; pairs without a value rank below every valued item of the user.

    Why ranks, not the values: play counts span five orders of magnitude and differ in scale
    between users; the rank keeps the order within a user, which is what says what they like most.
    On LastFM the rank-weighted channels reach NDCG@10 .188 (ItemKNN), .198 (ALS) and .224
    (LightGCN) against .176, .192 and .214 binary (benchmarks/README.md, hybrid pipeline)."""
    m = sp.csr_matrix(user_items, dtype=np.float32, copy=True)
    m.sum_duplicates()
    if dataset is None or not len(dataset.interactions) or not dataset.interactions["value"].notna().any():
        raise DataError("value-weighted training needs interaction values, and the dataset has none",
                        field="value", fix="load data with a value column, or attach one with "
                                           "socialrec.ingest.schema.with_interaction_values")
    v = dataset.interactions["value"].to_numpy(np.float64)
    v = np.where(np.isnan(v), -np.inf, v)  # a pair whose rows have no value ranks as unvalued
    row = _pair_rows(dataset.interactions, m, v)
    value = np.where(row >= 0, v[row], -np.inf)
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    # Per user: highest value first, ties by item.
    w = 1.0 / np.log2(2.0 + _ranks_within_users(m, np.lexsort((m.indices, -value, rows))))
    sums = np.bincount(rows, weights=w, minlength=m.shape[0])
    scale = np.divide(np.diff(m.indptr), sums, out=np.zeros(m.shape[0]), where=sums > 0)
    m.data = (w * scale[rows]).astype(np.float32)
    return m


def user_profiles(dataset: Dataset, user_items: sp.csr_matrix, *, n_recent: int = 5, max_texts: int = 3) -> list[str]:
    """One profile per user: their own texts, then "Recently: " and the titles of their
    ``n_recent`` most recent training items (``user_items``: the training matrix)."""
    m = user_items.tocsr()
    if m.shape != (dataset.n_users, dataset.n_items):
        raise ValueError(f"user_items has shape {m.shape}, the dataset {(dataset.n_users, dataset.n_items)}")
    own = user_texts(dataset, max_texts=max_texts)
    rank = recency_order(dataset, m)
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    keep = rank < n_recent
    r, c, k = rows[keep], m.indices[keep], rank[keep]
    order = np.lexsort((k, r))
    titles = [html.unescape(t) for t in dataset.item_titles(c[order])]
    recent: dict[int, list[str]] = {}
    for u, t in zip(r[order].tolist(), titles):
        recent.setdefault(u, []).append(t)
    out = []
    for u in range(m.shape[0]):
        parts = [own[u]] if own[u] else []
        if u in recent:
            parts.append("Recently: " + "; ".join(recent[u]))
        out.append(" ".join(_sentence(p) for p in parts))
    return out


def text_availability(dataset: Dataset) -> dict[str, Any]:
    """What text the dataset has: rows per (owner, field), and items/users with any text."""
    t = dataset.texts
    counts = t.groupby(["owner", "field"]).size() if len(t) else pd.Series(dtype=int)
    return {
        "dataset": dataset.name,
        "fields": {f"{o}:{f}": int(v) for (o, f), v in counts.items()},
        "items_with_text": int(t.loc[t["owner"] == "item", "index"].nunique()) if len(t) else 0,
        "users_with_text": int(t.loc[t["owner"] == "user", "index"].nunique()) if len(t) else 0,
        "n_items": dataset.n_items,
        "n_users": dataset.n_users,
        "note": TEXT_BY_DATASET.get(dataset.name, ""),
    }
