"""Where independent pieces of work run: in this process (`LocalEngine`, the default) or on Ray
workers (`RayEngine`, extra ``ray``), behind one small interface.

An engine maps a function over items in order. Large read-only inputs (a split, a mask, a
fitted model) are ``share``d once and passed to every call by handle: the local engine hands
over the object itself, the Ray engine puts it in the object store once (``ray.put``) and every
task reads it from there, never a copy per task. ``imap_keep`` is for work whose large result
is only needed later by other calls (a fitted model): the small part comes back to the caller,
the large part stays where it is (in the Ray object store) until the caller drops its handle.

Same inputs, same results: a Ray worker runs with the caller's thread counts (BLAS, OpenMP and
torch intra-op threads are captured here and set there; Ray itself would give each worker one
thread), so numerical kernels reduce in the same order as in a single-process run. Results can
still differ across machines with different CPUs or library builds.

A ground module: it imports no layer of socialrec; Ray is imported only by `RayEngine`.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from socialrec.errors import MissingDependencyError

__all__ = ["ENGINES", "Engine", "LocalEngine", "RayEngine", "ThreadSettings", "batch_ranges", "make_engine"]

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class ThreadSettings:
    """The thread counts numerical libraries use in a process (None: leave as it is).

    blas: BLAS threads (OpenBLAS / MKL, as threadpoolctl reports them). openmp: OpenMP threads
    (implicit's loops, torch's). torch: torch's intra-op threads.
    """

    blas: int | None = None
    openmp: int | None = None
    torch: int | None = None

    @classmethod
    def of_this_process(cls) -> ThreadSettings:
        """What this process uses now (torch's count only when torch is installed)."""
        from threadpoolctl import threadpool_info

        info = threadpool_info()

        def most(api: str) -> int | None:
            counts = [int(lib["num_threads"]) for lib in info if lib.get("user_api") == api]
            return max(counts) if counts else None

        torch_threads = None
        try:
            import torch

            torch_threads = int(torch.get_num_threads())
        except ImportError:
            pass
        return cls(blas=most("blas"), openmp=most("openmp"), torch=torch_threads)

    def env(self) -> dict[str, str]:
        """Environment variables that make libraries loaded later start with these counts."""
        n = self.openmp or self.torch or self.blas
        return {} if n is None else {"OMP_NUM_THREADS": str(n), "MKL_NUM_THREADS": str(self.blas or n),
                                     "OPENBLAS_NUM_THREADS": str(self.blas or n)}

    def apply(self) -> None:
        """Set these counts in this process (for the libraries loaded so far and torch)."""
        from threadpoolctl import threadpool_limits

        limits = {api: n for api, n in (("blas", self.blas), ("openmp", self.openmp)) if n is not None}
        if limits:
            threadpool_limits(limits=limits)  # not as a context: the limits stay set
        if self.torch is not None:
            try:
                import torch
            except ImportError:
                return
            if torch.get_num_threads() != self.torch:
                torch.set_num_threads(self.torch)


class Engine(Protocol):
    """What every engine offers.

    name: "local" or "ray". workers: how many calls may run at once.
    share(obj): a handle to pass to the calls of ``imap`` / ``imap_keep`` in place of ``obj``.
    imap(fn, items, *shared): ``fn(item, *shared objects)`` for each item, results in item order.
    imap_keep(fn, items, *shared): as ``imap`` for an ``fn`` returning ``(small, large)``;
        yields ``(small, handle of large)``, the handle passable as a shared argument.
    map_ranges(make, n, batch_size, *shared): batch inference. ``make(*shared objects)`` builds
        a function once per worker (loading a model, say); it is called on the consecutive
        ranges ``(start, stop)`` of ``range(n)``, ``batch_size`` long, exactly as a local loop
        would cut them; the results come back in range order. On Ray it runs on Ray Data
        (``map_batches`` over a dataset of the ranges, an actor pool of ``workers``).
    close(): release the workers (a no-op for the local engine).
    """

    name: str
    workers: int

    def share(self, obj: Any) -> Any: ...

    def imap(self, fn: Callable[..., Any], items: Iterable[Any], *shared: Any) -> Iterator[Any]: ...

    def imap_keep(self, fn: Callable[..., tuple[Any, Any]], items: Iterable[Any],
                  *shared: Any) -> Iterator[tuple[Any, Any]]: ...

    def map_ranges(self, make: Callable[..., Callable[[int, int], Any]], n: int, batch_size: int,
                   *shared: Any) -> list[Any]: ...

    def close(self) -> None: ...


def batch_ranges(n: int, batch_size: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of the consecutive batches of ``range(n)``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]


class LocalEngine:
    """Everything in this process, one call after the other, each result produced when it is
    asked for (so a caller that keeps only the best model holds at most two)."""

    name = "local"
    workers = 1

    def share(self, obj: Any) -> Any:
        return obj

    def imap(self, fn: Callable[..., Any], items: Iterable[Any], *shared: Any) -> Iterator[Any]:
        for item in items:
            yield fn(item, *shared)

    def imap_keep(self, fn: Callable[..., tuple[Any, Any]], items: Iterable[Any],
                  *shared: Any) -> Iterator[tuple[Any, Any]]:
        for item in items:
            yield fn(item, *shared)

    def map_ranges(self, make: Callable[..., Callable[[int, int], Any]], n: int, batch_size: int,
                   *shared: Any) -> list[Any]:
        fn = make(*shared)
        return [fn(start, stop) for start, stop in batch_ranges(n, batch_size)]

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return "LocalEngine()"


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError("ray", "ray", "The Ray engine (--engine ray)") from exc
    return ray


_APPLIED: ThreadSettings | None = None


def _call(settings: ThreadSettings, fn: Callable[..., Any], item: Any, *shared: Any) -> Any:
    """A task's body on a Ray worker: the caller's thread counts, then the call."""
    global _APPLIED
    if _APPLIED != settings:
        settings.apply()
        _APPLIED = settings
    return fn(item, *shared)


class _RangeWorker:
    """A Ray Data actor of `RayEngine.map_ranges`: the caller's thread counts, the shared
    inputs read once from the object store, the function built once; then one call per range."""

    def __init__(self, settings: ThreadSettings, make: Callable[..., Callable[[int, int], Any]],
                 shared: tuple[Any, ...]) -> None:
        import ray

        settings.apply()
        objects = [ray.get(h) if isinstance(h, ray.ObjectRef) else h for h in shared]
        self.fn = make(*objects)

    def __call__(self, rows: dict[str, Any]) -> dict[str, Any]:
        import pickle

        import numpy as np

        out = [pickle.dumps(self.fn(int(a), int(b)), protocol=5) for a, b in zip(rows["start"], rows["stop"])]
        return {"start": np.asarray(rows["start"]), "result": np.array(out, dtype=object)}


class RayEngine:
    """Calls run as Ray tasks: on a local Ray instance with ``workers`` CPUs started here
    (``address=None``), or on the cluster at ``address`` (``"HOST:6379"``, or ``"auto"`` for the
    one this host has joined). ``workers`` (default: the instance's CPUs) sizes the work in
    flight: twice that many calls are submitted ahead of the one waited for. Every host needs socialrec and its extras installed, and the data each
    call reads comes through the object store, not from the host's disk.

    threads: the thread counts each task runs with (default: this process's, so results match a
    single-process run). The instance is started on first use; ``close`` shuts down a local
    instance this engine started (a cluster, or an instance started by the caller, keeps running).
    """

    name = "ray"

    def __init__(self, workers: int | None = None, *, address: str | None = None,
                 threads: ThreadSettings | None = None) -> None:
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.address = address
        self.threads = threads
        self._workers = workers
        self._started = False
        self._owns = False  # whether this engine started the local Ray instance
        self._task: Any = None

    def _start(self) -> Any:
        ray = _ray()
        if not self._started:
            if self.threads is None:
                self.threads = ThreadSettings.of_this_process()
            runtime_env = {"env_vars": self.threads.env()}
            if not ray.is_initialized():
                self._owns = self.address is None
            if not ray.is_initialized() and self.address is None:
                ray.init(num_cpus=self._workers or os.cpu_count() or 1, include_dashboard=False,
                         log_to_driver=False, runtime_env=runtime_env, configure_logging=False)
            elif not ray.is_initialized():
                ray.init(address=self.address, log_to_driver=False, runtime_env=runtime_env,
                         configure_logging=False)
            if self._workers is None:
                self._workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
            self._task = ray.remote(_call)
            self._started = True
        return ray

    @property
    def workers(self) -> int:
        self._start()
        assert self._workers is not None  # set by _start
        return self._workers

    def share(self, obj: Any) -> Any:
        return self._start().put(obj)

    def _submit(self, fn: Callable[..., Any], items: Iterable[Any], shared: tuple[Any, ...],
                num_returns: int) -> Iterator[Any]:
        """Submit calls keeping at most twice the worker count in flight; yield their refs in order."""
        self._start()
        task = self._task.options(num_returns=num_returns, num_cpus=1)
        pending: deque[Any] = deque()
        window = 2 * self.workers
        for item in items:
            pending.append(task.remote(self.threads, fn, item, *shared))
            if len(pending) >= window:
                yield pending.popleft()
        while pending:
            yield pending.popleft()

    def imap(self, fn: Callable[..., Any], items: Iterable[Any], *shared: Any) -> Iterator[Any]:
        ray = self._start()
        for ref in self._submit(fn, items, shared, 1):
            yield ray.get(ref)

    def imap_keep(self, fn: Callable[..., tuple[Any, Any]], items: Iterable[Any],
                  *shared: Any) -> Iterator[tuple[Any, Any]]:
        ray = self._start()
        for small_ref, large_ref in self._submit(fn, items, shared, 2):
            yield ray.get(small_ref), large_ref

    def map_ranges(self, make: Callable[..., Callable[[int, int], Any]], n: int, batch_size: int,
                   *shared: Any) -> list[Any]:
        import logging
        import pickle

        ray = self._start()
        ranges = batch_ranges(n, batch_size)
        if not ranges:
            return []
        ray.data.DataContext.get_current().enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # its per-dataset progress lines
        handles = tuple(h if isinstance(h, ray.ObjectRef) else ray.put(h) for h in shared)
        data = ray.data.from_items([{"start": a, "stop": b} for a, b in ranges],
                                   override_num_blocks=min(len(ranges), 4 * self.workers))
        mapped = data.map_batches(_RangeWorker, fn_constructor_args=(self.threads, make, handles), batch_size=1,
                                  batch_format="numpy", num_cpus=1,
                                  compute=ray.data.ActorPoolStrategy(size=min(self.workers, len(ranges))))
        rows = sorted(mapped.take_all(), key=lambda row: int(row["start"]))
        return [pickle.loads(row["result"]) for row in rows]

    def close(self) -> None:
        if self._started and "ray" in sys.modules:
            import ray

            if self._owns and ray.is_initialized():
                ray.shutdown()
        self._started = False

    def __repr__(self) -> str:
        return f"RayEngine(workers={self._workers}, address={self.address!r})"


def make_engine(name: str = "local", *, workers: int | None = None, address: str | None = None) -> Engine:
    """The engine for a CLI's ``--engine``: ``local`` (this process) or ``ray``."""
    if name == "local":
        if address is not None or workers not in (None, 1):
            raise ValueError("--address and --workers apply to --engine ray; drop them or add --engine ray")
        return LocalEngine()
    if name == "ray":
        return RayEngine(workers, address=address)
    raise ValueError(f"unknown engine {name!r}; known: {', '.join(ENGINES)}")
