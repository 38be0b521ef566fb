"""Item and user text profiles: which fields go in, in what order, and what each real dataset has."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from socialrec.errors import DataError
from socialrec.ingest.schema import Dataset, build_dataset
from socialrec.represent.profiles import (
    ThinTextWarning,
    item_profiles,
    recency_order,
    text_availability,
    user_profiles,
    user_texts,
)


def _dataset() -> Dataset:
    inter = pd.DataFrame({
        "user": ["u1", "u1", "u1", "u2", "u2"],
        "item": ["a", "b", "c", "a", "c"],
        "timestamp": [30.0, 10.0, 20.0, 5.0, 6.0],
    })
    items = pd.DataFrame({"id": ["a", "b", "c", "d"],
                          "title": ["Space Quest", "Cake &amp; Co", "Racer", None],
                          "genres": [("Adventure", "Comedy"), ("Puzzle",), (), ()],
                          "category": ["Adventure", "12", None, None]})
    texts = pd.DataFrame({
        "owner": ["item"] * 6 + ["user"] * 3,
        "id": ["a", "a", "a", "a", "a", "b", "u1", "u1", "u2"],
        "field": ["review"] * 4 + ["description", "tag"] + ["post"] * 3,
        "text": ["old review", "newest review", "middle review", "second newest " + "word " * 80,
                 "A point and click game", "sweet", "first post", "latest post", "hello"],
        "timestamp": [1.0, 9.0, 5.0, 8.0, np.nan, np.nan, 1.0, 2.0, 1.0],
    })
    return build_dataset("toy", inter, items=items, texts=texts)


def test_item_profile_fields_in_order() -> None:
    ds = _dataset()
    p = item_profiles(ds, max_reviews=3, review_chars=40, warn_thin=False)
    assert p[0].startswith("Space Quest. Genres: Adventure, Comedy. A point and click game. Reviews: newest review / second newest")
    assert "Category" not in p[0]  # the category repeats the first genre
    assert "old review" not in p[0] and "middle review" in p[0]  # the 3 most recent only
    assert "..." in p[0]  # long snippets are cut
    assert p[1] == "Cake & Co. Genres: Puzzle. Tags: sweet."  # HTML unescaped; "12" is an id, not text
    assert p[2] == "Racer."
    assert p[3] == ""  # an item with no text gets an empty profile


def test_user_texts_and_profiles() -> None:
    ds = _dataset()
    assert user_texts(ds, max_texts=1) == ["latest post", "hello"]
    m = ds.user_item_matrix()
    prof = user_profiles(ds, m, n_recent=2)
    assert prof[0] == "latest post / first post. Recently: Space Quest; Racer."  # times 30, 20 (b at 10 dropped)
    assert prof[1] == "hello. Recently: Racer; Space Quest."


def test_recency_order_ranks_newest_first() -> None:
    ds = _dataset()
    m = ds.user_item_matrix()
    rank = recency_order(ds, m)
    # user u1: items a (t=30), b (t=10), c (t=20) in column order -> ranks 0, 2, 1
    np.testing.assert_array_equal(rank[m.indptr[0]:m.indptr[1]], [0, 2, 1])
    np.testing.assert_array_equal(rank[m.indptr[1]:m.indptr[2]], [1, 0])
    # Without a dataset, the later column counts as newer.
    np.testing.assert_array_equal(recency_order(None, m)[:3], [2, 1, 0])


def test_no_text_is_a_clear_error_and_thin_text_warns() -> None:
    inter = pd.DataFrame({"user": ["x"] * 3, "item": ["1", "2", "3"]})
    ids_only = build_dataset("ciao-recdiff", inter, items=pd.DataFrame({"id": ["1", "2", "3"], "category": ["4", "4", "7"]}))
    with pytest.raises(DataError, match="no item text.*category ids only"):
        item_profiles(ids_only)
    n = 300
    items = pd.DataFrame({"id": [str(i) for i in range(n)], "category": ["Books" if i % 2 else "Games" for i in range(n)]})
    thin = build_dataset("ciao", pd.DataFrame({"user": ["x"] * n, "item": items["id"]}), items=items)
    with pytest.warns(ThinTextWarning, match="only 2 distinct values"):
        item_profiles(thin)


@pytest.mark.realdata
def test_real_dataset_texts(real_movielens: Dataset, real_lastfm: Dataset, real_amazon_games: Dataset) -> None:
    ml = item_profiles(real_movielens)
    assert ml[0] == "Toy Story (1995). Genres: Animation, Children's, Comedy."
    fm = item_profiles(real_lastfm)
    assert fm[0].startswith("MALICE MIZER. Tags: j-rock, visual kei")
    games = item_profiles(real_amazon_games)
    assert all(games) and not any("&amp;" in g for g in games)
    info = text_availability(real_amazon_games)
    assert info["fields"] == {"item:title": 16859} and info["note"] == "titles only"


def test_held_out_reviews_stay_out_of_training_profiles() -> None:
    """A review of a held-out (user, item) pair describes the item a model must find: with the
    training matrix, it is left out of the item's profile and of its author's texts."""
    import pandas as pd
    import scipy.sparse as sp

    from socialrec.ingest.schema import build_dataset
    from socialrec.represent.profiles import item_profiles, user_texts

    inter = pd.DataFrame({"user": ["ann", "ann", "bo"], "item": ["boots", "scarf", "boots"]})
    reviews = [("ann", "boots", "Warm boots, love them", 1.0), ("ann", "scarf", "Scratchy scarf", 2.0),
               ("bo", "boots", "Good value", 3.0)]
    rows = []
    for user, item, text, ts in reviews:
        rows.append({"owner": "item", "id": item, "field": "review", "text": text, "timestamp": ts})
        rows.append({"owner": "user", "id": user, "field": "review", "text": text, "timestamp": ts})
    rows.append({"owner": "item", "id": "scarf", "field": "title", "text": "Wool scarf", "timestamp": None})
    rows.append({"owner": "item", "id": "boots", "field": "title", "text": "Snow boots", "timestamp": None})
    ds = build_dataset("r", inter, texts=pd.DataFrame(rows))
    ann, scarf = ds.users.to_index("ann"), ds.items.to_index("scarf")
    full = ds.user_item_matrix().tocsr()
    train = full.tolil()
    train[ann, scarf] = 0  # ann's scarf is the held-out pair
    train = sp.csr_matrix(train)
    train.eliminate_zeros()
    assert "Scratchy" in item_profiles(ds, warn_thin=False)[scarf]
    assert "Scratchy" not in item_profiles(ds, warn_thin=False, user_items=train)[scarf]
    assert "Scratchy" in user_texts(ds)[ann]
    assert "Scratchy" not in user_texts(ds, user_items=train)[ann]
    assert "Warm boots" in user_texts(ds, user_items=train)[ann]  # training reviews stay


def test_value_rank_weights_by_hand() -> None:
    import scipy.sparse as sp

    from socialrec.ingest.schema import with_interaction_values
    from socialrec.represent.profiles import value_rank_weights

    ds = build_dataset("plays", pd.DataFrame({"user": ["a", "a", "a", "b", "b"], "item": ["x", "y", "z", "x", "y"]}))
    ds = with_interaction_values(ds, pd.DataFrame({"user": ["a", "a", "b", "b"], "item": ["x", "y", "x", "y"],
                                                   "value": [10.0, 100.0, 4.0, 4.0]}))
    x = sp.csr_matrix(np.ones((2, 3), np.float32) * [[1, 1, 1], [1, 1, 0]])
    w = value_rank_weights(ds, x).toarray()
    # a: y (100) rank 0 -> 1, x (10) rank 1 -> 1/log2 3, z (no value) rank 2 -> 1/2; scaled to mean 1.
    raw = np.array([1 / np.log2(3), 1.0, 0.5])
    np.testing.assert_allclose(w[0], raw * 3 / raw.sum(), rtol=1e-6)
    # b: a tie (4, 4) goes by item index: x rank 0, y rank 1.
    raw_b = np.array([1.0, 1 / np.log2(3)])
    np.testing.assert_allclose(w[1, :2], raw_b * 2 / raw_b.sum(), rtol=1e-6)
    assert w[1, 2] == 0.0 and x.data.tolist() == [1.0] * 5  # the input is not modified
    with pytest.raises(DataError, match="needs interaction values"):
        value_rank_weights(build_dataset("none", pd.DataFrame({"user": ["a"], "item": ["x"]})), x[:1, :1])
