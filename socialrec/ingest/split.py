"""Train/validation/test splits, and the leakage check every evaluation goes through.

A `Split` holds row indices into ``dataset.interactions`` for each part. Splits work on unique
(user, item) pairs: repeated interactions with the same item (several plays, a view then a
purchase) move together, so the same pair never sits on both sides. `mask_edges` splits the
social graph the same way: per user, a share of the edges is held out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from socialrec.errors import DataError, LeakageError
from socialrec.ingest.schema import (
    SPLIT_TEST,
    SPLIT_TRAIN,
    SPLIT_VALID,
    Dataset,
    TrainData,
    as_adjacency,
    interactions_to_matrix,
    is_symmetric,
)

PARTS = ("train", "valid", "test")


@dataclass(frozen=True)
class Split:
    """Row indices of the train, valid and test interactions of ``dataset``."""

    dataset: Dataset
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    protocol: str
    seed: int | None = None

    def rows(self, part: str) -> np.ndarray:
        if part not in PARTS:
            raise ValueError(f"part must be one of {PARTS}, got {part!r}")
        return getattr(self, part)

    def matrix(self, part: str, *, binary: bool = True) -> sp.csr_matrix:
        """(n_users, n_items) CSR of one part."""
        df = self.dataset.interactions.iloc[self.rows(part)]
        return interactions_to_matrix(df, self.dataset.n_users, self.dataset.n_items, binary=binary)

    def train_data(self, *, include_valid: bool = False) -> TrainData:
        """What `fit` receives: the training matrix (optionally plus validation) and the dataset."""
        m = self.matrix("train")
        if include_valid:
            m = (m + self.matrix("valid")).tocsr()
            m.data[:] = 1.0
            return TrainData(user_items=m, dataset=self.dataset)
        valid = self.matrix("valid") if len(self.valid) else None
        return TrainData(user_items=m, dataset=self.dataset, valid_items=valid)

    def sizes(self) -> dict[str, int]:
        return {p: len(self.rows(p)) for p in PARTS}


def check_no_leakage(train: sp.csr_matrix, test: sp.csr_matrix, *, what: str = "test") -> None:
    """Refuse a held-out set that shares (user, item) pairs with training."""
    overlap = train.multiply(test)
    overlap.eliminate_zeros()
    if overlap.nnz:
        u, i = overlap.nonzero()
        raise LeakageError(
            f"the {what} set shares {overlap.nnz} (user, item) pair(s) with training "
            f"(first: user index {u[0]}, item index {i[0]}): metrics would reward memorising them. "
            f"Split by unique pairs (the socialrec splitters do) or drop the repeated pairs from {what}")


def _pair_groups(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Group interaction rows by (user, item): returns (group id per row, first row of each group)."""
    df = dataset.interactions
    key = df["user"].to_numpy(np.int64) * dataset.n_items + df["item"].to_numpy(np.int64)
    uniq, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return inverse, first


def _from_group_parts(dataset: Dataset, groups: np.ndarray, part_of_group: np.ndarray,
                      protocol: str, seed: int | None) -> Split:
    part_of_row = part_of_group[groups]
    return Split(
        dataset=dataset,
        train=np.flatnonzero(part_of_row == SPLIT_TRAIN),
        valid=np.flatnonzero(part_of_row == SPLIT_VALID),
        test=np.flatnonzero(part_of_row == SPLIT_TEST),
        protocol=protocol,
        seed=seed,
    )


def _ratio_counts(n: np.ndarray, ratios: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """RecBole's rounding: valid and test get floor(ratio * n), train the rest."""
    total = sum(ratios)
    n_valid = np.floor(n * ratios[1] / total).astype(np.int64)
    n_test = np.floor(n * ratios[2] / total).astype(np.int64)
    return n_valid, n_test


def _check_ratios(ratios: tuple[float, float, float]) -> None:
    if len(ratios) != 3 or min(ratios) < 0 or ratios[0] <= 0:
        raise ValueError(f"ratios must be three non-negative numbers (train, valid, test) with train > 0, got {ratios}")


def random_split(dataset: Dataset, ratios: tuple[float, float, float] = (0.8, 0.1, 0.1), *, seed: int = 0) -> Split:
    """Per-user random split of each user's distinct items by ratio (RecBole's 'RO' split).

    Each user's items are shuffled; the last floor(0.1 n) go to test, the floor(0.1 n) before
    them to validation, the rest to training.
    """
    _check_ratios(ratios)
    groups, first = _pair_groups(dataset)
    users = dataset.interactions["user"].to_numpy()[first]
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(first)), users))  # shuffled within each user
    sorted_users = users[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_users)) + 1]
    counts = np.diff(np.r_[starts, len(order)])
    pos = np.arange(len(order)) - np.repeat(starts, counts)
    n = np.repeat(counts, counts)
    n_valid, n_test = _ratio_counts(n, ratios)
    part = np.full(len(order), SPLIT_TRAIN, dtype=np.int8)
    part[pos >= n - n_test] = SPLIT_TEST
    part[(pos >= n - n_test - n_valid) & (pos < n - n_test)] = SPLIT_VALID
    part_of_group = np.empty(len(first), dtype=np.int8)
    part_of_group[order] = part
    return _from_group_parts(dataset, groups, part_of_group, "random", seed)


def _require_timestamps(dataset: Dataset, protocol: str) -> np.ndarray:
    ts = dataset.interactions["timestamp"].to_numpy()
    if np.isnan(ts).any():
        raise DataError(
            f"the {protocol} split needs a timestamp on every interaction; {int(np.isnan(ts).sum())} lack one "
            f"in dataset {dataset.name!r}", field="timestamp", fix="Use the random protocol, or load timestamps")
    return ts


def temporal_split(dataset: Dataset, ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> Split:
    """Global temporal split: the earliest share of (user, item) pairs trains, the latest tests.

    A pair's time is its first interaction; pairs are ordered by time (ties by row order).
    """
    _check_ratios(ratios)
    ts = _require_timestamps(dataset, "temporal")
    groups, first = _pair_groups(dataset)
    first_time = np.full(len(first), np.inf)
    np.minimum.at(first_time, groups, ts)
    order = np.argsort(first_time, kind="stable")
    n = len(order)
    total = sum(ratios)
    n_test = int(np.floor(n * ratios[2] / total))
    n_valid = int(np.floor(n * ratios[1] / total))
    part = np.full(n, SPLIT_TRAIN, dtype=np.int8)
    part[n - n_test - n_valid:n - n_test] = SPLIT_VALID
    part[n - n_test:] = SPLIT_TEST
    part_of_group = np.empty(n, dtype=np.int8)
    part_of_group[order] = part
    return _from_group_parts(dataset, groups, part_of_group, "temporal", None)


def leave_one_out(dataset: Dataset) -> Split:
    """Per user, the last distinct item by time is the test item and the one before it the
    validation item (users with fewer than 3 distinct items keep everything in training)."""
    ts = _require_timestamps(dataset, "leave-one-out")
    groups, first = _pair_groups(dataset)
    last_time = np.full(len(first), -np.inf)
    np.maximum.at(last_time, groups, ts)
    users = dataset.interactions["user"].to_numpy()[first]
    order = np.lexsort((first, last_time, users))  # by user, then time, then row order
    sorted_users = users[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_users)) + 1]
    counts = np.diff(np.r_[starts, len(order)])
    pos = np.arange(len(order)) - np.repeat(starts, counts)
    n = np.repeat(counts, counts)
    part = np.full(len(order), SPLIT_TRAIN, dtype=np.int8)
    enough = n >= 3
    part[enough & (pos == n - 1)] = SPLIT_TEST
    part[enough & (pos == n - 2)] = SPLIT_VALID
    part_of_group = np.empty(len(first), dtype=np.int8)
    part_of_group[order] = part
    return _from_group_parts(dataset, groups, part_of_group, "loo", None)


def fixed_split(dataset: Dataset) -> Split:
    """The split the dataset ships with (its ``split`` column)."""
    split_col = dataset.interactions["split"].to_numpy()
    if (split_col < 0).all():
        raise DataError(f"dataset {dataset.name!r} ships no split of its own",
                        fix="Use the random, temporal or loo protocol")
    return Split(dataset, np.flatnonzero(split_col == SPLIT_TRAIN), np.flatnonzero(split_col == SPLIT_VALID),
                 np.flatnonzero(split_col == SPLIT_TEST), "fixed")


def _cold_split(dataset: Dataset, column: str, share: float, seed: int, protocol: str) -> Split:
    if not 0 < share < 1:
        raise ValueError(f"share must be in (0, 1), got {share}")
    n = dataset.n_items if column == "item" else dataset.n_users
    ids = dataset.interactions[column].to_numpy()
    present = np.unique(ids)
    rng = np.random.default_rng(seed)
    cold = rng.permutation(present)[: int(round(share * len(present)))]
    half = len(cold) // 2
    part_of_id = np.full(n, SPLIT_TRAIN, dtype=np.int8)
    part_of_id[cold[:half]] = SPLIT_VALID
    part_of_id[cold[half:]] = SPLIT_TEST
    part = part_of_id[ids]
    return Split(dataset, np.flatnonzero(part == SPLIT_TRAIN), np.flatnonzero(part == SPLIT_VALID),
                 np.flatnonzero(part == SPLIT_TEST), protocol, seed)


def cold_item_split(dataset: Dataset, share: float = 0.2, *, seed: int = 0) -> Split:
    """A share of items, with all their interactions, is unseen in training; half of those items
    validate and half test. Recommenders must place them from side information (text)."""
    return _cold_split(dataset, "item", share, seed, "cold-item")


def cold_user_split(dataset: Dataset, share: float = 0.2, *, seed: int = 0) -> Split:
    """A share of users, with all their interactions, is unseen in training (half validate, half test)."""
    return _cold_split(dataset, "user", share, seed, "cold-user")


def make_split(dataset: Dataset, protocol: str, *, seed: int = 0) -> Split:
    """The split for a CLI protocol name."""
    if protocol == "random-811":
        return random_split(dataset, (0.8, 0.1, 0.1), seed=seed)
    if protocol == "fixed":
        return fixed_split(dataset)
    if protocol == "loo":
        return leave_one_out(dataset)
    if protocol == "temporal":
        return temporal_split(dataset)
    if protocol == "cold-item":
        return cold_item_split(dataset, seed=seed)
    if protocol == "cold-user":
        return cold_user_split(dataset, seed=seed)
    raise ValueError(f"unknown protocol {protocol!r}; use one of {PROTOCOLS}")


PROTOCOLS = ("random-811", "fixed", "loo", "temporal", "cold-item", "cold-user")


# --------------------------------------------------------------------------- social edges


def _quota(degree: np.ndarray, share: float) -> np.ndarray:
    # Round half up (not numpy's half-to-even), and always keep one edge.
    q = np.floor(share * degree + 0.5).astype(np.int64)
    return np.minimum(q, np.maximum(degree - 1, 0))


def mask_edges(adj: sp.spmatrix, share: float = 0.2, seed: int = 0, *,
               directed: bool | None = None) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Split a social adjacency into (train, hidden) 0/1 float32 CSR matrices, per user.

    - Per user, ``round(share * degree)`` edges are hidden (round half up), but never all of them:
      a user keeps at least one training edge, so users with one edge hide nothing and users with
      two hide nothing at share 0.2 (round(0.4) = 0).
    - Directed graphs: each user's *outgoing* edges are sampled, and the task is to predict whom
      the user will follow / trust. Hiding u -> v keeps v -> u when it exists (reciprocity is a
      fair signal).
    - Symmetric graphs: a friendship is hidden in both directions together. Pairs are visited in
      a seeded random order and a pair is hidden only while *both* endpoints are under their
      quota, so no user loses more than their share; the realised share is a little under
      ``share`` overall.
    - A graph stored as directed but holding every edge in both directions (Ciao as split by
      RecDiff) is treated as symmetric: hiding u -> v while training on v -> u would give the
      answer away.

    ``directed=None`` treats the graph as directed unless it is symmetric; ``directed=False``
    symmetrises the graph first. A symmetric graph yields symmetric train and hidden matrices.
    Used by the friend evaluation (`socialrec.evaluate.friends`) and by
    `socialrec.retrieve.friends.LearnedFriendRanker` to hold out edges while fitting.
    """
    if not 0 <= share < 1:
        raise ValueError(f"share must be in [0, 1), got {share}")
    a = as_adjacency(adj)
    n = a.shape[0]
    if directed is None:
        directed = not is_symmetric(a)
    rng = np.random.default_rng(seed)
    if directed:
        coo = a.tocoo()
        rows, cols = coo.row.astype(np.int64), coo.col.astype(np.int64)
        order = np.lexsort((rng.random(len(rows)), rows))  # shuffled within each user
        sorted_rows = rows[order]
        deg = np.bincount(rows, minlength=n)
        starts = np.r_[0, np.cumsum(deg)[:-1]]
        pos = np.arange(len(order)) - starts[sorted_rows]
        hide = np.zeros(len(rows), dtype=bool)
        hide[order] = pos < _quota(deg, share)[sorted_rows]
        hr, hc = rows[hide], cols[hide]
    else:
        a = a.maximum(a.T).tocsr()
        upper = sp.triu(a, k=1).tocoo()
        pu, pv = upper.row.astype(np.int64), upper.col.astype(np.int64)
        quota = _quota(np.diff(a.indptr), share)
        used = np.zeros(n, dtype=np.int64)
        hidden_pairs = []
        # A greedy pass over pairs in random order: sequential by nature, O(edges) cheap steps.
        for p in rng.permutation(len(pu)).tolist():
            u, v = pu[p], pv[p]
            if used[u] < quota[u] and used[v] < quota[v]:
                used[u] += 1
                used[v] += 1
                hidden_pairs.append(p)
        idx = np.asarray(hidden_pairs, dtype=np.int64)
        hr = np.r_[pu[idx], pv[idx]]
        hc = np.r_[pv[idx], pu[idx]]
    hidden = sp.csr_matrix((np.ones(len(hr), dtype=np.float32), (hr, hc)), shape=(n, n))
    train = (a - a.multiply(hidden)).tocsr()
    train.eliminate_zeros()
    return train, hidden
