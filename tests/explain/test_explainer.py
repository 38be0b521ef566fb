"""Every reason names a signal that truly contributed, with true evidence; sentences only use
names from the reasons; the pipeline honours hidden and blocked items and new users."""

from __future__ import annotations

import numpy as np
import pytest

from socialrec.explain.generate import grounding_check
from socialrec.explain.pipeline import RecommendationPipeline
from socialrec.explain.reasons import Reason, grounded_names, render_sentence
from socialrec.ingest.datasets.synthetic import load_synthetic
from socialrec.ingest.split import random_split
from socialrec.rank.hybrid import HybridRecommender

pytest.importorskip("implicit")
pytest.importorskip("lightgbm")


@pytest.fixture(scope="module")
def pipeline() -> RecommendationPipeline:
    ds = load_synthetic(n_users=300, n_items=200, seed=3)
    split = random_split(ds, (0.8, 0.1, 0.1), seed=0)
    model = HybridRecommender(channels=("ease", "itemknn", "als", "social-proof", "trending"),
                              channel_params={"ease": {"l2": 30.0}}, n_candidates=100, ranker="lightgbm",
                              diversity_space="collaborative")  # the diversity test below reads ALS vectors
    model.fit(split.train_data())
    return RecommendationPipeline(model, ds)


GROUP_OF_KIND = {"similar_to": {"collaborative", "content"}, "collaborative": {"collaborative"},
                 "friends_liked": {"social"}, "trending": {"trending"}, "popular": {"popular", "item"},
                 "new": {"new", "item"}, "matches_interest": {"content"}}


def test_every_reason_is_a_signal_that_contributed(pipeline: RecommendationPipeline) -> None:
    model, explainer, ds = pipeline.model, pipeline.explainer, pipeline.dataset
    x = model.user_items_
    checked = 0
    for user in range(0, 300, 7):
        user_id = ds.users.to_external(user)
        items, scores, fm, _ = model.rank_candidates(np.array([user]))
        recs = pipeline.recommend(user_id, k=5)
        idx = {int(i): row for row, i in enumerate(fm.items)}
        for rec in recs:
            item = int(ds.items.to_index(rec.item_id))
            groups = explainer.group_contributions(fm.values[[idx[item]]])
            positive = {g for g, v in groups.items() if v[0] > 0}
            if model.popularity_weight([user])[0] > 0:  # the list leant on popularity (few items)
                positive.add("popular")
            for reason in rec.reasons:
                checked += 1
                assert GROUP_OF_KIND[reason.kind] & positive or len(rec.reasons) == 1, (reason, positive)
                if reason.kind == "friends_liked":
                    friends = ds.users.to_index([f["id"] for f in reason.evidence["friends"]])
                    assert x[friends, item].toarray().ravel().all()  # each listed friend interacted with it
                    follows = ds.social_matrix()[user].indices
                    assert set(np.atleast_1d(friends).tolist()) <= set(follows.tolist())
                    assert reason.evidence["count"] >= len(reason.evidence["friends"])
                if reason.kind == "similar_to":
                    liked = int(ds.items.to_index(reason.evidence["item"]["id"]))
                    assert x[user, liked] > 0  # the item the user "liked" is in their history
    assert checked > 50


@pytest.mark.parametrize("weight", [0.5, 1.0])
def test_a_list_that_leant_on_popularity_says_so_by_its_share(pipeline: RecommendationPipeline, weight: float) -> None:
    from socialrec.rank.cold_start import ColdStartBlend, popularity_rank

    model, ds = pipeline.model, pipeline.dataset
    kept = model.cold_start_
    user_id = ds.users.to_external(3)
    plain = pipeline.recommend(user_id, k=5)
    try:
        # Every user up to 10,000 items leans on popularity by ``weight``.
        model.cold_start_ = ColdStartBlend(histories=(0, 10_000), weights=(weight, weight),
                                           prior_rank=popularity_rank(model.user_items_))
        assert model.popularity_weight([3])[0] == weight
        recs = pipeline.recommend(user_id, k=5)
    finally:
        model.cold_start_ = kept
    assert [r.item_id for r in recs] != [r.item_id for r in plain]  # the blend moved the list
    for rec in recs:
        popular = [r for r in rec.reasons if r.kind == "popular"]
        assert len(popular) == 1
        if weight == 1.0:
            assert [r.kind for r in rec.reasons] == ["popular"] and "popular" in rec.sentence
        else:
            others = sum(r.weight for r in rec.reasons if r is not popular[0])
            # Popularity carries half of the weight (the ranker's positive reasons, halved, the rest).
            assert popular[0].weight >= others - 1e-9


def test_sentences_use_only_grounded_names(pipeline: RecommendationPipeline) -> None:
    ds = pipeline.dataset
    for user in range(0, 300, 25):
        for rec in pipeline.recommend(ds.users.to_external(user), k=5):
            assert rec.sentence.startswith(rec.title)
            ok, problems = grounding_check(rec.sentence, rec.reasons, rec.title, rec.sentence)
            assert ok, problems


def test_hidden_and_blocked_items_never_come_back(pipeline: RecommendationPipeline) -> None:
    ds = pipeline.dataset
    user_id = ds.users.to_external(5)
    first = pipeline.recommend_ids(user_id, k=5)
    again = pipeline.recommend(user_id, k=5, hidden_items=first[:2])
    assert not {r.item_id for r in again} & set(first[:2])
    blocked = RecommendationPipeline(pipeline.model, ds, blocked_items=frozenset(first[2:4]))
    assert not set(blocked.recommend_ids(user_id, k=5)) & set(first[2:4])


@pytest.mark.parametrize(("scale", "diversity"), [("minmax", 0.7), ("score", 0.9)])
def test_diversity_changes_the_list_and_raises_diversity(pipeline: RecommendationPipeline, scale: str,
                                                         diversity: float) -> None:
    from socialrec.evaluate.metrics import intra_list_diversity

    ds = pipeline.dataset
    vectors = pipeline.model.item_vectors_
    plain, diverse = [], []
    div = RecommendationPipeline(pipeline.model, ds, diversity=diversity)
    saved = pipeline.model.rerank_scale
    pipeline.model.rerank_scale = scale
    try:
        for user in range(0, 300, 10):
            uid = ds.users.to_external(user)
            plain.append(ds.items.to_index(pipeline.recommend_ids(uid, k=10)))
            diverse.append(ds.items.to_index(div.recommend_ids(uid, k=10)))
    finally:
        pipeline.model.rerank_scale = saved
    ild_plain = np.nanmean(intra_list_diversity(np.array(plain), 10, item_vectors=vectors))
    ild_div = np.nanmean(intra_list_diversity(np.array(diverse), 10, item_vectors=vectors))
    # ALS vectors of 200 items are already near-orthogonal (ILD ~0.94): judge the redundancy left,
    # 1 - ILD, which re-ranking must cut by a tenth at least.
    assert 1.0 - ild_div < 0.9 * (1.0 - ild_plain)
    assert np.mean([set(a) != set(b) for a, b in zip(plain, diverse)]) > 0.5


def test_unknown_user_gets_trending_items_said_as_such(pipeline: RecommendationPipeline) -> None:
    recs = pipeline.recommend("never-seen-user", k=3)
    assert len(recs) == 3
    assert all(r.reasons[0].kind == "trending" for r in recs)


def test_template_sentences_by_hand() -> None:
    reasons = [Reason("friends_liked", 0.5, {"friends": [{"id": "7", "name": "Ann"}, {"id": "8", "name": "Bo"}], "count": 4}),
               Reason("similar_to", 0.9, {"item": {"id": "3", "name": "Oasis"}})]
    assert render_sentence("Blur", reasons) == \
        "Blur: recommended because it is similar to Oasis, which you liked and Ann, Bo and 2 others like it."
    assert grounded_names(reasons, "Blur") >= {"Blur", "Ann", "Bo", "Oasis"}
    with pytest.raises(ValueError, match="unknown reason kind"):
        Reason("because")


def test_grounding_check_accepts_names_with_dots() -> None:
    reasons = [Reason("similar_to", 1.0, {"item": {"id": "1", "name": "Dr. Dre"}})]
    template = render_sentence("B.B. King", reasons)
    assert grounding_check(template, reasons, "B.B. King", template) == (True, [])


def test_grounding_check_rejects_invented_or_missing_names() -> None:
    reasons = [Reason("friends_liked", 1.0, {"friends": [{"id": "7", "name": "Ann"}], "count": 1})]
    template = render_sentence("Blur", reasons)
    assert grounding_check("You'll love Blur, since Ann likes it too!", reasons, "Blur", template)[0]
    ok, problems = grounding_check("You'll love Blur, just like Madonna does!", reasons, "Blur", template)
    assert not ok and any("Madonna" in p for p in problems) and any("Ann" in p for p in problems)
    assert not grounding_check("", reasons, "Blur", template)[0]


def test_tag_affinity_ranks_and_explains_with_the_tags_history_and_item_share() -> None:
    import pandas as pd

    from socialrec.ingest.schema import with_tag_assignments
    from tests.contracts.recommender_contract import block_data, block_social_dataset

    data = block_data()  # 4 blocks of 12 users x 10 items
    ds = block_social_dataset(data, 12)
    tags = pd.DataFrame({"item": [str(i) for i in range(40)], "tag": [f"genre{i // 10}" for i in range(40)]})
    ds = with_tag_assignments(ds, tags)
    split = random_split(ds, (0.8, 0.1, 0.1), seed=0)
    model = HybridRecommender(channels=("itemknn", "pop"), n_candidates=30, ranker="lightgbm").fit(split.train_data())
    col = model.features_.names.index("content:tag_affinity")
    fm = model._features(np.array([0]))  # user 0 is in block 0
    same_block = fm.items // 10 == 0
    assert fm.values[same_block, col].min() > 0.99 and fm.values[~same_block, col].max() == 0.0
    reason = RecommendationPipeline(model, ds).explainer._reason("content", 0.5, 0, 3, {"text": np.array([-1]), "user": 0})
    assert reason == Reason("matches_interest", 0.5, {"tags": ["genre0"]})
    assert model.features_.tag_profiles_.shared_tags(0, 13) == []  # a block-1 item shares nothing with user 0


def test_two_signals_citing_the_same_liked_item_give_one_reason_with_both_weights() -> None:
    from socialrec.explain.explainer import merge_repeated

    x = {"item": {"id": "7", "name": "Blur"}}
    reasons = [Reason("similar_to", 0.5, x), Reason("friends_liked", 0.25, {"friends": [{"id": "2", "name": "Ann"}]}),
               Reason("similar_to", 0.125, dict(x)), Reason("similar_to", 0.0625, {"item": {"id": "8", "name": "Oasis"}})]
    merged = merge_repeated(reasons)
    assert [(r.kind, r.weight) for r in merged] == [("similar_to", 0.625), ("friends_liked", 0.25), ("similar_to", 0.0625)]
    assert merged[0].evidence == x
