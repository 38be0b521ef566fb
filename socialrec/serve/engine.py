"""What the service serves: a fitted library model and the dataset that names its ids.

`ServedModel` holds no recommender maths of its own. It keeps

- the fitted model (the `HybridRecommender` through a `RecommendationPipeline` by default, or
  any recommender on the contract), which learns from events through the contract's online
  update (`partial_fit_users`: every channel folds the user in, the ranker's features re-read
  their history), so the next request reflects an event without retraining;
- the friend recommender (`pymk`, the learned people-you-may-know ranker), refitted with each
  version and folded in on follow events;
- the dataset, whose `IdMap` is the one place external ids become indices (new users from
  events are added to it; an erased user's id is retired from it);
- per-user hidden items and a small cache of each user's last list;
- the users who opted out of personalisation: their state is emptied from the model, their
  events are not folded in, and they get the list an anonymous user gets (the service sets
  them on every version it serves; the set is not saved with a version).

`train_served_model` fits a version on the base dataset plus every stored event.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from socialrec.errors import ConfigError, UnknownIdError
from socialrec.explain.pipeline import Recommendation
from socialrec.explain.reasons import Reason, render_sentence
from socialrec.ingest.schema import Dataset
from socialrec.privacy.erasure import ERASED_PREFIX
from socialrec.serve.store import Event, EventStore

# Item events that say the user wants the item (a rating only from 3 of 5 up); "hide" removes
# an item from the user's lists; follow/unfollow change the social graph.
POSITIVE_KINDS = ("view", "click", "like", "comment", "share", "purchase")
MIN_POSITIVE_RATING = 3.0


def is_positive(event: Event | Mapping[str, Any]) -> bool:
    kind = event.kind if isinstance(event, Event) else event["kind"]
    if kind in POSITIVE_KINDS:
        return True
    if kind == "rating":
        value = event.value if isinstance(event, Event) else event.get("value")
        return value is not None and float(value) >= MIN_POSITIVE_RATING
    return False


# The model that serves several scenarios at once (`train_scenario_models`).
SCENARIO_MODEL = "adapter-seq"


@dataclass(frozen=True)
class ModelConfig:
    """Which library model a version fits.

    name: "hybrid" (the pipeline the benchmarks measure) or a model of `socialrec evaluate`'s
        table ("als", "ease", "itemknn", ...), fitted with its default hyperparameters; with
        several scenarios (`ServeSettings.scenarios`) "adapter-seq" (`SCENARIO_MODEL`: one
        shared backbone, an adapter per scenario; ``params`` are `AdapterSeq`'s arguments),
        which also serves one dataset alone (a backbone and the dataset's adapter).
    channels: the hybrid's channels (None: what the data supports, as `socialrec evaluate`).
    params: further constructor arguments of the model, as (key, value) pairs.
    friends: the friend recommender of `socialrec evaluate-friends`' table ("pymk" by default).
    """

    name: str = "hybrid"
    channels: tuple[str, ...] | None = None
    params: tuple[tuple[str, Any], ...] = ()
    friends: str = "pymk"

    def make(self) -> Any:
        from socialrec.evaluate.friends import friend_models
        from socialrec.evaluate.suite import model_specs

        specs = model_specs(quick=True)
        if self.name not in specs:
            raise ConfigError(f"unknown model {self.name!r} to serve; known: {', '.join(specs)}")
        params = dict(self.params)
        if self.channels is not None:
            if self.name != "hybrid":
                raise ConfigError(f"channels are a setting of the hybrid, not of {self.name!r}")
            params["channels"] = tuple(self.channels)
        model = specs[self.name].make(**params)
        friends = friend_models()
        if self.friends not in friends:
            raise ConfigError(f"unknown friend model {self.friends!r}; known: {', '.join(friends)}")
        return model, friends[self.friends]()


def merge_events(dataset: Dataset, events: Sequence[Event], erased: set[str] | Callable[[str], bool] = frozenset(),
                 catalog: Sequence[tuple[str, str, str]] = ()) -> Dataset:
    """The dataset plus stored events and catalog items: ``catalog`` items ((id, title, text),
    from PUT /v1/items) the dataset does not have are appended to a copy of the item map with
    their title and text; positive item events become interactions of their user (new users are
    appended to a copy of the user map), follows add and unfollows remove social edges, in event
    order; events on items outside the catalog are left out. Users for whom ``erased`` is true
    (an id, checked by the caller's pseudonym) are left out of the base data too."""
    is_erased = erased if callable(erased) else (lambda u: u in erased)  # type: ignore[operator]
    dataset = with_catalog_items(dataset, catalog)
    users = dataset.users.copy()
    base = dataset.interactions
    gone = [i for i, u in enumerate(dataset.users.external_ids) if is_erased(str(u))]
    if gone:
        base = base[~base["user"].isin(gone)]
    rows = []
    edges: dict[tuple[int, int], bool] = {}
    for e in events:
        if is_erased(e.user_id):
            continue
        if e.kind in ("follow", "unfollow") and e.target_user_id is not None:
            if is_erased(e.target_user_id) or e.target_user_id == e.user_id:
                continue
            src, dst = users.add([e.user_id, e.target_user_id]).tolist()
            edges[(src, dst)] = e.kind == "follow"
            if not dataset.social_directed:
                edges[(dst, src)] = e.kind == "follow"
        elif e.item_id is not None and is_positive(e) and e.item_id in dataset.items:
            u = int(users.add([e.user_id])[0])
            rows.append((u, int(dataset.items.to_index(e.item_id)), e.ts, e.kind, np.nan if e.value is None else e.value))
    extra = pd.DataFrame(rows, columns=["user", "item", "timestamp", "kind", "value"])
    extra = extra.astype({"user": np.int32, "item": np.int32, "timestamp": np.float64, "value": np.float32})
    extra["split"] = np.int8(-1)
    interactions = pd.concat([base, extra[base.columns]], ignore_index=True) if len(extra) else base.reset_index(drop=True)
    social = dataset.social
    if gone:
        social = social[~social["source"].isin(gone) & ~social["target"].isin(gone)]
    if edges:
        keyed = {(int(s), int(t)): True for s, t in zip(social["source"], social["target"])}
        keyed.update(edges)
        pairs = [p for p, on in keyed.items() if on]
        social = pd.DataFrame({"source": np.array([p[0] for p in pairs], np.int32),
                               "target": np.array([p[1] for p in pairs], np.int32),
                               "kind": "follow", "weight": np.ones(len(pairs), np.float32)})
    return dataclasses.replace(dataset, users=users, interactions=interactions, social=social.reset_index(drop=True))


def with_catalog_items(dataset: Dataset, catalog: Sequence[tuple[str, str, str]]) -> Dataset:
    """``dataset`` with the catalog items it lacks appended (item map copied, a title row in the
    item table, title and text rows in the texts table); the dataset itself when none is new."""
    new = [(i, t, x) for i, t, x in catalog if i not in dataset.items]
    if not new:
        return dataset
    items = dataset.items.copy()
    index = items.add([i for i, _, _ in new])
    table = dataset.item_table
    if len(table.columns):
        extra = pd.DataFrame({"id": [i for i, _, _ in new], "title": [t for _, t, _ in new]}, index=index)
        table = pd.concat([table, extra.reindex(columns=table.columns)], ignore_index=True)
    rows = [("item", int(j), "title", t) for j, (_, t, _) in zip(index, new) if t]
    rows += [("item", int(j), "description", x) for j, (_, _, x) in zip(index, new) if x]
    texts = dataset.texts
    if rows:
        extra_texts = pd.DataFrame(rows, columns=["owner", "index", "field", "text"]).astype({"index": np.int32})
        extra_texts["timestamp"] = np.nan
        texts = pd.concat([texts, extra_texts[texts.columns]], ignore_index=True)
    return dataclasses.replace(dataset, items=items, item_table=table, texts=texts)


class ServedModel:
    """A fitted model served by external ids, learning online (see the module docstring)."""

    def __init__(self, model: Any, dataset: Dataset, friends: Any = None, *, version: str,
                 meta: dict[str, Any] | None = None, trained: bool = True, cache_ttl_s: float = 300.0) -> None:
        self.model = model
        self.dataset = dataset
        self.friends = friends
        self.version = version
        self.meta = dict(meta or {})
        self.trained = trained
        self.cache_ttl_s = cache_ttl_s
        self.pipeline = None
        from socialrec.rank.hybrid import HybridRecommender

        if isinstance(model, HybridRecommender):
            from socialrec.explain.pipeline import RecommendationPipeline

            self.pipeline = RecommendationPipeline(model, dataset)
        self.meta.setdefault("kind", type(model).__name__)
        self._lock = threading.RLock()
        self._pending_lock = threading.Lock()
        self._pending: list[Event] = []
        self._hidden: dict[int, set[int]] = {}
        self._social = sp.csr_matrix(dataset.social_matrix(), dtype=np.float32) if len(dataset.social) else None
        self._friends_stale = False
        self._cache: OrderedDict[tuple[int, bool], tuple[float, int, list[Recommendation]]] = OrderedDict()
        self._titles = np.asarray(dataset.item_titles(np.arange(dataset.n_items)), dtype=object)
        counts = np.diff(sp.csc_matrix(model.user_items_).indptr).astype(np.float64)
        self._popular = np.argsort(-counts, kind="stable")
        self._excluded: set[str] = set()

    def __getstate__(self) -> dict[str, Any]:
        self.flush()
        state = self.__dict__.copy()
        state.pop("_lock")
        state.pop("_pending_lock")
        state["_cache"] = OrderedDict()
        state["_excluded"] = set()  # consent lives in the event store, not in a saved version
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("_excluded", set())
        self._lock = threading.RLock()
        self._pending_lock = threading.Lock()

    # --- ids -----------------------------------------------------------------------------
    def n_items(self) -> int:
        return self.dataset.n_items

    def title(self, item_id: str) -> str:
        return str(self._titles[int(self.dataset.items.to_index(item_id))])

    def _user(self, user_id: str) -> int | None:
        if user_id not in self.dataset.users:
            return None
        u = int(self.dataset.users.to_index(user_id))
        return u if u < self.model.n_users_ else None

    # --- reads ---------------------------------------------------------------------------
    def hidden_items(self, user_id: str) -> list[str]:
        """External ids of the items the user hid (hide events): this version's lists leave them out,
        and so must anything else that proposes items to the user (the chat)."""
        u = self._user(user_id)
        with self._lock:
            hidden = sorted(self._hidden.get(u, ())) if u is not None else []
        return [str(x) for x in self.dataset.items.to_external(np.asarray(hidden, np.int64))] if hidden else []

    def recommend(self, user_id: str, k: int, *, explain: bool = False) -> list[Recommendation]:
        self._fresh()
        u = self._user(user_id)
        if u is None or user_id in self._excluded:  # a stranger, or opted out: the anonymous list
            return self._cold_start(k, explain, ())
        key = (u, explain)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached[1] >= k and now - cached[0] < self.cache_ttl_s:
                self._cache.move_to_end(key)
                return cached[2][:k]
            hidden = self._hidden.get(u, set())
            if self.pipeline is not None:
                ext = self.dataset.items.to_external(np.fromiter(hidden, np.int64)) if hidden else []
                recs = self.pipeline.recommend(user_id, k, explain=explain, hidden_items=list(ext))
            else:
                ids, scores = self.model.recommend(u, k + len(hidden))
                keep = [(int(i), float(s)) for i, s in zip(ids, scores) if i >= 0 and int(i) not in hidden][:k]
                recs = [self._plain(i, s, "collaborative", explain) for i, s in keep]
            self._cache[key] = (now, k, recs)
            if len(self._cache) > 50_000:
                self._cache.popitem(last=False)
            return recs

    def _plain(self, item: int, score: float, kind: str, explain: bool) -> Recommendation:
        title = str(self._titles[item])
        reasons = (Reason(kind, 1.0),) if explain else ()
        return Recommendation(str(self.dataset.items.to_external(item)), title, score, reasons,
                              render_sentence(title, list(reasons)) if explain else "")

    def cold_start(self, k: int) -> list[Recommendation]:
        """What a user the model does not know gets (trending or popular items)."""
        self._fresh()
        return self._cold_start(k, False, ())

    def _cold_start(self, k: int, explain: bool, hidden: Sequence[int]) -> list[Recommendation]:
        if self.pipeline is not None:
            return self.pipeline.recommend_cold(k, explain=explain)
        top = [int(i) for i in self._popular[:k + len(hidden)] if int(i) not in set(hidden)][:k]
        return [self._plain(i, float(k - n), "popular", explain) for n, i in enumerate(top)]

    def add_item_vectors(self, item_id: str, title: str, vectors: Mapping[str, Any], text: str = "") -> bool:
        """Place a new item from its modality vectors through the model's online update
        (`partial_fit_item_vectors`), so it is recommendable at once; the dataset grows with it
        (`with_catalog_items`: item map, title, text) and so do its feature matrices. False for an item the model already ranks (its
        fitted vectors stay until the next version). The model checks the vectors (DataError
        naming the modality and the dimension it expects); a model that cannot place items
        from vectors raises NotImplementedError, naming the models that can."""
        with self._lock:
            if item_id in self.dataset.items:
                return False
            if self.pipeline is not None:
                raise NotImplementedError(
                    "the served hybrid places new items at its next version; serve a multimodal model "
                    "(model = multimodal, vbpr or modality) to place items from their vectors at once")
            index = self.model.partial_fit_item_vectors({name: [list(v)] for name, v in vectors.items()})
            placed = self.model.item_features_
            feats = {name: np.vstack([m, np.asarray(placed[name][-1:], dtype=np.float32) if name in placed
                                      else np.zeros((1, m.shape[1]), np.float32)])
                     for name, m in self.dataset.item_features.items()}
            grown = with_catalog_items(self.dataset, [(item_id, title, text)])
            self.dataset = dataclasses.replace(grown, item_features={**grown.item_features, **feats})
            self._titles = np.r_[self._titles, np.asarray([title or item_id], dtype=object)]
            self._popular = np.r_[self._popular, index]
            self._cache.clear()
            return True

    def similar_items(self, item_id: str, k: int) -> list[Recommendation]:
        self._fresh()
        i = int(self.dataset.items.to_index(item_id))  # UnknownIdError for an unknown item
        with self._lock:
            ids, scores = self.model.similar_items(i, k)
        return [self._plain(int(j), float(s), "similar", False) for j, s in zip(ids, scores) if j >= 0]

    def friend_suggestions(self, user_id: str, k: int) -> list[tuple[str, float]]:
        self._fresh()
        if user_id not in self.dataset.users:
            raise UnknownIdError("user", [user_id], len(self.dataset.users))
        if self.friends is None or user_id in self._excluded:
            return []
        u = int(self.dataset.users.to_index(user_id))
        with self._lock:
            self._refresh_friends()
            if u >= self.friends.n_users_:
                return []
            ids, scores = self.friends.recommend(u, k + 8)
        out = []
        for v, s in zip(ids, scores):
            if v < 0 or not np.isfinite(s):
                continue
            ext = str(self.dataset.users.to_external(int(v)))
            if not ext.startswith(ERASED_PREFIX):
                out.append((ext, float(s)))
        return out[:k]

    def _refresh_friends(self) -> None:
        """Fold the social graph's changes into the friend recommender (at most once per read
        after changes: its features are graph-wide)."""
        if self._friends_stale and self._social is not None and self.friends is not None:
            n = self._social.shape[0]
            ui = self.model.user_items_
            ui = ui if ui.shape[0] == n else sp.vstack([ui, sp.csr_matrix((n - ui.shape[0], ui.shape[1]))]).tocsr()
            self.friends.partial_fit_graph(self._social, ui)
            self._friends_stale = False

    # --- writes: online learning through the contract ------------------------------------
    def observe(self, events: Sequence[Event]) -> None:
        """Queue these events for folding in. They are applied in batches: by the service's
        learner thread every few milliseconds, and before any read that finds events waiting,
        so the next request always reflects them while ingestion pays only for the queue."""
        if events:
            with self._pending_lock:
                self._pending.extend(events)

    def flush(self) -> int:
        """Fold every queued event into the model now; returns how many were applied."""
        with self._lock:
            with self._pending_lock:
                events, self._pending = self._pending, []
            if events:
                self._apply(events)
            return len(events)

    def _fresh(self) -> None:
        if self._pending:
            self.flush()

    def _apply(self, events: Sequence[Event]) -> None:
        users = self.dataset.users
        added: dict[int, set[int]] = {}
        edges: dict[tuple[int, int], float] = {}
        excluded = self._excluded
        for e in events:
            if excluded and (e.user_id in excluded or e.target_user_id in excluded):
                continue  # opted out of personalisation: stored, not learned from
            if e.kind in ("follow", "unfollow"):
                if e.target_user_id is None:
                    continue
                if e.target_user_id == e.user_id:
                    continue  # following oneself changes nothing
                src, dst = (int(i) for i in users.add([e.user_id, e.target_user_id]))
                on = 1.0 if e.kind == "follow" else 0.0
                for a, b in ([(src, dst)] if self.dataset.social_directed else [(src, dst), (dst, src)]):
                    edges[(a, b)] = on
                continue
            if e.item_id is None or e.item_id not in self.dataset.items:
                continue
            u = int(users.add([e.user_id])[0])
            i = int(self.dataset.items.to_index(e.item_id))
            if e.kind == "hide":
                self._hidden.setdefault(u, set()).add(i)
                added.setdefault(u, set())
            elif is_positive(e):
                added.setdefault(u, set()).add(i)
        if edges:
            self._set_edges(edges)
        # Every user new to the model joins it (a followed user may have no events of their own).
        changed = sorted(set(added) | {a for a, _ in edges} | set(range(self.model.n_users_, len(users))))
        if changed:
            self._fold_in(np.asarray(changed, dtype=np.int64), added)
        # Their lists change, and so do their followers' (friends' likes, social proof).
        stale = set(changed)
        if self._social is not None and changed:
            cols = np.asarray([u for u in changed if u < self._social.shape[1]], dtype=np.int64)
            if len(cols):
                stale |= set(self._social.tocsc()[:, cols].nonzero()[0].tolist())
        for u in stale:
            for explain in (False, True):
                self._cache.pop((u, explain), None)

    def _set_edges(self, edges: Mapping[tuple[int, int], float]) -> None:
        """Set social edges (1 on, 0 off), growing the graph to every known user."""
        n = len(self.dataset.users)
        s = self._social if self._social is not None else sp.csr_matrix((n, n), dtype=np.float32)
        if s.shape[0] < n:
            s = sp.csr_matrix((s.data, s.indices, np.r_[s.indptr, np.full(n - s.shape[0], s.indptr[-1])]), shape=(n, n))
        if edges:
            s = s.tolil()
            for (a, b), on in edges.items():
                s[a, b] = on
            s = s.tocsr()
            s.eliminate_zeros()
            self._friends_stale = True
        self._social = s

    def _fold_in(self, users: np.ndarray, added: dict[int, set[int]]) -> None:
        x = self.model.user_items_
        rows = []
        for u in users.tolist():
            have = x.indices[x.indptr[u]:x.indptr[u + 1]].tolist() if u < x.shape[0] else []
            rows.append(sorted(set(have) | added.get(u, set())))
        n_items = x.shape[1]
        matrix = sp.csr_matrix((np.ones(sum(map(len, rows)), np.float32),
                                (np.repeat(np.arange(len(rows)), [len(r) for r in rows]),
                                 np.asarray([i for r in rows for i in r], dtype=np.int64))), shape=(len(rows), n_items))
        social = None
        if self._social is not None:
            n = len(self.dataset.users)
            s = self._social
            if s.shape[0] < n:
                self._set_edges({})  # grows the matrix to every known user
                s = self._social
            social = s[users]
        self.model.partial_fit_users(users, matrix, social=social)
        if self.pipeline is not None and len(self.pipeline.explainer.user_ids_) != len(self.dataset.users):
            self.pipeline.explainer.refresh_users(self.dataset)  # only new users change the names

    def _empty_user(self, u: int) -> set[int]:
        """Empty user ``u``'s row and edges through the online update (other users' features no
        longer see them); returns the users whose lists that changes (``u`` and their followers).
        Call with the lock held."""
        touched = {u}
        x = self.model.user_items_
        has_row = u < x.shape[0] and x.indptr[u + 1] > x.indptr[u]
        has_edges = self._social is not None and u < self._social.shape[0] and (
            self._social.indptr[u + 1] > self._social.indptr[u] or self._social[:, u].nnz > 0)
        if not has_row and not has_edges:
            return touched  # nothing of theirs in the model (a version trained without them)
        if self._social is not None and u < self._social.shape[0]:
            followers = self._social[:, u].nonzero()[0].tolist()
            gone = {(int(v), u): 0.0 for v in followers}
            gone.update({(u, int(v)): 0.0 for v in self._social[u].indices.tolist()})
            if gone:
                self._set_edges(gone)
            touched |= set(followers)
        known = np.asarray(sorted(v for v in touched if v < self.model.n_users_), dtype=np.int64)
        if len(known):
            x = self.model.user_items_
            rows = sp.csr_matrix(x[known])
            rows = sp.csr_matrix(rows.multiply(np.asarray(known != u, dtype=np.float32)[:, None]))
            rows.eliminate_zeros()
            social = self._social[known] if self._social is not None else None
            self.model.partial_fit_users(known, rows, social=social)
        return touched

    def forget_user(self, user_id: str, tombstone: str) -> None:
        """Erasure in memory: the user's row and edges are emptied through the same fold-in (so
        other users' features no longer see them), their id is retired from the id map, and
        every cached list (which may name them as a friend) is dropped."""
        self.flush()
        with self._lock:
            self._excluded.discard(user_id)
            if user_id not in self.dataset.users:
                return
            u = int(self.dataset.users.to_index(user_id))
            self._empty_user(u)
            self._hidden.pop(u, None)
            self.dataset.users.retire(user_id, tombstone)
            if self.pipeline is not None:
                self.pipeline.explainer.refresh_users(self.dataset)
            self._refresh_friends()
            self._cache.clear()

    def is_excluded(self, user_id: str) -> bool:
        return user_id in self._excluded

    def exclude_user(self, user_id: str) -> None:
        """Personalisation opt-out in memory: the user's row and edges are emptied (as at
        erasure, but their id stays), their later events are not folded in, they get the
        anonymous list, and the lists that named them are recomputed."""
        self.flush()
        with self._lock:
            if user_id in self._excluded:
                return
            self._excluded.add(user_id)
            u = self._user(user_id)
            if u is None and user_id in self.dataset.users:
                u = int(self.dataset.users.to_index(user_id))
            if u is None:
                return
            touched = self._empty_user(u)
            self._refresh_friends()
            for v in touched:
                for explain in (False, True):
                    self._cache.pop((v, explain), None)

    def include_user(self, user_id: str, history: Sequence[Event]) -> None:
        """Opt back in: fold ``history`` (what is held about the user: their base data and their
        stored events, in order) into the model at once."""
        self.flush()
        with self._lock:
            self._excluded.discard(user_id)
            if history:
                self._apply(history)
            if user_id in self.dataset.users:
                u = int(self.dataset.users.to_index(user_id))
                for explain in (False, True):
                    self._cache.pop((u, explain), None)

    def user_state(self, user_id: str) -> dict[str, Any]:
        """What the live model holds about a user, by external ids: the items of their row, their
        hidden items and their edges in the served graph."""
        self.flush()
        with self._lock:
            u = self._user(user_id)
            if u is None:
                return {"in_model": False, "items": [], "hidden_items": [], "following": [], "followers": []}
            x = self.model.user_items_
            ext = self.dataset.items.to_external
            items = x.indices[x.indptr[u]:x.indptr[u + 1]]
            hidden = sorted(self._hidden.get(u, set()))
            following: list[str] = []
            followers: list[str] = []
            if self._social is not None and u < self._social.shape[0]:
                following = [str(v) for v in self.dataset.users.to_external(self._social[u].indices)]
                followers = [str(v) for v in self.dataset.users.to_external(self._social[:, u].nonzero()[0])]
            return {"in_model": True, "items": [str(i) for i in ext(np.sort(items))],
                    "hidden_items": [str(i) for i in ext(np.asarray(hidden, dtype=np.int64))] if hidden else [],
                    "following": following, "followers": followers}


def popularity_model(dataset: Dataset, store: EventStore, excluded: Callable[[str], bool] | None = None) -> ServedModel:
    """The fallback served while the first version trains: the most popular items (counted
    without the users for whom ``excluded`` is true)."""
    from socialrec.retrieve.popular import MostPopular

    ds = merge_events(dataset, store.events(with_text=False), excluded or (lambda _u: False), catalog=store.items())
    model = MostPopular().fit(ds.user_item_matrix())
    return ServedModel(model, ds, None, version="popularity", meta={"kind": "popularity"}, trained=False)


def train_served_model(dataset: Dataset, store: EventStore, config: ModelConfig, version: str, *,
                       erased: Callable[[str], bool] | None = None, log: Callable[[str], None] = lambda _m: None
                       ) -> ServedModel:
    """Fit a version on the base dataset plus every stored event, leaving out the users for whom
    ``erased`` is true (erased users, and those who opted out of personalisation): the
    configured model on the merged interactions (the same fit as `socialrec evaluate`'s, without
    a validation split: the hybrid holds out a tenth of training for its ranker) and the friend
    recommender on the merged social graph."""
    from socialrec.retrieve.base import TrainData

    start = time.perf_counter()
    through = store.max_seq()
    ds = merge_events(dataset, store.events(with_text=False), erased or (lambda _u: False), catalog=store.items())
    model, friends = config.make()
    x = ds.user_item_matrix()
    model.fit(TrainData(user_items=x, dataset=ds))
    log(f"fitted {type(model).__name__} on {x.shape[0]} users, {x.shape[1]} items, {x.nnz} interactions "
        f"in {time.perf_counter() - start:.1f}s")
    return _served(model, friends, ds, dataset.name, config, version, through, start, log)


def _served(model: Any, friends: Any, ds: Dataset, name: str, config: ModelConfig, version: str, through: int,
            start: float, log: Callable[[str], None]) -> ServedModel:
    """A fitted model as a served version: the friend recommender fitted on the merged social
    graph (none when the graph is empty or too small), and the version's metadata."""
    x = model.user_items_
    adj = ds.social_matrix()
    if adj.nnz and friends is not None:
        try:
            friends.fit(adj, x)
        except ValueError as exc:  # a graph too small to learn from: no friend suggestions
            log(f"friend recommender not fitted: {exc}")
            friends = None
    else:
        friends = None
    meta = {"kind": config.name, "dataset": name, "users": int(x.shape[0]), "items": int(x.shape[1]),
            "interactions": int(x.nnz), "trained_through_seq": through, "created": time.time(),
            "train_seconds": round(time.perf_counter() - start, 3), "friends": config.friends if friends else None}
    return ServedModel(model, ds, friends, version=version, meta=meta)


@dataclass(frozen=True)
class ScenarioPart:
    """One scenario of a multi-scenario version: its base dataset, its event store and who is
    left out of its training (see `train_served_model`'s ``erased``)."""

    dataset: Dataset
    store: EventStore
    erased: Callable[[str], bool]


def train_scenario_models(parts: Mapping[str, ScenarioPart], config: ModelConfig, version: str, *,
                          log: Callable[[str], None] = lambda _m: None) -> dict[str, ServedModel]:
    """Fit one version of several scenarios (name -> its `ScenarioPart`): each scenario's dataset
    plus its stored events (as `train_served_model`), one shared backbone trained on all of
    them with an adapter per scenario (`socialrec.retrieve.scenarios.fit_scenarios`;
    ``config.params`` are its settings), and each scenario's friend recommender. The served
    models hold the one backbone object."""
    from socialrec.evaluate.friends import friend_models
    from socialrec.retrieve.base import TrainData
    from socialrec.retrieve.scenarios import fit_scenarios

    if config.name != SCENARIO_MODEL:
        raise ConfigError(f"several scenarios are served by model {SCENARIO_MODEL!r} (one shared backbone, an adapter "
                          f"per scenario), not {config.name!r}")
    if config.channels is not None:
        raise ConfigError(f"channels are a setting of the hybrid, not of {SCENARIO_MODEL!r}")
    friends = friend_models()
    if config.friends not in friends:
        raise ConfigError(f"unknown friend model {config.friends!r}; known: {', '.join(friends)}")
    start = time.perf_counter()
    through = {name: part.store.max_seq() for name, part in parts.items()}
    merged = {name: merge_events(part.dataset, part.store.events(with_text=False), part.erased,
                                 catalog=part.store.items()) for name, part in parts.items()}
    trains = {name: TrainData(user_items=ds.user_item_matrix(), dataset=ds) for name, ds in merged.items()}
    models = fit_scenarios(trains, **dict(config.params))
    log(f"fitted one backbone and {len(models)} scenario adapters ({', '.join(models)}) in "
        f"{time.perf_counter() - start:.1f}s")
    served = {name: _served(models[name], friends[config.friends](), merged[name], name, config,
                            version, through[name], start, log) for name in parts}
    for s in served.values():
        s.meta["scenarios"] = list(parts)
    return served
