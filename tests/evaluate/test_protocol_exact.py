"""The full-ranking protocol checked to the list: who is evaluated, what is masked, which top
lists come back, how ties are drawn, what the extras hold, and what it prints. Each mutation of
evaluate/protocol.py that changes a reported number fails here."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from socialrec.errors import LeakageError
from socialrec.evaluate import metrics as M
from socialrec.evaluate.protocol import evaluate, masks_for
from socialrec.ingest.schema import SPLIT_TEST, SPLIT_TRAIN, SPLIT_VALID, build_dataset
from socialrec.ingest.split import Split, fixed_split
from socialrec.topk import rank_top_k

N_ITEMS = 8


def _split():  # type: ignore[no-untyped-def]
    """Four users over items 0-7:
    u0: train 0, 1; valid 2; test 3, 4
    u1: train 5; test 6 (a single held-out item)
    u2: train 0, 7 (nothing held out: not evaluated)
    u3: train 2; valid 3; test 1
    """
    rows = [("u0", 0, SPLIT_TRAIN), ("u0", 1, SPLIT_TRAIN), ("u0", 2, SPLIT_VALID), ("u0", 3, SPLIT_TEST),
            ("u0", 4, SPLIT_TEST), ("u1", 5, SPLIT_TRAIN), ("u1", 6, SPLIT_TEST), ("u2", 0, SPLIT_TRAIN),
            ("u2", 7, SPLIT_TRAIN), ("u3", 2, SPLIT_TRAIN), ("u3", 3, SPLIT_VALID), ("u3", 1, SPLIT_TEST)]
    inter = pd.DataFrame([(u, str(i), s) for u, i, s in rows], columns=["user", "item", "split"])
    items = pd.DataFrame({"id": [str(i) for i in range(N_ITEMS)]})
    ds = build_dataset("exact", inter, items=items)
    return fixed_split(ds), ds


class Scorer:
    """Score = fixed per-item value (item index order reversed unless given)."""

    def __init__(self, row: np.ndarray) -> None:
        self.row = np.asarray(row, dtype=np.float64)
        self.calls: list[list[int]] = []

    def score(self, users: np.ndarray) -> np.ndarray:
        self.calls.append([int(u) for u in users])
        return np.repeat(self.row[None, :], len(users), axis=0)


def _by_index(ds, values: dict[int, float]) -> np.ndarray:
    row = np.zeros(ds.n_items)
    for item, v in values.items():
        row[int(ds.items.to_index(str(item)))] = v
    return row


def test_masks_hide_training_for_validation_and_training_plus_validation_for_test() -> None:
    split, ds = _split()
    m_valid, m_test = masks_for(split, "valid"), masks_for(split, "test")
    assert (m_valid != split.matrix("train")).nnz == 0
    assert (m_test != (split.matrix("train") + split.matrix("valid"))).nnz == 0
    assert set(m_test.data.tolist()) == {1.0} and set(m_valid.data.tolist()) == {1.0}


def test_who_is_evaluated_what_comes_back_and_the_metrics_by_hand() -> None:
    split, ds = _split()
    # item i scores 8 - i: lower index is better; no ties
    result = evaluate(Scorer(_by_index(ds, {i: 8.0 - i for i in range(8)})), split, ks=(2, 3))
    users = [ds.users.to_index(u) for u in ("u0", "u1", "u3")]
    assert result.users.tolist() == sorted(int(u) for u in users)  # u2 has no test item: not evaluated
    assert result.n_items == N_ITEMS
    idx = {u: i for i, u in enumerate(result.users.tolist())}
    item = lambda i: int(ds.items.to_index(str(i)))  # noqa: E731
    # u0 masks 0, 1, 2 -> 3, 4, 5; u1 masks 5 -> 0, 1, 2; u3 masks 2, 3 -> 0, 1, 4
    expected = {"u0": [3, 4, 5], "u1": [0, 1, 2], "u3": [0, 1, 4]}
    for name, top in expected.items():
        assert result.top_items[idx[int(ds.users.to_index(name))]].tolist() == [item(i) for i in top]
    row = lambda name: idx[int(ds.users.to_index(name))]  # noqa: E731
    assert result.per_user["hit@2"][row("u0")] == 1.0 and result.per_user["hit@2"][row("u1")] == 0.0
    assert result.per_user["recall@2"][row("u0")] == 1.0
    assert result.per_user["recall@3"][row("u3")] == 1.0 and result.per_user["recall@2"][row("u3")] == 1.0
    assert result.per_user["precision@3"][row("u3")] == pytest.approx(1 / 3)
    assert result.per_user["mrr@3"][row("u3")] == pytest.approx(0.5)
    assert result.per_user["ndcg@3"][row("u3")] == pytest.approx(1 / np.log2(3))
    assert sorted(result.per_user) == sorted(f"{m}@{k}" for m in ("recall", "ndcg", "precision", "mrr", "hit", "map")
                                             for k in (2, 3))
    assert result.mean()["hit@2"] == pytest.approx(2 / 3)


def test_the_extras_are_the_beyond_accuracy_metrics_of_the_top_lists() -> None:
    split, ds = _split()
    cats = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    result = evaluate(Scorer(_by_index(ds, {i: 8.0 - i for i in range(8)})), split, ks=(2, 3), item_categories=cats)
    tops = result.top_items
    train_pop = np.diff(split.matrix("train").tocsc().indptr)
    assert result.extras == {
        "coverage@3": M.catalog_coverage(tops, N_ITEMS, 3),
        "gini@3": M.gini_index(tops, N_ITEMS, 3),
        "novelty@3": float(np.nanmean(M.novelty(tops, train_pop, ds.n_users, 3))),
        "ild@3": float(np.nanmean(M.intra_list_diversity(tops, 3, item_categories=cats))),
    }
    assert result.extras["coverage@3"] == pytest.approx(6 / 8)  # items 0-5 recommended
    assert 0.0 < result.extras["ild@3"] < 1.0
    assert "ild@3" not in evaluate(Scorer(np.zeros(N_ITEMS)), split, ks=(3,)).extras


def test_a_single_held_out_item_is_enough_and_a_chosen_user_list_is_honoured() -> None:
    split, ds = _split()
    u1, u2 = int(ds.users.to_index("u1")), int(ds.users.to_index("u2"))
    result = evaluate(Scorer(np.zeros(N_ITEMS)), split, users=np.array([u1, u2]), ks=(2,))
    assert result.users.tolist() == [u1]  # u2 has nothing held out and is dropped
    valid = evaluate(Scorer(np.zeros(N_ITEMS)), split, part="valid", ks=(2,))
    assert sorted(valid.users.tolist()) == sorted(int(ds.users.to_index(u)) for u in ("u0", "u3"))


def test_the_default_part_is_test_and_the_default_seed_is_zero() -> None:
    split, ds = _split()
    flat = Scorer(np.zeros(N_ITEMS))
    a = evaluate(flat, split, ks=(3,))
    np.testing.assert_array_equal(a.top_items, evaluate(flat, split, part="test", ks=(3,), seed=0).top_items)
    np.testing.assert_array_equal(a.top_items, evaluate(flat, split, ks=(3,)).top_items)
    # the users form one chunk (number 0): the same draw as ranking them at once with a generator
    # seeded (seed, chunk) = (0, 0)
    mask = masks_for(split, "test")
    scores = np.zeros((len(a.users), N_ITEMS), dtype=np.float32)
    r, c = mask[a.users].nonzero()
    scores[r, c] = -np.inf
    np.testing.assert_array_equal(a.top_items, rank_top_k(scores, 3, rng=np.random.default_rng((0, 0))))
    # a later chunk draws from its own generator, whatever the number of threads
    one = evaluate(flat, split, ks=(3,), batch_size=1, threads=1).top_items
    np.testing.assert_array_equal(one, evaluate(flat, split, ks=(3,), batch_size=1, threads=3).top_items)
    for c, row in enumerate(one):
        expected = rank_top_k(scores[c:c + 1], 3, rng=np.random.default_rng((0, c)))
        np.testing.assert_array_equal(row[None, :], expected)


def test_batches_cover_every_user_once() -> None:
    split, ds = _split()
    scorer = Scorer(_by_index(ds, {i: 8.0 - i for i in range(8)}))
    small = evaluate(scorer, split, ks=(3,), batch_size=2)
    assert scorer.calls == [small.users[:2].tolist(), small.users[2:].tolist()]
    np.testing.assert_array_equal(small.top_items, evaluate(scorer, split, ks=(3,)).top_items)


def test_a_split_that_leaks_is_refused_naming_the_part() -> None:
    split, ds = _split()
    leaky = Split(ds, split.train, split.valid, np.r_[split.test, split.train[:1]], "fixed")
    with pytest.raises(LeakageError, match=re.escape("the test set shares 1 (user, item) pair(s) with training")):
        evaluate(Scorer(np.zeros(N_ITEMS)), leaky)
    leaky_valid = Split(ds, split.train, np.r_[split.valid, split.train[:1]], split.test, "fixed")
    with pytest.raises(LeakageError, match=re.escape("the valid set shares 1")):
        evaluate(Scorer(np.zeros(N_ITEMS)), leaky_valid, part="valid")


def test_progress_is_shown_only_when_asked(capsys) -> None:
    split, ds = _split()
    evaluate(Scorer(np.zeros(N_ITEMS)), split, ks=(2,))
    assert capsys.readouterr().err == ""
    evaluate(Scorer(np.zeros(N_ITEMS)), split, ks=(2,), progress=True)
    assert "ranking test" in capsys.readouterr().err
