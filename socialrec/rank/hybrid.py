"""The hybrid recommender: multi-channel retrieval, a learned ranker over every signal, and
diversity re-ranking, on the shared recommender contract.

Fitting (``fit(train)``):
1. Channels (collaborative, social, content, trending, new items) are fitted on the training
   interactions and propose ``n_candidates`` items per user (`MultiChannelRetriever`).
2. The ranker learns which candidates are the user's held-out items: the validation items when
   the training data carries them (`TrainData.valid_items`, as `Split.train_data()` gives) and
   most belong to users with training items, otherwise (none, or a cold-user split's validation
   users, who have no history to learn from) a seeded ``holdout_fraction`` of each user's
   training items (``holdout="last"``: their newest), in which case the
   channels are fitted again on all training data afterwards. Candidates that are not held out
   are the negatives; early stopping uses a further fifth of those users, after which the
   ranker is refitted on all of them. Trees are monotone in every channel's score and rank,
   and if one channel alone ranks the early-stopping users better, the hybrid ranks by it.
3. Short histories (``cold_start``): the ranker learnt from whole histories, so fit also measures,
   on users given only their oldest 0, 1, 2, 3, 5, ... items (a cold-user split's validation
   users when there are any), how far a user with that few items should lean on popularity, and
   blends such users' candidate scores with it (`rank.cold_start`).
4. Scores: a candidate's score is the ranker's output; items outside the candidate set score
   below every candidate, in the order of the first channel. With ``diversity > 0`` the top
   ``rerank_depth`` are re-ordered (DPP or MMR, `rank.rerank`), and the scores follow that
   order, so `recommend`, `score` and the evaluation protocol all see the re-ranked list.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from tqdm.auto import tqdm

from socialrec.rank.cold_start import ColdStartBlend, calibrate, popularity_rank
from socialrec.rank.features import FeatureBuilder, FeatureMatrix
from socialrec.rank.ranker import BaggedRanker, LambdaRanker, LinearRanker, SingleFeatureRanker, group_ndcg, make_ranker
from socialrec.rank.rerank import RERANKERS, calibrate_weight, rerank
from socialrec.retrieve.base import BaseRecommender, TrainData
from socialrec.retrieve.channel_table import CHANNELS, VALUE_WEIGHTABLE, channel_kind  # noqa: F401 (VALUE_WEIGHTABLE: re-exported)
from socialrec.retrieve.channels import Candidates, Channel, MultiChannelRetriever, candidate_positions, tune_quotas

# Share of candidate slots per channel (relative), from the channel table: set by hand, the strong
# collaborative channels first; HybridRecommender(learn_quotas=True) tunes them on held-out users
# instead, and benchmarks/hybrid.py reports the merged candidates' recall beside each channel's.
DEFAULT_QUOTAS = {name: row.quota for name, row in CHANNELS.items()}
_QUOTA_USERS = 2000  # held-out users that learn_quotas tunes on
# The ranker learns from validation items only when this share of them (at least) belongs to users
# with training items: what it learns is how the channels' scores, read from a history, point at
# the next item.
_MIN_VALIDATION_WITH_HISTORY = 0.5


def _validation_is_learnable(train: TrainData) -> bool:
    """Whether the ranker can learn from ``train``'s validation items: there are some, and most
    of them belong to users with training items (not so in a cold-user split)."""
    if train.valid_items is None or not train.valid_items.nnz:
        return False
    per_user = np.diff(sp.csr_matrix(train.valid_items).indptr)
    has_history = np.diff(sp.csr_matrix(train.user_items).indptr)[: len(per_user)] > 0
    return int(per_user[has_history].sum()) >= _MIN_VALIDATION_WITH_HISTORY * train.valid_items.nnz


# The re-ranking we recommend when diversity matters: per space the method with the better
# NDCG@10 / ILD trade-off in benchmarks/hybrid.py (MMR for tags and categories: DPP's one-hot
# category kernel only orders distinct categories first; DPP for the ALS factors on amazon-games),
# at the weight that raises ILD@10 by RECOMMENDED_ILD_GAIN. The target is +20% ILD for at
# most 3% of NDCG@10; 0.22 leaves a margin for the users served differing from those calibrated on.
RECOMMENDED_METHOD: dict[str, str] = {"tags": "mmr", "categories": "mmr", "collaborative": "dpp"}
RECOMMENDED_ILD_GAIN = 0.22


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def replica_of(name: str) -> tuple[str, int]:
    """(channel kind, replica number) of a channel name: "lightgcn" -> ("lightgcn", 0),
    "lightgcn#2" -> ("lightgcn", 2)."""
    kind, sep, number = name.partition("#")
    if not sep:
        return name, 0
    if not number.isdigit() or int(number) < 1:
        raise ValueError(f"channel {name!r}: a replica is named kind#N with N a positive integer, e.g. 'lightgcn#1'")
    return kind, int(number)


def make_channel(name: str, params: Mapping[str, Any] | None = None, quota: float | None = None) -> Channel:
    """A channel by name with its default recommender (a row of `retrieve.channel_table.CHANNELS`).

    ``kind#N`` (e.g. "lightgcn#1") is a replica: the same model trained from random seed N, which
    gives the ranker a second opinion on the items a seed-dependent model scores by chance. A
    replica proposes no candidates unless given a quota (its candidates repeat the original's).
    """
    p = dict(params or {})
    kind, replica = replica_of(name)
    if replica:
        channel = make_channel(kind, p, 0.0 if quota is None else quota)
        if "random_state" not in channel.model.get_params():
            raise ValueError(f"channel {name!r}: {type(channel.model).__name__} has no random seed, so a replica "
                             f"would repeat {kind!r} exactly; replicate a trained model (lightgcn, social, als, bpr)")
        model = channel.model.clone(random_state=int(p.get("random_state", 0)) + replica)
        return Channel(name, model, channel.quota)
    row = channel_kind(name)
    return Channel(name, row.factory(**p), row.quota if quota is None else quota)


def has_count_values(train: TrainData) -> bool:
    """Whether the training interactions carry counts worth ranking by (play counts, purchases):
    a value column with two or more distinct values, and no rating scale."""
    ds = train.dataset
    if ds is None or ds.rating_range is not None or "value" not in ds.interactions.columns:
        return False
    values = ds.interactions["value"].dropna()
    return bool(len(values)) and values.nunique() > 1


def default_channels(train: TrainData) -> tuple[str, ...]:
    """The channels the data supports: collaborative always; social with a social graph;
    content and new items when items have text and the `text` extra is installed; multimodal
    and modality when items have modality vectors (`Dataset.item_features`)."""
    names = ["ease", "itemknn", "als"]
    ds = train.dataset
    if ds is not None and len(ds.social):
        names += ["social-proof"]
        if _has("torch"):
            names += ["social"]
    if ds is not None and len(ds.texts) and (ds.texts["owner"] == "item").any() and _has("onnxruntime"):
        names += ["content", "new"]
    if ds is not None and ds.item_features:
        # Items' image / audio vectors: the fusion model (needs torch) and the vector profile,
        # which places items nobody has interacted with yet.
        names += (["multimodal"] if _has("torch") else []) + ["modality"]
    names += ["trending"]
    return tuple(names)


class HybridRecommender(BaseRecommender):
    """Retrieve from several channels, rank with a learned model, re-rank for diversity.

    channels: channel names (see `make_channel`); None picks what the data supports.
        A name ``kind#N`` adds a replica of a seeded model (see `make_channel`).
    channel_params: per-channel constructor arguments, e.g. {"ease": {"l2": 300.0}}; a replica
        without its own entry uses its original's.
    quotas: per-channel share of candidate slots (defaults in DEFAULT_QUOTAS).
    learn_quotas: choose the quotas on the ranker's held-out users instead (`tune_quotas`: the
        merged candidates hold more of their held-out items; "new" and "trending" keep theirs,
        they are for exposure). ``quotas_`` records the quotas in use.
    value_weighted: channels that train on the interaction values (play counts, ratings) as
        per-user rank weights (`represent.profiles.value_rank_weights`) instead of the binary
        matrix; needs a value column. "auto" (default) weights every value-weightable channel
        (`ChannelKind.value_weightable`) when the training data's values are counts (a value
        column with two or more distinct values and no rating scale: plays, purchases), as
        validation chose on LastFM (benchmarks/value_weights.py); () never weights. Features,
        masking and explanations keep the binary history. ``value_weighted_`` records the choice.
    n_candidates: candidates per user that the ranker orders.
    ranker: "lightgbm" (LambdaRank), "linear" (logistic regression) or "auto".
    diversity: re-ranking trade-off in [0, 1) (0 = pure relevance); re-orders the top ``rerank_depth``.
    rerank: "dpp" (determinantal point process, greedy MAP) or "mmr" (maximal marginal relevance),
        over the items of ``diversity_space``; see `rank.rerank`.
    diversity_space: what two items have in common for re-ranking: "tags" (a latent semantic space
        of the items' tf-idf tag profiles: genre-like, what a listener or reader sees),
        "categories" (same category or not; re-rank with "mmr": DPP's one-hot kernel only orders
        distinct categories first), "collaborative" (the ALS factors: co-consumption; the content
        channel's text vectors or an SVD of the interactions when there is no ALS channel), or
        "auto": the item metadata the data has (tags, then categories), else collaborative.
    rerank_scale: how DPP reads the ranker's scores: "score" (as they are: LambdaRank's are
        log-odds-like) or "minmax" (scaled to [0, 1] within the list).
    max_category_share: cap on any one category's share of the top ``rerank_k`` (needs categories).
    rerank_k: length of the list that re-ranking optimises (the list users see).
    max_ranker_users: users sampled to train the ranker (bounds the cost on large data).
    ranker_bags: with LightGBM, > 1 fits that many LambdaRank models on folds of the ranker's
        users (each early-stopped on its left-out fold) and ranks by their mean: steadier when
        held-out positives are few (one early-stopping split then picks a noisy tree count). Costs
        that many times the trees at serving time, and the explanations' SHAP with them
        (benchmarks/README.md: LastFM ranking + explaining went from 8 to 46 ms).
    ranker_refit: with ``ranker_bags`` > 1, rank by one model fitted on all ranker users with the
        folds' mean tree count (x 1.2) instead of the bag: the folds only choose the count.
    holdout_fraction: share of each user's training items held out to train the ranker when no
        validation items are given.
    holdout: which items that is: "random" (a seeded share), or "last" (each user's most recent
        item by timestamp, for sequential data where the next item is what gets predicted).
    sentiment: add item sentiment and mood x sentiment features (the seed's g(E(u), c)); None
        turns them on when users or reviews have text and the `sentiment` extra is installed.
    seed: sampling seed.
    add_channels: channels added after ``channels`` (or after those the data supports), e.g.
        ("lm-seq",) for the sequential channel, which no data gets by default (its fit costs
        tens of CPU minutes on a catalog of 17k items).
    cold_start: measure during fit, on up to ``cold_users`` of the ranker's users given only
        their oldest 0, 1, 2, 3, 5, ... 34 items, how far users with that few items should lean
        on training popularity (weighted reciprocal-rank fusion with the ranker's order; weight 0
        = the ranker alone), and blend their lists so (`rank.cold_start`; ``cold_start_`` holds
        the weights and the evidence). The ranker learns from whole histories; a new user is not
        one. False ranks every user by the ranker alone.
    cold_users: the simulated users that measurement uses.
    """

    _chunk = 256
    ranker_: LambdaRanker | LinearRanker | SingleFeatureRanker | BaggedRanker

    def __init__(self, channels: Sequence[str] | None = None, channel_params: Mapping[str, Mapping[str, Any]] | None = None,
                 quotas: Mapping[str, float] | None = None, learn_quotas: bool = False, n_candidates: int = 300,
                 value_weighted: Sequence[str] | str = "auto",
                 ranker: str = "auto",
                 diversity: float = 0.0, max_category_share: float | None = None, rerank_k: int = 10,
                 rerank_depth: int = 100, rerank: str = "dpp", rerank_scale: str = "score",
                 diversity_space: str = "auto",
                 max_ranker_users: int = 8000, ranker_bags: int = 1, ranker_refit: bool = False,
                 holdout_fraction: float = 0.1, holdout: str = "random",
                 sentiment: bool | None = None, seed: int = 0, progress: bool = False,
                 add_channels: Sequence[str] = (), cold_start: bool = True, cold_users: int = 500) -> None:
        self.channels = channels
        self.add_channels = tuple(add_channels)
        self.channel_params = channel_params
        self.quotas = quotas
        self.learn_quotas = learn_quotas
        self.value_weighted = value_weighted if isinstance(value_weighted, str) else tuple(value_weighted)
        self.n_candidates = n_candidates
        self.ranker = ranker
        self.diversity = diversity
        self.max_category_share = max_category_share
        self.rerank_k = rerank_k
        self.rerank_depth = rerank_depth
        self.rerank = rerank
        self.rerank_scale = rerank_scale
        self.diversity_space = diversity_space
        self.max_ranker_users = max_ranker_users
        self.ranker_bags = ranker_bags
        self.ranker_refit = ranker_refit
        self.holdout_fraction = holdout_fraction
        self.holdout = holdout
        self.sentiment = sentiment
        self.seed = seed
        self.progress = progress
        self.cold_start = cold_start
        self.cold_users = cold_users

    # --- fitting -------------------------------------------------------------------------
    def _make_retriever(self, train: TrainData) -> MultiChannelRetriever:
        names = tuple(self.channels) if self.channels is not None else default_channels(train)
        names += tuple(n for n in self.add_channels if n not in names)
        params = dict(self.channel_params or {})
        unknown = set(params) - set(names)
        if unknown:
            raise ValueError(f"channel_params names channels that are not used: {sorted(unknown)}; channels: {names}")
        quotas = dict(self.quotas or {})
        # A replica (kind#N) takes its original's parameters unless it has its own.
        chans = [make_channel(n, params.get(n, params.get(replica_of(n)[0])), quotas.get(n)) for n in names]
        if isinstance(self.value_weighted, str):
            if self.value_weighted != "auto":
                raise ValueError(f"value_weighted must be 'auto' or a sequence of channel names, got {self.value_weighted!r}")
            weighted = {n for n in names if channel_kind(n).value_weightable} if has_count_values(train) else set()
        else:
            weighted = set(self.value_weighted)
        self.value_weighted_ = tuple(n for n in names if n in weighted)
        if weighted - set(names):
            raise ValueError(f"value_weighted names channels that are not used: {sorted(weighted - set(names))}; "
                             f"channels: {names}")
        chans = [dataclasses.replace(c, value_weighted=c.name in weighted) for c in chans]
        return MultiChannelRetriever(chans, n_candidates=self.n_candidates)

    def _fit(self, train: TrainData) -> None:
        if not 0.0 <= self.diversity <= 1.0:
            raise ValueError(f"diversity must be in [0, 1], got {self.diversity}")
        if self.rerank not in RERANKERS:
            raise ValueError(f"rerank must be one of {', '.join(RERANKERS)}, got {self.rerank!r}")
        if self.diversity_space not in DIVERSITY_SPACES:
            raise ValueError(f"diversity_space must be one of {', '.join(DIVERSITY_SPACES)}, got {self.diversity_space!r}")
        if self.rerank_scale not in ("score", "minmax"):
            raise ValueError(f"rerank_scale must be 'score' or 'minmax', got {self.rerank_scale!r}")
        if self.rerank == "dpp" and self.diversity >= 1.0:
            raise ValueError("diversity must be below 1 with rerank='dpp' (1 would ignore relevance entirely)")
        if not isinstance(self.cold_users, (int, np.integer)) or self.cold_users < 1:
            raise ValueError(f"cold_users must be an integer >= 1, got {self.cold_users!r}")
        if not isinstance(self.ranker_bags, (int, np.integer)) or self.ranker_bags < 1:
            raise ValueError(f"ranker_bags must be an integer >= 1, got {self.ranker_bags!r}")
        if self.holdout not in ("random", "last"):
            raise ValueError(f"holdout must be 'random' or 'last', got {self.holdout!r}")
        rng = np.random.default_rng(self.seed)
        if _validation_is_learnable(train):
            fit_part, labels, refit = train, train.valid_items.tocsr(), False
            self.ranker_labels_ = "validation"
        else:
            # No validation items, or (a cold-user split) they belong to users without training
            # items: a ranker learnt there sees only popularity-like channel scores and learns
            # popularity, which then overrules the channels for every user folded in later.
            self.ranker_labels_ = f"holdout {self.holdout}"
            if self.holdout == "last":
                fit_part, labels = _holdout_last(train)
            else:
                fit_part, labels = _holdout(train, self.holdout_fraction, rng)
            # Iterative channels (the graph models) early-stop on the held-out items, and the refit
            # on all training data runs the epochs they chose: with no validation set at all they
            # would train for their full `epochs` (LastFM: minutes per model instead of seconds).
            fit_part = dataclasses.replace(fit_part, valid_items=labels)
            refit = True
        self.retriever_ = self._make_retriever(train).fit(fit_part)
        self.features_ = self._make_features(fit_part)
        users = np.flatnonzero(np.diff(labels.indptr) > 0)
        if len(users) > self.max_ranker_users:
            users = np.sort(rng.choice(users, self.max_ranker_users, replace=False))
        rng.shuffle(users)
        if self.learn_quotas:
            # A few thousand users pin the recall to within a fraction of a percent.
            tuned = tune_quotas(self.retriever_, np.sort(users[:_QUOTA_USERS]), labels)
            self.retriever_ = self.retriever_.with_quotas(tuned)
        self.quotas_ = self.retriever_.quotas
        if self.ranker_bags > 1 and isinstance(make_ranker(self.ranker), LambdaRanker) and len(users) >= 10 * self.ranker_bags:
            self._fit_bagged(users, labels)
        else:
            self._fit_single_split(users, labels)
        # Measured before the refit: the labels must be items the channels have not seen.
        self.cold_start_: ColdStartBlend | None = None
        if self.cold_start:
            # A cold-user split's validation users are new users whose items no model saw.
            new_users = None if self.ranker_labels_ == "validation" else train.valid_items
            self.cold_start_ = self._calibrate_cold_start(fit_part, labels, users, new_users)
        # Epochs each early-stopped channel trains for in the refit on all training data.
        self.refit_epochs_: dict[str, int] = {}
        if refit:
            again = self._make_retriever(train).with_quotas(self.quotas_)
            self.refit_epochs_ = {name: min(m.get_params()["epochs"], _refit_rounds([m.best_epoch_]))
                                  for name, m in self.retriever_.models_.items()
                                  if getattr(m, "best_epoch_", 0) > 0 and "epochs" in m.get_params()}
            channels = [dataclasses.replace(c, model=c.model.clone(epochs=self.refit_epochs_[c.name]))
                        if c.name in self.refit_epochs_ else c for c in again.channels]
            self.retriever_ = MultiChannelRetriever(channels, n_candidates=again.n_candidates).fit(train)
            self.features_ = self._make_features(train)
            if self.cold_start_ is not None:
                self.cold_start_ = dataclasses.replace(self.cold_start_, prior_rank=popularity_rank(train.user_items))
        self._item_vectors_for_diversity(train.user_items)

    def _calibrate_cold_start(self, fit_part: TrainData, labels: sp.csr_matrix, users: np.ndarray,
                              new_users: sp.csr_matrix | None) -> ColdStartBlend:
        """The popularity prior's weight per history length, measured on up to ``cold_users`` of
        the ranker's users given only their oldest items (`socialrec.rank.cold_start`), in a copy
        of this model, which the simulated fold-ins change. ``new_users``: items of users without
        training items (a cold-user split's validation part), measured instead when there are any."""
        import copy

        from socialrec.represent.profiles import oldest_first

        rng = np.random.default_rng([self.seed, 7])  # its own stream: the other draws stay as they were
        rows, truth = sp.csr_matrix(fit_part.user_items), labels
        if new_users is not None and new_users.nnz:
            # The very case measured: they reveal their oldest items and the rest is the truth.
            rows, truth = sp.csr_matrix(new_users), None
            users = np.flatnonzero(np.diff(rows.indptr) > 0)
        sample = users if len(users) <= self.cold_users else rng.choice(users, self.cold_users, replace=False)
        position = oldest_first(fit_part.dataset, rows)
        sim = copy.deepcopy(self)

        def fold_in(sim_users: np.ndarray, sim_rows: sp.csr_matrix) -> None:
            sim.partial_fit_users(sim_users, sim_rows)

        def ranked(sim_users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            items, scores, _, _ = sim.rank_candidates(sim_users)
            return items, scores

        return calibrate(fold_in, ranked, rows, position, truth, np.sort(sample),
                         popularity_rank(fit_part.user_items))

    def _fit_single_split(self, users: np.ndarray, labels: sp.csr_matrix) -> None:
        n_valid = max(1, len(users) // 5) if len(users) >= 10 else 0
        early, learn = np.sort(users[:n_valid]), np.sort(users[n_valid:])
        x, y, g = self._training_rows(learn, labels)
        xv, yv, gv = self._training_rows(early, labels) if n_valid else (None, None, None)
        self.ranker_ = make_ranker(self.ranker, seed=self.seed)
        self.ranker_.fit(x, y, g, xv, yv, gv, feature_names=self.features_.names,
                                    monotone_constraints=self.features_.monotone)
        self.ranker_choice_ = type(self.ranker_).__name__
        if xv is not None and len(xv):
            # Guard for sparse data: if one channel alone orders the held-out users' candidates
            # better than the learned ranker, rank by that channel (the hybrid never does worse
            # than its best channel on validation).
            best = self._better_channel(self.ranker_.predict(xv), xv, yv, gv)
            if best is not None:
                self.ranker_ = SingleFeatureRanker(f"{best}:z").fit(x, y, g, feature_names=self.features_.names,
                                    monotone_constraints=self.features_.monotone)
                self.ranker_choice_ = f"channel {best}"
        if isinstance(self.ranker_, LambdaRanker) and xv is not None and len(xv):
            # The early-stopping users were held back only to choose the number of trees: refit on
            # all ranker users with that many.
            full = self.ranker_.clone(n_estimators=_refit_rounds([self.ranker_.best_iteration_]))
            self.ranker_ = full.fit(np.vstack([x, xv]), np.concatenate([y, yv]), np.concatenate([g, gv]),
                                    feature_names=self.features_.names,
                                    monotone_constraints=self.features_.monotone)
        # Share of the ranker users' held-out items that retrieval found (the ceiling of its recall).
        self.train_candidate_recall_ = float(y.sum() / max(labels[learn].nnz, 1))

    def _better_channel(self, learned: np.ndarray, x: np.ndarray, y: np.ndarray, g: np.ndarray) -> str | None:
        """The channel whose score alone orders these held-out rows better than the ranker's
        predictions ``learned`` (None when none does); records every NDCG in `validation_ndcg_`."""
        names = self.features_.names
        channel_z = {c: group_ndcg(x[:, names.index(f"{c}:z")], y, g) for c in self.retriever_.names}
        self.validation_ndcg_ = {"ranker": group_ndcg(learned, y, g), **channel_z}
        best = max(channel_z, key=lambda c: channel_z[c])
        return best if channel_z[best] > self.validation_ndcg_["ranker"] else None

    def _fit_bagged(self, users: np.ndarray, labels: sp.csr_matrix) -> None:
        """``ranker_bags`` LambdaRank models, model k early-stopped on fold k of the (shuffled)
        users and fitted on the others; the hybrid ranks by their mean (`BaggedRanker`). The
        channel guard compares the members' out-of-fold predictions, so every user counts."""
        names = self.features_.names
        folds = [np.sort(f) for f in np.array_split(users, self.ranker_bags)]
        rows = [self._training_rows(f, labels) for f in folds]
        members, out_of_fold = [], []
        for k in range(self.ranker_bags):
            rest = [rows[j] for j in range(self.ranker_bags) if j != k]
            x, y, g = (np.concatenate([r[i] for r in rest]) for i in range(3))
            member = LambdaRanker(seed=self.seed + k).fit(x, y, g, *rows[k], feature_names=names,
                                                              monotone_constraints=self.features_.monotone)
            members.append(member)
            out_of_fold.append(member.predict(rows[k][0]))
        x_all, y_all, g_all = (np.concatenate([r[i] for r in rows]) for i in range(3))
        best = self._better_channel(np.concatenate(out_of_fold), x_all, y_all, g_all)
        if best is not None:
            self.ranker_ = SingleFeatureRanker(f"{best}:z").fit(x_all, y_all, g_all, feature_names=names,
                                                      monotone_constraints=self.features_.monotone)
            self.ranker_choice_ = f"channel {best}"
        elif self.ranker_refit:
            # The folds chose the tree count; one model on every ranker user serves at one
            # model's cost (the bag's SHAP explanations cost N times as much).
            rounds = _refit_rounds([m.best_iteration_ for m in members])
            self.ranker_ = LambdaRanker(seed=self.seed, n_estimators=rounds).fit(x_all, y_all, g_all, feature_names=names,
                                                      monotone_constraints=self.features_.monotone)
            self.ranker_choice_ = f"LambdaRanker({rounds} trees, chosen by {self.ranker_bags}-fold early stopping)"
        else:
            self.ranker_ = BaggedRanker(members)
            self.ranker_choice_ = f"BaggedRanker({self.ranker_bags} x LambdaRanker)"
        self.train_candidate_recall_ = float(y_all.sum() / max(labels[users].nnz, 1))

    def _make_features(self, train: TrainData) -> FeatureBuilder:
        sim = None
        if "itemknn" in self.retriever_.models_:
            sim = self.retriever_.models_["itemknn"].similarity_  # type: ignore[attr-defined]
        content = self.retriever_.models_.get("content")
        text = getattr(content, "item_vectors_", None)
        mood = item_sentiment = None
        if self._use_sentiment(train):
            from socialrec.represent.sentiment import sentiment_features

            feats = sentiment_features(train.dataset, train.user_items)  # type: ignore[arg-type]
            mood, item_sentiment = feats.user_mood, feats.item_sentiment
        return FeatureBuilder().fit(train.user_items, train.dataset, self.retriever_.names, item_similarity=sim,
                                    item_text_vectors=text, item_sentiment=item_sentiment, user_mood=mood)

    def _use_sentiment(self, train: TrainData) -> bool:
        if self.sentiment is False or train.dataset is None:
            return False
        texts = train.dataset.texts
        has_text = bool(len(texts)) and bool(((texts["owner"] == "user")
                                               | texts["field"].str.lower().isin(("review", "reviewtext", "comment"))).any())
        if self.sentiment is None:
            return has_text and _has("vaderSentiment")
        return True

    def _training_rows(self, users: np.ndarray, labels: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        xs, ys, gs = [], [], []
        batches = range(0, len(users), self._chunk)
        for start in tqdm(batches, desc="ranker features", disable=not self.progress, leave=False):
            batch = users[start:start + self._chunk]
            fm = self._features(batch)
            y = np.asarray(labels[fm.users, fm.items]).ravel().astype(np.float32)
            # Users whose held-out items were all missed by retrieval teach the ranker nothing.
            ends = np.cumsum(fm.groups)
            pos_per_user = np.add.reduceat(y, np.r_[0, ends[:-1]]) if len(y) else np.zeros(0)
            keep_user = (fm.groups > 0) & (pos_per_user > 0)
            keep_row = np.repeat(keep_user, fm.groups)
            xs.append(fm.values[keep_row])
            ys.append(y[keep_row])
            gs.append(fm.groups[keep_user])
        if not xs or sum(len(v) for v in ys) == 0:
            raise ValueError("HybridRecommender: retrieval found none of the held-out items of the ranker's users, "
                             "so there is nothing to learn from; raise n_candidates or check the channels")
        return np.concatenate(xs), np.concatenate(ys), np.concatenate(gs)

    def _features(self, users: np.ndarray, cands: Candidates | None = None) -> FeatureMatrix:
        if cands is None:
            cands = self.retriever_.retrieve(users)
        return self.features_.build(users, cands)

    def _item_vectors_for_diversity(self, user_items: sp.csr_matrix) -> None:
        models = self.retriever_.models_
        self.item_vectors_: np.ndarray | None = None
        self.item_categories_ = self.features_.categories_
        tags = self.features_.tag_profiles_
        if self.diversity_space == "tags" and tags is None:
            raise ValueError("diversity_space='tags' needs tag assignments in the training dataset "
                             "(Dataset.tag_assignments); use 'collaborative' or 'auto'")
        if self.diversity_space == "categories" and self.item_categories_ is None:
            raise ValueError("diversity_space='categories' needs a 'category' column with two or more values in "
                             "the dataset's item table; use 'collaborative' or 'auto'")
        if tags is not None and self.diversity_space in ("tags", "auto"):
            self.item_vectors_ = tags.item_embedding(seed=self.seed)
            self.diversity_space_ = "tags"
            return
        if self.item_categories_ is not None and self.diversity_space in ("categories", "auto"):
            self.diversity_space_ = "categories"  # item_vectors_ None: re-ranking compares categories
            return
        self.diversity_space_ = "collaborative"
        if "als" in models:
            self.item_vectors_ = models["als"].item_factors_  # type: ignore[attr-defined]
        elif "content" in models:
            self.item_vectors_ = models["content"].item_vectors_  # type: ignore[attr-defined]
        elif min(user_items.shape) > 2:
            # No factor channel: a truncated SVD of the interactions gives the co-consumption space.
            from scipy.sparse.linalg import svds

            x = sp.csr_matrix(user_items, dtype=np.float64)
            rank = int(min(32, min(x.shape) - 1))
            _, sing, vt = svds(x, k=rank, random_state=self.seed)
            self.item_vectors_ = (vt.T * np.sqrt(sing)).astype(np.float32)

    # --- online updates ------------------------------------------------------------------
    # Every channel folds the users in through its own contract, the features re-read their
    # history, recent items, friends and profiles; the ranker and the item side stay as fitted.
    fold_in = "channels"

    def _fold_in_users(self, users: np.ndarray, social: sp.csr_matrix | None) -> None:
        rows = self.user_items_[users]
        self.retriever_.partial_fit_users(users, rows, social=social)
        self.features_.partial_fit_users(users, self.user_items_, social=social)

    # --- scoring -------------------------------------------------------------------------
    def rank_candidates(self, users: np.ndarray, cands: Candidates | None = None
                        ) -> tuple[np.ndarray, np.ndarray, FeatureMatrix, Candidates]:
        """(candidates (n, N) padded -1, ranker scores (n, N) -inf on padding, features, candidates).
        ``cands``: already retrieved candidates for these users (else retrieved here)."""
        if cands is None:
            cands = self.retriever_.retrieve(users)
        fm = self.features_.build(users, cands)
        pred = self.ranker_.predict(fm.values) if len(fm.values) else np.zeros(0, np.float32)
        scores = np.full(cands.items.shape, -np.inf, dtype=np.float32)
        scores[cands.items >= 0] = pred
        return cands.items, self._cold_start_blend(users, cands.items, scores), fm, cands

    def popularity_weight(self, users: npt.ArrayLike) -> np.ndarray:
        """The weight of the popularity order in these users' lists (0: the ranker's alone; see
        ``cold_start``), from their current history lengths."""
        self._check_fitted("popularity_weight")
        users = np.atleast_1d(np.asarray(users, dtype=np.int64))
        blend = getattr(self, "cold_start_", None)  # None in models saved before it existed
        if blend is None:
            return np.zeros(len(users))
        return blend.weight_for(np.diff(self.user_items_[users].indptr))

    def _cold_start_blend(self, users: np.ndarray, items: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Scores of users with short histories blended with popularity (``cold_start_``)."""
        w = self.popularity_weight(users)
        return self.cold_start_.blend(items, scores, w) if w.any() else scores

    def score_items(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """The ranker's scores of given candidates: ``items`` is (len(users), m) item indices;
        returns float32 (len(users), m). Seen items are scored too (callers mask them)."""
        self._check_fitted("score_items")
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        out = np.empty(items.shape, dtype=np.float32)
        for start in range(0, len(users), self._chunk):
            batch, cand = users[start:start + self._chunk], items[start:start + self._chunk]
            scores = self.retriever_.channel_scores(batch)
            depth = min(self.retriever_.n_candidates, self.n_items_)
            tops = self.retriever_.channel_tops(scores, depth)
            ranks = {name: candidate_positions(top, cand, depth) for name, top in tops.items()}
            fm = self.features_.build(batch, Candidates(items=cand, scores=scores, ranks=ranks, depth=depth))
            pred = self.ranker_.predict(fm.values).reshape(cand.shape)
            out[start:start + len(batch)] = self._cold_start_blend(batch, cand, pred)
        return out

    def _score(self, users: np.ndarray) -> np.ndarray:
        items, scores, _, cands = self.rank_candidates(users)
        first = cands.scores[self.retriever_.names[0]]
        out = np.empty((len(users), self.n_items_), dtype=np.float32)
        for row in range(len(users)):
            ok = items[row] >= 0
            cand_items, cand_scores = items[row][ok], scores[row][ok]
            floor = float(cand_scores.min()) - 1.0 if len(cand_scores) else 0.0
            # Non-candidates below every candidate, ordered by the first channel (squashed into (-1, 0)).
            f = first[row]
            fin = np.isfinite(f)
            base = np.full(self.n_items_, floor - 1.0, dtype=np.float64)
            if fin.any():
                z = (f[fin] - f[fin].mean()) / (f[fin].std() + 1e-9)
                base[fin] = floor - 1.0 + 0.5 * np.tanh(z)
            out[row] = base.astype(np.float32)
            if self.diversity > 0 or self.max_category_share is not None:
                cand_scores = self._reranked_scores(cand_items, cand_scores)
            out[row, cand_items] = cand_scores
        return out

    def _reranked_scores(self, items: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Scores that put the re-ranked order of the top ``rerank_depth`` first, the rest after."""
        depth = min(self.rerank_depth, len(items))
        top = np.argsort(-scores, kind="stable")[:depth]
        picked = rerank(items[top], scores[top], min(self.rerank_k, depth), method=self.rerank, diversity=self.diversity,
                        item_vectors=self.item_vectors_, item_categories=self.item_categories_,
                        max_category_share=self.max_category_share, scale=self.rerank_scale)
        new = scores.copy()
        top_score = float(scores.max()) if len(scores) else 0.0
        new[top[picked]] = top_score + 1.0 + (len(picked) - np.arange(len(picked)))
        return new

    def calibrate_diversity(self, ild_gain: float = RECOMMENDED_ILD_GAIN, *, method: str | None = None,
                            n_users: int = 1000) -> "HybridRecommender":
        """Turn on re-ranking with the weight that raises intra-list diversity by ``ild_gain``
        (0.22 = +22%, mean ILD@``rerank_k`` in ``diversity_space_``) over the ranker's order, on
        the candidate lists of ``n_users`` sampled training users. ``method``: "mmr" or "dpp"
        (default: the space's, `RECOMMENDED_METHOD`). Sets ``rerank`` and ``diversity``, records
        what it found in ``diversity_calibration_`` (a `WeightCalibration`) and returns self.

        Why not a fixed weight: what a weight buys moves with the ranker's score spread and the
        candidates' likeness, between datasets and even between refits of one (benchmarks/README.md),
        so the weight is found again on each fit for the gain asked. No labels are read: the cost
        in NDCG, and how close the test lists' gain comes to the target, is what benchmarks/hybrid.py
        measures."""
        self._check_fitted("calibrate_diversity")
        method = RECOMMENDED_METHOD[self.diversity_space_] if method is None else method
        active = np.flatnonzero(np.diff(self.user_items_.indptr) > 0)
        rng = np.random.default_rng(self.seed)
        users = np.sort(rng.choice(active, min(n_users, len(active)), replace=False))
        lists = []
        for start in range(0, len(users), self._chunk):
            items, scores, _, _ = self.rank_candidates(users[start:start + self._chunk])
            for row in range(len(items)):
                ok = (items[row] >= 0) & np.isfinite(scores[row])
                cand, cand_scores = items[row][ok], scores[row][ok]
                top = np.argsort(-cand_scores, kind="stable")[:self.rerank_depth]
                lists.append((cand[top], cand_scores[top]))
        vectors = self.item_vectors_
        self.diversity_calibration_ = calibrate_weight(
            lists, ild_gain, self.rerank_k, method=method, item_vectors=vectors,
            item_categories=self.item_categories_ if vectors is None else None, scale=self.rerank_scale)
        self.rerank, self.diversity = method, self.diversity_calibration_.weight
        return self

    def use_recommended_diversity(self) -> "HybridRecommender":
        """Turn on the re-ranking we recommend: the space's method (`RECOMMENDED_METHOD`) at the
        weight that raises intra-list diversity by `RECOMMENDED_ILD_GAIN` (`calibrate_diversity`)."""
        return self.calibrate_diversity(RECOMMENDED_ILD_GAIN)

    def feature_importance(self) -> dict[str, float]:
        self._check_fitted("feature_importance")
        return self.ranker_.feature_importance()


DIVERSITY_SPACES = ("auto", "tags", "categories", "collaborative")
def _refit_rounds(best_iterations: list[int]) -> int:
    """Trees (or epochs) for a refit on more data: the early-stopped count(s), a little more for
    the larger sample."""
    return max(1, int(round(1.2 * float(np.mean(best_iterations)))))


def _holdout(train: TrainData, fraction: float, rng: np.random.Generator) -> tuple[TrainData, sp.csr_matrix]:
    """Hold out ``fraction`` of each user's training items (users with at least 3 items)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"holdout_fraction must be in (0, 1), got {fraction}")
    x = train.user_items.tocoo()
    keep = np.ones(x.nnz, dtype=bool)
    counts = np.bincount(x.row, minlength=x.shape[0])
    order = np.lexsort((rng.random(x.nnz), x.row))
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    pos_in_user = np.empty(x.nnz, dtype=np.int64)
    pos_in_user[order] = np.arange(x.nnz) - np.repeat(starts, counts)
    n_out = np.where(counts >= 3, np.maximum(1, np.round(counts * fraction)), 0).astype(np.int64)
    keep[pos_in_user < n_out[x.row]] = False
    fit = sp.csr_matrix((x.data[keep], (x.row[keep], x.col[keep])), shape=x.shape)
    held = sp.csr_matrix((np.ones((~keep).sum(), np.float32), (x.row[~keep], x.col[~keep])), shape=x.shape)
    return TrainData(user_items=fit, dataset=train.dataset), held


def _holdout_last(train: TrainData) -> tuple[TrainData, sp.csr_matrix]:
    """Hold out each user's most recent training item (users with at least 3 items)."""
    from socialrec.represent.profiles import recency_order

    x = train.user_items.tocsr()
    rank = recency_order(train.dataset, x)
    rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
    counts = np.diff(x.indptr)
    out = (rank == 0) & (counts[rows] >= 3)
    fit = sp.csr_matrix((x.data[~out], (rows[~out], x.indices[~out])), shape=x.shape)
    held = sp.csr_matrix((np.ones(out.sum(), np.float32), (rows[out], x.indices[out])), shape=x.shape)
    return TrainData(user_items=fit, dataset=train.dataset), held
