"""A trained model version on disk: the arrays the default serving model needs, and how they are
trained from a dataset plus the event store.

One version is a folder ``models/vNNNN/`` with ``arrays.npz`` (ids, ALS factors, the training
matrix, the social graph and its tie strengths, popularity, item text embeddings) and
``meta.json`` (version, metrics, the last event sequence number it was trained on). The arrays
are written to a temporary name and renamed, so a crash never leaves half a version.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from socialrec.ingest.schema import Dataset
from socialrec.privacy.pseudonyms import pseudonym
from socialrec.serve.store import EventStore

# Confidence of one event of each kind in the ALS matrix (a base-dataset interaction counts 1).
KIND_WEIGHT = {"view": 1.0, "click": 2.0, "like": 4.0, "comment": 4.0, "share": 5.0, "purchase": 6.0}
ERASED = ""  # the id left in a user row whose owner was erased


def event_weight(kind: str, value: float | None) -> float:
    """The ALS confidence an event adds; 0 for kinds that are not item feedback. A rating counts
    in proportion to its value above the midpoint of 1..5 (2 or less: no positive signal)."""
    if kind == "rating":
        return max(0.0, (float(value or 0.0) - 2.0)) * 1.5
    return KIND_WEIGHT.get(kind, 0.0)


@dataclass
class Bundle:
    """The arrays of one model version (see the module docstring). ``user_factors`` is None for
    the popularity-only fallback."""

    version: str
    user_ids: np.ndarray
    item_ids: np.ndarray
    item_titles: np.ndarray
    train: sp.csr_matrix
    social: sp.csr_matrix
    popularity: np.ndarray
    user_factors: np.ndarray | None = None
    item_factors: np.ndarray | None = None
    tie_strength: sp.csr_matrix | None = None
    item_embeddings: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def trained_through_seq(self) -> int:
        return int(self.meta.get("trained_through_seq", 0))

    # --- persistence -----------------------------------------------------------------
    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {
            "user_ids": self.user_ids.astype(str), "item_ids": self.item_ids.astype(str),
            "item_titles": self.item_titles.astype(str), "popularity": self.popularity,
        }
        for name in ("train", "social", "tie_strength"):
            m = getattr(self, name)
            if m is not None:
                arrays[f"{name}_data"], arrays[f"{name}_indices"], arrays[f"{name}_indptr"] = m.data, m.indices, m.indptr
                arrays[f"{name}_shape"] = np.asarray(m.shape)
        for name in ("user_factors", "item_factors", "item_embeddings"):
            if getattr(self, name) is not None:
                arrays[name] = getattr(self, name)
        tmp = directory / "arrays.tmp.npz"
        np.savez(tmp, **arrays)  # type: ignore[arg-type]
        os.replace(tmp, directory / "arrays.npz")
        meta = dict(self.meta, version=self.version)
        (directory / "meta.tmp.json").write_text(json.dumps(meta, indent=2))
        os.replace(directory / "meta.tmp.json", directory / "meta.json")
        return directory

    @classmethod
    def load(cls, directory: Path) -> "Bundle":
        meta = json.loads((directory / "meta.json").read_text())
        with np.load(directory / "arrays.npz", allow_pickle=False) as z:
            a = {k: z[k] for k in z.files}

        def matrix(name: str) -> sp.csr_matrix | None:
            if f"{name}_data" not in a:
                return None
            return sp.csr_matrix((a[f"{name}_data"], a[f"{name}_indices"], a[f"{name}_indptr"]),
                                 shape=tuple(a[f"{name}_shape"]))

        return cls(version=meta["version"], user_ids=a["user_ids"].astype(object), item_ids=a["item_ids"].astype(object),
                   item_titles=a["item_titles"].astype(object), train=matrix("train"), social=matrix("social"),  # type: ignore[arg-type]
                   popularity=a["popularity"], user_factors=a.get("user_factors"), item_factors=a.get("item_factors"),
                   tie_strength=matrix("tie_strength"), item_embeddings=a.get("item_embeddings"), meta=meta)


# --- training ------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainConfig:
    """What `train_bundle` needs from the service settings."""

    factors: int = 64
    iterations: int = 15
    regularization: float = 0.05
    alpha: float = 10.0
    holdout_share: float = 0.2
    seed: int = 0
    encoder: str = "minilm-onnx"
    embedding_dir: str | None = None
    popularity_only: bool = False


def _collect(dataset: Dataset, store: EventStore, salt: bytes) -> tuple[list[str], list[str], list[str], np.ndarray,
                                                                          np.ndarray, np.ndarray, list[tuple[str, str]], int]:
    """Users, items, titles, (rows, cols, weights) and social edges from the base dataset and the
    store, leaving out erased users (known only by pseudonym) and hidden pairs."""
    erased = store.erased_hashes()
    through = store.max_seq()
    users = [str(u) for u in dataset.users.external_ids]
    keep_user = np.array([pseudonym(u, salt) not in erased for u in users], dtype=bool) if erased else np.ones(len(users), bool)
    user_index = {u: i for i, u in enumerate(users)}
    items = [str(i) for i in dataset.items.external_ids]
    titles = list(dataset.item_titles(np.arange(dataset.n_items)))
    item_index = {it: i for i, it in enumerate(items)}
    for item_id, title, _text in store.items():
        if item_id in item_index:
            titles[item_index[item_id]] = title
        else:
            item_index[item_id] = len(items)
            items.append(item_id)
            titles.append(title)

    inter = dataset.interactions
    ok = keep_user[inter["user"].to_numpy()] & (inter["kind"].to_numpy() != "hide")
    rows = [inter["user"].to_numpy()[ok].astype(np.int64)]
    cols = [inter["item"].to_numpy()[ok].astype(np.int64)]
    vals = [np.ones(int(ok.sum()), dtype=np.float32)]
    src = dataset.social["source"].to_numpy()
    dst = dataset.social["target"].to_numpy()
    keep_edge = keep_user[src] & keep_user[dst]
    edges = {(users[s], users[d]) for s, d in zip(src[keep_edge], dst[keep_edge])}
    hidden: set[tuple[int, int]] = set()
    ev_rows, ev_cols, ev_vals = [], [], []
    for e in store.events(limit=None):
        if e.seq > through:
            break
        if e.user_id not in user_index:
            user_index[e.user_id] = len(users)
            users.append(e.user_id)
        u = user_index[e.user_id]
        if e.kind in ("follow", "unfollow") and e.target_user_id:
            if e.target_user_id not in user_index:
                user_index[e.target_user_id] = len(users)
                users.append(e.target_user_id)
            pair = (e.user_id, e.target_user_id)
            if e.kind == "follow":
                edges.add(pair)
                if not dataset.social_directed:  # friendships are symmetric in such datasets
                    edges.add((pair[1], pair[0]))
            else:
                edges.discard(pair)
            continue
        if e.item_id is None:
            continue
        if e.item_id not in item_index:
            item_index[e.item_id] = len(items)
            items.append(e.item_id)
            titles.append(e.item_id)
        i = item_index[e.item_id]
        if e.kind == "hide":
            hidden.add((u, i))
            continue
        w = event_weight(e.kind, e.value)
        if w > 0:
            ev_rows.append(u)
            ev_cols.append(i)
            ev_vals.append(w)
    rows.append(np.asarray(ev_rows, dtype=np.int64))
    cols.append(np.asarray(ev_cols, dtype=np.int64))
    vals.append(np.asarray(ev_vals, dtype=np.float32))
    r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    if hidden:
        keys = r * len(items) + c
        drop = np.isin(keys, np.fromiter((u * len(items) + i for u, i in hidden), dtype=np.int64))
        r, c, v = r[~drop], c[~drop], v[~drop]
    known = set(users)
    edge_list = [(a, b) for a, b in edges if a in known and b in known]
    return users, items, titles, r, c, v, edge_list, through


def _holdout_metrics(x: sp.csr_matrix, fit: Callable[[sp.csr_matrix], tuple[np.ndarray, np.ndarray]],
                     share: float, seed: int) -> dict[str, float]:
    """NDCG@10 and Recall@10 with one random interaction held out for a share of the users
    that have at least two, ranking all items and masking the training ones."""
    from socialrec.evaluate.metrics import hits_matrix, ndcg_at_k, rank_top_k, recall_at_k

    rng = np.random.default_rng(seed)
    counts = np.diff(x.indptr)
    eligible = np.flatnonzero(counts >= 2)
    if share <= 0 or eligible.size < 10:
        return {}
    users = np.sort(rng.choice(eligible, size=max(1, int(share * eligible.size)), replace=False))
    held = np.array([x.indices[x.indptr[u] + rng.integers(counts[u])] for u in users])
    mask = sp.csr_matrix((np.ones(len(users)), (users, held)), shape=x.shape)
    train = (x - x.multiply(mask)).tocsr()
    train.eliminate_zeros()
    uf, itf = fit(train)
    scores = (uf[users].astype(np.float64) @ itf.astype(np.float64).T).astype(np.float32)
    sub = train[users]
    r, c = sub.nonzero()
    scores[r, c] = -np.inf
    top = rank_top_k(scores, 10)
    truth = sp.csr_matrix((np.ones(len(users)), (np.arange(len(users)), held)), shape=(len(users), x.shape[1]))
    hits = hits_matrix(top, truth, np.arange(len(users)))
    n_rel = np.ones(len(users))
    return {"ndcg@10": float(ndcg_at_k(hits, n_rel, 10).mean()), "recall@10": float(recall_at_k(hits, n_rel, 10).mean()),
            "holdout_users": int(len(users))}


def _fit_als(x: sp.csr_matrix, cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    from socialrec.retrieve.implicit_models import ALS

    model = ALS(factors=cfg.factors, regularization=cfg.regularization, alpha=cfg.alpha,
                iterations=cfg.iterations, random_state=cfg.seed).fit(x)
    return model.user_factors_, model.item_factors_


def _tie_strength(x: sp.csr_matrix, social: sp.csr_matrix) -> sp.csr_matrix:
    """SocialProof's tie strengths (1 + overlap_weight * Jaccard of item sets) on the graph."""
    from socialrec.retrieve.base import TrainData
    from socialrec.retrieve.social_proof import SocialProof

    class _Graph:  # the two things SocialProof reads from a Dataset
        def __init__(self, adj: sp.csr_matrix) -> None:
            self.social = adj.data
            self._adj = adj

        def social_matrix(self) -> sp.csr_matrix:
            return self._adj

    binary = x.copy()
    binary.data[:] = 1.0
    model = SocialProof().fit(TrainData(user_items=binary, dataset=_Graph(social)))  # type: ignore[arg-type]
    return model.tie_strength_.tocsr()


def embed_texts(texts: list[str], encoder: str, cache_dir: str | None) -> np.ndarray:
    """Unit-length text embeddings through the on-disk cache (zero rows for empty texts)."""
    from socialrec.represent.cache import cached_encode
    from socialrec.represent.encoders import get_encoder

    enc = get_encoder(encoder)
    out = np.zeros((len(texts), enc.dim), dtype=np.float32)
    idx = [i for i, t in enumerate(texts) if t]
    if idx:
        out[idx] = cached_encode(enc, [texts[i] for i in idx], cache_dir, batch_size=128)
    return out


def train_bundle(dataset: Dataset, store: EventStore, salt: bytes, cfg: TrainConfig, version: str,
                 log: Callable[[str], None] = lambda _m: None) -> Bundle:
    """Train a model version on the base dataset plus every stored event (see module docstring)."""
    start = time.perf_counter()
    users, items, titles, r, c, v, edges, through = _collect(dataset, store, salt)
    x = sp.csr_matrix((v, (r, c)), shape=(len(users), len(items)), dtype=np.float32)
    x.sum_duplicates()
    uidx = {u: i for i, u in enumerate(users)}
    if edges:
        src = np.array([uidx[a] for a, _ in edges])
        dst = np.array([uidx[b] for _, b in edges])
        social = sp.csr_matrix((np.ones(len(edges), dtype=np.float32), (src, dst)), shape=(len(users), len(users)))
    else:
        social = sp.csr_matrix((len(users), len(users)), dtype=np.float32)
    popularity = np.diff(x.tocsc().indptr).astype(np.float32)
    meta: dict[str, Any] = {"trained_through_seq": through, "created": time.time(), "dataset": dataset.name,
                            "users": len(users), "items": len(items), "interactions": int(x.nnz), "metrics": {}}
    bundle = Bundle(version=version, user_ids=np.array(users, dtype=object), item_ids=np.array(items, dtype=object),
                    item_titles=np.array(titles, dtype=object), train=x, social=social, popularity=popularity, meta=meta)
    if cfg.popularity_only or x.nnz == 0:
        meta["kind"] = "popularity"
        return bundle
    meta["kind"] = "als+social+trending+content"
    meta["metrics"] = _holdout_metrics(x, lambda m: _fit_als(m, cfg), cfg.holdout_share, cfg.seed)
    log(f"holdout metrics {meta['metrics']}")
    bundle.user_factors, bundle.item_factors = _fit_als(x, cfg)
    if social.nnz:
        bundle.tie_strength = _tie_strength(x, social)
    if cfg.encoder != "none":
        texts = [str(t) for t in titles]
        position = {it: i for i, it in enumerate(items)}
        for item_id, title, text in store.items():
            texts[position[item_id]] = f"{title}. {text}".strip(" .")
        bundle.item_embeddings = embed_texts(texts, cfg.encoder, cfg.embedding_dir)
    meta["train_seconds"] = round(time.perf_counter() - start, 3)
    return bundle


def popularity_bundle(dataset: Dataset, store: EventStore, salt: bytes) -> Bundle:
    """The fallback served until a trained model exists: popularity only."""
    return train_bundle(dataset, store, salt, TrainConfig(popularity_only=True), "popularity")
