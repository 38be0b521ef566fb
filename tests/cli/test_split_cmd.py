"""`socialrec split` writes exactly what `socialrec serve --holdout` leaves out, with the split code
of `socialrec evaluate`."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from socialrec.cli.main import main


def _rows(path: Path) -> list[tuple[str, str]]:
    with open(path) as f:
        reader = csv.reader(f, delimiter="\t")
        next(reader)
        return [(a, b) for a, b in reader]


def test_split_writes_the_held_out_pairs_and_edges(tmp_path: Path) -> None:
    from socialrec.evaluate.holdout import served_part
    from socialrec.ingest.datasets import load
    from socialrec.ingest.split import make_split

    assert main(["split", "--dataset", "synthetic", "--protocol", "random-811", "--seed", "3",
                 "--friends-masked", "0.2", "--output", str(tmp_path)]) == 0
    ds = load("synthetic")
    split = make_split(ds, "random-811", seed=3)
    test = ds.interactions.iloc[split.test]
    expected = set(zip(ds.users.to_external(test["user"]).tolist(), ds.items.to_external(test["item"]).tolist()))
    assert set(_rows(tmp_path / "test.tsv")) == expected
    held, kept = set(_rows(tmp_path / "friends_test.tsv")), set(_rows(tmp_path / "friends_train.tsv"))
    adj = ds.social_matrix().tocoo()
    every = set(zip(ds.users.to_external(adj.row).tolist(), ds.users.to_external(adj.col).tolist()))
    assert held and not held & kept and held | kept == every
    # What serve --holdout serves: train + valid interactions and the training edges, nothing held out.
    part = served_part(ds, "random-811", seed=3, friends_masked=0.2)
    served = part.dataset
    pairs = set(zip(served.users.to_external(served.interactions["user"]).tolist(),
                    served.items.to_external(served.interactions["item"]).tolist()))
    assert not pairs & expected and len(served.interactions) == len(split.train) + len(split.valid)
    s = served.social_matrix().tocoo()
    assert set(zip(served.users.to_external(s.row).tolist(), served.users.to_external(s.col).tolist())) == kept
    assert np.all(served.interactions["split"] == -1)
