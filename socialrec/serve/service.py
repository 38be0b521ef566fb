"""The service's state behind the HTTP layer: event store, keys, model registry, the model being
served, retraining and the atomic swap.

Writes (events, catalog and profile upserts, erasure, the swap) take one ingest lock: an event is
committed to SQLite and then applied to the live model before the reply, and a new model version
replays every event committed after its training snapshot while holding that lock, so no event is
lost between two versions. Reads never take it: a request reads ``self.model`` once (one
reference assignment swaps it, atomically under the GIL) and uses that object to the end.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from socialrec.privacy.pseudonyms import load_salt, pseudonym
from socialrec.serve.auth import KeyStore, RateLimiter
from socialrec.serve.bundle import Bundle, TrainConfig, popularity_bundle, train_bundle
from socialrec.serve.metrics import ServiceMetrics
from socialrec.serve.model import LiveModel, LiveOptions, ServingModel
from socialrec.serve.registry import ModelRegistry
from socialrec.serve.settings import ServeSettings
from socialrec.serve.store import EventStore

LOGGER = "socialrec.serve"


def service_logger(state_dir: Path) -> logging.Logger:
    """A file logger under state_dir/logs (one handler per file, however many apps are made)."""
    log = logging.getLogger(f"{LOGGER}.{state_dir.resolve()}")
    path = state_dir / "logs" / "serve.log"
    if not any(isinstance(h, logging.FileHandler) and Path(h.baseFilename) == path.resolve() for h in log.handlers):
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    return log


class Service:
    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.state_dir = settings.state_path
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.log = service_logger(self.state_dir)
        self.salt = load_salt(self.state_dir)
        self.store = EventStore(self.state_dir, synchronous=settings.synchronous)
        self.keys = KeyStore(self.state_dir)
        self.limiter = RateLimiter(settings.rate_per_second, settings.rate_burst)
        self.registry = ModelRegistry(self.state_dir)
        self.metrics = ServiceMetrics()
        self.embedding_dir = str(self.state_dir / "embeddings")
        self.ingest_lock = threading.RLock()
        self.model: ServingModel | None = None
        self._dataset: Any = None
        self._train_lock = threading.Lock()
        self.jobs: dict[str, dict[str, Any]] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.started = time.time()

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Serve the registered model, or popularity while a first model trains."""
        current = self.registry.current()
        if current is not None:
            self.activate(self.registry.load(current))
        else:
            self._spawn(self._bootstrap, "socialrec-bootstrap")
        if self.settings.retrain_interval_s:
            self._spawn(self._schedule, "socialrec-retrain-schedule")

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)
        self.store.close()
        self.keys.close()

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(t)
        t.start()

    def _bootstrap(self) -> None:
        try:
            if self.model is None:
                self.activate(popularity_bundle(self.dataset(), self.store, self.salt))
            if self.settings.train_on_start:
                self.retrain()
        except Exception:  # a failed first training leaves the popularity fallback serving
            self.log.exception("initial training failed; serving the popularity fallback")

    def _schedule(self) -> None:
        while not self._stop.wait(self.settings.retrain_interval_s):
            try:
                self.retrain()
            except Exception:
                self.log.exception("scheduled retraining failed; the previous version keeps serving")

    def dataset(self) -> Any:
        if self._dataset is None:
            from socialrec.ingest.datasets import load

            self._dataset = load(self.settings.dataset, self.settings.data, **dict(self.settings.dataset_options))
        return self._dataset

    def ready(self) -> bool:
        return self.model is not None

    # --- models ------------------------------------------------------------------------
    def _options(self) -> LiveOptions:
        s = self.settings
        return LiveOptions(alpha=s.als_alpha, regularization=s.als_regularization,
                           trending_half_life_s=s.trending_half_life_s, encoder=s.encoder,
                           embedding_dir=self.embedding_dir)

    def activate(self, bundle: Bundle, model: ServingModel | None = None, *, hybrid_in_background: bool = True) -> None:
        """Serve ``bundle``: bring a fresh live model up to date with everything stored since the
        bundle was trained, then swap it in. With ``settings.model == "hybrid"`` the hybrid is
        then fitted on the same version (in a background thread unless told otherwise) and
        swapped in over that live model when ready."""
        new = model if model is not None else LiveModel(bundle, self._options())
        if model is None and self.settings.warm_users:
            # Before the lock, so ingestion is not held up: events observed below drop the rows
            # they change, exactly as they would in a model that had served those users.
            start = time.perf_counter()
            warmed = new.warm(self.settings.warm_users)
            self.log.info("candidate rows of %d users computed in %.1fs", warmed, time.perf_counter() - start)
        with self.ingest_lock:
            for item_id, title, text in self.store.items():
                new.upsert_item(item_id, title, text)
            for user_id, name, text in self._profiles():
                new.upsert_user(user_id, name, text)
            hidden = [e for e in self.store.events() if e.kind == "hide" and e.seq <= bundle.trained_through_seq]
            new.observe(hidden + self.store.events(after_seq=bundle.trained_through_seq))
            self.model = new
        self.metrics.set_model(new.version)
        self.log.info("serving model %s", new.version)
        if model is None and self.settings.model == "hybrid" and bundle.user_factors is not None:
            if hybrid_in_background:
                self._spawn(lambda: self._activate_hybrid(bundle, new), f"socialrec-hybrid-{bundle.version}")
            else:
                self._activate_hybrid(bundle, new)

    def _activate_hybrid(self, bundle: Bundle, live: Any) -> None:
        from socialrec.serve.hybrid import HybridOptions, HybridServingModel, fit_pipeline, warm

        s = self.settings
        options = HybridOptions(channels=tuple(s.hybrid_channels), n_candidates=s.hybrid_candidates, seed=s.seed)
        start = time.perf_counter()
        try:
            pipeline = fit_pipeline(bundle, self.dataset(), options)
        except Exception:
            self.log.exception("fitting the hybrid on %s failed; the live model keeps serving", bundle.version)
            return
        hybrid = HybridServingModel(pipeline, live, options)
        fitted = time.perf_counter() - start
        # Rank every known user before the swap (bounded): a user's first hybrid list costs ~10 ms,
        # a cached one nothing, and the live model serves meanwhile.
        users = [str(u) for u in bundle.user_ids[:self.settings.hybrid_warm_users]]
        warmed = warm(hybrid, users)
        with self.ingest_lock:
            if self.model is not live:  # a newer version was swapped in meanwhile
                return
            self.model = hybrid
        self.log.info("serving the hybrid on %s (fitted in %.1fs, %d users ranked in %.1fs)", bundle.version, fitted,
                      warmed, time.perf_counter() - start - fitted)

    def _profiles(self) -> list[tuple[str, str, str]]:
        with self.store._lock:
            return [tuple(r) for r in self.store._con.execute("SELECT user_id, name, text FROM users")]  # type: ignore[misc]

    def retrain(self) -> Bundle:
        """Train a new version on the dataset plus all stored events, save it, swap it in."""
        with self._train_lock:
            s = self.settings
            cfg = TrainConfig(factors=s.als_factors, iterations=s.als_iterations, regularization=s.als_regularization,
                              alpha=s.als_alpha, holdout_share=s.holdout_share, seed=s.seed, encoder=s.encoder,
                              embedding_dir=self.embedding_dir)
            version = self.registry.next_version()
            bundle = train_bundle(self.dataset(), self.store, self.salt, cfg, version, log=self.log.info)
            self.registry.save(bundle)
            self.activate(bundle, hybrid_in_background=False)
            self.registry.set_current(version)
            self.log.info("trained %s in %.1fs: %s", version, bundle.meta.get("train_seconds", 0.0),
                          bundle.meta.get("metrics"))
            return bundle

    def start_retrain(self) -> dict[str, Any]:
        job_id = uuid.uuid4().hex[:12]
        job: dict[str, Any] = {"job_id": job_id, "status": "running", "version": None, "error": None,
                               "started": time.time()}
        self.jobs[job_id] = job
        done = threading.Event()
        job["_done"] = done

        def run() -> None:
            try:
                job["version"] = self.retrain().version
                job["status"] = "done"
            except Exception as exc:
                job["status"] = "failed"
                job["error"] = f"{type(exc).__name__}: {exc}"
                self.log.exception("retraining job %s failed", job_id)
            finally:
                done.set()

        self._spawn(run, f"socialrec-retrain-{job_id}")
        return job

    # --- writes ------------------------------------------------------------------------
    def ingest(self, events: list[dict[str, Any]]) -> tuple[int, int]:
        with self.ingest_lock:
            new, duplicates = self.store.append(events)
            if self.model is not None and new:
                self.model.observe(new)
        for e in new:
            self.metrics.events.labels(e.kind).inc()
            if e.kind == "click" and e.item_id is not None:
                self.metrics.clicked(e.user_id, e.item_id, e.ts)
        if duplicates:
            self.metrics.duplicates.inc(duplicates)
        return len(new), duplicates

    def upsert_item(self, item_id: str, title: str, text: str) -> None:
        with self.ingest_lock:
            self.store.upsert_item(item_id, title, text)
            if self.model is not None:
                self.model.upsert_item(item_id, title, text)

    def upsert_user(self, user_id: str, name: str, text: str) -> None:
        with self.ingest_lock:
            self.store.upsert_user(user_id, name, text)
            if self.model is not None:
                self.model.upsert_user(user_id, name, text)

    def erase(self, user_id: str) -> dict[str, Any]:
        from socialrec.privacy.erasure import erase_user

        with self.ingest_lock:
            receipt = erase_user(user_id, store=self.store, registry=self.registry,
                                 embedding_dir=Path(self.embedding_dir), salt=self.salt,
                                 models=[self.model] if self.model is not None else [], log=self.log)
            self.metrics.forget_user(user_id)
        if self.registry.current() is not None:
            # Item factors still carry the user's anonymous influence: rebuild without them.
            receipt["retrain_job"] = self.start_retrain()["job_id"]
        return receipt

    def hashed(self, user_id: str) -> str:
        return pseudonym(user_id, self.salt)
