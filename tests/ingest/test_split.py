"""Splits: sizes by hand, no pair on both sides, and the leakage check refuses overlap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from socialrec.errors import DataError, LeakageError
from socialrec.ingest.schema import build_dataset
from socialrec.ingest.split import (
    check_no_leakage,
    cold_item_split,
    cold_user_split,
    fixed_split,
    leave_one_out,
    make_split,
    random_split,
    temporal_split,
)


def _dataset(n_users: int = 30, per_user: int = 20, seed: int = 0, with_time: bool = True):
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        items = rng.choice(100, size=per_user, replace=False)
        for j, i in enumerate(items):
            rows.append((f"u{u}", f"i{i}", float(u * 1000 + j)))
    df = pd.DataFrame(rows, columns=["user", "item", "timestamp"])
    if not with_time:
        df = df.drop(columns="timestamp")
    return build_dataset("toy", df)


def _pairs(split, part):
    df = split.dataset.interactions.iloc[split.rows(part)]
    return set(zip(df["user"], df["item"]))


def test_random_split_sizes_follow_recbole_rounding():
    ds = _dataset(per_user=25)  # floor(2.5) = 2 valid, 2 test, 21 train per user
    split = random_split(ds, seed=3)
    assert split.sizes() == {"train": 30 * 21, "valid": 30 * 2, "test": 30 * 2}
    assert not _pairs(split, "train") & _pairs(split, "test")
    assert not _pairs(split, "valid") & _pairs(split, "test")
    users = ds.interactions.iloc[split.test]["user"]
    assert users.value_counts().eq(2).all()


def test_random_split_is_seeded():
    ds = _dataset()
    a, b, c = random_split(ds, seed=1), random_split(ds, seed=1), random_split(ds, seed=2)
    np.testing.assert_array_equal(a.test, b.test)
    assert not np.array_equal(a.test, c.test)


def test_repeated_pairs_move_together():
    df = pd.DataFrame({"user": ["a"] * 12, "item": [f"i{j}" for j in range(10)] + ["i0", "i0"],
                       "timestamp": np.arange(12.0)})
    ds = build_dataset("rep", df)
    for seed in range(5):
        split = random_split(ds, seed=seed)
        parts = [p for p in ("train", "valid", "test") if 0 in set(ds.interactions.iloc[split.rows(p)]["item"])]
        assert len(parts) == 1


def test_leave_one_out_takes_the_last_two_by_time():
    ds = _dataset(n_users=5, per_user=6)
    split = leave_one_out(ds)
    inter = ds.interactions
    for u in range(5):
        rows = inter[inter["user"] == u].sort_values("timestamp")
        assert set(split.test) & set(rows.index) == {rows.index[-1]}
        assert set(split.valid) & set(rows.index) == {rows.index[-2]}


def test_temporal_split_puts_the_latest_pairs_in_test():
    ds = _dataset(n_users=10, per_user=10)
    split = temporal_split(ds)
    ts = ds.interactions["timestamp"].to_numpy()
    assert ts[split.train].max() <= ts[split.valid].min() <= ts[split.test].min()
    assert split.sizes() == {"train": 80, "valid": 10, "test": 10}


def test_time_protocols_need_timestamps():
    ds = _dataset(with_time=False)
    with pytest.raises(DataError, match="timestamp"):
        leave_one_out(ds)


def test_cold_item_split_hides_items_from_training():
    ds = _dataset()
    split = cold_item_split(ds, 0.2, seed=0)
    train_items = set(ds.interactions.iloc[split.train]["item"])
    test_items = set(ds.interactions.iloc[split.test]["item"])
    valid_items = set(ds.interactions.iloc[split.valid]["item"])
    assert not train_items & test_items and not train_items & valid_items and not valid_items & test_items
    n_present = ds.interactions["item"].nunique()
    assert len(test_items) + len(valid_items) == round(0.2 * n_present)


def test_cold_user_split_hides_users_from_training():
    ds = _dataset()
    split = cold_user_split(ds, 0.2, seed=0)
    train_users = set(ds.interactions.iloc[split.train]["user"])
    assert not train_users & set(ds.interactions.iloc[split.test]["user"])


def test_fixed_split_reads_the_split_column_and_refuses_when_absent():
    df = pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "y", "x"], "split": ["train", "test", "valid"]})
    split = fixed_split(build_dataset("f", df))
    assert split.sizes() == {"train": 1, "valid": 1, "test": 1}
    with pytest.raises(DataError, match="ships no split"):
        fixed_split(_dataset())


def test_leakage_check_refuses_shared_pairs():
    df = pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "y", "x"], "split": ["train", "test", "valid"]})
    split = fixed_split(build_dataset("f", df))
    check_no_leakage(split.matrix("train"), split.matrix("test"))
    with pytest.raises(LeakageError, match="shares 1 .user, item. pair"):
        check_no_leakage(split.matrix("train"), split.matrix("train"))


def test_make_split_names_the_protocols():
    with pytest.raises(ValueError, match="random-811"):
        make_split(_dataset(), "random-99")
