"""Measuring what a running service serves, through its HTTP API only.

`served_ranking` asks one request per test user (`GET /v1/users/{id}/recommendations`) and
scores the lists against held-out pairs with the protocol's metrics (`socialrec split` writes
the pairs; `socialrec serve --holdout` serves the rest). `served_friends` does the same for
friend suggestions against held-out edges. `replay` streams held-out events in time order
through `POST /v1/events`, asking the user's list before each one, and scores the next item for
the live service and for the same lists frozen before the stream started.

Plain `urllib` keeps this free of client dependencies; requests go to the URL given (a local
service in the CLI and the benchmarks).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from socialrec.evaluate import metrics as M


@dataclass(frozen=True)
class Client:
    """A minimal JSON client of the service (bearer key)."""

    url: str
    key: str
    timeout_s: float = 120.0

    def _request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url.rstrip("/") + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def get(self, path: str, **params: Any) -> Any:
        query = ("?" + urllib.parse.urlencode(params)) if params else ""
        status, doc = self._request("GET", path + query)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}: {doc}")
        return doc

    def post(self, path: str, body: Any) -> Any:
        status, doc = self._request("POST", path, body)
        if status != 200:
            raise RuntimeError(f"POST {path} answered {status}: {doc}")
        return doc

    def wait_ready(self, timeout_s: float = 3600.0, poll_s: float = 1.0) -> dict[str, Any]:
        """Wait until /readyz answers 200 (a trained model serves); its body."""
        deadline = time.time() + timeout_s
        last: Any = None
        while time.time() < deadline:
            try:
                status, last = self._request("GET", "/readyz")
                if status == 200:
                    return last  # type: ignore[no-any-return]
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(poll_s)
        raise TimeoutError(f"the service at {self.url} was not ready within {timeout_s:.0f}s (last: {last})")


def _quote(user_id: str) -> str:
    return urllib.parse.quote(str(user_id), safe="")


def _scores(lists: Sequence[Sequence[str]], truth: Sequence[set[str]], ks: Sequence[int]) -> dict[str, float]:
    k_max = max(ks)
    hits = np.array([[i in t for i in (list(items) + [None] * k_max)[:k_max]] for items, t in zip(lists, truth)],
                    dtype=bool).reshape(len(lists), k_max)
    n_rel = np.array([len(t) for t in truth], dtype=np.int64)
    out: dict[str, float] = {}
    for k in ks:
        for name in ("ndcg", "recall", "hit"):
            out[f"{name}@{k}"] = float(M.METRICS[name](hits, n_rel, k).mean()) if len(lists) else float("nan")
    return out


def served_ranking(client: Client, test_pairs: Iterable[tuple[str, str]], ks: Sequence[int] = (10, 20),
                   explain: bool = False) -> dict[str, Any]:
    """Metrics of the served lists against held-out (user_id, item_id) pairs, one request per
    user; also the request latencies: each user's first request (nothing cached) and the same
    request repeated at once."""
    truth: dict[str, set[str]] = {}
    for u, i in test_pairs:
        truth.setdefault(str(u), set()).add(str(i))
    users = sorted(truth)
    lists, first, again = [], [], []
    for u in users:
        path, params = f"/v1/users/{_quote(u)}/recommendations", {"k": max(ks), "explain": str(explain).lower()}
        start = time.perf_counter()
        doc = client.get(path, **params)
        first.append(time.perf_counter() - start)
        lists.append([it["item_id"] for it in doc["items"]])
        start = time.perf_counter()  # the same request again at once: what a page reload costs
        client.get(path, **params)
        again.append(time.perf_counter() - start)
    return {"users": len(users), **_scores(lists, [truth[u] for u in users], ks),
            "latency_ms": {"first_p50": _pct(first, 50), "first_p99": _pct(first, 99),
                           "repeat_p50": _pct(again, 50), "repeat_p99": _pct(again, 99)}}


def served_friends(client: Client, test_edges: Iterable[tuple[str, str]], ks: Sequence[int] = (10, 20)) -> dict[str, Any]:
    """Metrics of the served friend suggestions against held-out (user_id, friend_id) edges."""
    truth: dict[str, set[str]] = {}
    for u, v in test_edges:
        truth.setdefault(str(u), set()).add(str(v))
    users = sorted(truth)
    lists = [[x["user_id"] for x in client.get(f"/v1/users/{_quote(u)}/friend-suggestions", k=max(ks))["users"]]
             for u in users]
    return {"users": len(users), **_scores(lists, [truth[u] for u in users], ks)}


def _pct(values: Sequence[float], q: float) -> float:
    return round(float(np.percentile(values, q)) * 1000.0, 3) if len(values) else float("nan")


def replay(client: Client, events: Sequence[tuple[str, str, float]], k: int = 10, *,
           kind: str = "view") -> dict[str, Any]:
    """Stream (user_id, item_id, timestamp) events in time order. Before each, the user's top-k
    is asked from the live service (which has folded in every earlier event) and read from the
    user's list frozen before the stream (minus items they consumed since); each scores whether
    the event's item is in it (HR@k) and at which rank (NDCG@k with one relevant item)."""
    ordered = sorted(events, key=lambda e: e[2])
    users = sorted({u for u, _, _ in ordered})
    depth = k + max(np.unique([u for u, _, _ in ordered], return_counts=True)[1].max(initial=0), 0)
    depth = int(min(depth, 200))
    frozen = {u: [it["item_id"] for it in client.get(f"/v1/users/{_quote(u)}/recommendations", k=depth)["items"]]
              for u in users}
    consumed: dict[str, set[str]] = {}
    live_hits, frozen_hits = [], []
    start = time.perf_counter()
    for u, i, ts in ordered:
        live = [it["item_id"] for it in client.get(f"/v1/users/{_quote(u)}/recommendations", k=k)["items"]]
        done = consumed.setdefault(u, set())
        still = [x for x in frozen[u] if x not in done][:k]
        live_hits.append([x == i for x in (live + [None] * k)[:k]])
        frozen_hits.append([x == i for x in (still + [None] * k)[:k]])
        client.post("/v1/events", {"events": [{"event_id": uuid.uuid4().hex, "user_id": u, "kind": kind,
                                               "item_id": i, "timestamp": ts}]})
        done.add(i)
    seconds = time.perf_counter() - start
    ones = np.ones(len(ordered), dtype=np.int64)

    def score(hits: list[list[bool]]) -> dict[str, float]:
        h = np.asarray(hits, dtype=bool).reshape(len(hits), k)
        return {f"hr@{k}": float(M.hit_rate_at_k(h, ones, k).mean()), f"ndcg@{k}": float(M.ndcg_at_k(h, ones, k).mean())}

    live_scores, frozen_scores = score(live_hits), score(frozen_hits)
    ratio = live_scores[f"hr@{k}"] / frozen_scores[f"hr@{k}"] if frozen_scores[f"hr@{k}"] > 0 else float("inf")
    return {"events": len(ordered), "users": len(users), "live": live_scores, "frozen": frozen_scores,
            "live_over_frozen_hr": ratio, "seconds": round(seconds, 1)}
