"""Full-ranking evaluation: every item is a candidate, the user's known items are masked.

When scoring a part, the items the user had in the parts before it are masked (training for
validation; training and validation for test). Ties are broken at random with a seeded
generator, so a model that gives many items the same score never benefits from item order.

Users are ranked in chunks (`rank_chunk`: score, mask, top-k; chunk ``c`` draws its ties from
``numpy.random.default_rng((seed, c))``), so the lists do not depend on how many threads or
workers rank the chunks: `rank_users` scores the chunks in order in the calling thread (a model
is never called concurrently) while a thread pool selects the top-k of the chunks already scored.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from socialrec.evaluate import metrics as M
from socialrec.ingest.split import Split, check_no_leakage
from socialrec.topk import top_k_masked
from socialrec.types import Recommender

DEFAULT_METRICS = ("recall", "ndcg", "precision", "mrr", "hit", "map")
# Score-matrix elements per chunk when the chunk size is automatic (64 MiB of float32).
CHUNK_ELEMENTS = 1 << 24


@dataclass
class EvalResult:
    """Per-user metric values and the top lists they came from."""

    users: np.ndarray
    per_user: dict[str, np.ndarray]
    top_items: np.ndarray
    n_items: int
    extras: dict[str, float] = field(default_factory=dict)

    def mean(self) -> dict[str, float]:
        out = {name: float(v.mean()) for name, v in self.per_user.items()}
        out.update(self.extras)
        return out

    def confidence_intervals(self, *, n_boot: int = 1000, seed: int = 0) -> dict[str, tuple[float, float]]:
        return {name: M.bootstrap_ci(v, n_boot=n_boot, seed=seed)[1:] for name, v in self.per_user.items()}


def masks_for(split: Split, part: str) -> sp.csr_matrix:
    """Items to hide when scoring ``part``: everything the user had before it."""
    mask = split.matrix("train")
    if part == "test":
        mask = (mask + split.matrix("valid")).tocsr()
    mask.data[:] = 1.0
    return mask


def chunk_rows(n_items: int, batch_size: int | None = None) -> int:
    """Users per chunk: ``batch_size``, else as many as keep a chunk's scores near
    `CHUNK_ELEMENTS` (between 16 and 1024). A function of the catalogue size only, so the
    chunks (and their tie draws) are the same on every machine."""
    if batch_size is not None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        return int(batch_size)
    return int(min(1024, max(16, CHUNK_ELEMENTS // max(1, n_items))))


def default_threads() -> int:
    """Top-k threads of `rank_users`: the CPUs this process may use, at most 4."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(4, cpus))


def rank_chunk(model: Recommender, users: np.ndarray, mask: sp.csr_matrix, k: int, *, seed: int,
               chunk: int) -> np.ndarray:
    """Top-``k`` items of ``users`` (chunk number ``chunk`` of a ranking) with their ``mask`` rows
    excluded, ties drawn from ``default_rng((seed, chunk))``: (len(users), k) item indices."""
    return _top_k(np.asarray(model.score(users), dtype=np.float32), mask[users], k, seed, chunk)


def _top_k(scores: np.ndarray, exclude: sp.csr_matrix, k: int, seed: int, chunk: int) -> np.ndarray:
    return top_k_masked(scores, k, exclude=exclude, rng=np.random.default_rng((seed, chunk)))


def rank_users(model: Recommender, users: np.ndarray, mask: sp.csr_matrix, k: int, *, seed: int = 0,
               batch_size: int | None = None, threads: int | None = None, progress: bool = False,
               desc: str = "ranking") -> np.ndarray:
    """`rank_chunk` over ``users`` in chunks of `chunk_rows` users: (len(users), k) item indices.

    The model scores one chunk at a time in this thread; up to ``threads`` (default
    `default_threads`) chunks are in top-k selection on a thread pool meanwhile, so memory stays
    at about threads + 1 chunks of scores. The result does not depend on ``threads``."""
    users = np.asarray(users, dtype=np.int64)
    rows = chunk_rows(mask.shape[1], batch_size)
    n_threads = default_threads() if threads is None else int(threads)
    if n_threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    tops = np.empty((len(users), k), dtype=np.int64)
    starts = range(0, len(users), rows)
    bar = tqdm(total=len(starts), desc=desc, disable=not progress, leave=False)
    if n_threads == 1:
        for c, start in enumerate(starts):
            tops[start:start + rows] = rank_chunk(model, users[start:start + rows], mask, k, seed=seed, chunk=c)
            bar.update()
        bar.close()
        return tops
    pending: deque = deque()
    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        for c, start in enumerate(starts):
            batch = users[start:start + rows]
            scores = np.asarray(model.score(batch), dtype=np.float32)
            pending.append((start, pool.submit(_top_k, scores, mask[batch], k, seed, c)))
            while len(pending) > n_threads:
                done_start, future = pending.popleft()
                top = future.result()
                tops[done_start:done_start + len(top)] = top
                bar.update()
        for done_start, future in pending:
            top = future.result()
            tops[done_start:done_start + len(top)] = top
            bar.update()
    bar.close()
    return tops


# Ranks chunks of users elsewhere (on other processes): maps the list of user chunks, chunk c
# being the c-th `chunk_rows` users, to their `rank_chunk` results, in order.
ChunkRanker = Callable[[list[np.ndarray]], Iterable[np.ndarray]]


def evaluate(
    model: Recommender | None,
    split: Split,
    *,
    part: str = "test",
    ks: tuple[int, ...] = (10, 20),
    metrics: tuple[str, ...] = DEFAULT_METRICS,
    seed: int = 0,
    batch_size: int | None = None,
    item_categories: np.ndarray | None = None,
    progress: bool = False,
    users: np.ndarray | None = None,
    threads: int | None = None,
    rank_chunks: ChunkRanker | None = None,
) -> EvalResult:
    """Rank all items for every user with held-out items in ``part``; compute metrics at ``ks``.

    Users are ranked by `rank_users` (chunks of ``batch_size`` users, automatic by default;
    ``threads`` top-k threads). Beyond-accuracy metrics at the largest k are added to
    ``extras``: coverage, gini, novelty, and intra-list diversity when ``item_categories`` are
    given.

    ``rank_chunks`` ranks the chunks in place of ``model`` (which may then be None): for an
    engine that ranks them on other processes. Each chunk draws its ties from its own seeded
    generator (`rank_chunk`), so the results equal this function's with the model itself.
    """
    truth = split.matrix(part)
    mask = masks_for(split, part)
    check_no_leakage(mask, truth, what=part)
    n_relevant_all = np.diff(truth.indptr)
    eval_users = np.flatnonzero(n_relevant_all > 0) if users is None else np.asarray(users)
    eval_users = eval_users[n_relevant_all[eval_users] > 0]
    kmax = max(ks)
    if rank_chunks is None:
        if model is None:
            raise ValueError("evaluate needs a model, or rank_chunks to rank the users elsewhere")
        tops = rank_users(model, eval_users, mask, kmax, seed=seed, batch_size=batch_size, threads=threads,
                          progress=progress, desc=f"ranking {part}")
    else:
        rows = chunk_rows(mask.shape[1], batch_size)
        chunks = [eval_users[start:start + rows] for start in range(0, len(eval_users), rows)]
        ranked = list(rank_chunks(chunks))
        tops = np.concatenate(ranked) if ranked else np.empty((0, kmax), dtype=np.int64)
    hits = M.hits_matrix(tops, truth, eval_users)
    n_rel = n_relevant_all[eval_users]
    per_user: dict[str, np.ndarray] = {}
    for k in ks:
        for name in metrics:
            per_user[f"{name}@{k}"] = M.METRICS[name](hits, n_rel, k)
    train_pop = np.diff(split.matrix("train").tocsc().indptr)
    extras = {
        f"coverage@{kmax}": M.catalog_coverage(tops, split.dataset.n_items, kmax),
        f"gini@{kmax}": M.gini_index(tops, split.dataset.n_items, kmax),
        f"novelty@{kmax}": float(np.nanmean(M.novelty(tops, train_pop, split.dataset.n_users, kmax))),
    }
    if item_categories is not None:
        extras[f"ild@{kmax}"] = float(np.nanmean(M.intra_list_diversity(tops, kmax, item_categories=item_categories)))
    return EvalResult(users=eval_users, per_user=per_user, top_items=tops, n_items=split.dataset.n_items,
                      extras=extras)


COLD_USER_HISTORIES = (0, 1, 3, 5)


def cold_user_curve(
    model: Recommender,
    split: Split,
    *,
    histories: tuple[int, ...] = COLD_USER_HISTORIES,
    part: str = "test",
    ks: tuple[int, ...] = (10, 20),
    metrics: tuple[str, ...] = ("ndcg", "recall"),
    seed: int = 0,
    batch_size: int = 512,
) -> dict[int, dict[str, float]]:
    """How a model fitted without some users serves them as their first interactions arrive.

    For a split whose ``part`` users are absent from training (`cold_user_split`): for each
    ``n`` in ``histories``, every such user with more than ``n`` items in ``part`` reveals their
    ``n`` oldest (time order of the dataset; row order without timestamps) to a copy of the
    fitted model through ``partial_fit_users`` (online, no refit), and the rest of their items
    are the truth; revealed items are masked. A model that cannot fold users in is measured at
    ``n = 0`` only. Returns ``{n: {"ndcg@10": ..., "n_users": ...}}``; the same users are not
    used for every ``n`` (a user needs more than ``n`` items; an ``n`` nobody exceeds is left out).
    """
    import copy

    from socialrec.represent.profiles import oldest_first

    truth_all = split.matrix(part)
    train = split.matrix("train")
    users_all = np.flatnonzero(np.diff(truth_all.indptr) > 0)
    warm = users_all[np.diff(train.indptr)[users_all] > 0]
    if len(warm):
        raise ValueError(f"cold_user_curve needs a split whose {part} users have no training items "
                         f"({len(warm)} have some, e.g. user {warm[0]}); use cold_user_split")
    # Each stored entry's position in its user's sequence from the oldest (0).
    oldest = oldest_first(split.dataset, truth_all)
    counts = np.diff(truth_all.indptr)
    folded = None
    out: dict[int, dict[str, float]] = {}
    kmax = max(ks)
    for n in sorted(histories):
        if n < 0:
            raise ValueError(f"histories must be >= 0, got {n}")
        users = users_all[counts[users_all] > n]
        if not len(users):
            continue  # nobody has more than n items
        revealed = truth_all.copy()
        revealed.data = (oldest < n).astype(np.float32)
        revealed.eliminate_zeros()
        truth = truth_all - truth_all.multiply(revealed > 0)
        truth = sp.csr_matrix(truth)
        truth.eliminate_zeros()
        scorer = model
        if n > 0:
            if getattr(model, "fold_in", None) is None:
                continue
            if folded is None:
                folded = copy.deepcopy(model)
            folded.partial_fit_users(users, revealed[users])  # type: ignore[attr-defined]
            scorer = folded
        rng = np.random.default_rng(seed)
        tops = np.empty((len(users), kmax), dtype=np.int64)
        for start in range(0, len(users), batch_size):
            batch = users[start:start + batch_size]
            scores = np.asarray(scorer.score(batch), dtype=np.float32).copy()
            r, c = revealed[batch].nonzero()
            scores[r, c] = -np.inf
            tops[start:start + len(batch)] = M.rank_top_k(scores, kmax, rng=rng)
        hits = M.hits_matrix(tops, truth, users)
        n_rel = np.diff(truth.indptr)[users]
        row: dict[str, float] = {"n_users": float(len(users))}
        for k in ks:
            for name in metrics:
                row[f"{name}@{k}"] = float(M.METRICS[name](hits, n_rel, k).mean())
        out[n] = row
    return out
