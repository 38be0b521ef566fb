"""The membership-inference audit: its AUC, its interval and its pairs, and that it catches a
model that memorises its training data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from socialrec.ingest.schema import build_dataset
from socialrec.ingest.split import random_split
from socialrec.privacy.audit import audit_model, auc, bootstrap_auc_ci, membership_pairs
from socialrec.retrieve.knn import UserKNN
from socialrec.retrieve.popular import MostPopular


def test_auc_matches_hand_computed_values() -> None:
    # members 0.35, 0.8 against non-members 0.1, 0.4: 3 of 4 pairs ordered right
    assert auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(0.75)
    # ties count one half: (1 vs 1) .5, (1 vs 0) 1, (2 vs 1) 1, (2 vs 0) 1 -> 3.5 / 4
    assert auc(np.array([1.0, 1.0, 2.0, 0.0]), np.array([1, 0, 1, 0])) == pytest.approx(0.875)
    assert auc(np.array([3.0, 2.0, 1.0]), np.array([0, 1, 1])) == 0.0
    with pytest.raises(ValueError, match="member and one non-member"):
        auc(np.array([1.0, 2.0]), np.array([1, 1]))


def test_bootstrap_interval_covers_the_estimate_and_narrows_with_users() -> None:
    rng = np.random.default_rng(0)
    intervals = []
    for n_users in (20, 500):
        groups = np.repeat(np.arange(n_users), 4)
        labels = np.tile([1, 1, 0, 0], n_users)
        scores = rng.normal(size=len(labels)) + 0.5 * labels
        lo, hi = bootstrap_auc_ci(scores, labels, groups, n_boot=300)
        assert lo <= auc(scores, labels) <= hi
        intervals.append(hi - lo)
    assert intervals[1] < intervals[0] / 2


def test_pairs_are_balanced_per_user_and_disjoint_from_training() -> None:
    train = sp.csr_matrix(np.array([[1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1]], dtype=np.float32))
    test = sp.csr_matrix(np.array([[0, 0, 0, 1, 1, 0], [0, 1, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0]], dtype=np.float32))
    pairs = membership_pairs(train, test, seed=0)
    for u in (0, 1):
        mine = pairs.users == u
        assert pairs.labels[mine].sum() * 2 == mine.sum()  # as many members as non-members
        assert all(train[u, i] == 1 for i in pairs.items[mine & (pairs.labels == 1)])
        assert all(test[u, i] == 1 for i in pairs.items[mine & (pairs.labels == 0)])
    assert not (pairs.users == 2).any()  # no held-out items: no pairs
    assert (pairs.users == 1).sum() == 2  # one training item: one pair of each kind
    with pytest.raises(ValueError, match="overlap"):
        membership_pairs(train, train)


def _random_split(n_users: int = 120, n_items: int = 60, per_user: int = 20, seed: int = 0):  # type: ignore[no-untyped-def]
    """Interactions with no structure at all: nothing to generalise, only something to memorise."""
    rng = np.random.default_rng(seed)
    rows = [(str(u), str(i)) for u in range(n_users) for i in rng.choice(n_items, per_user, replace=False)]
    ds = build_dataset("random", pd.DataFrame(rows, columns=["user", "item"]))
    return random_split(ds, (0.6, 0.0, 0.4), seed=seed)


def test_the_audit_detects_a_model_that_memorises() -> None:
    split = _random_split()
    # With few neighbours, UserKNN scores a user's items by the users who share them: the user's
    # own training items are what made those users neighbours, the held-out ones are not.
    memorising = audit_model(UserKNN(neighbors=5), split, n_boot=200)
    assert memorising["auc"] >= 0.65 and memorising["ci95"][0] > 0.55, memorising
    # Popularity learnt nothing about the user: only the count a training item adds to itself.
    pop = audit_model(MostPopular(), split, n_boot=200)
    assert abs(pop["auc"] - 0.5) < abs(memorising["auc"] - 0.5)
    assert pop["auc_popularity"] == pytest.approx(memorising["auc_popularity"])  # the model-free baseline


def test_dp_training_with_a_small_budget_is_not_caught() -> None:
    pytest.importorskip("opacus")
    from socialrec.retrieve.dp_mf import DPMF

    entry = audit_model(DPMF(target_epsilon=1.0, factors=8, epochs=5, batch_size=60, learning_rate=0.05),
                        _random_split(), n_boot=200)
    assert entry["ci95"][0] <= 0.5 <= entry["ci95"][1] + 0.02 and entry["auc"] < 0.6, entry
    assert entry["epsilon"] <= 1.0
