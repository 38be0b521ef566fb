"""The social-proof channel on a graph whose answer is known by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from socialrec.ingest.schema import build_dataset
from socialrec.retrieve.base import TrainData
from socialrec.retrieve.social_proof import SocialProof


def _toy(timestamps: bool = False):
    # a follows b and c; b liked x and y, c liked x and z; a liked y only.
    inter = pd.DataFrame({"user": ["b", "b", "c", "c", "a"], "item": ["x", "y", "x", "z", "y"],
                          "timestamp": [0.0, 0.0, 10 * 86400.0, 0.0, 10 * 86400.0]})
    if not timestamps:
        inter = inter.drop(columns="timestamp")
    social = pd.DataFrame({"source": ["a", "a"], "target": ["b", "c"]})
    ds = build_dataset("toy", inter, social=social, social_directed=True)
    return ds, TrainData(user_items=ds.user_item_matrix(), dataset=ds)


def test_scores_sum_tie_strengths_of_friends_who_liked_the_item():
    ds, train = _toy()
    model = SocialProof(overlap_weight=4.0, popularity_weight=0.0).fit(train)
    a = ds.users.to_index("a")
    s = model.score(np.array([a]))[0]
    x, y, z = (ds.items.to_index(i) for i in "xyz")
    # strength(a,b) = 1 + 4 * |{y}| / |{y, x}| = 3; strength(a,c) = 1 + 4 * 0 = 1.
    assert s[x] == pytest.approx(3 + 1) and s[z] == pytest.approx(1.0)
    ids, _ = model.recommend(a, k=2)
    assert list(ids) == [x, z]  # y is already seen
    assert model.friend_evidence(a, x) == [(ds.users.to_index("b"), 3.0), (ds.users.to_index("c"), 1.0)]


def test_recency_decays_old_interactions():
    ds, train = _toy(timestamps=True)
    model = SocialProof(overlap_weight=0.0, half_life_days=10.0, popularity_weight=0.0).fit(train)
    s = model.score(np.array([ds.users.to_index("a")]))[0]
    x, z = ds.items.to_index("x"), ds.items.to_index("z")
    # b's x is 10 days old (0.5), c's x is the newest (1.0); c's z is 10 days old (0.5).
    assert s[x] == pytest.approx(0.5 + 1.0) and s[z] == pytest.approx(0.5)


def test_needs_a_social_graph():
    with pytest.raises(ValueError, match="needs a social graph"):
        SocialProof().fit(sp.csr_matrix(np.eye(3, dtype=np.float32)))
