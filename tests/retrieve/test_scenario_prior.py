"""The text-popularity prior of scenario models, with known answers: its extreme fusions are
popularity and the network alone; a zero-shot model whose fusion is chosen on source domains only
beats popularity on a new domain whose texts carry the signal; the compact user vectors rank
exactly as the full array."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp

from socialrec.ingest.split import make_split

pytest.importorskip("torch")
pytest.importorskip("peft")

from socialrec.retrieve.scenarios import (AdapterSeq, fused_scores, fusion_candidates, history_profiles,  # noqa: E402
                                          prior_text)
from tests.retrieve.test_content import ENCODER  # noqa: E402
from tests.retrieve.test_scenarios import FAST, topic_domain  # noqa: E402


def test_fusion_extremes_are_popularity_and_the_network_alone() -> None:
    rng = np.random.default_rng(0)
    net = rng.normal(size=(3, 6)).astype(np.float32)
    text = rng.normal(size=(6, 4)).astype(np.float32)
    basis, t16 = prior_text(text, 4)
    log_pop = np.log1p(np.array([5, 0, 9, 1, 2, 3], np.float32))
    profiles = history_profiles(sp.csr_matrix(np.eye(3, 6, dtype=np.float32)), np.arange(3), t16, 10)
    alone, pop, text_only = fused_scores(net, profiles, t16, log_pop, [None, (0.0, 0.0), (0.0, 1e6)])
    np.testing.assert_array_equal(alone, net)
    np.testing.assert_array_equal(pop, np.tile(log_pop, (3, 1)))
    # a huge text exponent ranks by the cosine to the user's history text (user u has item u)
    cos = (t16.astype(np.float32) @ t16.astype(np.float32).T)[:3]
    np.testing.assert_array_equal(np.argsort(-text_only, axis=1)[:, 0], np.argsort(-cos, axis=1)[:, 0])
    # all 4 directions kept: the projection keeps every cosine (up to float16)
    unit = text / np.linalg.norm(text, axis=1, keepdims=True)
    np.testing.assert_allclose(t16.astype(np.float32) @ t16.astype(np.float32).T, unit @ unit.T, atol=2e-3)
    assert fusion_candidates((0.0, 1.0), (0.0, 2.0)) == [None, (0.0, 0.0), (0.0, 2.0), (1.0, 0.0), (1.0, 2.0)]


def _split(prefix: str, users: list[int], per_topic: int, per_user: int, seed: int):  # type: ignore[no-untyped-def]
    return make_split(topic_domain(prefix, users, per_topic, per_user, seed).dataset, "loo")


def test_zero_shot_fusion_is_chosen_on_sources_and_beats_popularity_on_a_new_domain() -> None:
    from socialrec.evaluate import transfer
    from socialrec.retrieve.popular import MostPopular

    settings = {**{k: v for k, v in FAST.items() if k != "random_state"}, "encoder_object": ENCODER, "cache": False}
    # Sources and target: users keep to one topic; texts name the topic. The target's topic 3 has
    # most users, so popularity recommends its items to everyone.
    sources = {"song": _split("song", [10, 10, 10, 10], 10, 7, 0), "book": _split("book", [8, 8, 8, 8], 12, 7, 3)}
    fusion, doc = transfer.choose_zero_shot_fusion(list(sources), sources, settings, seed=0)
    assert fusion is not None and fusion[1] > 0, doc  # the text carries the signal on the sources
    assert doc["how"] == "leave one source out" and set(doc["valid_ndcg@10"]) == set(sources)
    target = _split("film", [4, 4, 4, 20], 15, 6, 1)
    backbone = transfer.pretrain_backbone(list(sources), sources, settings, 0)
    backbone.zero_shot_fusion_ = fusion
    zero = AdapterSeq(**settings, backbone=backbone, scenario="film", mode="zero-shot",
                      random_state=0).fit(target.train_data())
    assert zero.fusion_ == fusion
    order = zero.keys_.data.copy()  # scoring the fusions reads the histories' order and leaves it alone
    zero.fusion_table(zero.keys_, target.train_data().valid_items)
    np.testing.assert_array_equal(zero.keys_.data, order)
    from socialrec.evaluate.protocol import evaluate

    z = evaluate(zero, target, part="test", ks=(10,), metrics=("ndcg",)).mean()["ndcg@10"]
    p = evaluate(MostPopular().fit(target.train_data()), target, part="test", ks=(10,),
                 metrics=("ndcg",)).mean()["ndcg@10"]
    assert z > p + 0.1, (z, p)


def test_compact_user_vectors_rank_exactly_as_the_full_array() -> None:
    from socialrec.retrieve.base import TrainData
    from socialrec.retrieve.scenarios import keep_rows

    train = topic_domain("song", [9, 9, 9, 9], 10, 6, seed=4)
    # the last 12 users have no item: they share the empty-history vector and take no rows
    rows = keep_rows(train.user_items, np.arange(24))
    model = AdapterSeq(**FAST, encoder_object=ENCODER, cache=False, scenario="song", mode="scratch",
                       prior=False).fit(TrainData(user_items=rows, dataset=train.dataset))
    full = model.user_vectors_
    assert full.shape == (36, 32) and model.__dict__["user_rows_"].shape == (24, 32)
    assert "user_vectors_" not in model.__dict__
    users = np.arange(36)
    np.testing.assert_array_equal(model.score(users), (full @ model.item_vectors_.T).astype(np.float32))
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.recommend(users, k=5)[0], model.recommend(users, k=5)[0])
    # a fold-in gives a user their own row; the others keep theirs
    model.partial_fit_users([30], train.user_items[[0]])
    assert not np.array_equal(model.user_vectors_[30], model.empty_user_vector_)
    np.testing.assert_array_equal(model.user_vectors_[31:], full[31:])
    assert model.__dict__["user_rows_"].shape == (25, 32)
