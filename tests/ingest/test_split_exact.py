"""Splits, checked to the row: protocol names and seeds recorded on the split, the CLI names
dispatching to the same rows as the direct calls, RecBole's rounding for uneven users and
unnormalised ratios, ties and row order, boundaries of shares and ratios, and error messages that
say what to do. Written so that each mutation of ingest/split.py that changes a split fails here."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from socialrec.errors import DataError, LeakageError
from socialrec.ingest.schema import build_dataset
from socialrec.ingest.split import (
    PROTOCOLS,
    check_no_leakage,
    cold_item_split,
    cold_user_split,
    fixed_split,
    leave_one_out,
    make_split,
    random_split,
    temporal_split,
)


def _uneven(seed: int = 0):
    """Users with 3, 5, 10, 25 and 31 distinct items; timestamps increase with the row."""
    rng = np.random.default_rng(seed)
    rows = []
    t = 0.0
    for u, n in enumerate((3, 5, 10, 25, 31)):
        for i in rng.choice(60, size=n, replace=False):
            rows.append((f"u{u}", f"i{i}", t))
            t += 1.0
    return build_dataset("uneven", pd.DataFrame(rows, columns=["user", "item", "timestamp"]))


def _per_user_counts(split, part):
    users = split.dataset.interactions.iloc[split.rows(part)]["user"]
    return users.value_counts().reindex(range(split.dataset.n_users), fill_value=0).to_numpy()


def _same_rows(a, b) -> None:
    for part in ("train", "valid", "test"):
        np.testing.assert_array_equal(a.rows(part), b.rows(part))


def test_each_protocol_records_its_name_and_seed() -> None:
    ds = _uneven()
    assert (random_split(ds, seed=7).protocol, random_split(ds, seed=7).seed) == ("random", 7)
    assert (temporal_split(ds).protocol, temporal_split(ds).seed) == ("temporal", None)
    assert (leave_one_out(ds).protocol, leave_one_out(ds).seed) == ("loo", None)
    assert (cold_item_split(ds, seed=4).protocol, cold_item_split(ds, seed=4).seed) == ("cold-item", 4)
    assert (cold_user_split(ds, seed=5).protocol, cold_user_split(ds, seed=5).seed) == ("cold-user", 5)
    df = pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "y", "x"], "split": ["train", "test", "valid"]})
    fixed = fixed_split(build_dataset("f", df))
    assert (fixed.protocol, fixed.seed) == ("fixed", None)
    for split in (random_split(ds), temporal_split(ds), leave_one_out(ds), cold_item_split(ds), cold_user_split(ds)):
        assert split.dataset is ds


def test_the_cli_names_give_the_same_rows_as_the_direct_calls() -> None:
    ds = _uneven()
    for seed in (0, 3):
        _same_rows(make_split(ds, "random-811", seed=seed), random_split(ds, (0.8, 0.1, 0.1), seed=seed))
        _same_rows(make_split(ds, "cold-item", seed=seed), cold_item_split(ds, 0.2, seed=seed))
        _same_rows(make_split(ds, "cold-user", seed=seed), cold_user_split(ds, 0.2, seed=seed))
        assert make_split(ds, "random-811", seed=seed).seed == seed
        assert make_split(ds, "cold-item", seed=seed).seed == seed
        assert make_split(ds, "cold-user", seed=seed).seed == seed
    _same_rows(make_split(ds, "random-811"), random_split(ds, seed=0))
    _same_rows(make_split(ds, "loo"), leave_one_out(ds))
    _same_rows(make_split(ds, "temporal"), temporal_split(ds))
    assert [make_split(ds, p).protocol for p in ("random-811", "loo", "temporal", "cold-item", "cold-user")] == [
        "random", "loo", "temporal", "cold-item", "cold-user"]
    df = pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "y", "x"], "split": ["train", "test", "valid"]})
    shipped = build_dataset("f", df)
    _same_rows(make_split(shipped, "fixed"), fixed_split(shipped))
    assert PROTOCOLS == ("random-811", "fixed", "loo", "temporal", "cold-item", "cold-user")
    with pytest.raises(ValueError, match=re.escape(f"unknown protocol 'RANDOM-811'; use one of {PROTOCOLS}")):
        make_split(ds, "RANDOM-811")


def test_default_seeds_are_zero() -> None:
    ds = _uneven()
    _same_rows(random_split(ds), random_split(ds, seed=0))
    assert random_split(ds).seed == 0
    _same_rows(cold_item_split(ds), cold_item_split(ds, 0.2, seed=0))
    _same_rows(cold_user_split(ds), cold_user_split(ds, 0.2, seed=0))
    assert cold_item_split(ds).seed == 0 and cold_user_split(ds).seed == 0
    assert not np.array_equal(random_split(ds, seed=1).test, random_split(ds).test)


def test_random_split_rounds_each_user_down_whatever_their_size() -> None:
    split = random_split(_uneven(), seed=2)
    n = np.array([3, 5, 10, 25, 31])
    np.testing.assert_array_equal(_per_user_counts(split, "test"), np.floor(0.1 * n))
    np.testing.assert_array_equal(_per_user_counts(split, "valid"), np.floor(0.1 * n))
    np.testing.assert_array_equal(_per_user_counts(split, "train"), n - 2 * np.floor(0.1 * n))


def test_ratios_are_normalised_and_each_part_uses_its_own_ratio() -> None:
    ds = _uneven()
    _same_rows(random_split(ds, (8, 1, 1), seed=1), random_split(ds, (0.8, 0.1, 0.1), seed=1))
    _same_rows(temporal_split(ds, (8, 1, 1)), temporal_split(ds, (0.8, 0.1, 0.1)))
    n = np.array([3, 5, 10, 25, 31])
    split = random_split(ds, (0.6, 0.1, 0.3), seed=1)
    np.testing.assert_array_equal(_per_user_counts(split, "valid"), np.floor(0.1 * n))
    np.testing.assert_array_equal(_per_user_counts(split, "test"), np.floor(0.3 * n))
    temporal = temporal_split(ds, (6, 1, 3))  # 74 pairs: floor(7.4) valid, floor(22.2) test
    assert temporal.sizes() == {"train": 74 - 7 - 22, "valid": 7, "test": 22}
    assert random_split(ds, (0.8, 0.0, 0.2), seed=0).sizes()["valid"] == 0


@pytest.mark.parametrize("ratios", [(0.0, 0.5, 0.5), (0.8, -0.1, 0.3), (0.9, 0.2, -0.1), (0.5, 0.5), (0.4, 0.3, 0.2, 0.1)])
def test_bad_ratios_are_refused_by_every_ratio_protocol(ratios) -> None:
    message = re.escape(f"ratios must be three non-negative numbers (train, valid, test) with train > 0, got {ratios}")
    for splitter in (random_split, temporal_split):
        with pytest.raises(ValueError, match=message):
            splitter(_uneven(), ratios)


def test_temporal_orders_pairs_by_their_first_time_not_their_ids() -> None:
    # ids in one order, times in the reverse order: u1's pair (time 99) is the latest
    rows = [(f"u{u:02d}", f"i{u:02d}", float(100 - u)) for u in range(20)]
    rows.append(("u00", "i00", 0.5))  # u00's pair was first seen early, and seen again last: it trains
    ds = build_dataset("rev", pd.DataFrame(rows, columns=["user", "item", "timestamp"]))
    split = temporal_split(ds)
    times = ds.interactions["timestamp"].to_numpy()
    assert sorted(times[split.test]) == [98.0, 99.0]
    assert sorted(times[split.valid]) == [96.0, 97.0]
    assert {0.5, 100.0} <= set(times[split.train])


def test_temporal_ties_keep_the_pairs_in_id_order() -> None:
    """A stable sort: with every time equal, the last pairs by (user, item) index test."""
    rows = [(f"u{u:03d}", f"i{i}", 5.0) for u in range(40) for i in range(3)]
    ds = build_dataset("ties", pd.DataFrame(rows, columns=["user", "item", "timestamp"]))
    split = temporal_split(ds)
    key = ds.interactions["user"].to_numpy(np.int64) * ds.n_items + ds.interactions["item"].to_numpy(np.int64)
    order = np.argsort(key, kind="stable")
    np.testing.assert_array_equal(np.sort(split.test), np.sort(order[-12:]))
    np.testing.assert_array_equal(np.sort(split.valid), np.sort(order[-24:-12]))


def test_leave_one_out_follows_time_not_row_order() -> None:
    # rows written newest first
    rows = [("a", f"i{j}", float(10 - j)) for j in range(6)] + [("b", "x", 3.0), ("b", "y", 1.0), ("b", "z", 2.0)]
    ds = build_dataset("loo", pd.DataFrame(rows, columns=["user", "item", "timestamp"]))
    split = leave_one_out(ds)
    inter = ds.interactions
    assert list(inter.iloc[split.test]["timestamp"]) == [10.0, 3.0]  # a's newest (row 0), b's newest
    assert list(inter.iloc[split.valid]["timestamp"]) == [9.0, 2.0]
    assert split.sizes() == {"train": 5, "valid": 2, "test": 2}


def test_leave_one_out_uses_a_repeated_pairs_last_time() -> None:
    rows = [("a", "x", 1.0), ("a", "y", 2.0), ("a", "z", 3.0), ("a", "x", 9.0)]
    ds = build_dataset("rep", pd.DataFrame(rows, columns=["user", "item", "timestamp"]))
    split = leave_one_out(ds)
    assert sorted(split.test.tolist()) == [0, 3]  # x was played last: both its rows test
    assert split.valid.tolist() == [2]


def test_leave_one_out_needs_three_distinct_items() -> None:
    rows = [("a", f"i{j}", float(j)) for j in range(3)] + [("b", f"i{j}", float(j)) for j in range(2)]
    ds = build_dataset("few", pd.DataFrame(rows, columns=["user", "item", "timestamp"]))
    split = leave_one_out(ds)
    assert split.sizes() == {"train": 3, "valid": 1, "test": 1}  # a (3 items) is split, b (2) trains


@pytest.mark.parametrize("splitter, name", [(temporal_split, "temporal"), (leave_one_out, "leave-one-out")])
def test_time_protocols_say_what_is_missing_and_what_to_do(splitter, name) -> None:
    ds = build_dataset("nt", pd.DataFrame({"user": ["a", "b"], "item": ["x", "y"]}))
    with pytest.raises(DataError) as err:
        splitter(ds)
    assert err.value.field == "timestamp"
    assert err.value.fix == "Use the random protocol, or load timestamps"
    assert err.value.problem == f"the {name} split needs a timestamp on every interaction; 2 lack one in dataset 'nt'"


def test_fixed_split_accepts_a_shipped_split_that_is_all_training() -> None:
    df = pd.DataFrame({"user": ["a", "b"], "item": ["x", "y"], "split": ["train", "train"]})
    split = fixed_split(build_dataset("all-train", df))
    assert split.sizes() == {"train": 2, "valid": 0, "test": 0}


def test_fixed_split_without_a_shipped_split_says_what_to_use() -> None:
    ds = build_dataset("none", pd.DataFrame({"user": ["a"], "item": ["x"]}))
    with pytest.raises(DataError) as err:
        fixed_split(ds)
    assert err.value.problem == "dataset 'none' ships no split of its own"
    assert err.value.fix == "Use the random, temporal or loo protocol"


@pytest.mark.parametrize("share", [0.0, 1.0, 1.5, -0.2])
def test_cold_shares_outside_zero_one_are_refused(share) -> None:
    for splitter in (cold_item_split, cold_user_split):
        with pytest.raises(ValueError, match=re.escape(f"share must be in (0, 1), got {share}")):
            splitter(_uneven(), share)


def test_cold_splits_hold_out_a_rounded_share_half_to_validation() -> None:
    ds = _uneven()
    inter = ds.interactions
    for splitter, column in ((cold_item_split, "item"), (cold_user_split, "user")):
        for share in (0.2, 0.6):
            split = splitter(ds, share, seed=1)
            valid_ids = set(inter.iloc[split.valid][column])
            test_ids = set(inter.iloc[split.test][column])
            cold = round(share * inter[column].nunique())
            assert len(valid_ids) == cold // 2 and len(test_ids) == cold - cold // 2
            assert not (valid_ids | test_ids) & set(inter.iloc[split.train][column])
            _same_rows(split, splitter(ds, share, seed=1))
    assert not np.array_equal(cold_item_split(ds, seed=1).test, cold_item_split(ds, seed=2).test)


def test_cold_user_split_with_more_users_than_items() -> None:
    rows = [(f"u{u}", f"i{u % 3}", float(u)) for u in range(30)]
    ds = build_dataset("wide", pd.DataFrame(rows, columns=["user", "item", "timestamp"]))
    split = cold_user_split(ds, 0.2, seed=0)
    assert split.sizes() == {"train": 24, "valid": 3, "test": 3}


def test_pairs_are_grouped_without_overflow_on_large_catalogs() -> None:
    """65,537 users x 65,536 items: user * n_items exceeds 32 bits, and two different pairs
    (user 0, item 0) and (user 65536, item 0) would share a key if it wrapped."""
    n = 65536
    users = np.r_[np.arange(n + 1)]
    items = np.r_[0, np.arange(1, n), 0]
    times = np.r_[0.0, np.full(n - 1, 1.0), 2.0]
    ds = build_dataset("big", pd.DataFrame({"user": users.astype(str), "item": items.astype(str), "timestamp": times}))
    assert ds.n_items == n and ds.n_users == n + 1
    split = temporal_split(ds, (0.8, 0.0, 0.2))
    last = int(np.flatnonzero(ds.interactions["timestamp"].to_numpy() == 2.0)[0])
    first = int(np.flatnonzero(ds.interactions["timestamp"].to_numpy() == 0.0)[0])
    assert last in set(split.test) and first in set(split.train)


def test_matrices_are_binary_unless_asked() -> None:
    df = pd.DataFrame({"user": ["a", "a", "a"], "item": ["x", "x", "y"], "value": [2.0, 3.0, 4.0],
                       "split": ["train", "train", "train"]})
    split = fixed_split(build_dataset("v", df))
    assert split.matrix("train").toarray().tolist() == [[1.0, 1.0]]
    assert split.matrix("train", binary=False).toarray().tolist() == [[5.0, 4.0]]
    with pytest.raises(ValueError, match=re.escape("part must be one of ('train', 'valid', 'test'), got 'dev'")):
        split.rows("dev")


def test_the_leakage_message_names_the_part_and_the_first_shared_pair() -> None:
    df = pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "y", "x"], "split": ["train", "test", "valid"]})
    split = fixed_split(build_dataset("f", df))
    train = split.matrix("train")
    with pytest.raises(LeakageError, match=re.escape("the test set shares 1 (user, item) pair(s) with training "
                                                     "(first: user index 0, item index 0)")):
        check_no_leakage(train, train)
    with pytest.raises(LeakageError, match=re.escape("drop the repeated pairs from valid")):
        check_no_leakage(train, train, what="valid")


def test_user_boundaries_are_found_for_equal_sized_users() -> None:
    """Three users with 20 items each: 2 validate and 2 test per user (a boundary off by two
    would give the first user 18 items and one of each)."""
    rows = [(f"u{u}", f"i{i}", float(i)) for u in range(3) for i in range(20)]
    split = random_split(build_dataset("equal", pd.DataFrame(rows, columns=["user", "item", "timestamp"])), seed=0)
    assert _per_user_counts(split, "test").tolist() == [2, 2, 2]
    assert _per_user_counts(split, "valid").tolist() == [2, 2, 2]


@pytest.mark.parametrize("protocol", ["random-811", "temporal", "loo", "cold-item", "cold-user"])
def test_every_row_is_in_exactly_one_part_and_a_pairs_rows_share_it(protocol) -> None:
    rng = np.random.default_rng(1)
    rows = [(f"u{u}", f"i{i}", float(rng.integers(1000))) for u in range(12) for i in rng.choice(30, 15)]  # repeats
    ds = build_dataset("rows", pd.DataFrame(rows, columns=["user", "item", "timestamp"]))
    split = make_split(ds, protocol, seed=2)
    every = np.sort(np.concatenate([split.train, split.valid, split.test]))
    np.testing.assert_array_equal(every, np.arange(len(ds.interactions)))
    part_of = {}
    inter = ds.interactions
    for part in ("train", "valid", "test"):
        for u, i in zip(inter["user"].to_numpy()[split.rows(part)], inter["item"].to_numpy()[split.rows(part)]):
            assert part_of.setdefault((u, i), part) == part
