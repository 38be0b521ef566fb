"""Scenario adapters with known answers: adapters really switch, their size is LoRA's formula, and
a backbone learnt on one domain ranks a never-seen domain by its item texts (zero-shot)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from socialrec.ingest.schema import build_dataset
from socialrec.retrieve.base import TrainData

pytest.importorskip("torch")
pytest.importorskip("peft")

from socialrec.retrieve.scenarios import (AdapterSeq, DomainData, SharedBackbone, popularity_features,  # noqa: E402
                                          share_users)
from tests.retrieve.test_content import ENCODER, TOPICS  # noqa: E402

FAST = dict(embedding_dim=32, n_layers=1, n_heads=1, dropout=0.0, learning_rate=0.01, batch_size=16, epochs=15,
            patience=15, adapter_epochs=5, min_steps=5, adapter_patience=5, num_threads=1, random_state=0)


def topic_domain(prefix: str, users_per_topic: list[int], items_per_topic: int, items_per_user: int,
                 seed: int) -> TrainData:
    """Users of topic t have only topic t's items; item texts are the topic's words plus an id
    word of this domain (``prefix``). Interactions come in a random order in time."""
    rng = np.random.default_rng(seed)
    rows, cols = [], []
    u = 0
    for t, n_users in enumerate(users_per_topic):
        for _ in range(n_users):
            items = rng.choice(items_per_topic, items_per_user, replace=False) + t * items_per_topic
            rows += [u] * items_per_user
            cols += items.tolist()
            u += 1
    n_items = len(users_per_topic) * items_per_topic
    inter = pd.DataFrame({"user": np.array(rows).astype(str), "item": np.array(cols).astype(str),
                          "timestamp": rng.permutation(len(rows)).astype(float)})
    titles = [f"{TOPICS[i // items_per_topic]} {prefix}{i}" for i in range(n_items)]
    items = pd.DataFrame({"id": [str(i) for i in range(n_items)], "title": titles})
    texts = pd.DataFrame({"owner": "item", "id": items["id"], "field": "title", "text": titles})
    ds = build_dataset(prefix, inter, items=items, texts=texts, users=pd.DataFrame({"id": [str(i) for i in range(u)]}))
    m = sp.csr_matrix((np.ones(len(rows), np.float32), (ds.users.to_index(np.array(rows).astype(str)),
                                                        ds.items.to_index(np.array(cols).astype(str)))),
                      shape=(ds.n_users, ds.n_items))
    return TrainData(user_items=m, dataset=ds)


@pytest.fixture(scope="module")
def source() -> TrainData:
    return topic_domain("song", [12, 12, 12, 12], 10, 7, seed=0)


@pytest.fixture(scope="module")
def backbone(source: TrainData) -> SharedBackbone:
    maker = AdapterSeq(**FAST, encoder_object=ENCODER, cache=False, scenario="music")
    return maker.backbone_config().pretrain({"music": maker.domain_data(source)[0]})


def own_topic_share(model: AdapterSeq, train: TrainData, items_per_topic: int, k: int = 5) -> float:
    users = np.arange(train.n_users)
    ids, _ = model.recommend(users, k=k)
    topic_of_user = np.array([train.user_items[u].indices[0] // items_per_topic for u in users])
    return float((ids // items_per_topic == topic_of_user[:, None]).mean())


def test_zero_shot_ranks_a_new_domain_by_its_texts_better_than_popularity(backbone: SharedBackbone) -> None:
    from socialrec.retrieve.popular import MostPopular

    # A never-seen domain (other items, other id words, the same topic words); topic 3 has most
    # users, so popularity recommends its items to everyone.
    target = topic_domain("film", [4, 4, 4, 20], 15, 6, seed=1)
    zero = AdapterSeq(**FAST, backbone=backbone, scenario="films", mode="zero-shot", encoder_object=ENCODER,
                      cache=False).fit(target)
    pop = MostPopular().fit(target)
    topic_of_user = np.array([target.user_items[u].indices[0] // 15 for u in range(target.n_users)])
    pop_ids, _ = pop.recommend(np.arange(target.n_users), k=5)
    pop_share = float((pop_ids // 15 == topic_of_user[:, None]).mean())
    zero_share = own_topic_share(zero, target, 15)
    assert pop_share < 0.7
    assert zero_share >= 0.9 and zero_share > pop_share + 0.2, (zero_share, pop_share)
    assert zero.adapter_ is None and zero.adapter_parameters() == 0 and zero.fit_choices()["learn_users"] == 0


def test_adapters_switch_and_leave_the_backbone_alone(backbone: SharedBackbone, source: TrainData) -> None:
    import copy

    bb = copy.deepcopy(backbone)
    data = AdapterSeq(**FAST, encoder_object=ENCODER, cache=False).domain_data(source)[0]
    text = data.text
    base = bb.item_table(None, None, text)
    ids_a, _ = bb.add_adapter("a", data)
    # A second scenario learns from another domain: the topics' users swapped round.
    swapped = DomainData(sp.csr_matrix(data.keys[::-1]), sp.csr_matrix(data.valid[::-1]), text)
    ids_b, _ = bb.add_adapter("b", swapped)
    assert bb.adapters == ["a", "b"]
    ta, tb = bb.item_table("a", None, text), bb.item_table("b", None, text)
    assert not np.allclose(ta, tb, atol=1e-4) and not np.allclose(ta, base, atol=1e-4)
    np.testing.assert_allclose(bb.item_table(None, None, text), base, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(bb.item_table("a", None, text), ta, rtol=1e-6, atol=1e-6)  # back to a: as before
    users = np.arange(5)
    va = bb.user_vectors("a", data.keys, users, ta)
    assert not np.allclose(va, bb.user_vectors("b", data.keys, users, ta), atol=1e-4)
    with pytest.raises(KeyError, match=r"no adapter for scenario 'c'; known: \['a', 'b'\]"):
        bb.set_adapter("c")


def test_adapter_size_is_loras_formula(backbone: SharedBackbone, source: TrainData) -> None:
    model = AdapterSeq(**FAST, backbone=backbone, scenario="music", encoder_object=ENCODER, cache=False).fit(source)
    d, r, text_dim = 32, 3, ENCODER.dim + 2  # + the two popularity features
    # LoRA adds r * (in + out) per adapted layer: the text projection and the block's six d x d layers.
    assert model.adapter_parameters() == r * ((text_dim + d) + 6 * 2 * d)
    # The backbone: projection, positions (max_len 50), six biased d x d layers, three layer norms.
    assert backbone.backbone_parameters() == text_dim * d + 50 * d + 6 * (d * d + d) + 3 * 2 * d
    assert model.fit_choices()["adapter_parameters"] == model.adapter_parameters()
    # At the default size (64-d, 2 layers, rank 3, MiniLM's 384-d texts) an adapter is under 10%.
    default = SharedBackbone(epochs=1)
    default.pretrain({"music": DomainData(sp.csr_matrix(source.user_items), sp.csr_matrix(source.user_items.shape),
                                          np.zeros((source.n_items, 386), np.float32))})
    default._new_adapter("x")
    adapter, full = default.adapter_parameters("x"), default.backbone_parameters()
    assert adapter == 3 * ((386 + 64) + 2 * 6 * 2 * 64)
    assert full == 386 * 64 + 50 * 64 + 2 * (6 * (64 * 64 + 64) + 4 * 64) + 2 * 64
    assert adapter / full <= 0.1


def test_one_backbone_serves_two_scenarios_after_a_save(backbone: SharedBackbone, source: TrainData,
                                                        tmp_path: object) -> None:
    import copy
    import pickle

    bb = copy.deepcopy(backbone)
    other = topic_domain("film", [6, 6, 6, 6], 15, 6, seed=2)
    music = AdapterSeq(**FAST, backbone=bb, scenario="music", encoder_object=ENCODER, cache=False).fit(source)
    films = AdapterSeq(**FAST, backbone=bb, scenario="films", encoder_object=ENCODER, cache=False).fit(other)
    assert music.backbone_ is films.backbone_ and bb.adapters == ["music", "films"]
    music_again, films_again = pickle.loads(pickle.dumps([music, films]))
    assert music_again.backbone_ is films_again.backbone_  # still one backbone
    np.testing.assert_array_equal(films_again.recommend(np.arange(8), k=5)[0], films.recommend(np.arange(8), k=5)[0])
    # A fold-in after loading runs through the right adapter: refolding a user keeps their vector.
    before = music_again.user_vectors_[[3]].copy()
    music_again.partial_fit_users([3], source.user_items[[3]])
    np.testing.assert_allclose(music_again.user_vectors_[[3]], before, rtol=1e-4, atol=1e-5)


def test_share_users_is_a_seeded_subset() -> None:
    keys = sp.csr_matrix(np.eye(200, 5, dtype=np.float32) + np.eye(200, 5, k=-5, dtype=np.float32))
    have = np.flatnonzero(np.diff(keys.indptr) > 0)
    a, b = share_users(keys, 0.2, 3), share_users(keys, 0.2, 3)
    np.testing.assert_array_equal(a, b)
    assert len(a) == round(0.2 * len(have)) and set(a) <= set(have)
    assert not np.array_equal(a, share_users(keys, 0.2, 4))
    assert len(share_users(keys, 0.0001, 0)) == 1 and len(share_users(keys, 0.0, 0)) == 0
    np.testing.assert_array_equal(share_users(keys, 1.0, 0), have)
    with pytest.raises(ValueError, match=r"user_share must be in \[0, 1\]"):
        share_users(keys, 1.5, 0)


def test_popularity_features_mean_the_same_in_any_domain() -> None:
    f = popularity_features(np.array([0, 1, 1, 9]))
    np.testing.assert_allclose(f[:, 0], np.log1p([0, 1, 1, 9]) / np.log1p(9), rtol=1e-6)
    np.testing.assert_allclose(f[:, 1], [0.125, 0.5, 0.5, 0.875])
    np.testing.assert_allclose(popularity_features(np.array([0, 10, 10, 90]))[:, 1], f[:, 1])


def test_zero_shot_needs_a_backbone_and_modes_are_checked(source: TrainData) -> None:
    with pytest.raises(ValueError, match="needs a pretrained backbone"):
        AdapterSeq(mode="zero-shot", encoder_object=ENCODER).fit(source)
    with pytest.raises(ValueError, match="mode must be one of"):
        AdapterSeq(mode="other", encoder_object=ENCODER).fit(source)
    with pytest.raises(ValueError, match="user_share must be > 0"):
        AdapterSeq(mode="adapter", user_share=0.0, encoder_object=ENCODER).fit(source)


def test_an_adapter_that_only_hurts_keeps_the_backbone_as_it_is(backbone: SharedBackbone) -> None:
    # A learning rate far too large ruins every trained epoch: the early stopping keeps epoch 0,
    # where the new adapter is the backbone itself, so the model ranks exactly as zero-shot does.
    target = topic_domain("film", [4, 4, 4, 20], 15, 6, seed=1)
    common = dict(FAST, backbone=backbone, encoder_object=ENCODER, cache=False, prior=False)
    zero = AdapterSeq(**common, scenario="films-0", mode="zero-shot").fit(target)
    ruined = AdapterSeq(**{**common, "adapter_learning_rate": 5.0}, scenario="films-x", user_share=0.25).fit(target)
    assert ruined.fit_choices()["kept_epochs"] == [0]
    users = np.arange(target.n_users)
    np.testing.assert_array_equal(ruined.recommend(users, k=5)[0], zero.recommend(users, k=5)[0])


def test_a_new_item_has_the_popularity_features_of_a_count_of_zero() -> None:
    from socialrec.retrieve.scenarios import new_item_features

    # counts 0, 0, 3, 5 and the new item's 0: three tied at 0 of five -> (0 + 3) / (2 * 5) = 0.3
    np.testing.assert_allclose(new_item_features(np.array([0, 0, 3, 5]), 2), [[0.0, 0.3], [0.0, 0.3]])
    # nobody below it and no other zero: only half of itself
    np.testing.assert_allclose(new_item_features(np.array([2, 7]), 1), [[0.0, 1 / 6]], rtol=1e-6)
