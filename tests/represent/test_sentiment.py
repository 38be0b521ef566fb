"""Sentiment scores (English VADER, Chinese SnowNLP) and the mood / item-sentiment features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from socialrec.ingest.schema import build_dataset
from socialrec.represent.sentiment import recency_weights, sentiment_features, sentiment_scores

pytest.importorskip("vaderSentiment")
pytest.importorskip("snownlp")

POSITIVE_ZH = ["这部电影太好看了，我非常喜欢", "服务很好，下次还来", "今天天气不错，心情很好", "味道很棒，强烈推荐"]
NEGATIVE_ZH = ["质量太差了，非常失望", "太难吃了，再也不来了", "快递很慢，包装也破了", "完全是浪费钱，后悔买了"]
POSITIVE_EN = ["I love this, it is wonderful!", "Great product and price!", "Excellent quality, very happy."]
NEGATIVE_EN = ["Terrible. It broke after one day.", "I hate it, worst purchase ever.", "Very disappointed, poor quality."]


def test_chinese_and_english_sentiment_get_the_right_sign() -> None:
    s = sentiment_scores(POSITIVE_ZH + NEGATIVE_ZH + POSITIVE_EN + NEGATIVE_EN)
    assert s.dtype == np.float32 and np.all(np.abs(s) <= 1.0)
    signs = np.sign(s)
    expected = [1] * 4 + [-1] * 4 + [1] * 3 + [-1] * 3
    np.testing.assert_array_equal(signs, expected)


def test_empty_text_is_neutral_and_order_is_kept() -> None:
    s = sentiment_scores(["", "I love it", "   ", "I hate it", "I love it"])
    assert s[0] == 0.0 and s[2] == 0.0
    assert s[1] > 0 > s[3] and s[1] == s[4]


def test_one_string_is_refused() -> None:
    with pytest.raises(TypeError, match="wrap it in a list"):
        sentiment_scores("I love it")  # type: ignore[arg-type]


def test_recency_weights_halve_per_half_life() -> None:
    day = 86400.0
    w = recency_weights(np.array([0, 0, 0, 1]), np.array([10 * day, 9 * day, 8 * day, np.nan]), 1.0)
    np.testing.assert_allclose(w, [1.0, 0.5, 0.25, 1.0])
    np.testing.assert_allclose(recency_weights(np.array([0, 0]), np.array([0.0, 1e9]), None), [1.0, 1.0])


def _review_dataset() -> "object":
    """u0 writes happy reviews, u1 angry ones, u2 nothing; item a is loved, item b hated.
    Each review is attached to its item and its author, as the Amazon loader does."""
    reviews = [
        ("u0", "a", "I love it, wonderful!", 1.0),
        ("u0", "c", "Great, very happy with it.", 2.0),
        ("u1", "b", "Terrible, I hate it.", 1.0),
        ("u1", "a", "Awful and disappointing.", 3.0),  # the held-out review below
        ("u2", "b", "Worst purchase ever, broken.", 1.0),
    ]
    inter = pd.DataFrame({"user": [r[0] for r in reviews], "item": [r[1] for r in reviews],
                          "timestamp": [r[3] for r in reviews]})
    texts = pd.DataFrame(
        [("item", r[1], "review", r[2], r[3]) for r in reviews]
        + [("user", r[0], "review", r[2], r[3]) for r in reviews]
        + [("user", "u2", "post", "", 5.0), ("item", "c", "title", "A happy mug", np.nan)],
        columns=["owner", "id", "field", "text", "timestamp"])
    return build_dataset("reviews", inter, texts=texts)


def test_features_are_aligned_to_indices_and_restricted_to_training() -> None:
    ds = _review_dataset()
    f = sentiment_features(ds, half_life_days=None)
    u = {x: int(ds.users.to_index(x)) for x in ("u0", "u1", "u2")}
    i = {x: int(ds.items.to_index(x)) for x in ("a", "b", "c")}
    assert f.user_mood[u["u0"]] > 0.5 and f.user_mood[u["u1"]] < -0.5
    assert f.item_sentiment[i["b"]] < -0.5 and f.item_sentiment[i["c"]] > 0.5  # the title is not a review
    assert f.item_texts[i["a"]] == 2 and f.user_texts[u["u1"]] == 2
    # Hold out u1's review of a: a then only has u0's happy review, u1 only the one about b.
    full = ds.user_item_matrix()
    train = full.tolil()
    train[u["u1"], i["a"]] = 0
    g = sentiment_features(ds, sp.csr_matrix(train), half_life_days=None)
    assert g.item_texts[i["a"]] == 1 and g.item_sentiment[i["a"]] > 0.5
    assert g.user_texts[u["u1"]] == 1 and g.user_texts[u["u0"]] == 2
    np.testing.assert_allclose(g.item_sentiment[i["b"]], f.item_sentiment[i["b"]])
    # The empty post counts as a text of u2 (score 0): u2's mood is the mean of -x and 0.
    assert f.user_texts[u["u2"]] == 2 and -0.5 < f.user_mood[u["u2"]] < 0


def test_recency_weighting_favours_the_latest_text() -> None:
    ds = _review_dataset()
    u1 = int(ds.users.to_index("u1"))
    plain = sentiment_features(ds, half_life_days=None).user_mood[u1]
    recent = sentiment_features(ds, half_life_days=1 / 86400.0).user_mood[u1]  # the t=3 text dominates
    latest = sentiment_scores(["Awful and disappointing."])[0]
    assert abs(recent - latest) < abs(plain - latest)


def test_a_post_counts_its_own_words_in_item_sentiment() -> None:
    """Items that are posts (an item table with a text column): a post without comments gets
    the sentiment of its own words; with comments, the mean of both; a catalog without post
    texts is unchanged."""
    from socialrec.represent.sentiment import items_are_posts

    class Known:
        scores = {"good post": 0.8, "bad post": -0.6, "nice": 1.0, "meh": 0.0}

        def score(self, texts: list[str], progress: bool = False) -> np.ndarray:
            return np.array([self.scores[t] for t in texts], dtype=np.float32)

    inter = pd.DataFrame({"user": ["a", "b"], "item": ["p0", "p1"]})
    items = pd.DataFrame({"id": ["p0", "p1", "p2"], "text": ["good post", "bad post", ""]})
    texts = pd.DataFrame({"owner": ["item", "user"], "id": ["p0", "a"], "field": ["comment", "comment"],
                          "text": ["meh", "nice"]})
    ds = build_dataset("posts", inter, items=items, texts=texts)
    assert items_are_posts(ds)
    f = sentiment_features(ds, analyzer=Known())
    np.testing.assert_allclose(f.item_sentiment, [0.4, -0.6, 0.0], atol=1e-6)  # p0: (0.8 + 0) / 2
    assert f.item_texts.tolist() == [2, 1, 0] and f.user_mood[ds.users.to_index("a")] == 1.0
    off = sentiment_features(ds, analyzer=Known(), item_own_text=False)
    np.testing.assert_allclose(off.item_sentiment, [0.0, 0.0, 0.0], atol=1e-6)
