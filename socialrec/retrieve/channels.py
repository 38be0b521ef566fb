"""Multi-channel candidate retrieval: every channel proposes items, merged under quotas.

Each channel is a recommender on the shared contract (collaborative, social, content,
trending, new items). For a user, each channel ranks the whole catalog (seen items removed);
the merged list takes the channels' top items in turn, channel ``c`` getting a share of the
slots proportional to ``quota[c]``, skipping items another channel already proposed, until
``n_candidates`` are chosen. Ranking cannot recover an item that retrieval missed, so
`candidate_recall` measures how many held-out items the merged set still contains.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from socialrec.topk import rank_top_k
from socialrec.retrieve.base import BaseRecommender, TrainData, mask_rows
from socialrec.retrieve.channel_table import EXPOSURE_CHANNELS as TABLE_EXPOSURE
from socialrec.sparse import replace_rows


@dataclass(frozen=True)
class Channel:
    """A named candidate source. ``model`` is an unfitted recommender (fitted as a clone);
    ``quota`` is its relative share of the candidate slots (0 = scores used as features only);
    ``value_weighted``: the model trains on the interaction values' per-user rank weights
    (`represent.profiles.value_rank_weights`: play counts, ratings) instead of the binary matrix."""

    name: str
    model: BaseRecommender
    quota: float = 1.0
    value_weighted: bool = False


@dataclass(frozen=True)
class Candidates:
    """Merged candidates for a batch of users.

    items: (n_users, n) item indices, padded with -1 when fewer items are available.
    scores: channel name -> (n_users, n_items) full score rows (seen items at -inf), for features.
    ranks: channel name -> (n_users, n) rank of each candidate in that channel's list (0 = top;
        ``depth`` when the channel did not rank it within its top ``depth``).
    """

    items: np.ndarray
    scores: dict[str, np.ndarray]
    ranks: dict[str, np.ndarray]
    depth: int


class MultiChannelRetriever:
    """Fits its channels and merges their candidates (see the module docstring).

    channels: the channels, in priority order (ties in the merge go to the earlier channel).
    n_candidates: size of the merged candidate list per user.
    """

    def __init__(self, channels: Sequence[Channel], n_candidates: int = 300) -> None:
        if not channels:
            raise ValueError("MultiChannelRetriever needs at least one channel")
        names = [c.name for c in channels]
        if len(set(names)) != len(names):
            raise ValueError(f"channel names must be unique, got {names}")
        if n_candidates < 1:
            raise ValueError(f"n_candidates must be >= 1, got {n_candidates}")
        if not any(c.quota > 0 for c in channels):
            raise ValueError("at least one channel needs a quota > 0 to propose candidates")
        self.channels = tuple(channels)
        self.n_candidates = n_candidates

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.channels]

    def fit(self, train: TrainData) -> "MultiChannelRetriever":
        self.models_: dict[str, BaseRecommender] = {}
        weighted = train
        if any(c.value_weighted for c in self.channels):
            from socialrec.represent.profiles import value_rank_weights

            weighted = replace(train, user_items=value_rank_weights(train.dataset, train.user_items))
        for channel in self.channels:
            self.models_[channel.name] = channel.model.clone().fit(weighted if channel.value_weighted else train)
        self.user_items_ = train.user_items.tocsr()
        return self

    def partial_fit_users(self, users: np.ndarray, user_items: sp.csr_matrix,
                          social: sp.csr_matrix | None = None) -> "MultiChannelRetriever":
        """Fold changed or new users into every channel (`BaseRecommender.partial_fit_users`).
        ``user_items``: their new binary rows. Value-weighted channels get the same rows with
        unit weights: events carry no play counts to rank."""
        users = np.asarray(users, dtype=np.int64)
        for model in self.models_.values():
            model.partial_fit_users(users, user_items, social=social)
        self.user_items_ = replace_rows(self.user_items_, users, sp.csr_matrix(user_items, dtype=np.float32))
        return self

    def channel_scores(self, users: np.ndarray, *, exclude_seen: bool = True) -> dict[str, np.ndarray]:
        """Full score rows of every channel for these users (seen items at -inf)."""
        out = {}
        for name, model in self.models_.items():
            s = np.asarray(model.score(users), dtype=np.float32).copy()
            if exclude_seen:
                mask_rows(s, self.user_items_, users)
            out[name] = s
        return out

    def retrieve(self, users: np.ndarray, n: int | None = None, *, exclude_seen: bool = True,
                 scores: dict[str, np.ndarray] | None = None) -> Candidates:
        """Merged candidates for a batch of user indices."""
        users = np.asarray(users, dtype=np.int64)
        n = self.n_candidates if n is None else n
        scores = self.channel_scores(users, exclude_seen=exclude_seen) if scores is None else scores
        n_items = next(iter(scores.values())).shape[1]
        n = min(n, n_items)
        tops = self.channel_tops(scores, n)
        merged = self._merge(tops, n)
        ranks = {}
        for name, top in tops.items():
            ranks[name] = candidate_positions(top, merged, n)
        return Candidates(items=merged, scores=scores, ranks=ranks, depth=n)

    def channel_tops(self, scores: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
        """Each channel's top-n items per row (-1 where fewer are allowed)."""
        tops: dict[str, np.ndarray] = {}
        for name in self.names:
            s = scores[name]
            # Deterministic ties (lower index first) so that a user's candidates never depend on the batch.
            top = rank_top_k(s, n)
            top[~np.isfinite(np.take_along_axis(s, np.maximum(top, 0), axis=1))] = -1
            tops[name] = top
        return tops

    @property
    def quotas(self) -> dict[str, float]:
        return {c.name: c.quota for c in self.channels}

    def with_quotas(self, quotas: dict[str, float]) -> "MultiChannelRetriever":
        """The same (fitted) channels under other quotas; channels not named keep theirs."""
        unknown = set(quotas) - set(self.names)
        if unknown:
            raise ValueError(f"quotas name channels this retriever does not have: {sorted(unknown)}; channels: {self.names}")
        out = MultiChannelRetriever([replace(c, quota=float(quotas.get(c.name, c.quota))) for c in self.channels],
                                    n_candidates=self.n_candidates)
        if hasattr(self, "models_"):
            out.models_, out.user_items_ = self.models_, self.user_items_
        return out

    def _merge(self, tops: dict[str, np.ndarray], n: int, quotas: dict[str, float] | None = None) -> np.ndarray:
        quotas = self.quotas if quotas is None else quotas
        proposing = [name for name in self.names if quotas[name] > 0]
        n_users = next(iter(tops.values())).shape[0]
        # Position p of channel c gets priority (p + 1) / quota: a channel with twice the quota
        # fills twice the slots; the channel order breaks exact ties.
        items = np.concatenate([tops[name] for name in proposing], axis=1)
        keys = np.concatenate([(np.arange(n) + 1.0)[None, :].repeat(n_users, 0) / quotas[name] + 1e-9 * j
                               for j, name in enumerate(proposing)], axis=1)
        keys[items < 0] = np.inf
        order = np.argsort(keys, axis=1, kind="stable")
        sorted_items = np.take_along_axis(items, order, axis=1)
        out = np.full((n_users, n), -1, dtype=np.int64)
        for row in range(n_users):
            seq = sorted_items[row]
            seq = seq[seq >= 0]
            _, first = np.unique(seq, return_index=True)
            chosen = seq[np.sort(first)][:n]
            out[row, :len(chosen)] = chosen
        return out


def candidate_positions(top: np.ndarray, merged: np.ndarray, depth: int) -> np.ndarray:
    """For each merged candidate, its position in ``top`` (the channel's list), else ``depth``."""
    n_users = top.shape[0]
    n_items = int(max(top.max(initial=0), merged.max(initial=0))) + 1
    pos = np.full((n_users, n_items), depth, dtype=np.int32)
    rows = np.repeat(np.arange(n_users), top.shape[1])
    cols = top.ravel()
    ok = cols >= 0
    pos[rows[ok], cols[ok]] = np.tile(np.arange(top.shape[1]), n_users)[ok]
    safe = np.maximum(merged, 0)
    out = np.take_along_axis(pos, safe, axis=1)
    out[merged < 0] = depth
    return out


def candidate_recall(candidates: np.ndarray, truth: sp.csr_matrix, users: np.ndarray) -> float:
    """Mean over users (with held-out items) of the share of their held-out items that the
    candidate lists contain: the ceiling of any ranker's recall on these candidates."""
    truth = truth.tocsr()
    recalls = []
    for row, u in enumerate(users):
        relevant = truth.indices[truth.indptr[u]:truth.indptr[u + 1]]
        if len(relevant) == 0:
            continue
        recalls.append(np.isin(relevant, candidates[row]).mean())
    return float(np.mean(recalls)) if recalls else float("nan")


# Channels that are there for exposure (new items, what is rising), not for recall: tuning keeps
# their quotas, or it would drop them on any data where the held-out items are not new.
EXPOSURE_CHANNELS = TABLE_EXPOSURE


def tune_quotas(retriever: MultiChannelRetriever, users: np.ndarray, truth: sp.csr_matrix, *,
                keep: Sequence[str] = EXPOSURE_CHANNELS, rounds: int = 3, factors: Sequence[float] = (0.0, 0.5, 2.0),
                min_gain: float = 1e-4, batch: int = 256) -> dict[str, float]:
    """Quotas under which the merged candidates hold more of these users' held-out items.

    Coordinate search from the retriever's quotas: each channel's quota is multiplied by each
    of ``factors`` in turn (a channel at 0 is tried at the smallest quota in use), and a change is
    kept when `candidate_recall` at ``retriever.n_candidates`` rises by more than ``min_gain``;
    ``rounds`` passes. Channels in ``keep`` are left as they are. At least one channel keeps
    proposing. ``truth``: the held-out items (users x items), never the test items.
    """
    users = np.asarray(users, dtype=np.int64)
    users = users[np.diff(truth.tocsr().indptr)[users] > 0]
    if len(users) == 0:
        raise ValueError("tune_quotas: none of the given users has held-out items to tune the quotas on")
    depth = min(retriever.n_candidates, truth.shape[1])
    parts: dict[str, list[np.ndarray]] = {name: [] for name in retriever.names}
    for start in range(0, len(users), batch):
        scores = retriever.channel_scores(users[start:start + batch])
        for name, top in retriever.channel_tops(scores, depth).items():
            parts[name].append(top)
    tops = {name: np.concatenate(p) for name, p in parts.items()}

    def recall(quotas: dict[str, float]) -> float:
        return candidate_recall(retriever._merge(tops, depth, quotas), truth, users)

    quotas = retriever.quotas
    best = recall(quotas)
    tunable = [name for name in retriever.names if name not in keep]
    for _ in range(rounds):
        changed = False
        for name in tunable:
            smallest = min((q for q in quotas.values() if q > 0), default=1.0)
            for factor in factors:
                trial = dict(quotas)
                trial[name] = quotas[name] * factor if quotas[name] > 0 else (smallest if factor > 1 else 0.0)
                if trial[name] == quotas[name] or not any(trial[c] > 0 for c in tunable):
                    continue
                value = recall(trial)
                if value > best + min_gain:
                    best, quotas, changed = value, trial, True
        if not changed:
            break
    return quotas
