"""Settings of the HTTP service: one frozen dataclass, every key documented, unknown keys refused."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from socialrec.errors import ConfigError

SYNCHRONOUS = ("FULL", "NORMAL")
MODELS = ("live", "hybrid")


@dataclass(frozen=True)
class ServeSettings:
    """How `create_app` builds the service.

    dataset: dataset name the first model is trained on (see ``socialrec datasets``).
    state_dir: where the event store, API keys, models, embeddings and logs live.
    data: data directory of the dataset loaders (None: $SOCIALREC_DATA, else ../shared/data).
    dataset_options: keyword arguments of the dataset loader (e.g. {"n_items": 100000} for
        the synthetic catalog); a tuple of (key, value) pairs so the settings stay hashable.
    require_auth: every /v1 endpoint needs a bearer key with the right scope (off only in tests
        of other things).
    synchronous: SQLite ``synchronous`` pragma of the event store. "FULL" fsyncs the WAL at
        every commit, so an acknowledged event survives a power cut; "NORMAL" survives a crash of
        the process but not of the machine (see benchmarks/serving.py for the cost).
    max_body_bytes: larger request bodies are refused with 413.
    max_batch: most events in one POST /v1/events.
    rate_per_second, rate_burst: default token-bucket rate limit of a key (a key may carry its
        own); over it the answer is 429 with Retry-After.
    cors_origins: origins allowed by CORS; empty = CORS off (no CORS headers at all).
    encoder: text encoder of the content path ("minilm-onnx"), or "none" to switch it off.
    als_factors, als_iterations, als_regularization, als_alpha: hyperparameters of the ALS model.
    trending_half_life_s: half-life of the decayed trending counters.
    retrain_interval_s: retrain on a schedule every this many seconds (None: on demand only).
    train_on_start: train a first model in the background when none is registered (until then
        recommendations fall back to popularity).
    holdout_share: share of users with one interaction held out for the offline NDCG@10 that is
        recorded with each model version.
    seed: random seed of training and the holdout.
    log_requests: write a request log (route templates and hashed ids only) to state_dir/logs.
    model: "live" (ALS + social + trending + content channels, fused by reciprocal rank, learning
        from every event) or "hybrid" (the hybrid pipeline's learned ranking blended with the live
        model; fitted after each version, while the live model serves; see socialrec/serve/hybrid.py).
    hybrid_channels, hybrid_candidates: retrieval channels and candidates per user of the hybrid.
    hybrid_warm_users: rank this many users (in the version's order) before the hybrid is swapped
        in; the others are ranked on their first request (about 10 ms on LastFM).
    warm_users: the live model's candidate rows of this many users (the most active first) are
        computed before a version is swapped in, so their first request does not pay the ALS
        product over the whole catalog (1.2 ms at 100k items); the others pay it once.
    """

    dataset: str = "synthetic"
    state_dir: str = "state"
    data: str | None = None
    dataset_options: tuple[tuple[str, Any], ...] = ()
    require_auth: bool = True
    synchronous: str = "FULL"
    max_body_bytes: int = 1_000_000
    max_batch: int = 1000
    rate_per_second: float = 1000.0
    rate_burst: float = 2000.0
    cors_origins: tuple[str, ...] = ()
    encoder: str = "minilm-onnx"
    als_factors: int = 64
    als_iterations: int = 15
    als_regularization: float = 0.05
    als_alpha: float = 10.0
    trending_half_life_s: float = 6 * 3600.0
    retrain_interval_s: float | None = None
    train_on_start: bool = True
    holdout_share: float = 0.2
    seed: int = 0
    log_requests: bool = True
    model: str = "live"
    hybrid_channels: tuple[str, ...] = ("als", "itemknn", "social-proof", "trending")
    hybrid_candidates: int = 200
    hybrid_warm_users: int = 20_000
    warm_users: int = 20_000

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ConfigError(f"ServeSettings.model must be one of {MODELS}, got {self.model!r}")
        if self.warm_users < 0:
            raise ConfigError(f"ServeSettings.warm_users must be >= 0 (got {self.warm_users})")
        if self.hybrid_candidates < 1 or self.hybrid_warm_users < 0:
            raise ConfigError("ServeSettings.hybrid_candidates must be >= 1 and hybrid_warm_users >= 0 "
                              f"(got {self.hybrid_candidates}, {self.hybrid_warm_users})")
        if self.synchronous not in SYNCHRONOUS:
            raise ConfigError(f"ServeSettings.synchronous must be one of {SYNCHRONOUS}, got {self.synchronous!r}")
        for name in ("max_body_bytes", "max_batch"):
            if getattr(self, name) < 1:
                raise ConfigError(f"ServeSettings.{name} must be >= 1, got {getattr(self, name)}")
        if self.rate_per_second <= 0 or self.rate_burst < 1:
            raise ConfigError("ServeSettings.rate_per_second must be > 0 and rate_burst >= 1 "
                              f"(got {self.rate_per_second}, {self.rate_burst})")
        if not 0.0 <= self.holdout_share < 1.0:
            raise ConfigError(f"ServeSettings.holdout_share must be in [0, 1), got {self.holdout_share}")
        if self.retrain_interval_s is not None and self.retrain_interval_s < 1:
            raise ConfigError(f"ServeSettings.retrain_interval_s must be >= 1 second or None, got {self.retrain_interval_s}")

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ServeSettings":
        """Settings from a mapping; an unknown key is an error that names the valid ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown serve setting(s) {unknown}; valid: {sorted(known)}")
        return cls(**values)
