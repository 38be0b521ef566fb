"""The service's state behind the HTTP layer: event store, keys, model registry, the served
model, retraining and the atomic swap. It holds no recommender of its own: the served model is
a fitted library model (`serve.engine.ServedModel`) that learns from events through the
recommender contract.

Writes (events, catalog and profile upserts, erasure, the swap) take one ingest lock: an event is
committed to SQLite and then folded into the served model before the reply, and a new version
folds in every event committed after its training snapshot while holding that lock, so no event
is lost between two versions. Reads never take it: a request reads ``self.model`` once (one
reference assignment swaps it, atomically under the GIL) and uses that object to the end.

Users in control (issue 24): a user's personalisation opt-out is stored with the events (so it
survives restarts) and applied to every version served: the user's state is emptied from the
live model, their events are still stored but neither folded in nor trained on, and they get the
anonymous list; opting back in folds what is held about them in at once. Events older than
``retention_days`` are swept at start-up and every ``retention_sweep_s``. User text is stored
encrypted when ``SOCIALREC_DATA_KEY`` is set (`socialrec.privacy.encryption`), and the service
says at start-up (log, /readyz) whether it is.

Several processes on one store (``socialrec serve --workers N``, or hosts sharing a PostgreSQL
store): each serves its own copy of the model and, every ``sync_interval_s``, folds in what the
others stored (`sync_from_store`): the events with a sequence number above the last it applied
(through the same online update as its own events), consent changes, erasures (the user is
forgotten by its model too) and, when they share a state directory, a version another process
trained. Processes sharing a state directory train one at a time (a file lock), and the first
version trained is loaded by the others rather than trained again.

Personal data (issue 24): with ``scrub_pii`` (on by default) every piece of user text is scrubbed
here, as it enters (`ingest`: event comments; `upsert_user`: profile bio, and the name replaced
whole by ``<PERSON>``), before the store sees it, so what is stored, encrypted, exported, folded
into a model or could reach a log is the scrubbed text; the raw text is never kept, and neither
are the spans found. `clean_text` is the one entry for any later store of user text (a chat).
Catalog items are not scrubbed: the platform writes them (with a write key, recording no author),
and their titles legitimately name people (artists, authors) that the content path needs. The
scrubber (name lists, jieba's dictionary) loads at start-up, not on the first request.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import logging.handlers
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


from socialrec.privacy.encryption import ENV_VAR as DATA_KEY_VAR
from socialrec.privacy.encryption import cipher_from_env
from socialrec.privacy.pseudonyms import load_salt, pseudonym
from socialrec.serve.auth import KeyStore, RateLimiter
from socialrec.serve.engine import (SCENARIO_MODEL, ScenarioPart, ServedModel, popularity_model, train_scenario_models,
                                    train_served_model)
from socialrec.serve.store import Event
from socialrec.serve.metrics import ServiceMetrics
from socialrec.serve.registry import ModelRegistry
from socialrec.serve.settings import ServeSettings
from socialrec.serve.store import EventStore

LOGGER = "socialrec.serve"
TRAIN_LOCK = "train.lock"


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` held by this process until the block ends (other processes
    sharing the state directory wait)."""
    import fcntl

    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class _Ticket:
    """One request's batch in a group commit: its events, then what became of them."""

    __slots__ = ("events", "done", "new", "error")

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events
        self.done = False
        self.new: list[Event] = []
        self.error: BaseException | None = None


def secure_state(state_dir: Path) -> None:
    """Owner-only permissions on everything the service keeps (events, keys, models, logs,
    embeddings): directories 0700, files 0600. Run after anything that creates files."""
    state_dir.chmod(0o700)
    for path in state_dir.rglob("*"):
        try:
            path.chmod(0o700 if path.is_dir() else 0o600)
        except FileNotFoundError:  # a temporary file renamed meanwhile
            pass


class _PrivateRotatingHandler(logging.handlers.RotatingFileHandler):
    """A size-rotated log whose every file is readable by the owner only."""

    def _open(self) -> Any:
        stream = super()._open()
        os.chmod(self.baseFilename, 0o600)
        return stream


LOG_MAX_BYTES = 10_000_000
LOG_BACKUPS = 3


def service_logger(state_dir: Path) -> logging.Logger:
    """A file logger under state_dir/logs, rotated at 10 MB with 3 old files kept (one handler
    per file, however many apps are made)."""
    log = logging.getLogger(f"{LOGGER}.{state_dir.resolve()}")
    path = state_dir / "logs" / "serve.log"
    if not any(isinstance(h, logging.FileHandler) and Path(h.baseFilename) == path.resolve() for h in log.handlers):
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = _PrivateRotatingHandler(path, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    return log


def base_dataset(settings: ServeSettings) -> Any:
    """The dataset a version trains on: the named dataset, without its held-out part when the
    settings name a holdout (the same split code as `socialrec evaluate` and `socialrec split`)."""
    from socialrec.ingest.datasets import load

    ds = load(settings.dataset, settings.data, **dict(settings.dataset_options))
    if settings.scrub_dataset_text:
        from socialrec.privacy.scrub import scrub_dataset

        ds = scrub_dataset(ds)
    if settings.holdout is None:
        return ds
    from socialrec.evaluate.holdout import served_part

    h = settings.holdout
    return served_part(ds, h.protocol, seed=h.seed, friends_masked=h.friends_masked).dataset


# Text that makes the scrubber load all it needs (census names, jieba's dictionary) at start-up.
_WARM_UP = "Mary Smith 张伟 wrote mail@example.org +1 415 555 0132 13812345678"


def _start_scrubber(settings: ServeSettings, log: logging.Logger) -> Any:
    """The service's one `Scrubber`, loaded now (about a second), or None with ``scrub_pii`` off."""
    if not settings.scrub_pii:
        log.warning("user text is NOT scrubbed of personal data: scrub_pii is off")
        return None
    from socialrec.privacy.scrub import Scrubber

    start = time.perf_counter()
    scrubber = Scrubber()
    scrubber.scrub(_WARM_UP)
    log.info("user text is scrubbed of personal data before it is stored (scrubber loaded in %.1fs)",
             time.perf_counter() - start)
    return scrubber


def scenario_dir(name: str) -> str:
    """The folder (under state_dir/scenarios) of a scenario: its name when that is a plain file
    name, else the name made plain plus a short hash of it (two names never share a folder)."""
    plain = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    if plain == name and name not in (".", ".."):
        return name
    return f"{plain}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


class Service:
    """``clock``: unix seconds now (retention's notion of age; tests pass their own).
    ``environ``: where ``SOCIALREC_DATA_KEY`` is read (default: the process environment).

    Several scenarios (``settings.scenarios``): this service serves the default scenario
    (``settings.dataset``) from ``state_dir`` and builds one child `Service` per further
    scenario (``parent``: this one) on ``state_dir/scenarios/NAME``, each with its own event
    store, model registry, served model and consent, so that equal ids of two scenarios never
    mix. The children share this service's API keys, rate limiter, metrics and scrubber; a
    version is trained for all scenarios at once (`train_scenario_models`: one backbone, an
    adapter per scenario), and a request picks its scenario's service (`scenario_service`)."""

    def __init__(self, settings: ServeSettings, *, clock: Callable[[], float] = time.time,
                 environ: dict[str, str] | None = None, parent: "Service | None" = None) -> None:
        self.settings = settings
        self.clock = clock
        self.parent = parent
        self.state_dir = settings.state_path
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.log = service_logger(self.state_dir)
        cipher = cipher_from_env(environ)
        self.store = EventStore(self.state_dir, synchronous=settings.synchronous, cipher=cipher, url=settings.store)
        # One salt for every process on a shared store: they must name an erased user alike.
        self.salt = parent.salt if parent is not None else self.store.shared_salt() or load_salt(self.state_dir)
        self.log.info("event store: %s", self.store.location)
        if cipher is None:
            self.log.warning("stored user text is NOT encrypted at rest: %s is not set", DATA_KEY_VAR)
        else:
            self.log.info("stored user text is encrypted at rest (key from %s)", DATA_KEY_VAR)
        self.scrubber = parent.scrubber if parent is not None else _start_scrubber(settings, self.log)
        self._opted_out = self.store.opted_out()
        # Other per-user stores (a chat history, ...): name -> object with export(user_id) -> JSON
        # or None and erase(user_id) -> int; exports include them and erasure empties them.
        self.user_data: dict[str, Any] = {}
        from socialrec.serve.chat import ChatService

        self.chat = ChatService(self)
        self._trends: dict[tuple[str, float, int], dict[str, Any]] = {}
        self._trends_lock = threading.Lock()
        self.user_data["chat"] = self.chat.sessions
        if parent is not None:  # one set of keys, limits and metrics for the whole service
            self.keys, self.limiter, self.metrics = parent.keys, parent.limiter, parent.metrics
        else:
            self.keys = KeyStore(self.state_dir, url=settings.store)
            self.limiter = RateLimiter(settings.rate_per_second, settings.rate_burst)
            self.metrics = ServiceMetrics()
        self.registry = ModelRegistry(self.state_dir, keep=settings.max_versions)
        self.embedding_dir = str(self.state_dir / "embeddings")
        self.ingest_lock = threading.RLock()
        self._waiting: list[_Ticket] = []  # batches waiting to be committed together (`_append`)
        self._waiting_lock = threading.Lock()
        self.model: ServedModel | None = None
        self.not_ready_reason = "the first model is being prepared"
        self._dataset: Any = None
        self._train_lock = threading.Lock()
        self.jobs: dict[str, dict[str, Any]] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.started = time.time()
        self._upserted = {item_id for item_id, _, _ in self.store.items()}  # catalog items since the dataset
        # What this process has applied from the store: every event up to _applied_seq (its own
        # later ones are in _own_seqs, already folded in), the erasure records, the opted-out set.
        self._applied_seq = 0
        self._own_seqs: set[int] = set()
        self._erased_seen = self.store.erased_count()
        self._erased_known = self.store.erased_hashes() if self._erased_seen else set()
        self.last_sweep: dict[str, Any] | None = None
        if settings.retention_days is not None:
            self.sweep_retention()
        secure_state(self.state_dir)
        # Every scenario served, by name (the default first): this service and its children.
        self.scenarios: dict[str, Service] = {settings.dataset: self}
        if settings.scenarios and parent is None:
            for name in settings.scenarios:
                child = dataclasses.replace(settings, dataset=name, scenarios=(), train_on_start=False,
                                            retrain_interval_s=None,
                                            state_dir=str(self.state_dir / "scenarios" / scenario_dir(name)))
                self.scenarios[name] = Service(child, clock=clock, environ=environ, parent=self)
            self.log.info("serving %d scenarios: %s (default %s)", len(self.scenarios), ", ".join(self.scenarios),
                          settings.dataset)

    @property
    def scenario(self) -> str:
        """The name of the scenario this service serves (its dataset)."""
        return self.settings.dataset

    @property
    def scenario_names(self) -> tuple[str, ...]:
        """Every scenario of the whole service, the default first."""
        return tuple((self.parent or self).scenarios)

    def scenario_service(self, name: str | None) -> "Service | None":
        """The service of scenario ``name`` (None: the default, this one); None when no scenario
        has that name."""
        return self if name is None else self.scenarios.get(name)

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Serve the saved current version, or popularity while a first version trains. With
        several scenarios: each scenario's saved version, holding one backbone between them, or
        popularity in every scenario while a first version of all of them trains."""
        services = list(self.scenarios.values())
        loaded = all([svc._load_current() for svc in services])  # a list: every scenario tries
        if loaded and len(services) > 1:
            loaded = self._share_backbone()
        if not loaded:
            self._spawn(self._bootstrap, "socialrec-bootstrap")
        if self.settings.retrain_interval_s:
            self._spawn(self._schedule, "socialrec-retrain-schedule")
        for svc in services:
            svc._start_threads()

    def _load_current(self) -> bool:
        """Serve the saved current version; False when there is none or it cannot be loaded."""
        current = self.registry.current()
        if current is None:
            return False
        try:
            self.activate(self.registry.load(current, self.settings.dataset, self.served_data()))
            return True
        except (ValueError, OSError) as exc:
            self.log.warning("saved version %s not loaded (%s); training a new one", current, exc)
            return False

    def _share_backbone(self) -> bool:
        """Hold the scenarios' loaded versions on one backbone object (each was saved with its own
        copy); False, to train them again, when they were not trained together."""
        from socialrec.retrieve.scenarios import share_backbone

        models = [svc.model for svc in self.scenarios.values()]
        try:
            share_backbone([m.model for m in models if m is not None])
        except (ValueError, AttributeError) as exc:
            self.log.warning("the saved scenario versions do not share one backbone (%s); training them again", exc)
            return False
        return True

    def _start_threads(self) -> None:
        if self.settings.retention_days is not None:
            self._spawn(self._sweeper, "socialrec-retention")
        self._spawn(self._learn, "socialrec-learner")
        if self.settings.sync_every is not None:
            self._spawn(self._follow_store, "socialrec-store-sync")

    def _sweeper(self) -> None:
        while not self._stop.wait(self.settings.retention_sweep_s):
            try:
                self.sweep_retention()
            except Exception:
                self.log.exception("retention sweep failed; the next one tries again")

    def sweep_retention(self) -> dict[str, Any]:
        """Delete stored events older than ``retention_days`` (and their texts' cached vectors)."""
        from socialrec.privacy.retention import sweep

        days = self.settings.retention_days
        if days is None:
            return {"events_deleted": 0}
        with self.ingest_lock:
            self.last_sweep = sweep(self.store, retention_days=days, now=self.clock(),
                                    embedding_dir=Path(self.embedding_dir), log=self.log)
        return self.last_sweep

    def _learn(self) -> None:
        """Fold queued events into the served model in batches (reads fold in what waits too)."""
        while not self._stop.wait(self.settings.fold_in_interval_s):
            model = self.model
            if model is not None:
                try:
                    model.flush()
                except Exception:
                    self.log.exception("folding events into the served model failed; they stay stored")

    def _follow_store(self) -> None:
        every = self.settings.sync_every or 0.2
        while not self._stop.wait(every):
            try:
                self.sync_from_store()
            except Exception:
                self.log.exception("syncing from the shared store failed; the next sync tries again")

    def sync_from_store(self) -> dict[str, int]:
        """Apply what other processes wrote to the shared store since the last sync: a version
        they trained (same state directory), their events (folded in through the model's online
        update, as this process's own), erasures (the users are forgotten by the served model),
        consent changes and new catalog items. Returns how many of each were applied."""
        done = {"version": 0, "events": 0, "erased": 0, "consent": 0, "items": 0}
        model = self.model
        if model is None:
            return done
        current = self.registry.current()
        if current is not None and model.trained and current > model.version and not self._train_lock.locked():
            with self._train_lock:
                if self.model is model:
                    self.activate(self.registry.load(current, self.settings.dataset, self.served_data()))
                    done["version"] = 1
            return done
        with self.ingest_lock:
            model = self.model
            new = self.store.events(after_seq=self._applied_seq, with_text=False)
            if new:
                foreign = [e for e in new if e.seq not in self._own_seqs]
                self._applied_seq = new[-1].seq
                self._own_seqs = {s for s in self._own_seqs if s > self._applied_seq}
                if model is not None and foreign:
                    model.observe(foreign)
                    done["events"] = len(foreign)
        done["erased"] = self._sync_erasures()
        done["consent"] = self._sync_consent()
        done["items"] = self._sync_catalog()
        return done

    def _sync_catalog(self) -> int:
        """Catalog items other processes added (PUT /v1/items): events on them are accepted here
        too (the model ranks them from its next version, as on the process that added them)."""
        count = self.store.item_count()
        if count == len(self._upserted):
            return 0
        ids = {item_id for item_id, _, _ in self.store.items()}
        added = len(ids - self._upserted)
        self._upserted |= ids
        return added

    def _sync_erasures(self) -> int:
        """Forget, in the served model, the users another process erased (known by their hash:
        the ids the model holds and the opted-out ones are hashed to find them). While this
        process trains a version it waits (the version might hold them): it runs after the swap."""
        count = self.store.erased_count()
        if count == self._erased_seen or not self._train_lock.acquire(blocking=False):
            return 0
        from socialrec.privacy.erasure import tombstone

        found = 0
        try:
            hashes = self.store.erased_hashes()
            fresh = hashes - self._erased_known
            with self.ingest_lock:
                model = self.model
                candidates = set(self._opted_out)
                if model is not None and fresh:
                    candidates |= {str(u) for u in model.dataset.users.external_ids}
                for user_id in candidates if fresh else ():
                    user_hash = pseudonym(user_id, self.salt)
                    if user_hash not in fresh:
                        continue
                    found += 1
                    self._opted_out.discard(user_id)
                    if model is not None and user_id in model.dataset.users:
                        model.forget_user(user_id, tombstone(user_hash))
                    for source in self.user_data.values():
                        source.erase(user_id)
                    self.metrics.forget_user(user_id)
                    self.log.info("user %s was erased by another process: forgotten here too", user_hash)
                if found and model is not None and model.trained and self.registry.current() == model.version:
                    self.registry.save(model)  # the saved current version forgets them too
                    self.registry.delete_except(model.version)
            self._erased_seen, self._erased_known = count, hashes
        finally:
            self._train_lock.release()
        if found:
            secure_state(self.state_dir)
        return found

    def _sync_consent(self) -> int:
        """Apply the opt-outs and opt-ins other processes stored."""
        changed = 0
        with self.ingest_lock:  # set_consent writes the store and the set under this lock
            stored = self.store.opted_out()
            model = self.model
            for user_id in stored - self._opted_out:
                self._opted_out.add(user_id)
                if model is not None:
                    model.exclude_user(user_id)
                changed += 1
            for user_id in self._opted_out - stored:
                self._opted_out.discard(user_id)
                changed += 1
                choice = self.store.consent(user_id)
                if model is not None and choice is not None and choice[0]:
                    model.include_user(user_id, self._history(user_id))
        return changed

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)
        for name, child in self.scenarios.items():
            if child is not self:
                child.stop()
        self.store.close()
        if self.parent is None:
            self.keys.close()

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(t)
        t.start()

    def _bootstrap(self) -> None:
        services = list(self.scenarios.values())
        try:
            for svc in services:
                if svc.model is None:
                    svc.activate(popularity_model(svc.dataset(), svc.store, svc._excluded_from_training()))
                    svc.not_ready_reason = ("serving the popularity fallback while the first model trains"
                                            if self.settings.train_on_start else
                                            "serving the popularity fallback: no model trained (POST /v1/admin/retrain)")
            if self.settings.train_on_start:
                self.retrain(reuse_saved=len(services) == 1)
        except Exception as exc:  # a failed first training leaves the popularity fallback serving
            for svc in services:
                svc.not_ready_reason = f"training the first model failed ({type(exc).__name__}); serving popularity"
            self.log.exception("initial training failed; serving the popularity fallback")

    def _schedule(self) -> None:
        while not self._stop.wait(self.settings.retrain_interval_s):
            try:
                self.retrain()
            except Exception:
                self.log.exception("scheduled retraining failed; the previous version keeps serving")

    def dataset(self) -> Any:
        if self._dataset is None:
            self._dataset = base_dataset(self.settings)
        return self._dataset

    def served_data(self) -> str:
        """What part of the dataset is served, as recorded with each version: a version trained
        on all of a dataset is never loaded to serve a holdout of it, nor the reverse."""
        h = self.settings.holdout
        part = "all" if h is None else f"holdout {h.protocol} seed {h.seed} friends-masked {h.friends_masked}"
        names = self.scenario_names
        group = f" scenarios {'+'.join(names)}" if len(names) > 1 else ""  # a version serves these together
        return part + (" texts-scrubbed" if self.settings.scrub_dataset_text else "") + group

    def ready(self) -> tuple[bool, str]:
        """(True, version) once a trained model serves (in every scenario, when there are
        several); else (False, why not)."""
        for name, svc in self.scenarios.items():
            model = svc.model
            if model is None or not model.trained:
                return False, svc.not_ready_reason + (f" (scenario {name})" if len(self.scenarios) > 1 else "")
        model = self.model
        return (True, model.version) if model is not None else (False, self.not_ready_reason)

    # --- models ------------------------------------------------------------------------
    def activate(self, served: ServedModel, trained_without: set[str] | None = None) -> None:
        """Serve ``served``: fold in everything stored since it was trained, then swap it in.
        Users opted out now are excluded from it; those opted out when it was trained
        (``trained_without``) but not now are folded back in."""
        through = int(served.meta.get("trained_through_seq", 0))
        served.cache_ttl_s = self.settings.cache_ttl_s
        if trained_without is None and served.trained:  # a saved version: who opted in after it was trained
            trained_without = self.store.opted_in_since(float(served.meta.get("created", 0.0)))
        for user_id in list(self._opted_out):
            served.exclude_user(user_id)
        if self.settings.warm_users and served.trained:
            start = time.perf_counter()
            users = served.dataset.users.external_ids[:self.settings.warm_users]
            for u in users:
                served.recommend(str(u), 20)
            self.log.info("lists of %d users computed in %.1fs", len(users), time.perf_counter() - start)
        with self.ingest_lock:
            for user_id in list(self._opted_out):  # opted out while the lists were warmed
                served.exclude_user(user_id)
            hidden = [e for e in self.store.events(with_text=False) if e.kind == "hide" and e.seq <= through]
            later = self.store.events(after_seq=through, with_text=False)
            served.observe(hidden + later)
            self._applied_seq = later[-1].seq if later else through
            self._own_seqs = set()
            served.flush()
            for user_id in sorted((trained_without or set()) - self._opted_out):  # opted back in meanwhile
                served.include_user(user_id, self._history(user_id))
            self.model = served
        self.metrics.set_model(served.version)
        self._export_trend(served)
        self.log.info("serving model %s (%s)", served.version, served.meta.get("kind"))

    def _export_trend(self, served: ServedModel) -> None:
        """The latest daily window of the served data, its burst alert and (for posts with text)
        the topics with a burst and a sharp sentiment drop in it, as metrics (the counts only:
        keywords are read from GET /v1/trends, whose default view this computes and caches)."""
        from socialrec.represent.sentiment import items_are_posts
        from socialrec.retrieve.bursts import recent_windows

        starts, counts, alerts, shown = recent_windows(served.dataset, window=86400.0, last=1)
        if not len(shown):
            return
        drops = 0
        if items_are_posts(served.dataset):
            latest = self.trends(served, 86400.0, 30)
            last_start = latest["windows"][-1]["start"] if latest["windows"] else None
            drops = len({a["topic"] for a in latest["topic_alerts"] if a["start"] == last_start})
        self.metrics.set_trend(int(counts[shown[-1]]), shown[-1] in alerts, drops)

    def trends(self, served: ServedModel, window: float, last: int) -> dict[str, Any]:
        """`retrieve.bursts.recent_trends` of the served version's data, computed once per
        (version, window, last): that data only changes with the next version, and naming a
        trend's topics segments every post."""
        from socialrec.retrieve.bursts import recent_trends

        key = (served.version, window, last)
        with self._trends_lock:
            cached = self._trends.get(key)
        if cached is None:
            cached = recent_trends(served.dataset, window=window, last=last)
            with self._trends_lock:
                if len(self._trends) >= 64 or any(k[0] != served.version for k in self._trends):
                    self._trends.clear()
                self._trends[key] = cached
        return cached

    def _is_erased(self) -> Callable[[str], bool]:
        hashes = self.store.erased_hashes()
        return lambda user_id: pseudonym(user_id, self.salt) in hashes

    def _excluded_from_training(self, opted_out: set[str] | None = None) -> Callable[[str], bool]:
        """True for users whose data no version may learn from: erased, or opted out."""
        erased = self._is_erased()
        out = set(self._opted_out) if opted_out is None else opted_out
        return lambda user_id: user_id in out or erased(user_id)

    def retrain(self, *, reuse_saved: bool = False) -> ServedModel:
        """Fit a new version on the dataset plus all stored events (without erased and opted-out
        users), save it, swap it in. Processes sharing the state directory train one at a time;
        ``reuse_saved``: serve the current saved version instead when there is one (another
        process trained it while this one waited). With several scenarios every scenario gets
        a new version (`retrain_scenarios`), whichever scenario asks (and so does the scenario
        model serving one dataset)."""
        if len(self.scenario_names) > 1 or self.settings.model.name == SCENARIO_MODEL:
            root = self.parent or self
            return root.retrain_scenarios()[self.scenario]
        with self._train_lock, _file_lock(self.state_dir / TRAIN_LOCK):
            current = self.registry.current() if reuse_saved else None
            if current is not None:
                served = self.registry.load(current, self.settings.dataset, self.served_data())
                self.activate(served)
                return served
            version = self.registry.next_version()
            opted_out = set(self._opted_out)
            served = train_served_model(self.dataset(), self.store, self.settings.model, version,
                                        erased=self._excluded_from_training(opted_out), log=self.log.info)
            served.meta["data"] = self.served_data()
            self.registry.save(served)
            self.activate(served, trained_without=opted_out)
            self.registry.set_current(version)
            secure_state(self.state_dir)
            self.log.info("trained %s in %.1fs", version, served.meta.get("train_seconds", 0.0))
            return served

    def retrain_scenarios(self) -> dict[str, ServedModel]:
        """Fit one version of every scenario (`train_scenario_models`: one backbone trained on
        all of them plus each scenario's stored events, an adapter per scenario), save it in each
        scenario's registry, swap it in everywhere. Returns the served models by scenario."""
        services = self.scenarios
        with contextlib.ExitStack() as held:
            for svc in services.values():  # always in the same order (the default first)
                held.enter_context(svc._train_lock)
            held.enter_context(_file_lock(self.state_dir / TRAIN_LOCK))
            version = max(svc.registry.next_version() for svc in services.values())
            opted_out = {name: set(svc._opted_out) for name, svc in services.items()}
            parts = {name: ScenarioPart(svc.dataset(), svc.store, svc._excluded_from_training(opted_out[name]))
                     for name, svc in services.items()}
            served = train_scenario_models(parts, self.settings.model, version, log=self.log.info)
            for name, svc in services.items():  # every scenario saved before any becomes current
                served[name].meta["data"] = svc.served_data()
                svc.registry.save(served[name])
            for name, svc in services.items():
                svc.activate(served[name], trained_without=opted_out[name])
                svc.registry.set_current(version)
                secure_state(svc.state_dir)
            self.log.info("trained %s of %d scenarios in %.1fs", version, len(served),
                          served[self.scenario].meta.get("train_seconds", 0.0))
            return served

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
    def known_item(self, item_id: str) -> bool:
        """Whether an item is in the catalog: the served model's items, or upserted since."""
        model = self.model
        items = model.dataset.items if model is not None else self.dataset().items
        return item_id in items or item_id in self._upserted

    def ingest(self, events: list[dict[str, Any]]) -> tuple[int, int, int]:
        """Store and learn from a batch; returns (accepted, duplicates, refused). Item events on
        items outside the catalog are refused one by one (not stored: items enter the catalog
        through PUT /v1/items or the dataset), unless ``accept_unknown_items`` is set."""
        refused = 0
        if not self.settings.accept_unknown_items:
            kept = [e for e in events if e.get("item_id") is None or self.known_item(e["item_id"])]
            refused, events = len(events) - len(kept), kept
        if self.scrubber is not None:  # outside the lock: other writers need not wait for it
            events = [{**e, "text": self.clean_text(e["text"])} if e.get("text") else e for e in events]
        new, duplicates = self._append(events)
        kinds: dict[str, int] = {}
        for e in new:
            kinds[e.kind] = kinds.get(e.kind, 0) + 1
            if e.kind == "click" and e.item_id is not None:
                self.metrics.clicked(e.user_id, e.item_id, e.ts)
        for kind, n in kinds.items():
            self.metrics.events.labels(kind).inc(n)
        if duplicates:
            self.metrics.duplicates.inc(duplicates)
        return len(new), duplicates, refused

    def _append(self, events: list[dict[str, Any]]) -> tuple[list[Event], int]:
        """Store a batch and queue it for the model; (new events, duplicates). Group commit:
        batches that arrive while another is being committed wait for the ingest lock together,
        and the first of them to get it commits all of them in one transaction (each request
        still returns only after its events are committed)."""
        ticket = _Ticket(events)
        with self._waiting_lock:
            self._waiting.append(ticket)
        with self.ingest_lock:
            if not ticket.done:
                with self._waiting_lock:
                    group, self._waiting = self._waiting, []
                try:
                    new, _ = self.store.append([e for t in group for e in t.events])
                except BaseException as exc:
                    for t in group:
                        t.error, t.done = exc, True
                    raise
                by_id = {e.event_id: e for e in new}
                for t in group:  # an event id goes to the first batch of the group that holds it
                    t.new = [ev for ev in (by_id.pop(e["event_id"], None) for e in t.events) if ev is not None]
                    t.done = True
                if self.model is not None and new:
                    self.model.observe(new)
                    if self.settings.sync_every is not None:
                        self._own_seqs.update(e.seq for e in new)
        if ticket.error is not None:
            raise ticket.error
        return ticket.new, len(events) - len(ticket.new)

    def upsert_item(self, item_id: str, title: str, text: str, *, vectors: dict[str, list[float]] | None = None) -> bool:
        """Add or update a catalog item. With ``vectors`` (modality name -> numbers) a new item is
        placed in the served model at once (`ServedModel.add_item_vectors`: checked against the
        model's modalities first, a DataError saying why when they do not fit; nothing is stored
        then). Returns whether the served model ranks the item now."""
        with self.ingest_lock:
            placed = False
            if vectors:
                if self.model is None:
                    raise NotImplementedError("no model is served yet; send the item again when one is")
                placed = self.model.add_item_vectors(item_id, title, vectors, text)
            self.store.upsert_item(item_id, title, text)
            self._upserted.add(item_id)  # in the catalog now; the model trains on it at the next version
            return placed

    def upsert_user(self, user_id: str, name: str, text: str) -> None:
        name, text = self.clean_name(name), self.clean_text(text) or ""
        with self.ingest_lock:
            self.store.upsert_user(user_id, name, text)

    # --- personal data -----------------------------------------------------------------
    def clean_text(self, text: str | None) -> str | None:
        """``text`` with its personal data replaced by typed placeholders (as given when
        ``scrub_pii`` is off). Every piece of user text passes here before it is kept."""
        if not text or self.scrubber is None:
            return text
        result = self.scrubber.scrub(text)
        for span in result.spans:
            self.metrics.pii.labels(span.type).inc()
        return result.text

    def clean_name(self, name: str) -> str:
        """A profile's name field: a person's name by definition, so replaced whole (the
        scrubber finds names in running text by gazetteer and cues, and would keep "Zed Cipher")."""
        if self.scrubber is None or not name.strip():
            return name
        self.metrics.pii.labels("PERSON").inc()
        return self.scrubber.placeholder.format(type="PERSON")

    def erase(self, user_id: str) -> dict[str, Any]:
        """Erase the user from the store, the embeddings, the served model and every saved
        version (the current one is rewritten from the forgotten model, the others deleted)."""
        from socialrec.privacy.erasure import erase_user

        def rewrite() -> dict[str, list[str]]:
            model = self.model
            if model is None or not model.trained:
                return {"rewritten": [], "deleted": self.registry.delete_except(None)}
            self.registry.save(model)
            return {"rewritten": [model.version], "deleted": self.registry.delete_except(model.version)}

        with self._train_lock, self.ingest_lock:  # the order retrain takes them in
            receipt = erase_user(user_id, store=self.store, embedding_dir=Path(self.embedding_dir), salt=self.salt,
                                 models=[self.model] if self.model is not None else [], rewrite_versions=rewrite,
                                 log=self.log)
            self._opted_out.discard(user_id)
            if self.user_data:
                receipt["other_data_deleted"] = {name: int(source.erase(user_id)) for name, source in self.user_data.items()}
            self.metrics.forget_user(user_id)
        secure_state(self.state_dir)
        return receipt

    def hashed(self, user_id: str) -> str:
        return pseudonym(user_id, self.salt)

    def is_erased(self, user_id: str) -> bool:
        return pseudonym(user_id, self.salt) in self.store.erased_hashes()

    # --- consent -----------------------------------------------------------------------
    def consent(self, user_id: str) -> dict[str, Any]:
        """The user's personalisation choice (allowed unless they opted out)."""
        stored = self.store.consent(user_id)
        return {"user_id": user_id, "personalization": True if stored is None else stored[0],
                "updated": None if stored is None else stored[1]}

    def set_consent(self, user_id: str, personalization: bool) -> dict[str, Any]:
        """Store the choice (committed before the reply), then apply it to the live model: an
        opt-out empties the user's state in it and serves them the anonymous list; an opt-in
        folds what is held about them (base data, stored events, follows of them) in at once."""
        with self.ingest_lock:
            self.store.set_consent(user_id, personalization)
            model = self.model
            if personalization:
                was_out = user_id in self._opted_out
                self._opted_out.discard(user_id)
                if model is not None and (was_out or model.is_excluded(user_id)):
                    model.include_user(user_id, self._history(user_id))
            else:
                self._opted_out.add(user_id)
                if model is not None:
                    model.exclude_user(user_id)
        self.log.info("consent of user %s: personalization %s", self.hashed(user_id), "on" if personalization else "off")
        return self.consent(user_id)

    def _history(self, user_id: str) -> list[Event]:
        """What a model learns about a user, as events in order: their interactions and edges in
        the base dataset (unless erased), then their stored events and the follows of them."""
        out: list[Event] = []
        ds = self.dataset()
        erased = self._is_erased()
        if user_id in ds.users and not erased(user_id):
            u = int(ds.users.to_index(user_id))
            inter = ds.interactions
            rows = inter[inter["user"].to_numpy() == u]
            for item, ts in zip(ds.items.to_external(rows["item"].to_numpy()), rows["timestamp"].to_numpy()):
                out.append(Event(0, "", user_id, "view", str(item), None, None, None, float(ts)))
            social = ds.social
            if len(social):
                src, dst = social["source"].to_numpy(), social["target"].to_numpy()
                for v in ds.users.to_external(dst[src == u]):
                    if not erased(str(v)):
                        out.append(Event(0, "", user_id, "follow", None, str(v), None, None, 0.0))
                if ds.social_directed:
                    for v in ds.users.to_external(src[dst == u]):
                        if not erased(str(v)):
                            out.append(Event(0, "", str(v), "follow", None, user_id, None, None, 0.0))
        stored = self.store.events(user_id=user_id, with_text=False) + self.store.events(about_user=user_id, with_text=False)
        return out + sorted(stored, key=lambda e: e.seq)
