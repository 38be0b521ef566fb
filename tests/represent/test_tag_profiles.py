"""Tag affinity: tf-idf cosine of the user's history to the item, with the user's own tags on
items outside their history left out (a user who tagged an item has met it)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from socialrec.ingest.schema import Dataset
from socialrec.represent.tag_profiles import TagProfiles

# Items 0..2. User 1 tagged item 0 "a" and item 1 "b"; user 0 tagged item 1 "a" (item 1 is not in
# user 0's history). Users 0 and 2 have item 0 in their history, user 1 has item 2.
TAGS = pd.DataFrame({"user": [1, 1, 0, -1], "item": [0, 1, 1, 2], "tag": ["a", "b", "a", "c"]})
HISTORY = sp.csr_matrix(np.array([[1, 0, 0], [0, 0, 1], [1, 0, 0]], dtype=np.float32))


def test_affinity_is_the_tfidf_cosine_and_leaves_out_the_users_own_tags_on_unseen_items() -> None:
    tags = TagProfiles().fit(TAGS, HISTORY)
    idf_a, idf_b = np.log(4 / 3), np.log(4 / 2)  # a on items 0 and 1, b on item 1 only
    aff = tags.affinity(np.array([0, 2]), np.array([[1, 2], [1, 2]]))
    # User 2 sees item 1 as everyone tagged it: (a, b) against a history that is all "a".
    np.testing.assert_allclose(aff[1, 0], idf_a / np.hypot(idf_a, idf_b), rtol=1e-5)
    # User 0's own "a" on item 1 is left out: only user 1's "b" remains, nothing shared.
    assert aff[0, 0] == 0.0
    assert aff[0, 1] == 0.0 and aff[1, 1] == 0.0  # item 2's tag "c" is in nobody's history
    assert tags.shared_tags(2, 1) == ["a"]
    assert tags.shared_tags(0, 1) == []


def test_the_users_own_tags_on_their_history_build_their_profile() -> None:
    tags = TagProfiles().fit(TAGS, HISTORY)
    # User 1's history is item 2 ("c", tagged by an unknown user): item 2 matches fully.
    assert tags.affinity(np.array([1]), np.array([[2]]))[0, 0] == 1.0
    tagged_own_history = TagProfiles().fit(pd.DataFrame({"user": [0], "item": [0], "tag": ["a"]}), HISTORY)
    assert tagged_own_history.user_profile_[0].toarray().ravel().tolist() == [1.0]


@pytest.mark.realdata
def test_a_fifth_of_lastfm_test_pairs_are_artists_the_user_tagged(real_lastfm: Dataset,
                                                                   real_lastfm_recbole: Dataset) -> None:
    """Why the user's own tags on unseen items are left out (the docstrings' 22%): on the
    benchmarks' random-811 split of lastfm-recbole, that share of the test pairs is tagged by
    the same user, and as many of the training pairs."""
    from socialrec.ingest.split import make_split

    t = real_lastfm.tag_assignments
    tagged = sp.csr_matrix((np.ones(len(t), np.float32), (t["user"], t["item"])), shape=(real_lastfm.n_users, real_lastfm.n_items))
    split = make_split(real_lastfm_recbole, "random-811", seed=0)
    for part in ("train", "test"):
        pairs = split.matrix(part).tocsr()
        share = (tagged.multiply(pairs) > 0).sum() / pairs.nnz
        assert 0.215 < share < 0.23, (part, share)


def test_item_embedding_keeps_the_tag_profile_cosines_and_leaves_untagged_items_at_zero() -> None:
    # Items 0 and 1 share tag a, 3 has a and b, 4 has c and d; item 5 is untagged. Four tags, rank
    # three: a three-dimensional embedding is exact.
    table = pd.DataFrame({"user": -1, "item": [0, 1, 2, 3, 3, 4, 4], "tag": ["a", "a", "b", "a", "b", "c", "d"]})
    tags = TagProfiles().fit(table, sp.csr_matrix((2, 6), dtype=np.float32))
    emb = tags.item_embedding(dim=3)
    unit = tags.item_unit_t_.T.toarray()
    expected = unit @ unit.T  # the tf-idf cosines
    norms = np.linalg.norm(emb, axis=1)
    assert norms[5] == 0.0
    e = emb[:5] / norms[:5, None]
    np.testing.assert_allclose(e @ e.T, expected[:5, :5], atol=1e-5)
    assert expected[0, 1] == pytest.approx(1.0) and expected[2, 4] == 0.0 and 0 < expected[0, 3] < 1
