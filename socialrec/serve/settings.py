"""Settings of the HTTP service: frozen dataclasses, every key documented, unknown keys refused.

`ServeSettings` nests what belongs to other parts instead of copying their fields: the model a
version fits is a `ModelConfig` (serve/engine.py), the held-out part of the data a
`HoldoutConfig`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from socialrec.errors import ConfigError
from socialrec.serve.database import check_store_url
from socialrec.serve.engine import SCENARIO_MODEL, ModelConfig

SYNCHRONOUS = ("FULL", "NORMAL")


@dataclass(frozen=True)
class HoldoutConfig:
    """Serve all but a held-out part of the dataset, so that what is served can be measured
    (`socialrec split` writes the held-out part with the same code).

    protocol: split protocol of `socialrec evaluate` (random-811, temporal, loo, ...); the test
        part is held out, training and validation are served.
    seed: seed of the split (and of the edge mask).
    friends_masked: share of each user's social edges held out (0: none).
    """

    protocol: str
    seed: int = 0
    friends_masked: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.friends_masked < 1.0:
            raise ConfigError(f"HoldoutConfig.friends_masked must be in [0, 1), got {self.friends_masked}")


@dataclass(frozen=True)
class ServeSettings:
    """How `create_app` builds the service.

    dataset: dataset name the model is trained on (see ``socialrec datasets``); with
        ``scenarios``, the default scenario (what a request without ``?scenario=`` reads).
    scenarios: further datasets served as scenarios of the same service beside ``dataset``
        (empty: one dataset, as always). Each scenario keeps its own users, items, events and
        versions (an SQLite store and a model registry under ``state_dir/scenarios/NAME``; the
        default scenario's live in ``state_dir`` itself, so its ids may collide with another's
        without mixing); one backbone trained on all of them serves every scenario through the
        scenario's adapter (``model`` must be "adapter-seq"). Needs the SQLite store and one
        process (no ``store`` URL, no ``sync_interval_s``).
    state_dir: where the event store, API keys, model versions, embeddings and logs live.
    store: a PostgreSQL URL (``postgresql://user:password@host:port/database``; the ``postgres``
        extra) holding the events, API keys, consent and erasure records that several service
        processes and hosts share; None: the embedded SQLite files in ``state_dir``.
    sync_interval_s: how often this process folds in the events other processes stored (every
        event with a sequence number above the last it applied), and their consent changes,
        erasures and newly trained versions. None: every 0.2 s on a PostgreSQL store, never on
        SQLite (set it when several processes share one SQLite state directory:
        ``socialrec serve --workers N`` does).
    data: data directory of the dataset loaders (None: $SOCIALREC_DATA, else ../shared/data).
    dataset_options: keyword arguments of the dataset loader, as (key, value) pairs.
    model: which library model each version fits (`ModelConfig`: the hybrid by default).
    holdout: serve the dataset without a held-out test part (`HoldoutConfig`), or None: all of it.
    require_auth: every /v1 endpoint needs a bearer key with the right scope (off only in tests
        of other things).
    synchronous: SQLite ``synchronous`` pragma of the event store. "FULL" fsyncs the WAL at
        every commit (an acknowledged event survives a power cut); "NORMAL" survives a crash of
        the process but not of the machine.
    max_body_bytes: larger request bodies are refused with 413.
    max_batch: most events in one POST /v1/events.
    rate_per_second, rate_burst: default token-bucket rate limit of a key (a key may carry its
        own); over it the answer is 429 with Retry-After.
    failed_auth_per_second: failed authentications allowed per client address and second (after a
        burst of twice as many); over it the answer is 429.
    cors_origins: origins allowed by CORS; empty = CORS off (no CORS headers at all).
    retrain_interval_s: retrain on a schedule every this many seconds (None: on demand only).
    train_on_start: train a first version in the background when none is saved (until then the
        popularity fallback serves and /readyz answers 503).
    max_versions: saved model versions kept; older ones are deleted.
    accept_unknown_items: store events on items outside the catalog too (they still enter the
        model only once the item is in the catalog); by default they are refused per event,
        so a write key cannot create catalog items.
    cache_ttl_s: a user's list is recomputed after this many seconds even without their own
        events (their friends' events change it too).
    fold_in_interval_s: how often queued events are folded into the served model (a read folds
        in whatever waits first, so this bounds staleness only for other users' lists).
    warm_users: the lists (k=20, unexplained) of this many users (in id order) are computed
        before a version is swapped in, so that their first reads are cache hits (LastFM: about
        20 ms a user while the previous version serves).
    log_requests: write a request log (route templates and hashed ids only) to state_dir/logs.
    retention_days: stored events whose timestamp is older than this many days are deleted (at
        start-up and every ``retention_sweep_s``), gone from exports at once and from the next
        trained version; None: kept until erased. The base dataset is not swept.
    retention_sweep_s: seconds between two retention sweeps.
    scrub_pii: replace personal data in user text with typed placeholders (``<EMAIL>``,
        ``<PHONE>``, ``<CARD>``, ``<ID>``, ``<IP>``, ``<ADDRESS>``, ``<URL>``, ``<PERSON>``;
        `socialrec.privacy.scrub`) as it enters the service, before it is stored, encrypted,
        logged, exported or learned from: event comments and profile bios are scrubbed, a
        profile's name is replaced whole by ``<PERSON>``; the 422 answer to a rejected body
        echoes its input scrubbed too. Catalog items (written by the platform) are kept as given.
        Off (``socialrec serve --no-scrub``): user text is stored as given.
    scrub_dataset_text: scrub the base dataset's texts (reviews, posts, profiles) right after
        loading it, before a version embeds them (``socialrec serve --scrub-text``).
    chat_session_ttl_s: a chat session unused for this many seconds expires (POST
        /v1/users/{id}/chat then answers 404 for its id).
    chat_max_sessions: chat sessions kept in memory (the least recently used goes first).
    chat_max_message_chars: longer chat messages are refused with 422 (at most 2000, the
        request schema's own limit).
    chat_encoder: text encoder matching chat words to the catalog's tags by embedding
        (``socialrec.represent.encoders``: "minilm", ...), or None: exact names only.
    llm_backend: what writes chat replies, blurbs and posts: "none" (templates), "smollm" (the
        offline SmolLM2-135M-Instruct) or "openai" (an OpenAI-compatible endpoint); every
        generated text is grounding-checked, the template answers when it fails.
    llm_url, llm_model: the OpenAI-compatible endpoint and model name (backend "openai").
    llm_key_env: environment variable holding that endpoint's API key.
    """

    dataset: str = "synthetic"
    scenarios: tuple[str, ...] = ()
    state_dir: str = "state"
    data: str | None = None
    store: str | None = None
    sync_interval_s: float | None = None
    dataset_options: tuple[tuple[str, Any], ...] = ()
    model: ModelConfig = field(default_factory=ModelConfig)
    holdout: HoldoutConfig | None = None
    require_auth: bool = True
    synchronous: str = "FULL"
    max_body_bytes: int = 1_000_000
    max_batch: int = 1000
    rate_per_second: float = 1000.0
    rate_burst: float = 2000.0
    failed_auth_per_second: float = 5.0
    cors_origins: tuple[str, ...] = ()
    retrain_interval_s: float | None = None
    train_on_start: bool = True
    max_versions: int = 3
    cache_ttl_s: float = 300.0
    accept_unknown_items: bool = False
    fold_in_interval_s: float = 0.05
    warm_users: int = 20_000
    log_requests: bool = True
    retention_days: float | None = None
    retention_sweep_s: float = 3600.0
    scrub_pii: bool = True
    scrub_dataset_text: bool = False
    chat_session_ttl_s: float = 1800.0
    chat_max_sessions: int = 10_000
    chat_max_message_chars: int = 2000
    chat_encoder: str | None = "minilm"
    llm_backend: str = "none"
    llm_url: str | None = None
    llm_model: str | None = None
    llm_key_env: str = "SOCIALREC_LLM_KEY"

    def __post_init__(self) -> None:
        check_store_url(self.store, "ServeSettings.store")
        if self.scenarios:
            self._check_scenarios()
        if self.sync_interval_s is not None and not self.sync_interval_s > 0:
            raise ConfigError(f"ServeSettings.sync_interval_s must be > 0 seconds or None, got {self.sync_interval_s}")
        if self.synchronous not in SYNCHRONOUS:
            raise ConfigError(f"ServeSettings.synchronous must be one of {SYNCHRONOUS}, got {self.synchronous!r}")
        for name in ("max_body_bytes", "max_batch", "max_versions"):
            if getattr(self, name) < 1:
                raise ConfigError(f"ServeSettings.{name} must be >= 1, got {getattr(self, name)}")
        if self.failed_auth_per_second <= 0:
            raise ConfigError(f"ServeSettings.failed_auth_per_second must be > 0, got {self.failed_auth_per_second}")
        if self.rate_per_second <= 0 or self.rate_burst < 1:
            raise ConfigError("ServeSettings.rate_per_second must be > 0 and rate_burst >= 1 "
                              f"(got {self.rate_per_second}, {self.rate_burst})")
        if self.retrain_interval_s is not None and self.retrain_interval_s < 1:
            raise ConfigError(f"ServeSettings.retrain_interval_s must be >= 1 second or None, got {self.retrain_interval_s}")
        if self.fold_in_interval_s <= 0:
            raise ConfigError(f"ServeSettings.fold_in_interval_s must be > 0, got {self.fold_in_interval_s}")
        if self.retention_days is not None and not self.retention_days > 0:
            raise ConfigError(f"ServeSettings.retention_days must be > 0 days or None, got {self.retention_days}")
        if not self.retention_sweep_s > 0:
            raise ConfigError(f"ServeSettings.retention_sweep_s must be > 0, got {self.retention_sweep_s}")
        if not self.chat_session_ttl_s > 0 or self.chat_max_sessions < 1 or not 1 <= self.chat_max_message_chars <= 2000:
            raise ConfigError("ServeSettings.chat_session_ttl_s must be > 0, chat_max_sessions >= 1 and "
                              "chat_max_message_chars in [1, 2000]")
        if self.llm_backend not in ("none", "smollm", "openai"):
            raise ConfigError(f"ServeSettings.llm_backend must be 'none', 'smollm' or 'openai', got {self.llm_backend!r}")
        if self.llm_backend == "openai" and not (self.llm_url and self.llm_model):
            raise ConfigError("ServeSettings.llm_backend 'openai' needs llm_url and llm_model")
        if self.cache_ttl_s < 0 or self.warm_users < 0:
            raise ConfigError("ServeSettings.cache_ttl_s and warm_users must be >= 0")

    def _check_scenarios(self) -> None:
        names = (self.dataset, *self.scenarios)
        if len(set(names)) != len(names):
            raise ConfigError(f"ServeSettings: each scenario is served once; got {list(names)} (dataset first)")
        if self.model.name != SCENARIO_MODEL:
            raise ConfigError(f"ServeSettings.scenarios {list(self.scenarios)} need model name {SCENARIO_MODEL!r} (one "
                              f"shared backbone, an adapter per scenario), got {self.model.name!r}")
        if self.model.channels is not None:
            raise ConfigError(f"ServeSettings.model.channels are a setting of the hybrid, not of {SCENARIO_MODEL!r}")
        if self.store is not None or self.sync_interval_s is not None:
            raise ConfigError("ServeSettings.scenarios keep one SQLite store per scenario in one process: leave store "
                              "and sync_interval_s unset (no --store, --workers 1)")

    @property
    def names(self) -> tuple[str, ...]:
        """Every scenario served, the default (``dataset``) first."""
        return (self.dataset, *self.scenarios)

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir)

    @property
    def sync_every(self) -> float | None:
        """Seconds between two syncs from the store (None: this process is its only writer)."""
        if self.sync_interval_s is not None:
            return self.sync_interval_s
        return 0.2 if self.store is not None else None

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ServeSettings":
        """Settings from a mapping (nested mappings for ``model`` and ``holdout``); an unknown
        key is an error that names the valid ones."""
        values = dict(values)
        for key, nested in (("model", ModelConfig), ("holdout", HoldoutConfig)):
            if isinstance(values.get(key), dict):
                values[key] = _strict(nested, values[key], f"serve setting {key!r}")
        if isinstance(values.get("scenarios"), list):
            values["scenarios"] = tuple(values["scenarios"])
        return _strict(cls, values, "serve setting")


@dataclass(frozen=True)
class ScenariosConfig:
    """The scenarios file of ``socialrec serve --scenarios FILE`` (TOML; JSON when the name ends
    in ``.json``), e.g. ``datasets = ["lastfm", "movielens-100k"]`` and a ``[model]`` table.

    datasets: the datasets served as scenarios of one service, the default scenario first.
    model: arguments of the scenarios' model (`socialrec.retrieve.scenarios.AdapterSeq`: the
        shared backbone's and its adapters' settings, the text encoder), as (key, value) pairs;
        empty: its defaults.
    """

    datasets: tuple[str, ...]
    model: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if not self.datasets or not all(isinstance(d, str) and d for d in self.datasets):
            raise ConfigError(f"ScenariosConfig.datasets must list dataset names, got {self.datasets!r}")

    @classmethod
    def load(cls, path: str | Path) -> "ScenariosConfig":
        """Read a scenarios file; an unknown key (of the file or of ``[model]``) is an error
        naming the valid ones."""
        import json
        import tomllib

        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
            values = json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
        except FileNotFoundError:
            raise ConfigError(f"scenarios file {p} not found") from None
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{p}: not valid {'JSON' if p.suffix.lower() == '.json' else 'TOML'} ({exc})") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{p}: expected a table with 'datasets' (and optionally 'model')")
        values = dict(values)
        if isinstance(values.get("datasets"), list):
            values["datasets"] = tuple(values["datasets"])
        model = values.get("model", {})
        if not isinstance(model, dict):
            raise ConfigError(f"{p}: 'model' must be a table of the scenario model's arguments")
        from socialrec.retrieve.scenarios import AdapterSeq

        known = sorted(set(AdapterSeq._param_names()) - {"backbone", "scenario", "mode", "encoder_object"})
        unknown = sorted(set(model) - set(known))
        if unknown:
            raise ConfigError(f"{p}: unknown [model] key(s) {unknown}; valid: {known}")
        values["model"] = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in model.items()))
        return _strict(cls, values, f"scenarios file {p} key")


def _strict(cls: Any, values: dict[str, Any], what: str) -> Any:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown {what}(s) {unknown}; valid: {sorted(known)}")
    return cls(**values)
