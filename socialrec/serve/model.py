"""The serving model: what the HTTP layer asks of a recommender, and the default one.

`ServingModel` is the small interface the service depends on; any object with these methods can
be served (the hybrid pipeline plugs in through an adapter that maps external ids to indices and
its output to `Recommendation`). `LiveModel`, the default, serves a trained `Bundle` and learns
in real time from every event, without retraining:

- collaborative: ALS factors; a user's new events re-solve their factor by least squares against
  the fixed item factors (the fold-in of implicit's ``recalculate_user``, same confidence
  weighting), so the next request already reflects them;
- social proof: friends' items weighted by SocialProof's tie strengths, plus friends' likes since
  training; follow/unfollow events change the friend set at once;
- trending: exponentially decayed counters per item (half-life in the settings), kept on a
  moving exponent so that an event costs one addition and the ranking needs no periodic decay;
- content: items added after training (PUT with text) are scored by the cosine of their text
  embedding with the user's content vector (mean embedding of their items plus their own text);
- popular: the fallback for unknown users and the tie-breaker.

The channels' candidate lists are merged by weighted reciprocal-rank fusion, whose weights depend
on the ``scenario``; each channel that put an item forward becomes one `Reason` of it. Seen and
hidden items are never recommended.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp

from socialrec.errors import UnknownIdError
from socialrec.explain.reasons import Reason, render_sentence
from socialrec.rank.pipeline import Recommendation  # the one shape the pipeline and the service share
from socialrec.serve.bundle import ERASED, Bundle, embed_texts, event_weight
from socialrec.serve.store import Event

SCENARIOS: dict[str, dict[str, float]] = {
    "home": {"als": 1.0, "social": 0.6, "trending": 0.3, "content": 0.6, "popular": 0.1},
    "friends": {"als": 0.3, "social": 1.0, "trending": 0.1, "content": 0.2, "popular": 0.05},
    "trending": {"als": 0.3, "social": 0.2, "trending": 1.0, "content": 0.1, "popular": 0.1},
    "new": {"als": 0.2, "social": 0.2, "trending": 0.2, "content": 1.0, "popular": 0.05},
}
_RRF_K = 20.0  # reciprocal-rank constant: smaller favours each channel's first places more
_CACHE_USERS = 50_000  # users whose candidate rows are kept (least recently used dropped first)
_MIN_DEPTH = 100  # cached ALS/social lists hold at least this many items (k up to 50 without recomputing)
_REASON_KIND = {"als": "collaborative", "social": "friends_liked", "trending": "trending", "content": "new",
                "popular": "popular"}


@dataclass
class _UserRows:
    """Cached candidate rows of one user (item indices, best first; seen items already removed)."""

    seen: np.ndarray  # sorted
    als: np.ndarray | None = None
    social: np.ndarray | None = None
    popular: np.ndarray | None = None
    trending: np.ndarray | None = None
    trending_generation: int = -1  # the model's trending generation the row was cut from
    depth: int = 0


@runtime_checkable
class ServingModel(Protocol):
    """What the service needs from a model. Ids are external strings throughout."""

    version: str
    meta: dict[str, Any]

    def recommend(self, user_id: str, k: int, *, explain: bool = False, scenario: str = "home") -> list[Recommendation]: ...

    def similar_items(self, item_id: str, k: int) -> list[Recommendation]: ...

    def friend_suggestions(self, user_id: str, k: int) -> list[tuple[str, float]]: ...

    def observe(self, events: Sequence[Event]) -> None: ...

    def upsert_item(self, item_id: str, title: str, text: str) -> None: ...

    def upsert_user(self, user_id: str, name: str, text: str) -> None: ...

    def forget_user(self, user_id: str) -> None: ...

    def n_items(self) -> int: ...


@dataclass
class LiveOptions:
    alpha: float = 10.0
    regularization: float = 0.05
    trending_half_life_s: float = 6 * 3600.0
    encoder: str = "minilm-onnx"
    embedding_dir: str | None = None


def _top_indices(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the n largest finite scores, best first (ties: lower index first)."""
    n = min(n, scores.size)
    if n <= 0:
        return np.empty(0, dtype=np.int64)
    part = np.argpartition(-scores, n - 1)[:n]
    part = part[np.isfinite(scores[part])]
    return part[np.lexsort((part, -scores[part]))]


def _isin_sorted(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """``np.isin(values, sorted_set)`` for a sorted ``sorted_set``: one binary search per value,
    without np.isin's sorting (which dominates for the small arrays of one request)."""
    if not sorted_set.size or not values.size:
        return np.zeros(values.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_set, values), sorted_set.size - 1)
    return sorted_set[pos] == values


class LiveModel:
    """The default `ServingModel` (see the module docstring)."""

    def __init__(self, bundle: Bundle, options: LiveOptions | None = None) -> None:
        self.bundle = bundle
        self.options = options or LiveOptions()
        self.version = bundle.version
        self.meta = bundle.meta
        self._lock = threading.RLock()
        self.n_base_users = len(bundle.user_ids)
        self.n_base_items = len(bundle.item_ids)
        self.user_ids: list[str] = [str(u) for u in bundle.user_ids]
        self.user_pos = {u: i for i, u in enumerate(self.user_ids) if u != ERASED}
        self.item_ids: list[str] = [str(i) for i in bundle.item_ids]
        self.item_pos = {it: i for i, it in enumerate(self.item_ids)}
        self.titles: list[str] = [str(t) for t in bundle.item_titles]
        self.binary = bundle.train.copy()
        self.binary.data[:] = 1.0
        self.live_items: dict[int, dict[int, float]] = {}
        self.factors: dict[int, np.ndarray] = {}
        self.hidden: dict[int, set[int]] = {}
        self.follows: dict[int, set[int]] = {}
        self.unfollows: dict[int, set[int]] = {}
        self.names: dict[str, str] = {}
        self.user_text: dict[int, np.ndarray] = {}
        self._content_vec: dict[int, np.ndarray | None] = {}
        self._dim = bundle.item_embeddings.shape[1] if bundle.item_embeddings is not None else 0
        self._new_emb = np.zeros((0, self._dim), dtype=np.float32)
        self._n_new_emb = 0
        self._trend = np.zeros(self.n_base_items, dtype=np.float64)
        self._trend_t0 = time.time()
        self._trend_top: np.ndarray | None = None
        self._trend_generation = 0  # bumped whenever the trending top list is recomputed
        self._popular_top = _top_indices(bundle.popularity.astype(np.float64), 1000)
        self._friend_model: Any = None
        self._unit_items: np.ndarray | None = None
        # Per-user candidate rows (seen items, ALS and social top lists), computed on the first
        # request and dropped when they can change: the user's own events, a friend's like, a
        # follow, erasure; a model swap builds a new LiveModel and so starts empty.
        self._rows: OrderedDict[int, _UserRows] = OrderedDict()
        self._json_fragments: dict[int, str] = {}  # item index -> its JSON object up to the score
        self._item_cols: sp.csc_matrix | None = None  # binary by column: who has an item (evidence)
        self._friend_cols: sp.csc_matrix | None = None  # friendships by column: whose friend a user is
        self._followed_by: dict[int, set[int]] = {}  # live follows, reversed
        # Users with events not yet folded into their factor: the solve runs on their next read,
        # not inside the ingestion request (one solve however many batches came in between).
        self._stale: set[int] = set()
        if bundle.item_factors is not None:
            y = bundle.item_factors.astype(np.float64)
            self._yty = y.T @ y + self.options.regularization * np.eye(y.shape[1])

    # --- helpers -----------------------------------------------------------------------
    def n_items(self) -> int:
        return len(self.item_ids)

    def title(self, item_id: str) -> str:
        """The item's current title (upserts included); the id when the item is unknown."""
        i = self.item_pos.get(item_id)
        return self.titles[i] if i is not None else item_id

    def live_activity(self, user_id: str) -> tuple[set[str], bool]:
        """(ids of the items the user interacted with or hid since training, whether the user
        has any event since training, follows included)."""
        with self._lock:
            u = self.user_pos.get(user_id)
            if u is None:
                return set(), False
            items = set(self.live_items.get(u, {})) | self.hidden.get(u, set())
            active = bool(items) or u in self.follows or u in self.unfollows
            return {self.item_ids[i] for i in items}, active

    def _user(self, user_id: str, create: bool) -> int | None:
        u = self.user_pos.get(user_id)
        if u is None and create:
            u = len(self.user_ids)
            self.user_ids.append(user_id)
            self.user_pos[user_id] = u
        return u

    def _item(self, item_id: str, title: str | None = None) -> int:
        i = self.item_pos.get(item_id)
        if i is None:
            i = len(self.item_ids)
            self.item_ids.append(item_id)
            self.item_pos[item_id] = i
            self.titles.append(title or item_id)
            self._trend = np.concatenate([self._trend, np.zeros(1)])
        return i

    def _seen(self, u: int | None) -> np.ndarray:
        if u is None:
            return np.empty(0, dtype=np.int64)
        parts = []
        if u < self.n_base_users:
            parts.append(self.binary.indices[self.binary.indptr[u]:self.binary.indptr[u + 1]])
        parts.append(np.fromiter(self.live_items.get(u, {}).keys(), dtype=np.int64))
        parts.append(np.fromiter(self.hidden.get(u, ()), dtype=np.int64))
        return np.concatenate(parts).astype(np.int64)

    def _user_factor(self, u: int | None) -> np.ndarray | None:
        if u is None or self.bundle.user_factors is None:
            return None
        if u in self._stale:
            self._stale.discard(u)
            self._fold_in(u)
        if u in self.factors:
            return self.factors[u]
        if u < self.n_base_users:
            return self.bundle.user_factors[u]
        return None

    def _fold_in(self, u: int) -> None:
        """Least-squares user factor against the fixed item factors (implicit's ALS step:
        confidence c = alpha * r, A = Y'Y + reg I + sum (c - 1) y y', b = sum c y)."""
        y = self.bundle.item_factors
        if y is None:
            return
        weights: dict[int, float] = {}
        if u < self.n_base_users:
            row = slice(self.bundle.train.indptr[u], self.bundle.train.indptr[u + 1])
            weights.update(zip(self.bundle.train.indices[row].tolist(), self.bundle.train.data[row].tolist()))
        for i, w in self.live_items.get(u, {}).items():
            if i < self.n_base_items:
                weights[i] = weights.get(i, 0.0) + w
        for i in self.hidden.get(u, ()):
            weights.pop(i, None)
        if not weights:
            self.factors.pop(u, None)
            return
        idx = np.fromiter(weights.keys(), dtype=np.int64)
        c = self.options.alpha * np.fromiter(weights.values(), dtype=np.float64)
        yu = y[idx].astype(np.float64)
        a = self._yty + (yu * (c - 1.0)[:, None]).T @ yu
        b = yu.T @ c
        self.factors[u] = np.linalg.solve(a, b).astype(np.float32)

    def _friends(self, u: int | None) -> tuple[np.ndarray, np.ndarray]:
        """(friend indices, tie strengths) with live follows and unfollows applied."""
        if u is None:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        f: dict[int, float] = {}
        if u < self.n_base_users:
            m = self.bundle.tie_strength if self.bundle.tie_strength is not None else self.bundle.social
            row = slice(m.indptr[u], m.indptr[u + 1])
            f.update(zip(m.indices[row].tolist(), m.data[row].tolist()))
        for v in self.unfollows.get(u, ()):
            f.pop(v, None)
        for v in self.follows.get(u, ()):
            f.setdefault(v, 1.0)
        f = {v: s for v, s in f.items() if s > 0}
        return np.fromiter(f.keys(), dtype=np.int64), np.fromiter(f.values(), dtype=np.float32)

    def _content_vector(self, u: int | None) -> np.ndarray | None:
        if u is None or self._dim == 0:
            return None
        if u in self._content_vec:
            return self._content_vec[u]
        items = [i for i in self._seen(u).tolist() if i not in self.hidden.get(u, set())]
        vecs = [self._embedding(i) for i in items[-50:]]
        vecs = [v for v in vecs if v is not None]
        vec = np.mean(vecs, axis=0) if vecs else np.zeros(self._dim, dtype=np.float32)
        nrm = float(np.linalg.norm(vec))
        vec = vec / nrm if nrm > 0 else vec
        if u in self.user_text:
            vec = vec + 0.5 * self.user_text[u]
        nrm = float(np.linalg.norm(vec))
        out = (vec / nrm).astype(np.float32) if nrm > 0 else None
        self._content_vec[u] = out
        return out

    def _embedding(self, i: int) -> np.ndarray | None:
        if i < self.n_base_items:
            e = self.bundle.item_embeddings
            return e[i] if e is not None and e[i].any() else None
        j = i - self.n_base_items
        return self._new_emb[j] if j < self._n_new_emb and self._new_emb[j].any() else None

    def _trend_now(self) -> float:
        return float(2.0 ** (-(time.time() - self._trend_t0) / self.options.trending_half_life_s))

    # --- channels ----------------------------------------------------------------------
    def _user_rows(self, u: int | None, depth: int) -> _UserRows:
        """The user's cached rows, (re)computed when missing or not deep enough."""
        if u is None:
            return _UserRows(np.empty(0, dtype=np.int64), depth=depth)
        rows = self._rows.get(u)
        if rows is None:
            rows = _UserRows(np.unique(self._seen(u)))
            self._rows[u] = rows
            if len(self._rows) > _CACHE_USERS:
                self._rows.popitem(last=False)
        else:
            self._rows.move_to_end(u)
        if rows.depth < depth:
            rows.als = rows.social = rows.popular = rows.trending = None
            rows.depth = depth
        if rows.als is None:
            rows.als = self._als_row(u, rows.seen, rows.depth)
        if rows.social is None:
            rows.social = self._social_row(u, rows.seen, rows.depth)
        return rows

    def _als_row(self, u: int, seen: np.ndarray, n: int) -> np.ndarray:
        x = self._user_factor(u)
        if x is None or self.bundle.item_factors is None:
            return np.empty(0, dtype=np.int64)
        s = self.bundle.item_factors @ x  # one BLAS matrix-vector product (one thread, see serve_cmd)
        s[seen[seen < self.n_base_items]] = -np.inf
        return _top_indices(s, n)

    def _social_row(self, u: int, seen: np.ndarray, n: int) -> np.ndarray:
        """Items friends liked, scored by the sum of their tie strengths (SocialProof), plus
        friends' likes since training; gathered from CSR rows without building a matrix."""
        friends, strength = self._friends(u)
        if not friends.size:
            return np.empty(0, dtype=np.int64)
        b = self.binary
        base = friends < self.n_base_users
        fb, wb = friends[base], strength[base].astype(np.float64)
        starts, ends = b.indptr[fb], b.indptr[fb + 1]
        lengths = ends - starts
        parts_i = [b.indices[a:e] for a, e in zip(starts.tolist(), ends.tolist())]
        parts_w = [np.repeat(wb, lengths)]
        for f, w in zip(friends.tolist(), strength.tolist()):
            live = self.live_items.get(f)
            if live:
                liked = [i for i, ev in live.items() if ev > 0]
                parts_i.append(np.asarray(liked, dtype=np.int64))
                parts_w.append(np.full(len(liked), w, dtype=np.float64))
        items = np.concatenate(parts_i).astype(np.int64) if parts_i else np.empty(0, dtype=np.int64)
        if not items.size:
            return items
        uniq, inv = np.unique(items, return_inverse=True)
        scores = np.bincount(inv, weights=np.concatenate(parts_w), minlength=uniq.size)
        keep = ~_isin_sorted(uniq, seen)
        uniq, scores = uniq[keep], scores[keep]
        return uniq[_top_indices(scores, n)]

    def _unseen(self, items: np.ndarray, seen: np.ndarray, n: int) -> np.ndarray:
        if seen.size:
            items = items[~_isin_sorted(items, seen)]
        return items[:n]

    def _channels(self, u: int | None, n: int, scenario: str) -> dict[str, np.ndarray]:
        weights = SCENARIOS[scenario]
        rows = self._user_rows(u, max(n, _MIN_DEPTH))
        seen = rows.seen
        out: dict[str, np.ndarray] = {}
        if weights["als"] > 0 and rows.als is not None and rows.als.size:
            out["als"] = rows.als[:n]
        if weights["social"] > 0 and rows.social is not None and rows.social.size:
            out["social"] = rows.social[:n]
        if weights["trending"] > 0:
            if self._trend_top is None:
                self._trend_top = _top_indices(np.where(self._trend > 0, self._trend, -np.inf), 500)
                self._trend_generation += 1
            if rows.trending is None or rows.trending_generation != self._trend_generation:
                rows.trending = self._unseen(self._trend_top, seen, rows.depth)
                rows.trending_generation = self._trend_generation
            out["trending"] = rows.trending[:n]
        cv = self._content_vector(u)
        if cv is not None and self._n_new_emb and weights["content"] > 0:
            emb = self._new_emb[:self._n_new_emb]
            sims = (emb @ cv).astype(np.float64)
            sims[~emb.any(axis=1)] = -np.inf
            top = _top_indices(sims, n)
            out["content"] = self._unseen(top[sims[top] > 0] + self.n_base_items, seen, n)
        if rows.popular is None:
            rows.popular = self._unseen(self._popular_top[: rows.depth + seen.size], seen, rows.depth)
        out["popular"] = rows.popular[:n]
        return out

    def _fuse(self, user_id: str, k: int, scenario: str) -> tuple[Any, ...] | None:
        """Weighted reciprocal-rank fusion of the user's channels, vectorised: one contribution per
        (channel, rank). Returns (user index, channels, unique items, inverse, totals, top-k
        order), or None when no channel has anything. Call with the lock held."""
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; use one of {', '.join(SCENARIOS)}")
        u = self._user(user_id, create=False)
        weights = SCENARIOS[scenario]
        channels = [(name, items) for name, items in self._channels(u, max(2 * k, 50), scenario).items() if items.size]
        if not channels:
            return None
        items = np.concatenate([c for _, c in channels])
        contrib = np.concatenate([weights[name] / (_RRF_K + np.arange(c.size)) for name, c in channels])
        uniq, inv = np.unique(items, return_inverse=True)
        total = np.bincount(inv, weights=contrib, minlength=uniq.size)
        order = np.lexsort((uniq, -total))[:k]  # ties: lower index first
        return u, channels, uniq, inv, total, order

    def recommend_indices(self, user_id: str, k: int, *, scenario: str = "home") -> tuple[np.ndarray, np.ndarray]:
        """The unexplained top-k as (item indices, scores): the HTTP service's hot path writes its
        response from these and `item_json`, without Recommendation objects."""
        with self._lock:
            fused = self._fuse(user_id, k, scenario)
        if fused is None:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        _, _, uniq, _, total, order = fused
        return uniq[order], total[order]

    def warm(self, n_users: int) -> int:
        """Compute the candidate rows of the ``n_users`` most active base users (most training
        interactions first), as their first request would; returns how many."""
        active = np.diff(self.bundle.train.indptr)
        users = np.argsort(-active, kind="stable")[:min(n_users, _CACHE_USERS)]
        users = users[active[users] > 0]
        with self._lock:
            for u in users.tolist():
                if self.user_ids[u] != ERASED:
                    self._user_rows(u, _MIN_DEPTH)
        return len(users)

    def item_json(self, i: int) -> str:
        """``{"item_id":...,"title":...`` for item index ``i``, without the closing brace (the
        caller appends the score); cached, and dropped when the title changes."""
        frag = self._json_fragments.get(i)
        if frag is None:
            frag = json.dumps({"item_id": self.item_ids[i], "title": self.titles[i]}, separators=(",", ":"))[:-1]
            self._json_fragments[i] = frag
        return frag

    def recommend(self, user_id: str, k: int, *, explain: bool = False, scenario: str = "home") -> list[Recommendation]:
        with self._lock:
            fused = self._fuse(user_id, k, scenario)
            if fused is None:
                return []
            u, channels, uniq, inv, total, order = fused
            weights = SCENARIOS[scenario]
            if not explain:
                return [Recommendation(self.item_ids[i], self.titles[i], s)
                        for i, s in zip(uniq[order].tolist(), total[order].tolist())]
            pos = {int(j): r for r, j in enumerate(order.tolist())}
            parts: list[dict[str, float]] = [{} for _ in order]
            for (name, c), start in zip(channels, np.cumsum([0] + [c.size for _, c in channels[:-1]]).tolist()):
                for r, slot in enumerate(inv[start:start + c.size].tolist()):
                    p = pos.get(slot)
                    if p is not None:
                        parts[p][name] = weights[name] / (_RRF_K + r)
            chosen = uniq[order].tolist()
            evidence = self._friend_evidence_many(u, [i for i, c in zip(chosen, parts) if "social" in c])
            return [self._recommendation(u, i, s, parts[p], evidence.get(i))
                    for p, (i, s) in enumerate(zip(chosen, total[order].tolist()))]

    def _recommendation(self, u: int | None, i: int, score: float, contrib: dict[str, float] | None,
                        friends: list[dict[str, str]] | None = None) -> Recommendation:
        title = self.titles[i]
        if contrib is None:
            return Recommendation(self.item_ids[i], title, float(score))
        reasons = []
        for name, w in contrib.items():
            ev: dict[str, Any] = {}
            if name == "social":
                ev["friends"] = friends if friends is not None else self._friend_evidence(u, i)
            elif name == "trending":
                ev["recent_interactions"] = int(round(self._trend[i] * self._trend_now()))
            elif name == "content":
                similar = self._most_similar_seen(u, i)
                if similar is not None:
                    reasons.append(Reason("similar_to", w * 0.99, {"item": similar}))
            reasons.append(Reason(_REASON_KIND[name], w, ev))
        reasons.sort(key=lambda r: -r.weight)
        return Recommendation(self.item_ids[i], title, float(score), tuple(reasons), render_sentence(title, reasons))

    def _friend_evidence(self, u: int | None, i: int, limit: int = 3) -> list[dict[str, str]]:
        return self._friend_evidence_many(u, [i], limit)[i]

    def _friend_evidence_many(self, u: int | None, items: list[int], limit: int = 3) -> dict[int, list[dict[str, str]]]:
        """Up to ``limit`` friends (strongest ties first) who liked each item, for all items at
        once: one membership test over the friends' concatenated rows."""
        out: dict[int, list[dict[str, str]]] = {i: [] for i in items}
        friends, strength = self._friends(u)
        if not friends.size or not items:
            return out
        ordered = friends[np.argsort(-strength, kind="stable")]
        b = self.binary
        base_pos = np.flatnonzero(ordered < self.n_base_users)
        base = ordered[base_pos]
        owners = np.repeat(base_pos, b.indptr[base + 1] - b.indptr[base])
        got = np.concatenate([b.indices[b.indptr[f]:b.indptr[f + 1]] for f in base.tolist()] or [np.empty(0, np.int32)])
        hit = _isin_sorted(got, np.unique(np.asarray(items, dtype=np.int64)))
        pairs = set(zip(owners[hit].tolist(), got[hit].tolist()))  # (friend's position by tie strength, item)
        for pos, f in enumerate(ordered.tolist()):
            live = self.live_items.get(f)
            if live:
                pairs.update((pos, i) for i in items if live.get(i, 0.0) > 0)
        for pos, i in sorted(pairs):
            if len(out[i]) < limit:
                fid = self.user_ids[int(ordered[pos])]
                out[i].append({"id": fid, "name": self.names.get(fid, fid)})
        return out

    def _most_similar_seen(self, u: int | None, i: int) -> dict[str, str] | None:
        target = self._embedding(i)
        if target is None or u is None:
            return None
        best, best_sim = None, 0.0
        for j in self._seen(u).tolist()[-50:]:
            e = self._embedding(j)
            if e is not None and j != i:
                sim = float(e @ target)
                if sim > best_sim:
                    best, best_sim = j, sim
        return None if best is None else {"id": self.item_ids[best], "name": self.titles[best]}

    def similar_items(self, item_id: str, k: int) -> list[Recommendation]:
        with self._lock:
            i = self.item_pos.get(item_id)
            if i is None:
                raise UnknownIdError("item", [item_id], len(self.item_ids))
            if i < self.n_base_items and self.bundle.item_factors is not None:
                if self._unit_items is None:
                    f = self.bundle.item_factors
                    self._unit_items = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
                s = (self._unit_items @ self._unit_items[i]).astype(np.float64)
            else:
                target = self._embedding(i)
                if target is None:
                    return []
                base = self.bundle.item_embeddings if self.bundle.item_embeddings is not None else np.zeros((0, self._dim))
                s = np.concatenate([base @ target, self._new_emb[:self._n_new_emb] @ target]).astype(np.float64)
            s[i] = -np.inf
            return [Recommendation(self.item_ids[j], self.titles[j], float(s[j])) for j in _top_indices(s, k)]

    def friend_suggestions(self, user_id: str, k: int) -> list[tuple[str, float]]:
        with self._lock:
            u = self._user(user_id, create=False)
            if u is None:
                raise UnknownIdError("user", [user_id], len(self.user_pos))
            if u >= self.n_base_users or self.bundle.social.nnz == 0:
                return []
            if self._friend_model is None:
                from socialrec.retrieve.friends import AdamicAdar

                self._friend_model = AdamicAdar().fit(self.bundle.social)
            skip = self.follows.get(u, set())
            ids, scores = self._friend_model.recommend(u, k + len(skip) + 5)
            out = []
            for v, s in zip(ids.tolist(), scores.tolist()):
                if v >= 0 and np.isfinite(s) and s > 0 and v not in skip and self.user_ids[v] != ERASED:
                    out.append((self.user_ids[v], float(s)))
            return out[:k]

    # --- real-time updates -------------------------------------------------------------
    def observe(self, events: Sequence[Event]) -> None:
        """Apply stored events: seen/hidden items, fold-in, trending, follows."""
        with self._lock:
            touched: set[int] = set()
            liked: set[int] = set()  # users with a new positive event: their followers' social rows change
            now = time.time()
            for e in events:
                u = self._user(e.user_id, create=True)
                if u is None:  # unreachable: create=True always gives an index
                    continue
                if e.kind in ("follow", "unfollow"):
                    if e.target_user_id is None:
                        continue
                    v = self._user(e.target_user_id, create=True)
                    add, remove = (self.follows, self.unfollows) if e.kind == "follow" else (self.unfollows, self.follows)
                    add.setdefault(u, set()).add(v)  # type: ignore[arg-type]
                    remove.get(u, set()).discard(v)  # type: ignore[arg-type]
                    if e.kind == "follow":
                        self._followed_by.setdefault(v, set()).add(u)  # type: ignore[arg-type]
                    self._rows.pop(u, None)
                    continue
                if e.item_id is None:
                    continue
                i = self._item(e.item_id)
                touched.add(u)
                if e.kind == "hide":
                    self.hidden.setdefault(u, set()).add(i)
                    continue
                w = event_weight(e.kind, e.value)
                if w > 0:
                    items = self.live_items.setdefault(u, {})
                    items[i] = items.get(i, 0.0) + w
                    t = min(e.ts, now)
                    self._trend[i] += 2.0 ** ((t - self._trend_t0) / self.options.trending_half_life_s)
                    self._trend_top = None
                    liked.add(u)
                elif e.kind == "view" or e.kind == "rating":
                    self.live_items.setdefault(u, {}).setdefault(i, 0.0)  # seen, no positive signal
            for u in touched:
                self._stale.add(u)
                self._content_vec.pop(u, None)
                self._rows.pop(u, None)
            if liked and self._rows:
                self._invalidate_social_of_followers(liked)

    def _invalidate_social_of_followers(self, users: set[int]) -> None:
        if self._friend_cols is None:
            m = self.bundle.tie_strength if self.bundle.tie_strength is not None else self.bundle.social
            self._friend_cols = m.tocsc()
        cols = self._friend_cols
        for f in users:
            fans = self._followed_by.get(f, set())
            if f < self.n_base_users:
                fans = fans.union(cols.indices[cols.indptr[f]:cols.indptr[f + 1]].tolist())
            for v in fans:
                rows = self._rows.get(v)
                if rows is not None:
                    rows.social = None

    def upsert_item(self, item_id: str, title: str, text: str) -> None:
        """Add or update a catalog entry; with text (and an encoder) it is recommendable at once."""
        vec = None
        if self._dim and (title or text) and self.options.encoder != "none":
            vec = embed_texts([f"{title}. {text}".strip(" .")], self.options.encoder, self.options.embedding_dir)[0]
        with self._lock:
            i = self._item(item_id, title)
            self.titles[i] = title or item_id
            self._json_fragments.pop(i, None)
            if vec is None:
                return
            if i < self.n_base_items:
                if self.bundle.item_embeddings is not None:
                    self.bundle.item_embeddings[i] = vec
                return
            j = i - self.n_base_items
            if j >= self._new_emb.shape[0]:
                grown = np.zeros((max(16, 2 * (j + 1)), self._dim), dtype=np.float32)
                grown[:self._new_emb.shape[0]] = self._new_emb
                self._new_emb = grown
            self._new_emb[j] = vec
            self._n_new_emb = max(self._n_new_emb, j + 1)

    def upsert_user(self, user_id: str, name: str, text: str) -> None:
        vec = None
        if self._dim and text and self.options.encoder != "none":
            vec = embed_texts([text], self.options.encoder, self.options.embedding_dir)[0]
        with self._lock:
            u = self._user(user_id, create=True)
            if name:
                self.names[user_id] = name
            if vec is not None:
                self.user_text[u] = vec  # type: ignore[index]
            self._content_vec.pop(u, None)  # type: ignore[arg-type]

    def forget_user(self, user_id: str) -> None:
        """Drop everything about the user held in memory (erasure)."""
        with self._lock:
            u = self.user_pos.pop(user_id, None)
            self.names.pop(user_id, None)
            if u is None:
                return
            self.user_ids[u] = ERASED
            for d in (self.live_items, self.factors, self.hidden, self.follows, self.unfollows, self.user_text,
                      self._content_vec):
                d.pop(u, None)  # type: ignore[attr-defined]
            for d in (self.follows, self.unfollows, self._followed_by):
                for s in d.values():
                    s.discard(u)
            self._followed_by.pop(u, None)
            self._stale.discard(u)
            # The user's items leave popularity and friends' evidence: recompute every cached row.
            self._rows.clear()
            self._item_cols = self._friend_cols = None
            if u < self.n_base_users:
                forget_row(self.bundle, u)
                _zero_row_and_column(self.binary, u, columns=False)
                self.binary.eliminate_zeros()
                self._friend_model = None


def _zero_row_and_column(m: sp.csr_matrix, u: int, *, columns: bool) -> None:
    m.data[m.indptr[u]:m.indptr[u + 1]] = 0
    if columns:
        m.data[m.indices == u] = 0


def forget_row(bundle: Bundle, u: int) -> None:
    """Remove user row ``u`` from a bundle in place: id, factors, interactions, social ties.
    Item popularity loses their interactions; item factors keep their (now anonymous) influence
    until the next retrain, which leaves the user out entirely."""
    row = bundle.train.indices[bundle.train.indptr[u]:bundle.train.indptr[u + 1]]
    bundle.popularity[row] = np.maximum(bundle.popularity[row] - 1, 0)
    bundle.user_ids[u] = ERASED
    if bundle.user_factors is not None:
        bundle.user_factors[u] = 0.0
    _zero_row_and_column(bundle.train, u, columns=False)
    for m in (bundle.social, bundle.tie_strength):
        if m is not None:
            _zero_row_and_column(m, u, columns=True)
    for m in (bundle.train, bundle.social, bundle.tie_strength):
        if m is not None:
            m.eliminate_zeros()
