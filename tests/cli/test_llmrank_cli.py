"""`socialrec evaluate --protocol llmrank` on the real amazon-games files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from socialrec.cli.main import main

pytestmark = pytest.mark.realdata


def test_llmrank_protocol_from_the_cli(real_amazon_games, real_data: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "llmrank.json"
    rc = main(["--data", str(real_data), "evaluate", "--dataset", "amazon-games", "--protocol", "llmrank",
               "--models", "pop", "--quick", "--output", str(out)])
    assert rc == 0
    doc = json.loads(out.read_text())
    pop = doc["models"]["pop"]
    assert pop["ndcg@10_x100"] == pytest.approx(100 * pop["ndcg@10"], abs=0.01)
    # Popularity is far above random order (22.72) on LLMRank's random candidates.
    assert doc["expected_random_ndcg@10_x100"] == pytest.approx(22.7178, abs=1e-3)
    assert 45 < pop["ndcg@10_x100"] < 60
    # Settings are chosen on Games-6k.random's 6,000 users' validation items, not the 200 test users'.
    assert pop["valid_users"] == 6000
    assert "NDCG@10 x100" in capsys.readouterr().out


def test_llmrank_refuses_other_datasets(real_data: Path, capsys) -> None:
    rc = main(["--data", str(real_data), "evaluate", "--dataset", "movielens-100k", "--protocol", "llmrank",
               "--models", "pop", "--quick"])
    assert rc == 2 and "amazon-games only" in capsys.readouterr().err


def test_llmrank_tunes_on_the_6k_users_and_tests_on_the_200(real_amazon_games, real_data: Path) -> None:
    from socialrec.evaluate.candidates import llmrank_tasks
    from socialrec.ingest.datasets.amazon import load_llmrank_candidates, load_llmrank_tuning_candidates
    from socialrec.ingest.split import make_split

    ds = real_amazon_games
    split = make_split(ds, "fixed")
    test_lists, tuning_lists = load_llmrank_candidates(real_data), load_llmrank_tuning_candidates(real_data)
    valid, test = llmrank_tasks(ds, split, test_lists, tuning_lists)
    assert len(test.users) == 200 and len(valid.users) == 6000
    assert set(test.users) <= set(valid.users)
    valid_item = split.matrix("valid").tocsr()
    test_item = split.matrix("test").tocsr()
    for task, lists, truth in ((valid, tuning_lists, valid_item), (test, test_lists, test_item)):
        row = 7
        user = int(task.users[row])
        ext = ds.users.to_external([user])[0]
        listed = [int(i) for i in ds.items.to_index(list(lists[ext]))]
        truth_item = int(truth.indices[truth.indptr[user]])
        assert task.candidates[row, 0] == truth_item and task.relevant[row].tolist() == [True] + [False] * 19
        assert task.candidates[row, 1:].tolist() == [i for i in listed if i != truth_item][:19]
    # Without the 6k file, tuning falls back to the test users' own lists.
    fallback, _ = llmrank_tasks(ds, split, test_lists)
    assert np.array_equal(fallback.users, test.users)
