"""RecBole atomic files: ``.inter`` (+ optional ``.item``, ``.user``, ``.net``), tab-separated.

The first line types every column as ``name:type`` with type token, token_seq (space-separated
tokens), float or float_seq; those types drive the parsing, so a bad number is reported with the
file, line and RecBole field name. See https://recbole.io/docs/user_guide/data/atomic_files.html.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from socialrec.errors import DataError
from socialrec.ingest.read import Column, check_exists, parse_float, parse_str, read_delimited
from socialrec.ingest.schema import Dataset, build_dataset
from socialrec.ingest.datasets.tabular import drop_unknown_edges, read_header

FOLDER = "lastfm-recbole"
FIELD_TYPES = ("token", "token_seq", "float", "float_seq")
ITEM_FIELD_NAMES = ("item_id", "artist_id")


@dataclass(frozen=True)
class AtomicField:
    name: str
    type: str


def parse_atomic_header(path: Path) -> list[AtomicField]:
    """The typed header ``name:type`` of an atomic file; an untyped or unknown type is an error."""
    fields = []
    for raw in read_header(path, sep="\t"):
        name, colon, kind = raw.rpartition(":")
        if not colon or not name or kind not in FIELD_TYPES:
            raise DataError(f"header field {raw!r} is not 'name:type' with type one of {list(FIELD_TYPES)}",
                            path=str(path), line=1, field=raw,
                            fix="Write RecBole atomic headers such as user_id:token\trating:float")
        fields.append(AtomicField(name, kind))
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        raise DataError(f"the header names a field twice: {names}", path=str(path), line=1)
    return fields


def _nonempty(text: str) -> str:
    if not text:
        raise ValueError("empty id")
    return text


def _float_seq(text: str) -> tuple[float, ...]:
    return tuple(parse_float(x) for x in text.split())


def read_atomic(
    path: Path,
    fields: list[AtomicField],
    ids: tuple[str, ...],
    *,
    skip_bad_rows: bool,
    keep_text: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Read an atomic file with its header's types; ``ids`` are fields that must be non-empty.

    token_seq fields become tuples of tokens; for those named in ``keep_text`` the original
    string is also kept, in a column ``_text_<name>``.
    """
    columns = []
    for f in fields:
        if f.name in ids:
            columns.append(Column(f.name, _nonempty, "a non-empty id"))
        elif f.type == "float":
            columns.append(Column(f.name, parse_float, "a number"))
        elif f.type == "float_seq":
            columns.append(Column(f.name, _float_seq, "space-separated numbers"))
        else:
            columns.append(Column(f.name, parse_str, "text"))
    df = read_delimited(path, columns, sep="\t", header=True, skip_bad_rows=skip_bad_rows)
    for f in fields:
        if f.type == "token_seq":
            if f.name in keep_text:
                df[f"_text_{f.name}"] = df[f.name]
            df[f.name] = [tuple(x.split()) for x in df[f.name]]
        elif f.name in keep_text:
            df[f"_text_{f.name}"] = df[f.name].astype(str)
    return df


def _find(folder: Path, ext: str, stem: str | None, *, required: bool) -> Path | None:
    found = sorted(folder.glob(f"*.{ext}"))
    if stem is not None and (folder / f"{stem}.{ext}") in found:
        return folder / f"{stem}.{ext}"
    if len(found) == 1:
        return found[0]
    if not found:
        if required:
            raise DataError(f"no .{ext} file in the folder", path=str(folder),
                            fix="Point the loader at the folder holding the RecBole atomic files")
        return None
    raise DataError(f"several .{ext} files: {[p.name for p in found]}", path=str(folder),
                    fix=f"Keep one .{ext} file per folder, or name it after the .inter file")


def _require(fields: list[AtomicField], candidates: list[str], path: Path, what: str) -> str:
    names = [f.name for f in fields]
    for c in candidates:
        if c in names:
            return c
    raise DataError(f"the header has no {what} field (looked for {candidates}); it has {names}",
                    path=str(path), line=1, field=candidates[0],
                    fix=f"Name the {what} column {candidates[0]}:token")


def load_recbole(
    directory: str | os.PathLike[str],
    *,
    name: str | None = None,
    kind: str | None = None,
    social_kind: str | None = None,
    rating_range: tuple[float, float] | None = None,
    skip_bad_rows: bool = False,
) -> Dataset:
    """Load the RecBole atomic files of one folder.

    .inter: the user field (``user_id`` or the first ``*user_id``) and the item field
        (``item_id``, the ``.item`` file's first token field, ``artist_id``, or the first
        ``*item_id``) are the ids; ``timestamp`` and ``rating`` become timestamp and value.
        ``kind`` defaults to "rating" when there is a rating field, else "interaction".
    .item / .user: their other fields become item / user attributes (token_seq as tuples of
        tokens; an item ``name`` is also the ``title`` and a "title" text); their order fixes
        the indices.
    .net: ``source_id``/``target_id`` edges, read as undirected when every edge has its reverse
        (RecBole-GNN's lastfm.net lists both directions), else as directed. ``social_kind``
        defaults to "friend" for undirected and "follow" for directed edges.
    """
    folder = check_exists(Path(directory), "RecBole folder")
    inter_path = _find(folder, "inter", name, required=True)
    assert inter_path is not None
    stem = inter_path.stem
    item_path = _find(folder, "item", stem, required=False)
    user_path = _find(folder, "user", stem, required=False)
    net_path = _find(folder, "net", stem, required=False)

    inter_fields = parse_atomic_header(inter_path)
    item_fields = parse_atomic_header(item_path) if item_path else []
    names = [f.name for f in inter_fields]
    item_file_id = next((f.name for f in item_fields if f.type == "token"), None)
    user_field = _require(inter_fields, ["user_id"] + [n for n in names if n.endswith("user_id")], inter_path, "user")
    item_candidates = ["item_id"] + ([item_file_id] if item_file_id else []) + ["artist_id"]
    item_field = _require(inter_fields, item_candidates + [n for n in names if n.endswith("item_id")],
                          inter_path, "item")
    inter = read_atomic(inter_path, inter_fields, (user_field, item_field), skip_bad_rows=skip_bad_rows)
    rename = {user_field: "user", item_field: "item"}
    if "timestamp" in names:
        rename["timestamp"] = "timestamp"
    if "rating" in names:
        rename["rating"] = "value"
    inter = inter[[*rename, "_line", "_path"]].rename(columns=rename)
    inter["kind"] = kind or ("rating" if "value" in inter.columns else "interaction")

    items = None
    if item_path:
        id_field = _require(item_fields, [item_field], item_path, "item id")
        items = read_atomic(item_path, item_fields, (id_field,), skip_bad_rows=skip_bad_rows, keep_text=("name",))
        items = items.drop(columns=["_line", "_path"]).rename(columns={id_field: "id"})
        if "name" in items.columns and "title" not in items.columns:
            # the name exactly as written: token_seq splitting would squeeze runs of spaces
            items.insert(1, "title", items.pop("_text_name"))
        items = items.drop(columns=[c for c in items.columns if c.startswith("_text_")])
    users = None
    if user_path:
        user_fields = parse_atomic_header(user_path)
        uid = _require(user_fields, [user_field] + [f.name for f in user_fields if f.name.endswith("user_id")],
                       user_path, "user id")
        users = read_atomic(user_path, user_fields, (uid,), skip_bad_rows=skip_bad_rows)
        users = users.drop(columns=["_line", "_path"]).rename(columns={uid: "id"})

    social = None
    directed = False
    if net_path:
        net_fields = parse_atomic_header(net_path)
        src = _require(net_fields, ["source_id"], net_path, "source")
        dst = _require(net_fields, ["target_id"], net_path, "target")
        net = read_atomic(net_path, net_fields, (src, dst), skip_bad_rows=skip_bad_rows)
        keep = {src: "source", dst: "target"} | ({"weight": "weight"} if "weight" in net.columns else {})
        social = net[[*keep, "_line", "_path"]].rename(columns=keep)
        known = pd.concat([inter["user"], users["id"]]) if users is not None else inter["user"]
        social = drop_unknown_edges(social, known, skip_bad_rows=skip_bad_rows)
        forward = pd.MultiIndex.from_arrays([social["source"], social["target"]])
        reverse = pd.MultiIndex.from_arrays([social["target"], social["source"]])
        directed = not bool(reverse.isin(forward).all())
        social["kind"] = social_kind or ("follow" if directed else "friend")

    texts = None
    if items is not None and "title" in items.columns:
        texts = pd.DataFrame({"owner": "item", "id": items["id"], "field": "title", "text": items["title"]})
    return build_dataset(name or stem, inter, social=social, social_directed=directed, items=items, users=users,
                         texts=texts, rating_range=rating_range)


def load_lastfm_recbole(data: str | os.PathLike[str], *, skip_bad_rows: bool = False) -> Dataset:
    """Last.fm HetRec in RecBole-GNN's atomic files (``data/lastfm-recbole``): the social benchmark's input.

    Same users, artists and friendships as `load_lastfm` (1,892 users, 17,632 artists, 92,834
    user-artist rows, 12,717 friend pairs listed in both directions), but without play counts:
    interactions are kind "play" with no value. Items carry name/title, url and pictureURL.
    """
    return load_recbole(Path(data) / FOLDER, name="lastfm-recbole", kind="play", skip_bad_rows=skip_bad_rows)
