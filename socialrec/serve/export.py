"""Everything the service holds about one user, as one JSON document (GET /v1/users/{id}/export).

Sections:
- ``consent``: the personalisation choice (allowed unless the user opted out);
- ``profile``: name and bio as stored (decrypted), or null;
- ``events``: every stored event the user made, all kinds, oldest first, with its timestamp and
  text (comments decrypted);
- ``events_about_user``: stored events of other users that name the user (follows of them);
- ``social``: the user's follow edges as the store and base dataset make them (the dataset's
  edges, then the stored follow/unfollow events in order), ``following`` and ``followers``;
- ``dataset``: the user's interactions in the base dataset the models are trained on (a
  read-only public dataset: not erasable, but left out of training once the user is erased or
  opts out);
- ``model``: what the live model holds about them (the items of their row, hidden items, their
  edges in the served graph);
- ``catalog_items``: always empty: catalog items are written by the platform's write key and
  record no author;
- one section per extra per-user store the service has (``Service.user_data``, e.g. a chat).

Nothing held (never seen, or erased with nothing stored since) is ``None`` (the route's 404).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from socialrec.serve.store import Event, EventStore


def _event(e: Event) -> dict[str, Any]:
    return {"event_id": e.event_id, "kind": e.kind, "item_id": e.item_id, "target_user_id": e.target_user_id,
            "value": e.value, "text": e.text, "timestamp": e.ts}


def _dataset_part(ds: Any, user_id: str) -> tuple[dict[str, Any] | None, set[str], set[str]]:
    """The user's base-dataset interactions, and their dataset edges (following, followers)."""
    if user_id not in ds.users:
        return None, set(), set()
    u = int(ds.users.to_index(user_id))
    inter = ds.interactions
    rows = inter[inter["user"].to_numpy() == u]
    items = ds.items.to_external(rows["item"].to_numpy()) if len(rows) else []
    interactions = [{"item_id": str(i), "kind": str(k), "timestamp": None if not np.isfinite(t) else float(t),
                     "value": None if not np.isfinite(v) else float(v)}
                    for i, k, t, v in zip(items, rows["kind"].astype(str), rows["timestamp"].to_numpy(np.float64),
                                          rows["value"].to_numpy(np.float64))]
    following: set[str] = set()
    followers: set[str] = set()
    if len(ds.social):
        src, dst = ds.social["source"].to_numpy(), ds.social["target"].to_numpy()
        following = {str(v) for v in ds.users.to_external(dst[src == u])}
        followers = {str(v) for v in ds.users.to_external(src[dst == u])}
    return {"name": ds.name, "interactions": interactions}, following, followers


def export_user(svc: Any, user_id: str) -> dict[str, Any] | None:
    store: EventStore = svc.store
    erased = svc.is_erased(user_id)
    events = store.events(user_id=user_id)
    about = store.events(about_user=user_id)
    profile = store.profile(user_id)
    consent = store.consent(user_id)
    dataset, following, followers = (None, set(), set()) if erased else _dataset_part(svc.dataset(), user_id)
    for e in sorted(events + about, key=lambda e: e.seq):
        if e.kind not in ("follow", "unfollow") or e.target_user_id is None or e.target_user_id == e.user_id:
            continue
        edges, other = (following, e.target_user_id) if e.user_id == user_id else (followers, e.user_id)
        if e.kind == "follow":
            edges.add(other)
        else:
            edges.discard(other)
    model = svc.model
    state = model.user_state(user_id) if model is not None else None
    extra = {name: source.export(user_id) for name, source in svc.user_data.items()}
    extra = {name: part for name, part in extra.items() if part}
    held = events or about or profile or consent or dataset or extra or (state is not None and state["in_model"])
    if not held:
        return None
    return {
        "user_id": user_id,
        "exported_at": time.time(),
        "consent": {"personalization": True if consent is None else consent[0],
                    "updated": None if consent is None else consent[1]},
        "profile": profile,
        "events": [_event(e) for e in events],
        "events_about_user": [{**_event(e), "user_id": e.user_id} for e in about],
        "social": {"following": sorted(following), "followers": sorted(followers)},
        "dataset": dataset,
        "model": None if state is None else {"version": model.version, **state},
        "catalog_items": [],
        **extra,
    }
