"""Prometheus metrics of one app (its own registry, so several apps can live in one process), and
a short rolling window for the dashboard's live charts."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from typing import Any

_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
_CLICK_WINDOW_S = 3600.0  # a click counts for a recommendation served at most this long before
_MAX_TRACKED_USERS = 100_000


class ServiceMetrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.latency = Histogram("socialrec_http_request_duration_seconds", "Request latency by route",
                                 ["route", "method"], buckets=_BUCKETS, registry=self.registry)
        self.requests = Counter("socialrec_http_requests_total", "Requests by route and status",
                                ["route", "method", "status"], registry=self.registry)
        self.errors = Counter("socialrec_http_errors_total", "Responses with status >= 400 by route",
                              ["route", "status"], registry=self.registry)
        self.events = Counter("socialrec_events_ingested_total", "Events stored (duplicates excluded) by kind",
                              ["kind"], registry=self.registry)
        self.duplicates = Counter("socialrec_events_duplicate_total", "Events ignored because their event_id was known",
                                  registry=self.registry)
        self.pii = Counter("socialrec_pii_scrubbed_total", "Pieces of personal data replaced in incoming user text, by type",
                           ["type"], registry=self.registry)
        self.impressions = Counter("socialrec_recommendations_served_total", "Items served in recommendation lists",
                                   registry=self.registry)
        self.clicks = Counter("socialrec_recommendation_clicks_total",
                              "Clicks on an item served to the same user within the last hour", registry=self.registry)
        self.ctr = Gauge("socialrec_recommendation_ctr", "Clicks on served items / items served", registry=self.registry)
        self.coverage = Gauge("socialrec_recommendation_coverage",
                              "Distinct items served since start / catalog size", registry=self.registry)
        self.model = Gauge("socialrec_model_info", "The model version being served (value 1)", ["version"],
                           registry=self.registry)
        self.trend_count = Gauge("socialrec_trend_window_engagements",
                                 "Engagements in the latest daily window of the served model's data", registry=self.registry)
        self.trend_alert = Gauge("socialrec_trend_burst_alert",
                                 "1 when the latest daily window of the served model's data raised a burst alert",
                                 registry=self.registry)
        self.trend_sentiment_drop = Gauge("socialrec_trend_sentiment_drop_alerts",
                                          "Topics of the served model's posts whose latest daily window raised a "
                                          "burst with a sharp sentiment drop", registry=self.registry)
        self._lock = threading.Lock()
        self._served: OrderedDict[str, dict[str, float]] = OrderedDict()
        self._distinct: set[str] = set()
        self._n_impressions = 0
        self._n_clicks = 0
        self._window: deque[tuple[float, float, int]] = deque(maxlen=50_000)  # (time, seconds, status)
        self._series: deque[dict[str, float]] = deque(maxlen=120)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.latency.labels(route, method).observe(seconds)
        self.requests.labels(route, method, str(status)).inc()
        if status >= 400:
            self.errors.labels(route, str(status)).inc()
        self._window.append((time.time(), seconds, status))

    def served(self, user_id: str, item_ids: list[str], catalog_size: int) -> None:
        now = time.time()
        with self._lock:
            entry = self._served.pop(user_id, {})
            entry.update(dict.fromkeys(item_ids, now))
            self._served[user_id] = entry
            while len(self._served) > _MAX_TRACKED_USERS:
                self._served.popitem(last=False)
            self._distinct.update(item_ids)
            self._n_impressions += len(item_ids)
            self.impressions.inc(len(item_ids))
            self.coverage.set(len(self._distinct) / max(1, catalog_size))
            self._update_ctr()

    def clicked(self, user_id: str, item_id: str, ts: float) -> None:
        with self._lock:
            at = self._served.get(user_id, {}).pop(item_id, None)
            if at is not None and ts - at <= _CLICK_WINDOW_S:
                self._n_clicks += 1
                self.clicks.inc()
                self._update_ctr()

    def _update_ctr(self) -> None:
        self.ctr.set(self._n_clicks / self._n_impressions if self._n_impressions else 0.0)

    def forget_user(self, user_id: str) -> None:
        with self._lock:
            self._served.pop(user_id, None)

    def set_model(self, version: str) -> None:
        self.model.clear()
        self.model.labels(version).set(1)

    def set_trend(self, count: int, alert: bool, sentiment_drops: int = 0) -> None:
        """The latest window of the served data's timeline (`retrieve.bursts.recent_trends`):
        its engagements, whether it raised a burst alert, and how many topics raised a burst
        with a sharp sentiment drop in it."""
        self.trend_count.set(count)
        self.trend_alert.set(1.0 if alert else 0.0)
        self.trend_sentiment_drop.set(float(sentiment_drops))

    def snapshot(self, seconds: float = 10.0) -> dict[str, Any]:
        """Request rate, latency percentiles and error share over the last ``seconds``, plus CTR."""
        now = time.time()
        recent = [(s, st) for t, s, st in list(self._window) if now - t <= seconds]
        lat = sorted(s for s, _ in recent)

        def pct(q: float) -> float:
            return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else 0.0

        point = {"time": now, "rps": len(recent) / seconds, "p50_ms": pct(0.5), "p99_ms": pct(0.99),
                 "errors": sum(1 for _, st in recent if st >= 500) / max(1, len(recent)),
                 "ctr": self._n_clicks / self._n_impressions if self._n_impressions else 0.0,
                 "impressions": self._n_impressions, "clicks": self._n_clicks}
        self._series.append(point)
        return {"now": point, "series": list(self._series)}

    def exposition(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
