"""Serving the hybrid pipeline (`socialrec serve --model hybrid`): an adapter from
`RecommendationPipeline` (multi-channel retrieval, LightGBM LambdaRank, diversity re-ranking,
explained reasons) to the service's `ServingModel`, which keeps the live effects of the default
model.

The hybrid is fitted once per model version, on the same interactions as the version's ALS
(the base dataset plus every stored event of known users and items, erased users left out), and
does not learn between versions. Real-time behaviour therefore comes from the `LiveModel` built
on the same version, which keeps receiving every event:

- a known user's list is the hybrid's ranked candidates fused by reciprocal rank with the live
  model's list (ALS fold-in, friends' new likes, trending, new items by content); the live list
  weighs ``live_weight`` for users without events since training and ``active_live_weight`` for
  users with some, so a user's own new events show at once;
- items the user saw or hid since training are removed from the hybrid's list;
- other scenarios than "home", users the hybrid does not know (new since its dataset) and
  erased users are served by the live model alone.

The hybrid's ranking and reasons of a user are computed once and cached (they change only with
a new version); the live list is computed per request as in the default model.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from threadpoolctl import ThreadpoolController

from socialrec.errors import ConfigError
from socialrec.explain.reasons import Reason, render_sentence
from socialrec.serve.bundle import Bundle
from socialrec.serve.model import LiveModel, Recommendation
from socialrec.serve.store import Event

_RRF_K = 20.0
_CACHE_USERS = 20_000  # users whose hybrid lists are kept (least recently used dropped first)


@dataclass(frozen=True)
class HybridOptions:
    """How the hybrid is fitted and blended.

    channels: retrieval channels of `HybridRecommender` (see `socialrec.rank.hybrid.make_channel`);
        the default leaves out EASE (a dense item x item inverse: minutes and gigabytes on 17k
        items) and the torch/text channels, so that a version fits in seconds to a minute.
    n_candidates: candidates per user that the ranker orders.
    depth: hybrid items cached per user (a request for k uses the first max(2k, 50)).
    hybrid_weight, live_weight, active_live_weight: reciprocal-rank fusion weights of the hybrid
        list and of the live list (users without / with events since training).
    seed: seed of the hybrid's sampling.
    """

    channels: tuple[str, ...] = ("als", "itemknn", "social-proof", "trending")
    n_candidates: int = 200
    depth: int = 100
    hybrid_weight: float = 1.0
    live_weight: float = 0.3
    active_live_weight: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.channels:
            raise ConfigError("HybridOptions.channels is empty; name at least one channel, e.g. ('als',)")
        if self.n_candidates < 1 or self.depth < 1:
            raise ConfigError(f"HybridOptions.n_candidates and depth must be >= 1, got {self.n_candidates}, {self.depth}")
        if min(self.hybrid_weight, self.live_weight, self.active_live_weight) < 0:
            raise ConfigError("HybridOptions weights must be >= 0")


def fit_pipeline(bundle: Bundle, dataset: Any, options: HybridOptions) -> Any:
    """Fit a `RecommendationPipeline` on the bundle's interactions restricted to the dataset's
    users and items (the bundle lists those first, in the dataset's order)."""
    from socialrec.rank.hybrid import HybridRecommender
    from socialrec.rank.pipeline import RecommendationPipeline
    from socialrec.retrieve.base import TrainData

    nu, ni = dataset.n_users, dataset.n_items
    users = [str(u) for u in bundle.user_ids[:nu]]
    expected = [str(u) for u in dataset.users.external_ids]
    # Erased users keep their row with a blank id: compare the others only.
    if len(users) != nu or any(u and u != e for u, e in zip(users, expected)) or \
            [str(i) for i in bundle.item_ids[:ni]] != [str(i) for i in dataset.items.external_ids]:
        raise ValueError(f"model version {bundle.version} does not list dataset {dataset.name}'s users and items "
                         "first; it was trained on another dataset. Retrain (POST /v1/admin/retrain) or serve --model live")
    x = bundle.train[:nu, :ni].tocsr(copy=True)
    x.data[:] = 1.0
    x.eliminate_zeros()
    model = HybridRecommender(channels=options.channels, n_candidates=options.n_candidates, seed=options.seed)
    model.fit(TrainData(user_items=x, dataset=dataset))
    return RecommendationPipeline(model, dataset)


class HybridServingModel:
    """A `ServingModel` serving a fitted `RecommendationPipeline` with live effects (see the
    module docstring)."""

    def __init__(self, pipeline: Any, live: LiveModel, options: HybridOptions | None = None) -> None:
        self.pipeline = pipeline
        self.live = live
        self.options = options or HybridOptions()
        self.version = live.version
        self.meta = dict(live.meta, kind=f"hybrid({','.join(pipeline.model.retriever_.names)})+live")
        self._users = pipeline.dataset.users
        self._lock = threading.Lock()  # the pipeline's model is not documented as thread-safe
        self._cache: OrderedDict[tuple[str, bool], tuple[int, list[Any]]] = OrderedDict()
        self._forgotten: set[str] = set()
        # Made once, after fitting loaded LightGBM's OpenMP: a fresh threadpool_limits scans the
        # loaded libraries every time (6 ms), the controller's limit() costs 20 microseconds.
        self._threads = ThreadpoolController()

    # --- reads -------------------------------------------------------------------------
    def _hybrid_list(self, user_id: str, n: int, explain: bool) -> list[Any]:
        """The pipeline's top ``n`` (at least ``depth`` without reasons), cached per user. Reasons
        are asked only for the length requested: explaining costs about 2 ms an item."""
        key = (user_id, explain)
        with self._lock:
            cached = self._cache.get(key)
            if cached is None or cached[0] < n:
                depth = n if explain else max(n, self.options.depth)
                # One thread for LightGBM's OpenMP and BLAS: threads spinning for one user's few
                # hundred candidates against the event loop cost more than they save (as in serve_cmd).
                with self._threads.limit(limits=1):
                    cached = (depth, self.pipeline.recommend(user_id, depth, explain=explain))
                self._cache[key] = cached
                if len(self._cache) > _CACHE_USERS:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(key)
            return cached[1]

    def recommend(self, user_id: str, k: int, *, explain: bool = False, scenario: str = "home") -> list[Recommendation]:
        if scenario != "home" or user_id in self._forgotten or user_id not in self._users:
            return self.live.recommend(user_id, k, explain=explain, scenario=scenario)
        n = max(2 * k, 50)
        hybrid = self._hybrid_list(user_id, n, explain)
        live = self.live.recommend(user_id, n, explain=explain)
        seen, active = self.live.live_activity(user_id)
        o = self.options
        w_live = o.active_live_weight if active else o.live_weight
        score: dict[str, float] = {}
        reasons: dict[str, list[Reason]] = {}
        rank = 0
        for r in hybrid:
            if r.item_id in seen:
                continue
            score[r.item_id] = o.hybrid_weight / (_RRF_K + rank)
            reasons[r.item_id] = list(r.reasons)
            rank += 1
            if rank == n:
                break
        for rank, r in enumerate(live):
            score[r.item_id] = score.get(r.item_id, 0.0) + w_live / (_RRF_K + rank)
            if explain:
                have = reasons.setdefault(r.item_id, [])
                kinds = {x.kind for x in have}
                have.extend(x for x in r.reasons if x.kind not in kinds)
        top = sorted(score, key=lambda i: (-score[i], i))[:k]
        out = []
        for item_id in top:
            title = self.live.title(item_id)
            if not explain:
                out.append(Recommendation(item_id, title, score[item_id]))
                continue
            why = sorted(reasons.get(item_id, []), key=lambda x: -x.weight)
            out.append(Recommendation(item_id, title, score[item_id], tuple(why), render_sentence(title, why)))
        return out

    def similar_items(self, item_id: str, k: int) -> list[Recommendation]:
        return self.live.similar_items(item_id, k)

    def friend_suggestions(self, user_id: str, k: int) -> list[tuple[str, float]]:
        return self.live.friend_suggestions(user_id, k)

    def n_items(self) -> int:
        return self.live.n_items()

    # --- writes: the live model learns, the hybrid waits for the next version ----------
    def observe(self, events: Sequence[Event]) -> None:
        self.live.observe(events)

    def upsert_item(self, item_id: str, title: str, text: str) -> None:
        self.live.upsert_item(item_id, title, text)

    def upsert_user(self, user_id: str, name: str, text: str) -> None:
        self.live.upsert_user(user_id, name, text)

    def forget_user(self, user_id: str) -> None:
        """Erasure: the live model forgets the user; the hybrid no longer serves them (its
        fitted state keeps their anonymous influence until the retraining erasure starts)."""
        self.live.forget_user(user_id)
        with self._lock:
            self._forgotten.add(user_id)
            # Other users' cached reasons may name the user as a friend who liked an item.
            self._cache.clear()


def warm(model: HybridServingModel, user_ids: Sequence[str]) -> int:
    """Compute and cache the (unexplained) hybrid lists of these users ahead of traffic; returns
    how many were known to the hybrid."""
    n = 0
    for u in user_ids:
        if u in model._users:
            model._hybrid_list(u, model.options.depth, False)
            n += 1
    return n
