"""The models the CLI and benchmarks know by name, with their search grids.

An explicit table, not a name-guessing registry: adding a model means adding a line here.
Grids are small on purpose (they run on 2 cores); each point is fitted on training data and
judged on validation NDCG@10.
"""

from __future__ import annotations

from collections.abc import Callable

from socialrec.evaluate.experiment import ModelSpec
from socialrec.retrieve.base import BaseRecommender
from socialrec.retrieve.ease import EASE
from socialrec.retrieve.implicit_models import ALS, BPR
from socialrec.retrieve.knn import ItemKNN, UserKNN
from socialrec.retrieve.popular import MostPopular


def model_specs(*, quick: bool = False) -> dict[str, ModelSpec]:
    """Name -> spec. ``quick`` shrinks every grid to its default point (for demos and tests)."""
    specs = {
        "pop": ModelSpec("pop", MostPopular),
        "itemknn": ModelSpec("itemknn", ItemKNN, {"neighbors": [50, 200], "shrink": [0.0, 10.0], "idf": [False, True]}),
        "userknn": ModelSpec("userknn", UserKNN, {"neighbors": [50, 200], "shrink": [0.0, 10.0]}),
        "ease": ModelSpec("ease", EASE, {"l2": [30.0, 100.0, 300.0]}),
        "als": ModelSpec("als", ALS, {"factors": [64, 128], "regularization": [0.05, 1.0], "alpha": [1.0, 10.0]}),
        "bpr": ModelSpec("bpr", BPR, {"factors": [64], "learning_rate": [0.01, 0.05], "regularization": [0.001, 0.01]}),
    }
    specs.update(_graph_specs())
    if quick:
        specs = {name: ModelSpec(name, s.make) for name, s in specs.items()}
    return specs


BASELINES = ("pop", "itemknn", "userknn", "ease", "als", "bpr")
SOCIAL = ("lightgcn", "social", "socialmf", "social-proof")
# Weights of the social model's neighbourhood term tried on validation after training (0 is
# always among them): LastFM picks 0, Ciao a large weight (benchmarks/results/social-*.json).
NEIGHBOURHOOD_GRID = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
PRIVATE = ("mf", "dp-mf", "dp-mf-interaction", "mf-interaction", "dp-als", "als-twin", "dp-ease",
           "dp-ease-interaction", "ease-twin")
# hybrid-rumour's policy: what `socialrec rumours --model hybrid --select-on held-out` chose on
# weibo-ced's validation users the hybrid did not learn from (benchmarks/results/
# weibo-rumours-hybrid-heldout.json; the hybrid trains its ranker on the validation items, so the
# plain run's choice, weight 1.5, was judged on fitted lists): demotion weight, and the head of
# the hybrid's list kept in place.
RUMOUR_WEIGHT = 1.0
RUMOUR_PROTECT = 3
# Weights of the additive mood term g(E(u), c) tried on validation inside fit (0 = the base model;
# the base's scores are standardised per user, so the weights are in its standard deviations).
MOOD_WEIGHT_GRID = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
# mf / dp-mf settings chosen on LastFM's validation NDCG@10 (benchmarks/results/privacy-dp.json).
MF_DEFAULTS: tuple[tuple[str, object], ...] = (("factors", 64), ("epochs", 20), ("batch_size", 256),
                                               ("learning_rate", 0.005), ("max_items", 3000), ("average", 0.9))
DP_MF_DEFAULTS: tuple[tuple[str, object], ...] = (("target_epsilon", 8.0), ("factors", 16), ("epochs", 50),
                                                  ("batch_size", None), ("learning_rate", 0.03),
                                                  ("max_grad_norm", 0.1), ("init_std", 0.1), ("max_items", 300),
                                                  ("learn_bias", False), ("tied", True))
# dp-mf-interaction: the WEAKER interaction-level unit (a record is one (user, item) interaction;
# it does not protect a user's whole history), epsilon 8, delta min(1/n_interactions, 1/n_users);
# settings chosen on LastFM's validation NDCG@10 (benchmarks/privacy_dp.py): the PRV accountant
# (less noise for the same epsilon), the moving average of the iterates (post-processing) and an
# 850-item head.
DP_MF_INTERACTION_DEFAULTS: tuple[tuple[str, object], ...] = (
    ("target_epsilon", 8.0), ("privacy_unit", "interaction"), ("factors", 16), ("epochs", 40),
    ("batch_size", 32768), ("learning_rate", 0.1), ("max_grad_norm", 1.0), ("init_std", 0.1), ("max_items", 850),
    ("learn_bias", False), ("accountant", "prv"), ("average", 0.95))
# mf-interaction: dp-mf-interaction's non-private twin, the same model and training without noise
# or clipping (exact counts), with its own validation choice (a 3,000-item head).
MF_INTERACTION_DEFAULTS: tuple[tuple[str, object], ...] = (
    ("target_epsilon", None), ("privacy_unit", "interaction"), ("factors", 16), ("epochs", 40),
    ("batch_size", 32768), ("learning_rate", 0.1), ("init_std", 0.1), ("max_items", 3000),
    ("learn_bias", False), ("average", 0.95))
# dp-als: private alternating least squares (user level, epsilon 8, delta 1/n_users, the exact
# Gaussian accountant; each user's vector solved from their own history: joint DP), settings
# chosen on LastFM's validation NDCG@10 (benchmarks/privacy_dp.py); als-twin is the same model
# and settings without noise (its own validation choice).
DP_ALS_DEFAULTS: tuple[tuple[str, object], ...] = (("target_epsilon", 8.0), ("factors", 16), ("iterations", 3),
                                                   ("user_l2", 0.1), ("item_l2", 30.0), ("max_items", 1000))
ALS_TWIN_DEFAULTS: tuple[tuple[str, object], ...] = (("target_epsilon", None), ("factors", 64), ("iterations", 5),
                                                     ("user_l2", 0.1), ("item_l2", 30.0), ("max_items", 1000))
# dp-ease: EASE on a co-occurrence matrix released once with Gaussian noise (numpy only; each user
# scored from their own row: joint DP), at user level and at the weaker interaction level, epsilon
# 8; settings chosen on LastFM's validation NDCG@10 (benchmarks/privacy_dp.py); ease-twin is the
# same model without noise (its own validation choice).
# dropout: EDLAE's emphasised denoising (each item's ridge grows with its own count), in the grid.
DP_EASE_DEFAULTS: tuple[tuple[str, object], ...] = (("target_epsilon", 8.0), ("privacy_unit", "user"), ("l2", 30.0),
                                                    ("max_items", 300), ("dropout", 0.0))
DP_EASE_INTERACTION_DEFAULTS: tuple[tuple[str, object], ...] = (
    ("target_epsilon", 8.0), ("privacy_unit", "interaction"), ("l2", 3.0), ("max_items", 1000),
    ("min_weight_count", 20), ("dropout", 0.5))
EASE_TWIN_DEFAULTS: tuple[tuple[str, object], ...] = (("target_epsilon", None), ("l2", 3.0), ("max_items", 6000),
                                                      ("dropout", 0.5))


def _graph_specs() -> dict[str, ModelSpec]:
    # The channel table's factories import lazily: torch is optional and importing it costs seconds.
    from socialrec.retrieve.channel_table import CHANNELS, LM_SEQ_DEFAULTS, Lazy

    seq = "socialrec.retrieve.sequential"

    lightgcn, social, socialmf = CHANNELS["lightgcn"].factory, CHANNELS["social"].factory, CHANNELS["socialmf"].factory

    def hybrid(**params: object) -> BaseRecommender:
        from socialrec.rank.hybrid import HybridRecommender

        return HybridRecommender(**params)  # type: ignore[arg-type]

    def hybrid_seq(**params: object) -> BaseRecommender:
        from socialrec.rank.hybrid import HybridRecommender

        # Both sequential channels: on amazon-games' LLMRank validation (6,000 users,
        # benchmarks/sequential.py --protocol llmrank-valid) NDCG@10 x100 79.40 with lm-seq and
        # sasrec, 78.67 with lm-seq alone (both fitted with the validation items, which their
        # rankers learnt from). Where no validation items come with the data (the protocol's refit
        # on training + validation, a cold-user split) the ranker learns each user's newest
        # training item, the next-item task these models are for: on the same validation with its
        # labels hidden from the fit, 78.21 against 77.33 for a random holdout.
        params = {"holdout": "last", **params}
        return HybridRecommender(add_channels=("lm-seq", "sasrec"), **params)  # type: ignore[arg-type]

    def content(**params: object) -> BaseRecommender:
        from socialrec.retrieve.content import ContentRecommender

        return ContentRecommender(**params)  # type: ignore[arg-type]

    def rumour_hybrid(**params: object) -> BaseRecommender:
        from socialrec.rank.hybrid import HybridRecommender
        from socialrec.rank.rumour import RumourAware

        weight = float(params.pop("weight", RUMOUR_WEIGHT))  # type: ignore[arg-type]
        protect = int(params.pop("protect", RUMOUR_PROTECT))  # type: ignore[call-overload]
        return RumourAware(HybridRecommender(**params), weight=weight, protect=protect)  # type: ignore[arg-type]

    from socialrec.retrieve.sentiment_aware import SentimentAware

    def mood_on(base: Callable[..., BaseRecommender]) -> Callable[..., BaseRecommender]:
        # params are the base model's; the mood weight is chosen inside fit.
        def make(**params: object) -> BaseRecommender:
            return SentimentAware(base_model=base(**params), weight=0.0, weight_grid=MOOD_WEIGHT_GRID)
        return make

    def hybrid_without_sentiment(**params: object) -> BaseRecommender:
        return hybrid(**{"sentiment": False, **params})

    def two_tower(mode: str) -> Callable[..., BaseRecommender]:
        def make(**params: object) -> BaseRecommender:
            from socialrec.retrieve.two_tower import TwoTowerRecommender

            return TwoTowerRecommender(mode=mode, **params)  # type: ignore[arg-type]
        return make

    # Matrix factorisation trained with DP-SGD (extra `privacy-dp`) and its non-private twin,
    # the same model and training without noise or clipping. Their defaults are the settings
    # chosen on LastFM's validation part (benchmarks/privacy_dp.py); dp-mf's budget is epsilon 8,
    # delta 1 / n_users. No grid: every private fit is a release that spends the budget again.
    mf = Lazy("socialrec.retrieve.dp_mf", "MF", MF_DEFAULTS)
    dp_mf = Lazy("socialrec.retrieve.dp_mf", "DPMF", DP_MF_DEFAULTS)
    # dp-mf is user-level (a record is a user); dp-mf-interaction is the weaker interaction level.
    dp_mf_interaction = Lazy("socialrec.retrieve.dp_mf", "DPMF", DP_MF_INTERACTION_DEFAULTS)
    mf_interaction = Lazy("socialrec.retrieve.dp_mf", "DPMF", MF_INTERACTION_DEFAULTS)
    # Private ALS (numpy and scipy only): user-level DP item vectors, users solved in closed form.
    dp_als = Lazy("socialrec.retrieve.dp_als", "DPALS", DP_ALS_DEFAULTS)
    als_twin = Lazy("socialrec.retrieve.dp_als", "DPALS", ALS_TWIN_DEFAULTS)
    # Private EASE (numpy and scipy only): one noisy release of the item-item co-occurrence.
    dp_ease = Lazy("socialrec.retrieve.dp_ease", "DPEASE", DP_EASE_DEFAULTS)
    dp_ease_interaction = Lazy("socialrec.retrieve.dp_ease", "DPEASE", DP_EASE_INTERACTION_DEFAULTS)
    ease_twin = Lazy("socialrec.retrieve.dp_ease", "DPEASE", EASE_TWIN_DEFAULTS)

    # Graph models stop early on validation NDCG@10, so their grids stay small.
    return {
        "mf": ModelSpec("mf", mf),
        "dp-mf": ModelSpec("dp-mf", dp_mf),
        "dp-mf-interaction": ModelSpec("dp-mf-interaction", dp_mf_interaction),
        "mf-interaction": ModelSpec("mf-interaction", mf_interaction),
        "dp-als": ModelSpec("dp-als", dp_als),
        "als-twin": ModelSpec("als-twin", als_twin),
        "dp-ease": ModelSpec("dp-ease", dp_ease),
        "dp-ease-interaction": ModelSpec("dp-ease-interaction", dp_ease_interaction),
        "ease-twin": ModelSpec("ease-twin", ease_twin),
        "lightgcn": ModelSpec("lightgcn", lightgcn, {"temperature": [0.12, 0.15]}),
        # The neighbourhood weight is chosen inside fit on validation (no refit per weight).
        "social": ModelSpec("social", social, {"temperature": [0.12, 0.15], "social_weight": [0.3],
                                               "neighborhood_grid": [NEIGHBOURHOOD_GRID]}),
        "socialmf": ModelSpec("socialmf", socialmf, {"social_reg": [0.01, 0.1]}),
        "social-proof": ModelSpec("social-proof", CHANNELS["social-proof"].factory, {"overlap_weight": [0.0, 4.0]}),
        # Language-model content recommender (extra `text`): scores every item from its text,
        # so it also places items no one has interacted with yet (the cold-item protocol).
        "content": ModelSpec("content", content, {"recency_half_life": [3.0, 10.0]}),
        # Two-tower with a MiniLM item tower (extras `text`, `tune`): zero-shot, LoRA and full
        # fine-tuning of the top layers. No grid: each fit costs minutes on 2 cores and stops
        # early on validation NDCG@10 (benchmarks/finetune.py).
        "two-tower-frozen": ModelSpec("two-tower-frozen", two_tower("frozen")),
        "two-tower-lora": ModelSpec("two-tower-lora", two_tower("lora")),
        "two-tower-full": ModelSpec("two-tower-full", two_tower("full")),
        # Sequential recommenders (extra `torch`; lm-seq also `text`): a causal transformer over
        # each user's newest items; lm-seq adds MiniLM item-text vectors to the id embeddings.
        # No grid: each fit stops early on validation NDCG@10 (benchmarks/sequential.py). A grid
        # over lm-seq's item_dropout (0.5, 0) kept 0.5 on amazon-games' leave-one-out and LLMRank
        # validation and chose 0 on cold users' only (benchmarks/README.md, loo-valid notes).
        "sasrec": ModelSpec("sasrec", CHANNELS["sasrec"].factory),
        "lm-seq": ModelSpec("lm-seq", CHANNELS["lm-seq"].factory),
        # lm-seq fine-tuning MiniLM (extra `tune`): LoRA on all 6 layers, all 6 layers' weights, or
        # masked-language-model pretraining on the item texts then LoRA; the CPU step budget is
        # SASRec's lm_epochs x lm_steps (benchmarks/sequential.py --protocol modes).
        # lm-seq with the text match (recency-weighted text vector of the sequence against each
        # item's text): on amazon-games it raised the cold items' validation NDCG@20 (0.0875 -> 0.1067)
        # and lowered leave-one-out's validation NDCG@10 (benchmarks/sequential.py), so it is an entry
        # for cold-start-heavy catalogs, not lm-seq's default.
        "lm-seq-text": ModelSpec("lm-seq-text", Lazy(seq, "SASRec", (*LM_SEQ_DEFAULTS, ("text_match_half_life", 5.0)))),
        # lm-seq-lora's LM learning rate 1e-4: on movielens-100k's validation, 1e-3 (SASRec's LoRA
        # default) lowered stage 2's validation NDCG@10 below stage 1 (0.0921 < 0.0941; seed 1: 0.1057 <
        # 0.1085) and 1e-4 kept stage 2 (0.1028), as high as the LM left untrained (lr 0: 0.1028)
        # (benchmarks/sequential.py --protocol modes-valid).
        "lm-seq-lora": ModelSpec("lm-seq-lora", Lazy(seq, "SASRec", (*LM_SEQ_DEFAULTS, ("mode", "lora"),
                                                                      ("lm_learning_rate", 1e-4)))),
        "lm-seq-full": ModelSpec("lm-seq-full", Lazy(seq, "SASRec", (*LM_SEQ_DEFAULTS, ("mode", "full")))),
        "lm-seq-dapt": ModelSpec("lm-seq-dapt", Lazy(seq, "SASRec", (*LM_SEQ_DEFAULTS, ("mode", "lora"), ("dapt", True)))),
        # EASE plus weight * mood(u) * item sentiment(c) (extra `sentiment`); weight 0 is plain EASE.
        "sentiment": ModelSpec("sentiment", SentimentAware, {"weight": [0.0, 0.25, 1.0]}),
        # The additive I(u, c) = f(u, c) + w * E(u) * s(c) on the content model and on the hybrid
        # without its sentiment features; w from MOOD_WEIGHT_GRID or 0, chosen on validation inside
        # fit. hybrid-no-sentiment is the hybrid without the mood features (the ablation of the
        # sentiment feature group; `hybrid` turns them on where users have texts).
        "sentiment-content": ModelSpec("sentiment-content", mood_on(content), {"recency_half_life": [3.0, 10.0]}),
        "sentiment-hybrid": ModelSpec("sentiment-hybrid", mood_on(hybrid_without_sentiment)),
        "hybrid-no-sentiment": ModelSpec("hybrid-no-sentiment", hybrid_without_sentiment),
        # Models that read the items' modality vectors (Dataset.item_features: image, audio). They
        # stop early on validation NDCG@20; one fit costs minutes on tiktok-multimodal on the
        # shared 2-core machine, so their grids are small (benchmarks/multimodal.py).
        "vbpr": ModelSpec("vbpr", Lazy("socialrec.retrieve.multimodal", "VBPR")),
        # Which modalities to fuse is chosen on validation (all, image only, audio only).
        "multimodal": ModelSpec("multimodal", CHANNELS["multimodal"].factory,
                                {"modalities": [None, ("image",), ("audio",)]}),
        "modality": ModelSpec("modality", CHANNELS["modality"].factory),
        # The full pipeline: every channel the data supports, LambdaRank trained on the validation
        # items, default diversity re-ranking. No grid: it learns its blend from validation itself.
        "hybrid": ModelSpec("hybrid", hybrid),
        # The hybrid with the sequential channel lm-seq beside the channels the data supports
        # (extra `torch`; benchmarks/sequential.py).
        "hybrid-seq": ModelSpec("hybrid-seq", hybrid_seq),
        # The hybrid whose lists demote likely rumours (needs labelled post texts, as weibo-ced has;
        # `socialrec rumours --model hybrid` traces the trade-off and chooses the weight on validation).
        # No grid: validation NDCG alone would always choose weight 0.
        "hybrid-rumour": ModelSpec("hybrid-rumour", rumour_hybrid),
    }


def resolve(names: list[str], *, quick: bool = False) -> list[ModelSpec]:
    """Specs for CLI names, with an error that lists the known names."""
    specs = model_specs(quick=quick)
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; known: {', '.join(specs)}")
    return [specs[n] for n in names]
