"""The validated in-memory dataset: users, items, interactions, social edges, attributes, texts.

Loaders hand `build_dataset` tables keyed by *external* ids; it validates them, maps the ids to
indices through `IdMap` (the only place that happens), and returns an immutable `Dataset` whose
tables hold int32 indices. A table may carry a ``_line`` column (1-based line in ``_path``) so
that every validation error can name the file, line and field. `TrainData` is what a model's
`fit` receives (the training matrix plus the dataset); `as_adjacency` is the social graph as the
friend models take it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from socialrec.errors import DataError
from socialrec.ingest.idmap import IdMap

INTERACTION_KINDS = (
    "view", "click", "like", "comment", "share", "purchase", "rating", "play", "review",
    "tag", "hide",
)
SOCIAL_KINDS = ("follow", "friend", "trust")
SPLIT_TRAIN, SPLIT_VALID, SPLIT_TEST = 0, 1, 2


class DuplicateRowsWarning(UserWarning):
    """Exact duplicate rows were dropped while loading."""


class SocialEdgeWarning(UserWarning):
    """Social edges were dropped or repaired (self-loops, duplicates, unknown users)."""


def _where(df: pd.DataFrame, pos: int) -> tuple[str | None, int | None]:
    path = str(df["_path"].iloc[pos]) if "_path" in df.columns else None
    line = int(df["_line"].iloc[pos]) if "_line" in df.columns else None
    return path, line


def _require_columns(df: pd.DataFrame, required: tuple[str, ...], table: str, path: str | None) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(
            f"the {table} table lacks column(s) {missing}; it has {[c for c in df.columns if not c.startswith('_')]}",
            path=path,
            fix=f"Provide columns {list(required)} (map your column names with a column mapping)",
        )


@dataclass(frozen=True)
class Dataset:
    """A validated dataset. Tables hold internal indices; `users`/`items` map them to external ids.

    interactions: user, item (int32), timestamp (float64 unix seconds or NaN), kind (str),
        value (float32: rating, play count...; NaN when absent), split (int8: -1 none,
        0 train, 1 valid, 2 test when the dataset ships its own split).
    social: source, target (int32), kind (str), weight (float32). When ``social_directed`` is
        False each friendship is stored once per direction.
    item_table / user_table: one row per index with whatever attributes the data has
        (title, category, tags, price, brand, age, ...).
    texts: owner ("item"|"user"), index (int32), field (title, tag, review, post, ...), text,
        timestamp.
    item_features: named item feature matrices ("image", "audio", "text", ...), each a dense
        float32 (n_items, dim) array whose row i describes item index i; any number of them
        (attach more with `socialrec.ingest.features.with_item_features`). Rows of items the
        source had no vector for are zero (a zero row means "no vector").
    tag_assignments: user (int32; -1 when the tagger is not a known user), item (int32), tag (str):
        one row per time a user gave an item a tag (hashtags, folksonomy tags). Kept apart from
        the interactions: a tag describes the item for everyone, and the tagger's own row is
        also evidence that they know the item (see `represent.tag_profiles`, which keeps it out
        of that user's features for items outside their training history).
    """

    name: str
    users: IdMap
    items: IdMap
    interactions: pd.DataFrame
    social: pd.DataFrame = field(default_factory=lambda: _empty_social())
    social_directed: bool = False
    item_table: pd.DataFrame = field(default_factory=pd.DataFrame)
    user_table: pd.DataFrame = field(default_factory=pd.DataFrame)
    texts: pd.DataFrame = field(default_factory=lambda: _empty_texts())
    tag_assignments: pd.DataFrame = field(default_factory=lambda: _empty_tag_assignments())
    rating_range: tuple[float, float] | None = None
    notes: tuple[str, ...] = ()
    item_features: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def modalities(self) -> tuple[str, ...]:
        """Names of the item feature matrices, in the order they were attached."""
        return tuple(self.item_features)

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def has_fixed_split(self) -> bool:
        return bool((self.interactions["split"] >= 0).any())

    def user_item_matrix(self, mask: np.ndarray | None = None, *, binary: bool = True) -> sp.csr_matrix:
        """A (n_users, n_items) CSR matrix of the interactions selected by ``mask``.

        Repeated (user, item) pairs collapse to 1 when ``binary``; otherwise values are summed
        (the value column when present, else counts).
        """
        df = self.interactions if mask is None else self.interactions[mask]
        return interactions_to_matrix(df, self.n_users, self.n_items, binary=binary)

    def social_matrix(self, *, symmetric: bool | None = None) -> sp.csr_matrix:
        """A (n_users, n_users) 0/1 CSR adjacency. ``symmetric=True`` adds the reverse edges."""
        s = self.social
        adj = sp.csr_matrix(
            (np.ones(len(s), dtype=np.float32), (s["source"].to_numpy(), s["target"].to_numpy())),
            shape=(self.n_users, self.n_users),
        )
        if symmetric if symmetric is not None else not self.social_directed:
            adj = adj.maximum(adj.T).tocsr()
        adj.data[:] = 1.0
        return adj

    def item_titles(self, indices: np.ndarray | list[int]) -> list[str]:
        """Human-readable names of items (title column; else the start of a text column, as for
        posts; else the external id)."""
        idx = np.asarray(indices, dtype=np.int64)
        if "title" not in self.item_table.columns and "text" in self.item_table.columns:
            texts = self.item_table["text"].to_numpy()[idx]
            ext = self.items.to_external(idx)
            return [(" ".join(t.split())[:40] + ("…" if len(" ".join(t.split())) > 40 else ""))
                    if isinstance(t, str) and t.strip() else str(e) for t, e in zip(texts, ext)]
        if "title" in self.item_table.columns:
            titles = self.item_table["title"].to_numpy()[idx]
            ext = self.items.to_external(idx)
            return [str(t) if isinstance(t, str) and t else str(e) for t, e in zip(titles, ext)]
        return [str(e) for e in self.items.to_external(idx)]

    def summary(self) -> dict[str, object]:
        """Counts, as the data README states them."""
        n_pairs = len(self.social) if self.social_directed else len(self.social) // 2
        return {
            "name": self.name,
            "users": self.n_users,
            "items": self.n_items,
            "interactions": len(self.interactions),
            "social_edges": int(n_pairs),
            "social_directed": self.social_directed,
            "texts": len(self.texts),
            "tag_assignments": len(self.tag_assignments),
            "item_features": {name: int(m.shape[1]) for name, m in self.item_features.items()},
            "density": len(self.interactions) / max(1, self.n_users * self.n_items),
        }


def interactions_to_matrix(df: pd.DataFrame, n_users: int, n_items: int, *, binary: bool = True) -> sp.csr_matrix:
    """Interaction rows (user, item[, value]) -> (n_users, n_items) float32 CSR."""
    users = df["user"].to_numpy()
    items = df["item"].to_numpy()
    if binary or "value" not in df.columns:
        data = np.ones(len(df), dtype=np.float32)
    else:
        data = df["value"].to_numpy(dtype=np.float32, na_value=1.0)
    m = sp.csr_matrix((data, (users, items)), shape=(n_users, n_items), dtype=np.float32)
    m.sum_duplicates()
    if binary:
        m.data[:] = 1.0
    return m


@dataclass(frozen=True)
class TrainData:
    """What `fit` receives: the training user-item matrix plus the dataset for side information
    (social graph, texts, attributes). ``user_items`` is (n_users, n_items) CSR, binary unless a
    model was given weighted data on purpose. ``valid_items``, when given, is the validation
    matrix that iterative models may use for early stopping (never the test set)."""

    user_items: sp.csr_matrix
    dataset: Dataset | None = None
    valid_items: sp.csr_matrix | None = None

    @property
    def n_users(self) -> int:
        return int(self.user_items.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.user_items.shape[1])

    @classmethod
    def from_matrix(cls, user_items: sp.spmatrix | npt.ArrayLike) -> "TrainData":
        m = sp.csr_matrix(user_items, dtype=np.float32)
        m.sum_duplicates()
        return cls(user_items=m)


def as_adjacency(social: sp.spmatrix | npt.ArrayLike) -> sp.csr_matrix:
    """A square 0/1 float32 CSR adjacency without self-loops."""
    a = sp.csr_matrix(social, dtype=np.float32)
    if a.shape[0] != a.shape[1]:
        raise ValueError(f"the social adjacency must be square (n_users, n_users), got shape {a.shape}")
    a.sum_duplicates()
    a.setdiag(0)
    a.eliminate_zeros()
    a.data[:] = 1.0
    return a


def is_symmetric(adj: sp.spmatrix) -> bool:
    """Whether every edge u -> v comes with v -> u (friendships rather than follows)."""
    return (abs(adj - adj.T) > 0).nnz == 0


def _empty_social() -> pd.DataFrame:
    return pd.DataFrame({
        "source": pd.Series(dtype=np.int32), "target": pd.Series(dtype=np.int32),
        "kind": pd.Series(dtype=object), "weight": pd.Series(dtype=np.float32),
    })


def _empty_texts() -> pd.DataFrame:
    return pd.DataFrame({
        "owner": pd.Series(dtype=object), "index": pd.Series(dtype=np.int32),
        "field": pd.Series(dtype=object), "text": pd.Series(dtype=object),
        "timestamp": pd.Series(dtype=np.float64),
    })


def _empty_tag_assignments() -> pd.DataFrame:
    return pd.DataFrame({"user": pd.Series(dtype=np.int32), "item": pd.Series(dtype=np.int32),
                         "tag": pd.Series(dtype=object)})


def texts_of_both_sides(rows: pd.DataFrame, field: str) -> pd.DataFrame:
    """A texts table from user-written rows (columns user, item, text, timestamp): each text is
    both the item's (what people say about it) and its writer's (their own words)."""
    return pd.concat([
        pd.DataFrame({"owner": owner, "id": rows[column], "field": field, "text": rows["text"],
                      "timestamp": rows["timestamp"]})
        for owner, column in (("item", "item"), ("user", "user"))
    ], ignore_index=True)


def with_tag_assignments(dataset: Dataset, tag_assignments: pd.DataFrame) -> Dataset:
    """The dataset with a tag-assignment table keyed by external ids (columns item, tag and
    optionally user), e.g. tags kept in another system than the interactions."""
    from dataclasses import replace

    return replace(dataset, tag_assignments=_build_tag_assignments(tag_assignments, dataset.users, dataset.items))


def with_interaction_values(dataset: Dataset, values: pd.DataFrame) -> Dataset:
    """The dataset with interaction values (play or view counts, ratings) from a table keyed by
    external ids (columns user, item, value), e.g. counts kept in another system than the
    interactions. Every interaction row of a pair in the table takes its value; pairs the table
    lacks keep theirs (NaN when none); table rows for users, items or pairs the dataset lacks are
    ignored. A pair twice in the table is an error: which value to keep is the caller's choice."""
    from dataclasses import replace

    _require_columns(values, ("user", "item", "value"), "interaction values", None)
    user = np.asarray(dataset.users.to_index(values["user"].astype(str).to_numpy(), missing="minus1"), dtype=np.int64)
    item = np.asarray(dataset.items.to_index(values["item"].astype(str).to_numpy(), missing="minus1"), dtype=np.int64)
    value = pd.to_numeric(values["value"], errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(value)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"interaction values: row {row} has value {values['value'].iloc[row]!r}, not a finite number",
                        field="value", fix="drop or repair the row before attaching the values")
    known = (user >= 0) & (item >= 0)
    key = user[known] * dataset.n_items + item[known]
    order = np.argsort(key, kind="stable")
    key, value = key[order], value[known][order]
    twice = np.flatnonzero(np.diff(key) == 0)
    if len(twice):
        u, i = divmod(int(key[twice[0]]), dataset.n_items)
        raise DataError(f"interaction values: {len(twice)} (user, item) pair(s) appear more than once, first user "
                        f"{dataset.users.to_external([u])[0]!r} and item {dataset.items.to_external([i])[0]!r}",
                        fix="aggregate the table to one value per pair (sum of counts, latest rating...)")
    inter = dataset.interactions
    want = inter["user"].to_numpy(np.int64) * dataset.n_items + inter["item"].to_numpy(np.int64)
    pos = np.minimum(np.searchsorted(key, want), max(len(key) - 1, 0))
    hit = (key[pos] == want) if len(key) else np.zeros(len(want), dtype=bool)
    out = inter["value"].to_numpy(np.float32).copy()
    out[hit] = value[pos[hit]]
    return replace(dataset, interactions=inter.assign(value=out))


def _drop_exact_duplicates(df: pd.DataFrame, table: str, name: str) -> pd.DataFrame:
    data_cols = [c for c in df.columns if not c.startswith("_")]
    dup = df.duplicated(subset=data_cols, keep="first")
    n = int(dup.sum())
    if n:
        path, line = _where(df, int(np.flatnonzero(dup.to_numpy())[0]))
        warnings.warn(
            f"{name}: dropped {n} exact duplicate {table} row(s)"
            + (f" (first at {path} line {line})" if line is not None else ""),
            DuplicateRowsWarning,
            stacklevel=3,
        )
        df = df[~dup]
    return df


def build_dataset(
    name: str,
    interactions: pd.DataFrame,
    *,
    social: pd.DataFrame | None = None,
    social_directed: bool = False,
    items: pd.DataFrame | None = None,
    users: pd.DataFrame | None = None,
    texts: pd.DataFrame | None = None,
    tag_assignments: pd.DataFrame | None = None,
    rating_range: tuple[float, float] | None = None,
    unknown_social: Literal["raise", "drop"] = "raise",
    notes: tuple[str, ...] = (),
) -> Dataset:
    """Validate tables keyed by external ids and build a `Dataset`.

    interactions: columns user, item; optional timestamp (unix seconds), kind, value, split
        ("train"/"valid"/"test" or 0/1/2). Exact duplicate rows are dropped with a
        `DuplicateRowsWarning`.
    social: columns source, target; optional kind, weight. Self-loops and duplicate edges are
        dropped and counted in a `SocialEdgeWarning`; an edge naming a user who is neither in
        ``users`` nor in the interactions is an error (or, with ``unknown_social="drop"``,
        dropped and counted). With ``social_directed=False`` edges are symmetrised.
    items / users: column ``id`` plus attributes; they fix the id order (catalog entries with
        no interactions are kept: they are the cold-start items).
    texts: columns owner ("item"/"user"), id, field, text; optional timestamp.
    tag_assignments: columns item, tag; optional user (the tagger). Rows naming an item outside
        the catalog are dropped; a tagger who is not a known user is kept as user -1.
    """
    path = str(interactions["_path"].iloc[0]) if "_path" in interactions.columns and len(interactions) else None
    _require_columns(interactions, ("user", "item"), "interactions", path)
    if len(interactions) == 0:
        raise DataError(
            "no interactions: the table is empty", path=path,
            fix="Point the loader at a file with at least one user-item row",
        )
    inter = interactions.copy()
    inter = _drop_exact_duplicates(inter, "interaction", name)

    user_map = IdMap(kind="user")
    item_map = IdMap(kind="item")
    user_table = pd.DataFrame()
    item_table = pd.DataFrame()
    if users is not None:
        _require_columns(users, ("id",), "users", None)
        user_map = IdMap.from_unique(users["id"].astype(str).tolist(), kind="user")
        user_table = users.drop(columns=[c for c in users.columns if c.startswith("_")]).reset_index(drop=True)
    if items is not None:
        _require_columns(items, ("id",), "items", None)
        item_map = IdMap.from_unique(items["id"].astype(str).tolist(), kind="item")
        item_table = items.drop(columns=[c for c in items.columns if c.startswith("_")]).reset_index(drop=True)

    u_idx = user_map.add(inter["user"].astype(str).tolist())  # a list: iterating a pandas str Series is ~5x slower
    i_idx = item_map.add(inter["item"].astype(str).tolist())
    out = pd.DataFrame({"user": u_idx, "item": i_idx})
    out["timestamp"] = _numeric_column(inter, "timestamp", np.float64, path)
    out["kind"] = inter["kind"].astype(str).to_numpy() if "kind" in inter.columns else "interaction"
    out["value"] = _numeric_column(inter, "value", np.float32, path)
    out["split"] = _split_column(inter, path)
    if rating_range is not None:
        lo, hi = rating_range
        vals = out["value"].to_numpy()
        bad = np.flatnonzero(~np.isnan(vals) & ((vals < lo) | (vals > hi)))
        if bad.size:
            p, line = _where(inter, int(bad[0]))
            raise DataError(
                f"rating {vals[bad[0]]:g} is outside the allowed range [{lo:g}, {hi:g}] "
                f"({bad.size} such row(s))", path=p, line=line, field="value",
                fix="Fix or remove the row, or pass the dataset's true rating range",
            )

    notes_list = list(notes)
    social_df = _empty_social()
    if social is not None and len(social):
        social_df, social_notes = _build_social(name, social, user_map, social_directed, unknown_social)
        notes_list.extend(social_notes)

    if users is None:
        user_table = pd.DataFrame(index=range(len(user_map)))
    elif len(user_table) < len(user_map):  # users seen only in interactions get empty rows
        user_table = user_table.reindex(range(len(user_map)))
        user_table["id"] = user_map.external_ids
    if items is None:
        item_table = pd.DataFrame(index=range(len(item_map)))
    elif len(item_table) < len(item_map):
        item_table = item_table.reindex(range(len(item_map)))
        item_table["id"] = item_map.external_ids

    texts_df = _empty_texts()
    if texts is not None and len(texts):
        texts_df = _build_texts(texts, user_map, item_map)
    tags_df = _empty_tag_assignments()
    if tag_assignments is not None and len(tag_assignments):
        tags_df = _build_tag_assignments(tag_assignments, user_map, item_map)

    return Dataset(
        name=name,
        users=user_map,
        items=item_map,
        interactions=out.reset_index(drop=True),
        social=social_df,
        social_directed=social_directed,
        item_table=item_table,
        user_table=user_table,
        texts=texts_df,
        tag_assignments=tags_df,
        rating_range=rating_range,
        notes=tuple(notes_list),
    )


def _numeric_column(df: pd.DataFrame, col: str, dtype: type, path: str | None) -> np.ndarray:
    if col not in df.columns:
        return np.full(len(df), np.nan, dtype=dtype)
    values = pd.to_numeric(df[col], errors="coerce")
    bad = values.isna().to_numpy() & df[col].notna().to_numpy()
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        p, line = _where(df, pos)
        raise DataError(
            f"{df[col].iloc[pos]!r} is not a number ({int(bad.sum())} such row(s))",
            path=p or path, line=line, field=col,
            fix="Fix the value or load with skip_bad_rows=True to drop such rows",
        )
    return values.to_numpy(dtype=dtype, na_value=np.nan)


def _split_column(df: pd.DataFrame, path: str | None) -> np.ndarray:
    if "split" not in df.columns:
        return np.full(len(df), -1, dtype=np.int8)
    names = {"train": SPLIT_TRAIN, "valid": SPLIT_VALID, "validation": SPLIT_VALID, "test": SPLIT_TEST,
             0: SPLIT_TRAIN, 1: SPLIT_VALID, 2: SPLIT_TEST}
    mapped = df["split"].map(names)
    if mapped.isna().any():
        pos = int(np.flatnonzero(mapped.isna().to_numpy())[0])
        p, line = _where(df, pos)
        raise DataError(f"unknown split {df['split'].iloc[pos]!r}", path=p or path, line=line,
                        field="split", fix="Use train, valid or test")
    return mapped.to_numpy(dtype=np.int8)


def _build_social(
    name: str, social: pd.DataFrame, user_map: IdMap, directed: bool, unknown: str,
) -> tuple[pd.DataFrame, list[str]]:
    path = str(social["_path"].iloc[0]) if "_path" in social.columns else None
    _require_columns(social, ("source", "target"), "social", path)
    notes: list[str] = []
    src = user_map.to_index(social["source"].astype(str).tolist(), missing="minus1")
    dst = user_map.to_index(social["target"].astype(str).tolist(), missing="minus1")
    unknown_mask = (src < 0) | (dst < 0)  # type: ignore[operator]
    if unknown_mask.any():
        pos = int(np.flatnonzero(unknown_mask)[0])
        p, line = _where(social, pos)
        col = "source" if src[pos] < 0 else "target"  # type: ignore[index]
        n = int(unknown_mask.sum())
        if unknown == "raise":
            raise DataError(
                f"edge names unknown user {social[col].iloc[pos]!r} ({n} edge(s) name users "
                f"who are neither in the user table nor in the interactions)",
                path=p or path, line=line, field=col,
                fix="Add the users, fix the ids, or load with unknown_social='drop' to drop those edges",
            )
        msg = f"{name}: dropped {n} social edge(s) naming unknown users"
        warnings.warn(msg, SocialEdgeWarning, stacklevel=3)
        notes.append(msg)
    kind = social["kind"].astype(str).to_numpy() if "kind" in social.columns else np.full(
        len(social), "follow" if directed else "friend", dtype=object)
    weight = _numeric_column(social, "weight", np.float32, path) if "weight" in social.columns else np.ones(len(social), np.float32)
    weight = np.where(np.isnan(weight), 1.0, weight).astype(np.float32)
    edges = pd.DataFrame({"source": src, "target": dst, "kind": kind, "weight": weight})[~unknown_mask]
    loops = edges["source"] == edges["target"]
    if loops.any():
        msg = f"{name}: dropped {int(loops.sum())} self-loop edge(s)"
        warnings.warn(msg, SocialEdgeWarning, stacklevel=3)
        notes.append(msg)
        edges = edges[~loops]
    in_dup = edges.duplicated(subset=["source", "target"], keep="first")
    if in_dup.any():
        msg = f"{name}: dropped {int(in_dup.sum())} duplicate social edge(s)"
        warnings.warn(msg, SocialEdgeWarning, stacklevel=3)
        notes.append(msg)
        edges = edges[~in_dup]
    if not directed:
        # A symmetric relation: store both directions once each. Count how many one-way rows
        # had to be completed, so a directed file declared symmetric does not pass silently.
        pairs = set(zip(edges["source"].tolist(), edges["target"].tolist()))
        one_way = sum(1 for s, t in pairs if (t, s) not in pairs)
        if one_way and one_way != len(pairs):
            msg = (f"{name}: {one_way} of {len(pairs)} friend edge(s) appear in one direction only; "
                   f"added the reverse edges (declare the file directed if it is a follow/trust graph)")
            warnings.warn(msg, SocialEdgeWarning, stacklevel=3)
            notes.append(msg)
        rev = edges.rename(columns={"source": "target", "target": "source"})[edges.columns]
        edges = pd.concat([edges, rev], ignore_index=True)
        edges = edges[~edges.duplicated(subset=["source", "target"], keep="first")]
    edges = edges.astype({"source": np.int32, "target": np.int32}).reset_index(drop=True)
    return edges, notes


def _build_tag_assignments(tags: pd.DataFrame, user_map: IdMap, item_map: IdMap) -> pd.DataFrame:
    _require_columns(tags, ("item", "tag"), "tag assignments", None)
    item = np.asarray(item_map.to_index(tags["item"].astype(str).to_numpy(), missing="minus1"), dtype=np.int32)
    if "user" in tags.columns:
        user = np.asarray(user_map.to_index(tags["user"].astype(str).to_numpy(), missing="minus1"), dtype=np.int32)
    else:
        user = np.full(len(tags), -1, dtype=np.int32)
    tag = tags["tag"].astype(str).str.strip().to_numpy()
    # A tag on an unknown item describes nothing in the catalog; a missing or blank tag nothing at all.
    keep = (item >= 0) & tags["tag"].notna().to_numpy() & (tag != "")
    return pd.DataFrame({"user": user[keep], "item": item[keep], "tag": tag[keep]}).reset_index(drop=True)


def _build_texts(texts: pd.DataFrame, user_map: IdMap, item_map: IdMap) -> pd.DataFrame:
    _require_columns(texts, ("owner", "id", "field", "text"), "texts", None)
    owner = texts["owner"].astype(str).to_numpy()
    bad_owner = ~np.isin(owner, ["item", "user"])
    if bad_owner.any():
        raise DataError(f"text owner must be 'item' or 'user', got {owner[bad_owner][0]!r}", field="owner")
    index = np.full(len(texts), -1, dtype=np.int32)
    ids = texts["id"].astype(str).to_numpy()
    for kind, m in (("item", item_map), ("user", user_map)):
        sel = owner == kind
        if sel.any():
            index[sel] = m.to_index(ids[sel], missing="minus1")  # type: ignore[index]
    keep = index >= 0  # texts about unknown users/items carry nothing we can use
    ts = _numeric_column(texts, "timestamp", np.float64, None) if "timestamp" in texts.columns else np.full(len(texts), np.nan)
    return pd.DataFrame({
        "owner": owner[keep], "index": index[keep], "field": texts["field"].astype(str).to_numpy()[keep],
        "text": texts["text"].astype(str).to_numpy()[keep], "timestamp": ts[keep],
    }).reset_index(drop=True)
