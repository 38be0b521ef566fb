"""The one table of retrieval channels: every fact about a channel kind in one row.

The hybrid builds its channels from it (factory, default quota, which ones may train on
interaction values), the ranker's features take their explanation group from it, the explainer
finds the evidence it cites through it (which channel holds item-item similarities, tie
strengths, text vectors, recent counts), and quota tuning leaves the exposure channels alone.
Adding a channel kind is adding a row here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from socialrec.retrieve.base import BaseRecommender

# What a channel's fitted model offers the explainer, by the attribute that holds it.
ITEM_SIMILARITY = "item_similarity"  # item x item similarities of the user's history (ItemKNN, EASE)
TIE_STRENGTH = "tie_strength"  # strength of each social tie (social proof)
TEXT_VECTORS = "text_vectors"  # item text embeddings (content)
RECENT_COUNTS = "recent_counts"  # recent interactions per item (trending)
SEQUENCE = "sequence"  # the user's newest items in order, and item vectors to match them (sasrec, lm-seq)


@dataclass(frozen=True)
class ChannelKind:
    """One channel kind.

    name: the channel's name (``kind#N`` names a seeded replica, see `rank.hybrid.make_channel`).
    factory: builds the unfitted recommender from keyword arguments (imports lazily).
    quota: default relative share of candidate slots.
    group: explanation signal group of its features (collaborative, sequential, social, content, trending,
        new, popular).
    value_weightable: trains on per-user rank weights of interaction values when asked (measured
        on LastFM play counts; benchmarks/README.md).
    evidence: what its fitted model offers explanations (one of the constants above), or None.
    evidence_of: reads that evidence from the fitted model (None where the model has none to give).
    exposure: proposes items for exposure (new, rising), not for recall: quota tuning keeps it.
    """

    name: str
    factory: Callable[..., BaseRecommender]
    quota: float
    group: str
    value_weightable: bool = False
    evidence: str | None = None
    evidence_of: Callable[[Any], Any] | None = None
    exposure: bool = False


@dataclass(frozen=True)
class Lazy:
    """A recommender factory that imports its class on first use (torch and the text models are
    optional and slow to import); ``defaults`` are the channel's constructor defaults, which the
    caller's keyword arguments override."""

    module: str
    name: str
    defaults: tuple[tuple[str, Any], ...] = ()

    def __call__(self, **params: Any) -> BaseRecommender:
        cls = getattr(importlib.import_module(self.module), self.name)
        return cls(**{**dict(self.defaults), **params})  # type: ignore[no-any-return]


_content = Lazy("socialrec.retrieve.content", "ContentRecommender", (("encoder", "minilm-onnx"), ("progress", False)))


def _new(**p: Any) -> BaseRecommender:
    from socialrec.retrieve.trending import NewItems
    return NewItems(_content(**p))


_KNN, _IMPLICIT, _GRAPH = "socialrec.retrieve.knn", "socialrec.retrieve.implicit_models", "socialrec.retrieve.graph_models"
_SEQ = "socialrec.retrieve.sequential"
# sasrec / lm-seq channel defaults: the sampled softmax keeps a fit on a 17k-item catalog within
# CPU minutes; one torch thread, measured faster than two on the shared 2-core machine. An epoch
# has at least 32 steps: on movielens-100k (4 batches a pass) early stopping after 3 epochs of 4
# steps stopped lm-seq at validation NDCG@10 0.0202 and sasrec at 0.0651; with 32-step epochs they
# reach 0.0964 and 0.1074 on validation (benchmarks/sequential.py --protocol modes). No change
# where a pass has 32 batches or more (amazon-games: about 200).
SEQUENCE_DEFAULTS: tuple[tuple[str, Any], ...] = (("loss", "sampled-softmax"), ("num_threads", 1),
                                                  ("min_epoch_steps", 32))
# sasrec: dropout 0.5 and patience 10, chosen on amazon-games' validation items
# (benchmarks/sequential.py --protocol llmrank-valid: 6,000 users' validation item among 19 random
# ones, NDCG@10 x100 74.72 -> 76.27; its own full-ranking early-stopping NDCG@10 0.0643 -> 0.0664).
# The full softmax scored 76.46 there at 90.3 s per epoch against 11.6, so the sampled one stays.
# Both score by cosine / temperature 0.07 (UniSRec's value; no grid over it was run), chosen on
# leave-one-out's validation of every user (--protocol loo-valid --users 50546, three seeds each,
# adopted if the mean beat the dot product's by more than 1%, patience's rule below): sasrec's own
# validation NDCG@10 0.0664, 0.0648, 0.0622 -> 0.0728, 0.0702, 0.0678; lm-seq's 0.0688, 0.0677, 0.0667
# -> 0.0710, 0.0718, 0.0689.
SEQUENCE_TEMPERATURE = 0.07
SASREC_DEFAULTS: tuple[tuple[str, Any], ...] = (*SEQUENCE_DEFAULTS, ("dropout", 0.5), ("patience", 10),
                                                ("temperature", SEQUENCE_TEMPERATURE))
# lm-seq drops half the id embeddings per training step (item_dropout): chosen on amazon-games'
# validation, both its cold items' (--protocol cold-item-valid) and leave-one-out's on a
# 10,000-user sample (--protocol loo-valid, benchmarks/sequential.py); the text match lowered the
# latter, so it is off. sasrec's dropout 0.5 is not lm-seq's: with patience 10 it moved lm-seq's
# LLMRank-style NDCG@10 x100 within noise (78.25 -> 78.54) and lowered its full-ranking NDCG@10
# (0.0669 -> 0.0650). Patience 10 alone (sasrec's too): on leave-one-out's validation of every user
# (--protocol loo-valid --users 50546) early stopping after 3 epochs stopped lm-seq at a noisy dip
# at two of three seeds (epochs 25, 16, 24); with 10 its own validation NDCG@10 is 0.0688, 0.0677,
# 0.0667 at random_state 0, 1, 2 against 0.0669, 0.0644, 0.0667 (+2.6% on the mean).
# lm-seq trains for up to 100 epochs (the constructor's cap is 40), so that patience, not the cap,
# ends its fit: on leave-one-out's validation of every user (--protocol loo-valid --users 50546) the
# cap of 40 cut all three seeds' fits short of patience's stop, and seed 2 was still improving (best
# epoch 40, own validation NDCG@10 0.0689; with the cap at 100: 0.0733 at epoch 62); seeds 0 and 1
# are unchanged (best epochs 31 and 34): mean 0.0706 -> 0.0720 (+2.1%; patience's 1% rule). sasrec
# keeps 40: patience stopped its three fits there by epoch 35, so the cap never binds for it. A grid
# over the temperature on the same validation kept 0.07 for both models: sasrec 0.0697 / 0.0728 /
# 0.0700 at 0.05 / 0.07 / 0.1 (seed 0); lm-seq at 0.1 0.0718, 0.0710, 0.0688 (seeds 0-2, +0.2% on the
# mean), at 0.05 0.0693 (seed 0). Grids over the learning rate (0.002 / 0.005 / 0.01), the batch size
# (128 / 256 users) and lm-seq's layers (1 / 2) on the same validation kept the constructor's values (the
# loo-valid rows and notes in benchmarks/results/sequential-amazon-games.json).
LM_SEQ_EPOCHS = 100
# lm-seq validates and keeps a moving average of its weights (Polyak averaging, decay 0.998 per
# step: about 2.5 epochs of amazon-games' ~200 steps): on leave-one-out's validation of every user
# (--protocol loo-valid --users 50546, the same 1% rule) its own validation NDCG@10 went from
# 0.0710, 0.0718, 0.0733 to 0.0738, 0.0738, 0.0720 at random_state 0, 1, 2 (+1.6% on the mean).
# sasrec keeps its last weights: the same average moved its 0.0728, 0.0702, 0.0678 to 0.0735,
# 0.0708, 0.0683 (+0.8%, under the rule's 1%).
LM_SEQ_AVERAGE = 0.998
LM_SEQ_DEFAULTS: tuple[tuple[str, Any], ...] = (*SEQUENCE_DEFAULTS, ("text_encoder", "minilm-onnx"),
                                                ("item_dropout", 0.5), ("patience", 10),
                                                ("temperature", SEQUENCE_TEMPERATURE),
                                                ("epochs", LM_SEQ_EPOCHS), ("average", LM_SEQ_AVERAGE))

CHANNELS: Mapping[str, ChannelKind] = {c.name: c for c in (
    # ItemKNN before EASE: where both are there, explanations cite ItemKNN's sparse similarities.
    ChannelKind("itemknn", Lazy(_KNN, "ItemKNN", (("neighbors", 200),)), 0.5, "collaborative",
                value_weightable=True, evidence=ITEM_SIMILARITY, evidence_of=lambda m: m.similarity_),
    # EASE's weights are item-item only when every item was active in training.
    ChannelKind("ease", Lazy("socialrec.retrieve.ease", "EASE"), 1.0, "collaborative", evidence=ITEM_SIMILARITY,
                evidence_of=lambda m: m.weights_ if len(m.active_items_) == m.n_items_ else None),
    ChannelKind("userknn", Lazy(_KNN, "UserKNN"), 0.25, "collaborative"),
    ChannelKind("als", Lazy(_IMPLICIT, "ALS"), 0.5, "collaborative", value_weightable=True),
    ChannelKind("bpr", Lazy(_IMPLICIT, "BPR"), 0.25, "collaborative"),
    ChannelKind("lightgcn", Lazy(_GRAPH, "LightGCN"), 0.25, "collaborative", value_weightable=True),
    ChannelKind("social", Lazy(_GRAPH, "SocialLightGCN"), 0.5, "social", value_weightable=True),
    ChannelKind("socialmf", Lazy(_GRAPH, "SocialMF"), 0.25, "social"),
    ChannelKind("social-proof", Lazy("socialrec.retrieve.social_proof", "SocialProof"), 0.25, "social",
                evidence=TIE_STRENGTH, evidence_of=lambda m: m.tie_strength_),
    # Items' image / audio vectors (Dataset.item_features): the fusion model, whose cold items are
    # placed from their modality neighbours, and the vector profile, which ranks items nobody has
    # interacted with yet. "Looks / sounds like" reasons read the ranker's per-modality features
    # (FeatureBuilder.item_modalities_), not these models.
    ChannelKind("multimodal", Lazy("socialrec.retrieve.multimodal", "MultimodalGCN"), 0.5, "content"),
    ChannelKind("modality", Lazy("socialrec.retrieve.multimodal", "ModalityProfile"), 0.25, "content"),
    ChannelKind("content", _content, 0.25, "content", evidence=TEXT_VECTORS, evidence_of=lambda m: m.item_vectors_),
    # Served trending counts users with a history only: fresh accounts cannot make an item trend.
    ChannelKind("trending", Lazy("socialrec.retrieve.trending", "Trending", (("min_user_history", 3),)), 0.1,
                "trending", evidence=RECENT_COUNTS, exposure=True, evidence_of=lambda m: m.recent_counts_),
    # Sequential (extra `torch`; lm-seq also `text`): the next item after the user's newest ones.
    ChannelKind("sasrec", Lazy(_SEQ, "SASRec", SASREC_DEFAULTS), 0.5, "sequential", evidence=SEQUENCE,
                evidence_of=lambda m: m),
    ChannelKind("lm-seq", Lazy(_SEQ, "SASRec", LM_SEQ_DEFAULTS), 0.5, "sequential", evidence=SEQUENCE,
                evidence_of=lambda m: m),
    ChannelKind("pop", Lazy("socialrec.retrieve.popular", "MostPopular"), 0.25, "popular"),
    ChannelKind("new", _new, 0.05, "new", exposure=True),
)}


def channel_kind(name: str) -> ChannelKind:
    """The row of a channel name (a replica ``kind#N`` is its kind's row)."""
    kind = name.partition("#")[0]
    row = CHANNELS.get(kind)
    if row is None:
        raise ValueError(f"unknown channel {name!r}; known: {', '.join(CHANNELS)}")
    return row


def evidence(models: Mapping[str, Any], kind: str) -> Any:
    """The first evidence of ``kind`` (a constant above) that the fitted channel models offer,
    in the table's order; None when no channel offers it. Replicas (``kind#N``) are skipped."""
    for name, row in CHANNELS.items():
        model = models.get(name)
        if model is not None and row.evidence == kind and row.evidence_of is not None:
            value = row.evidence_of(model)
            if value is not None:
                return value
    return None


EXPOSURE_CHANNELS = tuple(c.name for c in CHANNELS.values() if c.exposure)
VALUE_WEIGHTABLE = tuple(c.name for c in CHANNELS.values() if c.value_weightable)
