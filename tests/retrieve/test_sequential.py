"""sasrec / lm-seq learn what comes next from the order of a user's items, and an online event
moves the next recommendation at once."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from socialrec.ingest.schema import build_dataset
from socialrec.retrieve.base import TrainData

pytest.importorskip("torch")

from socialrec.retrieve.sequential import SASRec, TextFallbackWarning, sequence_keys, user_sequences  # noqa: E402

N_ITEMS, N_USERS, LENGTH = 12, 120, 5
FAST = dict(embedding_dim=32, n_layers=1, n_heads=1, dropout=0.0, learning_rate=0.01, batch_size=16, epochs=25,
            patience=25, num_threads=1, random_state=0)


def chain_dataset(n_users: int = N_USERS, seed: int = 0) -> "object":
    """Each user walks the cycle 0 -> 1 -> ... -> 11 -> 0 for LENGTH steps from a random start:
    the right next item is the successor of the newest one. The set of items alone does not say
    which item is newest (any window of the cycle has the same co-occurrences)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        start = int(rng.integers(N_ITEMS))
        for t in range(LENGTH):
            rows.append((str(u), str((start + t) % N_ITEMS), float(t)))
    inter = pd.DataFrame(rows, columns=["user", "item", "timestamp"])
    return build_dataset("chains", inter, users=pd.DataFrame({"id": [str(u) for u in range(n_users)]}),
                         items=pd.DataFrame({"id": [str(i) for i in range(N_ITEMS)]}))


def titled_chains(n_users: int, title: str = "game number {i}") -> "object":
    """`chain_dataset` with a title per item (``title`` formatted with the item's index)."""
    from dataclasses import replace

    titles = pd.DataFrame({"owner": "item", "index": np.arange(N_ITEMS, dtype=np.int32), "field": "title",
                           "text": [title.format(i=i) for i in range(N_ITEMS)], "timestamp": np.nan})
    return replace(chain_dataset(n_users=n_users), texts=titles)


@pytest.fixture(scope="module")
def chains() -> tuple["object", SASRec]:
    ds = chain_dataset()
    return ds, SASRec(**FAST).fit(TrainData(user_items=ds.user_item_matrix(), dataset=ds))


def _newest(ds: "object") -> np.ndarray:
    inter = ds.interactions.sort_values(["user", "timestamp"])
    return inter.groupby("user")["item"].last().to_numpy()


def test_sequences_follow_the_timestamps() -> None:
    ds = chain_dataset(n_users=3)
    keys = sequence_keys(ds, ds.user_item_matrix())
    seqs = user_sequences(keys, np.arange(3), LENGTH + 2)
    inter = ds.interactions.sort_values(["user", "timestamp"])
    for u in range(3):
        assert seqs[u, :2].tolist() == [0, 0]  # left padding
        assert (seqs[u, 2:] - 1).tolist() == inter.loc[inter["user"] == u, "item"].tolist()


def test_recommends_the_successor_of_the_newest_item(chains: tuple) -> None:
    ds, model = chains
    top = model.recommend(np.arange(N_USERS), k=1)[0][:, 0]
    assert (top == (_newest(ds) + 1) % N_ITEMS).mean() >= 0.95


def test_a_new_event_moves_the_next_item_at_once(chains: tuple) -> None:
    ds, model = chains
    import copy

    model = copy.deepcopy(model)
    users = np.arange(20)
    nxt = (_newest(ds)[users] + 1) % N_ITEMS
    rows = sp.lil_matrix(ds.user_item_matrix()[users])
    rows[np.arange(len(users)), nxt] = 1.0  # the user took the recommended item: an online event
    model.partial_fit_users(users, sp.csr_matrix(rows))
    top = model.recommend(users, k=1)[0][:, 0]
    assert (top == (nxt + 1) % N_ITEMS).mean() >= 0.9
    assert (model.recent_items(0, 2) == [nxt[0], _newest(ds)[0]]).all()


def test_lm_seq_without_texts_falls_back_to_ids_and_says_so() -> None:
    ds = chain_dataset(n_users=30)
    with pytest.warns(TextFallbackWarning, match="falls back to item ids"):
        model = SASRec(**{**FAST, "epochs": 2}, text_encoder="minilm-onnx").fit(
            TrainData(user_items=ds.user_item_matrix(), dataset=ds))
    assert model.fit_choices()["text_used"] is False
    with pytest.raises(NotImplementedError, match="cannot place new items"):
        model.partial_fit_items(["x"], ["a new game"])


def test_bad_settings_are_refused() -> None:
    m = sp.csr_matrix(np.eye(4, dtype=np.float32))
    with pytest.raises(ValueError, match="loss must be one of"):
        SASRec(loss="bce").fit(m)
    with pytest.raises(ValueError, match="multiple of n_heads"):
        SASRec(embedding_dim=10, n_heads=4).fit(m)


def test_an_epoch_of_a_small_dataset_has_at_least_min_epoch_steps() -> None:
    ds = chain_dataset(n_users=40)
    train = TrainData(user_items=ds.user_item_matrix(), dataset=ds)
    one_pass = SASRec(**{**FAST, "epochs": 2, "batch_size": 16}).fit(train)
    assert [r["steps"] for r in one_pass.history_] == [3, 3]  # 40 users in batches of 16
    longer = SASRec(**{**FAST, "epochs": 2, "batch_size": 16}, min_epoch_steps=7).fit(train)
    assert [r["steps"] for r in longer.history_] == [9, 9]  # whole passes until >= 7 steps
    with pytest.raises(ValueError, match="min_epoch_steps must be >= 1"):
        SASRec(min_epoch_steps=0).fit(train)


def test_weight_averaging_validates_and_keeps_the_average_not_the_last_weights() -> None:
    ds = chain_dataset()
    train = TrainData(user_items=ds.user_item_matrix(), dataset=ds)
    short = {**FAST, "epochs": 3, "patience": 3}
    # A decay this close to 1 keeps the average at the initial weights whatever training does:
    # two fits at different learning rates then validate and keep the same (untrained) network.
    slow = SASRec(**{**short, "learning_rate": 0.01}, average=1 - 1e-12).fit(train)
    fast = SASRec(**{**short, "learning_rate": 0.05}, average=1 - 1e-12).fit(train)
    for name, weight in slow.net_.state_dict().items():
        assert np.allclose(weight.numpy(), fast.net_.state_dict()[name].numpy(), atol=1e-6), name
    scores = [r["valid_ndcg@10"] for r in slow.history_]
    assert scores == [scores[0]] * 3 and slow.best_epoch_ == 1
    moved = SASRec(**{**short, "learning_rate": 0.01}).fit(train)  # no average: training moves the weights
    assert max(float(abs(w - slow.net_.state_dict()[n]).max()) for n, w in moved.net_.state_dict().items()) > 0.05
    # A usual decay still learns the chain, and training goes on from the iterate, not the average.
    model = SASRec(**FAST, average=0.9).fit(train)
    top = model.recommend(np.arange(N_USERS), k=1)[0][:, 0]
    assert (top == (_newest(ds) + 1) % N_ITEMS).mean() >= 0.95
    with pytest.raises(ValueError, match=r"average .* must be in \[0, 1\)"):
        SASRec(average=1.0).fit(train)


def test_fine_tuning_keeps_stage_one_unless_validation_rises_and_leaves_the_backbone_alone() -> None:
    pytest.importorskip("peft")
    pytest.importorskip("transformers")
    from tests.retrieve.test_two_tower import tiny_backbone

    backbone = tiny_backbone()
    before = {k: v.clone() for k, v in backbone.model.state_dict().items()}
    ds = titled_chains(60, "game number {i} of the cycle")
    for mode in ("lora", "full"):
        model = SASRec(**{**FAST, "epochs": 3}, mode=mode, lm_epochs=2, lm_steps=3, lm_batch_users=8, lm_items=6,
                       lm_max_length=12, backbone=backbone).fit(TrainData(user_items=ds.user_item_matrix(), dataset=ds))
        ch = model.fit_choices()
        assert ch["mode"] == mode and ch["text_used"] and ch["lm_step_budget"] == 6
        assert ch["lm"]["valid_ndcg"] >= ch["lm"]["stage1_valid_ndcg"]
        stage2 = [r["valid_ndcg@10"] for r in model.history_ if r["stage"] == mode]
        assert len(stage2) >= 1
        assert ch["lm"]["epoch_valid_ndcg"] == [round(v, 6) for v in stage2]  # what the modes table reports
        # LoRA trains adapters only (a few thousand weights); full trains every layer's weights.
        n_lora = ch["lm"]["trainable_lm_parameters"]
        assert (n_lora < 3000) if mode == "lora" else (n_lora > 15000)
    after = backbone.model.state_dict()
    assert all(torch_equal(before[k], after[k]) for k in before)  # the shared LM is never modified


def test_stage_two_stops_after_lm_patience_epochs_without_a_better_validation_score(monkeypatch) -> None:
    pytest.importorskip("peft")
    pytest.importorskip("transformers")
    from tests.retrieve.test_two_tower import tiny_backbone

    ds = titled_chains(40)
    backbone = tiny_backbone()
    # Scripted validation scores: stage 1 (one epoch) 0.5, then stage 2's epochs in order.
    for patience, stage2_epochs, kept in ((1, 1, 0), (2, 4, 2), (3, 5, 2)):
        scores = iter([0.5, 0.4, 0.6, 0.3, 0.2, 0.1, 0.05])
        monkeypatch.setattr(SASRec, "_validation_ndcg", lambda self, *a, **k: next(scores))
        model = SASRec(**{**FAST, "epochs": 1}, mode="lora", lm_epochs=5, lm_steps=1, lm_batch_users=8,
                       lm_items=6, lm_max_length=8, lm_patience=patience, backbone=backbone)
        model.fit(TrainData(user_items=ds.user_item_matrix(), dataset=ds))
        ran = [r["valid_ndcg@10"] for r in model.history_ if r["stage"] == "lora"]
        assert ran == [0.4, 0.6, 0.3, 0.2, 0.1][:stage2_epochs]
        assert model.fit_choices()["lm"].get("kept_lm_epoch", 0) == kept
    with pytest.raises(ValueError, match="lm_patience must be >= 1"):
        SASRec(mode="lora", lm_patience=0).fit(sp.csr_matrix(np.eye(4, dtype=np.float32)))


def autocast_spy(monkeypatch, device_type: str = "cpu") -> list[tuple[bool, str]]:
    """Records, for every training loss, whether bfloat16 autocast was on for ``device_type`` and
    the weights' dtype."""
    import torch

    seen: list[tuple[bool, str]] = []
    loss = SASRec._loss

    def spy(self, torch_, net, *a, **k):
        on = torch.is_autocast_enabled(device_type) and torch.get_autocast_dtype(device_type) == torch.bfloat16
        seen.append((on, str(next(net.parameters()).dtype)))
        return loss(self, torch_, net, *a, **k)

    monkeypatch.setattr(SASRec, "_loss", spy)
    return seen


def test_mixed_precision_trains_in_bfloat16_with_float32_weights_and_still_learns_the_chain(monkeypatch) -> None:
    ds = chain_dataset()
    train = TrainData(user_items=ds.user_item_matrix(), dataset=ds)
    seen = autocast_spy(monkeypatch)
    model = SASRec(**FAST, precision="bf16").fit(train)
    assert seen and set(seen) == {(True, "torch.float32")}  # every step under autocast, weights float32
    top = model.recommend(np.arange(N_USERS), k=1)[0][:, 0]
    assert (top == (_newest(ds) + 1) % N_ITEMS).mean() >= 0.95
    seen.clear()
    SASRec(**{**FAST, "epochs": 2}).fit(train)  # "auto" on a CPU: float32 throughout
    assert seen and set(seen) == {(False, "torch.float32")}
    with pytest.raises(ValueError, match="precision must be one of"):
        SASRec(precision="fp16").fit(train)


def test_mixed_precision_covers_the_language_models_fine_tuning(monkeypatch) -> None:
    pytest.importorskip("peft")
    pytest.importorskip("transformers")
    from socialrec.represent import finetune
    from tests.retrieve.test_two_tower import tiny_backbone

    ds = titled_chains(40)
    seen = autocast_spy(monkeypatch)
    mlm_calls: list[dict] = []
    mlm_adapt = finetune.mlm_adapt

    def mlm_spy(*a, **k):
        mlm_calls.append(k)
        return mlm_adapt(*a, **k)

    monkeypatch.setattr(finetune, "mlm_adapt", mlm_spy)
    model = SASRec(**{**FAST, "epochs": 2}, mode="lora", dapt=True, dapt_steps=2, dapt_batch_size=4, lm_epochs=1,
                   lm_steps=2, lm_batch_users=8, lm_items=6, lm_max_length=8, backbone=tiny_backbone(),
                   precision="bf16")
    model.fit(TrainData(user_items=ds.user_item_matrix(), dataset=ds))
    stage2 = [r for r in model.history_ if r["stage"] == "lora"]
    assert len(stage2) == 1 and np.isfinite(stage2[0]["loss"])
    assert len(seen) == sum(r.get("steps", 0) for r in model.history_) + 2  # stage 1's steps, stage 2's two
    assert all(on for on, _ in seen)
    # the masked-language-model pretraining got the model's device and precision
    assert [(k["device"], k["mixed_precision"]) for k in mlm_calls] == [("cpu", True)]
    assert model.text_features_.dtype == np.float32  # the refreshed item vectors stay float32


def torch_equal(a: "object", b: "object") -> bool:
    import torch

    return bool(torch.equal(a, b))


def test_masked_language_model_pretraining_learns_the_platforms_text() -> None:
    pytest.importorskip("transformers")
    from socialrec.represent.finetune import mlm_adapt, torch_threads
    from tests.retrieve.test_two_tower import tiny_backbone

    backbone = tiny_backbone()
    texts = ["space shooter with lasers", "racing game with fast cars", "puzzle game with blocks"] * 10
    with torch_threads(1):  # torch's default threads spin-wait for each other on a busy machine
        adapted, log = mlm_adapt(backbone, texts, steps=40, batch_size=16, lr=1e-3, head_lr=1e-2, max_length=12)
        # the same in bfloat16 mixed precision (what a GPU fit runs): it learns too
        mixed, mixed_log = mlm_adapt(backbone, texts, steps=40, batch_size=16, lr=1e-3, head_lr=1e-2,
                                     max_length=12, mixed_precision=True)
    assert log.steps == 40 and log.last_loss < log.first_loss * 0.7
    assert adapted.name.endswith("+mlm40") and adapted.model is not backbone.model
    assert mixed_log.last_loss < mixed_log.first_loss * 0.7 and mixed_log.last_loss != log.last_loss
    assert str(next(mixed.model.parameters()).dtype) == "torch.float32"  # the weights stay float32


def test_bad_lm_settings_are_refused() -> None:
    m = sp.csr_matrix(np.eye(4, dtype=np.float32))
    with pytest.raises(ValueError, match="mode must be one of"):
        SASRec(mode="qlora").fit(m)
    with pytest.raises(ValueError, match="lm_steps must be >= 1"):
        SASRec(mode="lora", lm_steps=0).fit(m)


def _topic_dataset(n_users: int = 80, per_topic: int = 6, seed: int = 0) -> tuple["object", np.ndarray]:
    """Two topics of ``per_topic`` items (titles from tests/retrieve/test_content's TOPICS);
    each user walks their own topic's items in order; the last item of each topic has no
    interaction at all (a cold item). Returns the dataset and each user's topic."""
    from tests.retrieve.test_content import TOPICS

    rng = np.random.default_rng(seed)
    topic = rng.integers(2, size=n_users)
    rows = [(str(u), str(topic[u] * per_topic + (s + t) % (per_topic - 1)), float(t))
            for u, s in enumerate(rng.integers(per_topic - 1, size=n_users)) for t in range(4)]
    inter = pd.DataFrame(rows, columns=["user", "item", "timestamp"])
    n_items = 2 * per_topic
    items = pd.DataFrame({"id": [str(i) for i in range(n_items)],
                          "title": [f"{TOPICS[i // per_topic]} item{i}" for i in range(n_items)]})
    return build_dataset("topics", inter, users=pd.DataFrame({"id": [str(u) for u in range(n_users)]}),
                         items=items), topic


def test_a_cold_item_is_its_text_alone_in_training_and_serving() -> None:
    # The items nobody had (5 and 11) are placed by their text's projection (their untrained id
    # embeddings are dropped everywhere, as item_dropout drops others' in training): a user of
    # a topic ranks that topic's cold item above the other topic's.
    from tests.retrieve.test_content import ENCODER

    ds, topic = _topic_dataset()
    model = SASRec(**FAST, encoder_object=ENCODER, cache=False, item_dropout=0.5, text_match_half_life=2.0)
    model.fit(TrainData(user_items=ds.user_item_matrix(), dataset=ds))
    cold = np.array([int(ds.items.to_index("5")), int(ds.items.to_index("11"))])
    assert sorted(model.text_only_items_.tolist()) == sorted(cold.tolist())
    import torch

    with torch.no_grad():
        alone = model.net_.text(torch.from_numpy(model.text_features_[cold].astype(np.float64))).numpy()
    np.testing.assert_allclose(model.item_vectors_[cold, :model.embedding_dim], alone, rtol=1e-5, atol=1e-6)
    scores = model.user_vectors_ @ model.item_vectors_[cold].T
    right = np.where(topic == 0, scores[:, 0] > scores[:, 1], scores[:, 1] > scores[:, 0])
    assert right.mean() >= 0.95
    assert model.fit_choices()["text_match_weight"] > 0
    assert model.item_vectors_.shape[1] == model.embedding_dim + ENCODER.dim


def test_a_temperature_scores_cosines_in_training_and_serving() -> None:
    # With a temperature every score is the cosine of the user's and the item's vectors over it:
    # item rows are unit vectors, user rows have norm 1 / temperature, so no score exceeds it;
    # the chain is still learnt, and a new item placed from its text is a unit row too.
    from tests.retrieve.test_content import ENCODER

    ds = chain_dataset()
    model = SASRec(**FAST, temperature=0.1).fit(TrainData(user_items=ds.user_item_matrix(), dataset=ds))
    np.testing.assert_allclose(np.linalg.norm(model.item_vectors_, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(model.user_vectors_, axis=1), 10.0, rtol=1e-5)
    ids, scores = model.recommend(np.arange(N_USERS), k=3)
    assert scores.max() <= 10.0 + 1e-6
    assert (ids[:, 0] == (_newest(ds) + 1) % N_ITEMS).mean() >= 0.95
    topics, _ = _topic_dataset()
    lm = SASRec(**{**FAST, "epochs": 3}, encoder_object=ENCODER, cache=False, temperature=0.1)
    lm.fit(TrainData(user_items=topics.user_item_matrix(), dataset=topics))
    index = lm.partial_fit_items(["new"], ["a brand new item"])
    np.testing.assert_allclose(np.linalg.norm(lm.item_vectors_[index], axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="temperature must be None or > 0"):
        SASRec(temperature=0.0).fit(sp.csr_matrix(np.eye(4, dtype=np.float32)))


def test_the_temperature_divides_cosine_logits_in_the_loss() -> None:
    # The training loss with a temperature is the softmax over cosines / temperature: it equals
    # the loss computed by hand from unit vectors, and differs from the dot-product loss.
    import torch

    ds = chain_dataset(n_users=20)
    model = SASRec(**{**FAST, "epochs": 1}, temperature=0.5, loss="full-softmax").fit(
        TrainData(user_items=ds.user_item_matrix(), dataset=ds))
    net = model.net_.float()
    x, y = torch.tensor([[1, 2, 3]]), torch.tensor([[2, 3, 4]])
    rng = np.random.default_rng(0)
    with torch.no_grad():
        table = net.table(None)
        got = float(model._loss(torch, net, table, x, y, rng, None, None))
        h = torch.nn.functional.normalize(net(x, table)[0], dim=-1)
        unit = torch.nn.functional.normalize(table[1:], dim=-1)
        expected = float(torch.nn.functional.cross_entropy(h @ unit.T / 0.5, y[0] - 1))
        model.temperature = None
        dot = float(model._loss(torch, net, table, x, y, rng, None, None))
    assert got == pytest.approx(expected, rel=1e-5)
    assert dot != pytest.approx(expected, rel=1e-3)
